#!/usr/bin/env python3
"""Bytes sent and stored per task, with a program named by its id (stored
once: `PUT /v1/programs`) against the same program's ELF inline in every
submission (`elf_base64`, what clients had to do before the program store).

    python3 scripts/measure-program-store.py [--tasks 10000] [--binary PATH]

For each way, starts `provernode run` on a fresh data directory, submits
--tasks trace tasks of one program that is not built in (fibonacci's RISC
Zero ELF with a byte appended, so its id is new), n = 1, waits for all to
end, stops the node (so SQLite checkpoints its WAL) and reports: request
bytes per task, the database's size per task, and what the programs table
holds. Standard library only; the node listens on 127.0.0.1.
"""
import argparse, base64, json, os, shutil, sqlite3, subprocess, sys, tempfile, threading, time, urllib.error, urllib.request

def default_binary():
    target = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/provernode-target"))
    return os.path.join(target, "release", "provernode")

RETRIES = {"503": 0}

def request(base, method, path, data=None, ctype="application/json"):
    # 503 (overloaded, or the store busy) means retry, as any client should.
    for attempt in range(100):
        req = urllib.request.Request(base + path, data=data, headers={"content-type": ctype}, method=method)
        try:
            with urllib.request.urlopen(req, timeout=120) as r:
                return json.load(r)
        except urllib.error.HTTPError as e:
            if e.code != 503 or attempt == 99:
                raise RuntimeError(f"{method} {path}: {e.code} {e.read()[:300]!r}")
            if RETRIES["503"] == 0:
                print(f"  (503: {e.read()[:200]!r}; retrying)", file=sys.stderr)
            RETRIES["503"] += 1
            time.sleep(0.05 * (attempt + 1))

def run_one(binary, elf, tasks, by_id):
    work = tempfile.mkdtemp(prefix="provernode-programs-")
    data = os.path.join(work, "data")
    node = subprocess.Popen([binary, "run", "--data-dir", data, "--listen", "127.0.0.1:0", "--workers", "2",
                             "--sqlite-synchronous", "normal"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        base = node.stdout.readline().strip().removeprefix("provernode listening on ")
        threading.Thread(target=node.stdout.read, daemon=True).start()
        sent = 0
        if by_id:
            stored = request(base, "PUT", "/v1/programs?name=custom-fib", elf, "application/octet-stream")
            sent += len(elf)
            body = json.dumps({"program": stored["id"], "input_hex": "01000000"}).encode()
        else:
            body = json.dumps({"program": "custom-fib", "input_hex": "01000000",
                               "elf_base64": base64.b64encode(elf).decode()}).encode()
        ids, lock = [], threading.Lock()
        def submitter(k):
            for _ in range(k, tasks, 8):
                tid = request(base, "POST", "/v1/tasks", body)["id"]
                with lock:
                    ids.append(tid)
        started = time.time()
        threads = [threading.Thread(target=submitter, args=(k,)) for k in range(8)]
        for t in threads: t.start()
        for t in threads: t.join()
        submit_secs = time.time() - started
        sent += len(body) * tasks
        while True:
            done = sum(1 for s in ("queued", "leased")
                       if request(base, "GET", f"/v1/tasks?state={s}&limit=1")["tasks"])
            if done == 0:
                break
            time.sleep(1)
    finally:
        node.terminate()
        node.wait(timeout=120)
    db = os.path.join(data, "queue.sqlite")
    size = os.path.getsize(db)
    con = sqlite3.connect(db)
    programs = con.execute("SELECT COUNT(*), SUM(LENGTH(elf)) FROM programs").fetchone()
    tasks_bytes = con.execute("SELECT SUM(LENGTH(input)) FROM tasks").fetchone()[0]
    results = con.execute("SELECT COUNT(*), SUM(LENGTH(envelope)) FROM results").fetchone()
    con.close()
    shutil.rmtree(work, ignore_errors=True)
    return dict(sent_per_task=sent / tasks, db_bytes=size, db_per_task=size / tasks, programs=programs[0],
                program_bytes=programs[1], results=results[0], proof_bytes_per_task=results[1] / max(results[0], 1),
                submit_secs=submit_secs, input_bytes=tasks_bytes)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tasks", type=int, default=10000)
    ap.add_argument("--binary", default=default_binary())
    a = ap.parse_args()
    if not os.path.exists(a.binary):
        sys.exit(f"{a.binary} not found: build provernode first, or pass --binary")
    here = os.path.dirname(os.path.abspath(__file__))
    elf = open(os.path.join(here, "..", "crates", "provernode-guests", "elf", "risc0", "fibonacci.elf"), "rb").read() + b"\0"
    print(f"{a.tasks} tasks of one {len(elf):,}-byte program (trace, fibonacci n=1)")
    for label, by_id in (("inline ELF (elf_base64 in every submission)", False), ("program store (PUT once, then by id)", True)):
        RETRIES["503"] = 0
        r = run_one(a.binary, elf, a.tasks, by_id)
        if RETRIES["503"]:
            print(f"  ({RETRIES['503']} submissions answered 503 and retried)")
        print(f"{label}:\n  sent {r['sent_per_task']:,.0f} bytes/task; submitted in {r['submit_secs']:.1f} s "
              f"({a.tasks / r['submit_secs']:,.0f} tasks/s)\n"
              f"  database {r['db_bytes'] / 2**20:,.1f} MiB = {r['db_per_task']:,.0f} bytes/task "
              f"(programs: {r['programs']} row(s), {r['program_bytes']:,} bytes; proofs {r['proof_bytes_per_task']:,.0f} bytes/task)")

if __name__ == "__main__":
    main()
