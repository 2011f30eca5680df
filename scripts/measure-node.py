#!/usr/bin/env python3
"""End-to-end figures of the embedded node (trace backend, trivial inputs).

    cargo build --release && python3 scripts/measure-node.py [--tasks 10000] [--workers 2]

Starts `provernode run` on a temporary data directory and reports:
  - tasks per second end to end (submit over HTTP -> proved in a worker ->
    verified by the node -> stored), with N workers;
  - the node's resident memory before and after the run;
  - median attempt time with a fresh worker process per attempt versus a
    warm one, i.e. what a child process adds to one attempt.
Only the standard library is used; the node listens on 127.0.0.1 only.
"""
import argparse, json, os, shutil, statistics, subprocess, sys, tempfile, threading, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def binary():
    target = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/provernode-target"))
    path = os.path.join(target, "release", "provernode")
    if not os.path.exists(path):
        sys.exit(f"{path} not found: run `cargo build --release` first (with CARGO_TARGET_DIR={target})")
    return path


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Node:
    def __init__(self, workers, extra=()):
        self.dir = tempfile.mkdtemp(prefix="provernode-measure-")
        self.proc = subprocess.Popen(
            [binary(), "run", "--data-dir", os.path.join(self.dir, "data"), "--listen", "127.0.0.1:0",
             "--workers", str(workers), *extra],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline().strip()
        self.base = line.removeprefix("provernode listening on ")
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"content-type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.loads(r.read())

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)


def throughput(tasks, workers, submitters=8):
    node = Node(workers, ["--sqlite-synchronous", "full"])
    time.sleep(0.5)
    rss_before = rss_kib(node.proc.pid)
    ids, lock = [], threading.Lock()
    start = time.time()

    def submit(count):
        mine = [node.call("POST", "/v1/tasks", {"program": "fibonacci", "input": {"n": 1}})["id"] for _ in range(count)]
        with lock:
            ids.extend(mine)

    threads = [threading.Thread(target=submit, args=(tasks // submitters,)) for _ in range(submitters)]
    for t in threads: t.start()
    for t in threads: t.join()
    submitted = time.time()
    while True:
        queued = len(node.call("GET", "/v1/tasks?state=queued&limit=1000")["tasks"])
        leased = len(node.call("GET", "/v1/tasks?state=leased&limit=1000")["tasks"])
        if queued == 0 and leased == 0:
            break
        time.sleep(0.2)
    elapsed = time.time() - start
    failed = [s for s in ("failed", "quarantined", "cancelled")
              if node.call("GET", f"/v1/tasks?state={s}&limit=1")["tasks"]]
    rss_after = rss_kib(node.proc.pid)
    node.stop()
    return {"tasks": len(ids), "workers": workers, "seconds": round(elapsed, 2),
            "submit_seconds": round(submitted - start, 2),
            "tasks_per_second": round(len(ids) / elapsed, 1),
            "rss_before_mib": round(rss_before / 1024, 1), "rss_after_mib": round(rss_after / 1024, 1),
            "non_succeeded_states_seen": failed}


def attempt_times(mode, count=200):
    node = Node(1, ["--worker-mode", f"trace={mode}", "--sqlite-synchronous", "normal"])
    times = []
    for _ in range(count):
        tid = node.call("POST", "/v1/tasks", {"program": "fibonacci", "input": {"n": 1}})["id"]
        while True:
            t = node.call("GET", f"/v1/tasks/{tid}")
            if t["state"] not in ("queued", "leased"):
                break
            time.sleep(0.002)
        a = t["attempt_history"][-1]
        times.append(a["ended_ms"] - a["started_ms"])
    node.stop()
    return statistics.median(times), statistics.quantiles(times, n=10)[-1]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--tasks", type=int, default=10000)
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args()
    print(json.dumps({"throughput": throughput(args.tasks, args.workers)}, indent=2))
    fresh = attempt_times("fresh")
    warm = attempt_times("warm")
    print(json.dumps({"attempt_ms_median_p90": {"fresh_process_per_attempt": fresh, "warm_worker": warm},
                      "child_process_overhead_ms_median": fresh[0] - warm[0]}, indent=2))


if __name__ == "__main__":
    main()
