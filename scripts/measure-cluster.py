#!/usr/bin/env python3
"""Cluster figures on one machine (trace backend, trivial inputs).

    cargo build --release && python3 scripts/measure-cluster.py [--tasks 2000]

Starts a throwaway PostgreSQL (initdb + pg_ctl on a free loopback port; as
the postgres user when run as root), one broker, and 1, 2, then 4 agents of
one worker each, and reports:
  - tasks per second end to end for each agent count;
  - how long the cluster takes to notice a dead agent and re-run its task
    (agent killed with SIGKILL mid-attempt, lease 5 s, sweep every 1 s).
Needs the postgresql package. Only the standard library is used.
"""
import argparse, glob, json, os, shutil, signal, socket, subprocess, sys, tempfile, threading, time, urllib.request

CLIENT, AGENT = "measure-client", "measure-agent"


def binary():
    target = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/provernode-target"))
    path = os.path.join(target, "release", "provernode")
    if not os.path.exists(path):
        sys.exit(f"{path} not found: run `cargo build --release` first")
    return path


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close(); return port


class Postgres:
    def __init__(self):
        bins = sorted(glob.glob("/usr/lib/postgresql/*/bin"))
        if not bins:
            sys.exit("PostgreSQL is not installed: apt-get install postgresql")
        self.bin = bins[-1]
        self.dir = tempfile.mkdtemp(prefix="provernode-pg-")
        self.root = os.geteuid() == 0
        if self.root:
            subprocess.run(["chown", "-R", "postgres:postgres", self.dir], check=True)
        self.port = free_port()
        data = os.path.join(self.dir, "data")
        self.run("initdb", "-D", data, "-U", "postgres", "--auth=trust", "--no-sync")
        self.run("pg_ctl", "-D", data, "-l", os.path.join(self.dir, "log"), "-w", "start", "-o",
                 f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=300")
        self.run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "bench")
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/bench"

    def run(self, tool, *args):
        cmd = [os.path.join(self.bin, tool), *args]
        if self.root:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def stop(self):
        self.run("pg_ctl", "-D", os.path.join(self.dir, "data"), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)


def spawn(*args):
    p = subprocess.Popen([binary(), *args], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    p.stdout.readline()
    threading.Thread(target=p.stdout.read, daemon=True).start()
    return p


def call(base, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"content-type": "application/json", "authorization": f"Bearer {CLIENT}"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return r.read()


def counts(base):
    out = {}
    for line in call(base, "GET", "/metrics").decode().splitlines():
        if line.startswith("provernode_tasks{"):
            state = line.split('state="')[1].split('"')[0]
            out[state] = float(line.split()[-1])
    return out


def kill_tree(p):
    for child in subprocess.run(["pgrep", "-P", str(p.pid)], capture_output=True, text=True).stdout.split():
        os.kill(int(child), signal.SIGKILL)
    p.kill(); p.wait()


def throughput(pg, agents, tasks):
    call_db = f"{pg.url}"
    # A fresh database per run keeps runs independent.
    name = f"run{agents}"
    pg.run("createdb", "-h", "127.0.0.1", "-p", str(pg.port), "-U", "postgres", name)
    url = call_db.rsplit("/", 1)[0] + "/" + name
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    broker = spawn("broker", "--database-url", url, "--listen", f"127.0.0.1:{port}",
                   "--client-token", CLIENT, "--agent-token", AGENT)
    scratch = tempfile.mkdtemp()
    procs = [spawn("agent", "--broker", base, "--token", AGENT, "--name", f"a{i}", "--workers", "1",
                   "--scratch-dir", scratch) for i in range(agents)]
    start = time.time()

    def submit(n):
        for _ in range(n):
            call(base, "POST", "/v1/tasks", {"program": "fibonacci", "input": {"n": 1}})

    threads = [threading.Thread(target=submit, args=(tasks // 8,)) for _ in range(8)]
    for t in threads: t.start()
    for t in threads: t.join()
    while True:
        c = counts(base)
        if c.get("succeeded", 0) + c.get("failed", 0) + c.get("quarantined", 0) >= tasks:
            break
        time.sleep(0.2)
    elapsed = time.time() - start
    for p in procs: kill_tree(p)
    kill_tree(broker)
    shutil.rmtree(scratch, ignore_errors=True)
    return {"agents": agents, "tasks": tasks, "seconds": round(elapsed, 2),
            "tasks_per_second": round(tasks / elapsed, 1), "succeeded": int(c.get("succeeded", 0))}


def dead_agent(pg):
    pg.run("createdb", "-h", "127.0.0.1", "-p", str(pg.port), "-U", "postgres", "dead")
    url = pg.url.rsplit("/", 1)[0] + "/dead"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    broker = spawn("broker", "--database-url", url, "--listen", f"127.0.0.1:{port}",
                   "--client-token", CLIENT, "--agent-token", AGENT, "--sweep-secs", "1")
    scratch = tempfile.mkdtemp()
    agents = [spawn("agent", "--broker", base, "--token", AGENT, "--name", f"a{i}", "--workers", "1",
                    "--lease-secs", "5", "--scratch-dir", scratch) for i in range(2)]
    tid = json.loads(call(base, "POST", "/v1/tasks", {"program": "sha256-chain", "input": {"rounds": 300000}}))["id"]
    while True:
        t = json.loads(call(base, "GET", f"/v1/tasks/{tid}"))
        if t["state"] == "leased":
            break
        time.sleep(0.01)
    victim = int(t["lease"]["owner"].split("/")[0][1:])
    killed = time.time()
    kill_tree(agents[victim])
    while json.loads(call(base, "GET", f"/v1/tasks/{tid}"))["attempts"] < 2:
        time.sleep(0.05)
    noticed = time.time() - killed
    for i, p in enumerate(agents):
        if i != victim: kill_tree(p)
    kill_tree(broker)
    shutil.rmtree(scratch, ignore_errors=True)
    return {"lease_secs": 5, "sweep_secs": 1, "seconds_from_kill_to_reclaim": round(noticed, 2)}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--tasks", type=int, default=2000)
    args = p.parse_args()
    pg = Postgres()
    try:
        for agents in (1, 2, 4):
            print(json.dumps(throughput(pg, agents, args.tasks)), flush=True)
        print(json.dumps({"dead_agent": dead_agent(pg)}), flush=True)
    finally:
        pg.stop()


if __name__ == "__main__":
    main()
