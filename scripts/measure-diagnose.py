#!/usr/bin/env python3
"""Size and time of a support bundle (`provernode diagnose`) from a node that
ran many tasks, some of them failing.

    python3 scripts/measure-diagnose.py [--tasks 10000] [--failing 100] [--binary PATH]

Starts `provernode run` on a temporary data directory with a log file,
submits --tasks trivial trace tasks (fibonacci n=1) of which --failing are
refused by their guest (sha256-chain with too few cycles: each fails once,
with a cause and a stderr tail), waits for all to end, then times
`provernode diagnose run` and reports the bundle's size. Standard library
only; the node listens on 127.0.0.1.
"""
import argparse, json, os, shutil, subprocess, sys, tempfile, threading, time, urllib.request

def default_binary():
    target = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/provernode-target"))
    return os.path.join(target, "release", "provernode")

def post(base, body):
    req = urllib.request.Request(base + "/v1/tasks", data=json.dumps(body).encode(),
                                 headers={"content-type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.load(r)["id"]

def get(base, path):
    with urllib.request.urlopen(base + path, timeout=60) as r:
        return json.load(r)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=10000)
    ap.add_argument("--failing", type=int, default=100)
    ap.add_argument("--binary", default=default_binary())
    a = ap.parse_args()
    if not os.path.exists(a.binary):
        sys.exit(f"{a.binary} not found: build provernode first, or pass --binary")
    work = tempfile.mkdtemp(prefix="provernode-diagnose-")
    data, log = os.path.join(work, "data"), os.path.join(work, "logs", "node.log")
    node = subprocess.Popen([a.binary, "run", "--data-dir", data, "--listen", "127.0.0.1:0", "--workers", "2",
                             "--sqlite-synchronous", "normal", "--log-file", log],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        base = node.stdout.readline().strip().removeprefix("provernode listening on ")
        threading.Thread(target=node.stdout.read, daemon=True).start()
        started = time.time()
        ids = []
        lock = threading.Lock()
        def submitter(k):
            for i in range(k, a.tasks, 8):
                if i < a.failing:
                    body = {"program": "sha256-chain", "input": {"rounds": 50}, "max_cycles": 1000,
                            "max_attempts": 1}
                else:
                    body = {"program": "fibonacci", "input": {"n": 1}, "idempotency_key": f"t{i}"}
                tid = post(base, body)
                with lock:
                    ids.append(tid)
        threads = [threading.Thread(target=submitter, args=(k,)) for k in range(8)]
        for t in threads: t.start()
        for t in threads: t.join()
        while True:
            counts = {}
            with urllib.request.urlopen(base + "/metrics", timeout=60) as r:
                text = r.read().decode()
            for line in text.splitlines():
                if line.startswith("provernode_tasks{"):
                    state = line.split('state="')[1].split('"')[0]
                    counts[state] = int(float(line.split()[-1]))
            if counts.get("queued", 1) == 0 and counts.get("leased", 1) == 0:
                break
            time.sleep(1)
        ran = time.time() - started
        bundle = os.path.join(work, "bundle.tar.gz")
        t0 = time.time()
        subprocess.run([a.binary, "diagnose", "run", "--data-dir", data, "--listen", base.removeprefix("http://"),
                        "--log-file", log, "-o", bundle], check=True, stdout=subprocess.DEVNULL)
        took = time.time() - t0
        size = os.path.getsize(bundle)
        listing = subprocess.run(["tar", "tzvf", bundle], capture_output=True, text=True).stdout
        print(f"tasks: {a.tasks} ({a.failing} failing), all ended in {ran:.1f} s; states {counts}")
        print(f"diagnose run: {took:.2f} s, bundle {size} bytes ({size / 1024:.1f} KiB)")
        print(listing)
    finally:
        node.terminate()
        node.wait()
        shutil.rmtree(work, ignore_errors=True)

if __name__ == "__main__":
    main()
