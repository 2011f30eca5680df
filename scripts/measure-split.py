#!/usr/bin/env python3
"""Issue 22's figures: one proof split into parts, proved by a node's workers.

    cargo build --release --features risc0          # or CI's heavy build
    python3 scripts/measure-split.py --backend risc0 --program fibonacci --input '{"n": 100000}' \\
        --po2 18 --workers 1 --workers 2 [--json docs/split.json --machine LABEL]

For each worker count it starts `provernode run` (each worker is what one
agent of a cluster does; on one machine they share its cores), submits one
succinct task that is split, waits for it, and reads the task and every
part back from the API. It prints:
  - wall time (submitted -> proof stored);
  - the plan's time (one execution), each segment part (re-execute, prove,
    lift) and each join, from the attempts' own start and end;
  - the total proving time (sum over parts) and the critical path (plan +
    the longest chain of segment and joins under the final join);
  - the peak resident memory of the largest process of that run (the node
    or one of its workers): the larger of each live descendant's VmHWM,
    sampled every second, and the kernel's maximum over the node and the
    workers it reaped, read when the node exits (so each row is its own
    run's peak, whatever ran before it in the same invocation);
and, from the measured mean segment and join times, a schedule of the real
tree (the node's online pairing of adjacent parts) for 4, 16 and 64 agents
of this size: projected wall time and scaling efficiency, labelled as a
projection. Only the standard library is used.

A program whose split takes longer than one sitting (sha256-chain 1,000
rounds: 33 parts of 2^18, about 3 hours on one 2-core instance) can be sampled:
--stop-after SECONDS stops the run then and reports the plan and the parts
finished by then, in a row marked partial; --join-s gives the projection a
join time measured in a complete run on the same machine (parts are taken
oldest first, so a stopped run has proved segments, not yet joins).
"""
import argparse, json, os, shutil, subprocess, sys, tempfile, threading, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def binary():
    if os.environ.get("B"):
        return os.environ["B"]
    target = os.environ.get("CARGO_TARGET_DIR", os.path.expanduser("~/.cache/provernode-target"))
    path = os.path.join(target, "release", "provernode")
    if not os.path.exists(path):
        sys.exit(f"{path} not found: build it with the backend first (or set B=)")
    return path


def total_memory_mib():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    sys.exit("/proc/meminfo has no MemTotal: cannot size the workers")


class Node:
    def __init__(self, args, workers):
        self.dir = tempfile.mkdtemp(prefix="provernode-split-")
        self.proc = subprocess.Popen(
            [binary(), "run", "--data-dir", os.path.join(self.dir, "data"), "--listen", "127.0.0.1:0",
             "--workers", str(workers), "--split-backends", args.backend, "--split-po2", str(args.po2),
             "--default-memory-limit-mib", str(args.memory_mib)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline().strip()
        self.base = line.removeprefix("provernode listening on ")
        self.peak_kib = 0
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"content-type": "application/json"})
        with urllib.request.urlopen(req, timeout=120) as r:
            return json.loads(r.read())

    def sample_peak(self):
        """Folds the VmHWM of the node and every live descendant into peak_kib."""
        for pid in descendants(self.proc.pid):
            self.peak_kib = max(self.peak_kib, vm_hwm_kib(pid))

    def stop(self):
        """Stops the node; returns its run's peak RSS in KiB."""
        self.sample_peak()
        self.proc.terminate()
        # wait4 rather than Popen.wait: its rusage is this node's alone (its
        # own peak and that of the workers it reaped), where RUSAGE_CHILDREN
        # would carry an earlier run's peak into this row.
        deadline = time.monotonic() + 120
        while True:
            pid, status, usage = os.wait4(self.proc.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                self.proc.kill()
                _, status, usage = os.wait4(self.proc.pid, 0)
                break
            time.sleep(0.2)
        self.proc.returncode = os.waitstatus_to_exitcode(status)
        shutil.rmtree(self.dir, ignore_errors=True)
        return max(self.peak_kib, usage.ru_maxrss)


def descendants(root):
    """root and its live descendants, from /proc."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                # the command name may hold spaces: fields follow the last ')'
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def vm_hwm_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def attempt_secs(task):
    done = [a for a in task["attempt_history"] if a["outcome"] in ("succeeded", "split")]
    a = done[-1]
    return (a["ended_ms"] - a["started_ms"]) / 1000.0


def is_segment(part):
    """A part covering one segment (prove and lift); the others are joins."""
    return part["part"]["hi"] - part["part"]["lo"] == 1


def plan_secs(task):
    """The plan's seconds (its one execution); exits if it had not finished."""
    if not any(a["outcome"] in ("succeeded", "split") for a in task["attempt_history"]):
        sys.exit("stopped before the plan finished: nothing to report (a longer --stop-after?)")
    return attempt_secs(task)


def plan_po2(args, task):
    """The segment size the node's plan used (the API's split.segment_po2),
    which a worker's memory limit may have made smaller than --po2."""
    used = (task.get("split") or {}).get("segment_po2")
    if used is None:
        sys.exit("the task shows no split.segment_po2: a provernode older than this script, or the task was not split")
    if used != args.po2:
        print(f"note: asked for 2^{args.po2} segments, the node used 2^{used} (it fits the size to the "
              f"worker's memory limit, --memory-mib {args.memory_mib}, and the backend's bounds); "
              f"the row records 2^{used}", file=sys.stderr)
    return used


def critical_path(parts_by_id, part):
    """Seconds from the plan's end to this part's end along its longest chain."""
    own = attempt_secs(part)
    deps = part["depends_on"]
    if not deps:
        return own
    return own + max(critical_path(parts_by_id, parts_by_id[d["id"]]) for d in deps)


def schedule(segments, agents, plan_s, segment_s, join_s):
    """Wall time of the node's tree on `agents` agents: segments queued at the
    plan's end, each finished part joined at once with a free adjacent part
    (the shorter when both are free), parts taken oldest first."""
    t = plan_s
    queue = [("s", i, i + 1) for i in range(segments)]
    running = []  # (end, lo, hi)
    done = []     # free finished ranges
    free_agents = agents
    while True:
        while free_agents and queue:
            kind, lo, hi = queue.pop(0)
            running.append((t + (segment_s if kind == "s" else join_s), lo, hi))
            free_agents -= 1
        running.sort()
        end, lo, hi = running.pop(0)
        t = end
        free_agents += 1
        if lo == 0 and hi == segments:
            return t
        neighbours = sorted((r for r in done if r[1] == lo or r[0] == hi), key=lambda r: (r[1] - r[0], r[0]))
        if neighbours:
            n = neighbours[0]
            done.remove(n)
            queue.append(("j", min(lo, n[0]), max(hi, n[1])))
        else:
            done.append((lo, hi))


def run(args, workers):
    node = Node(args, workers)
    peak_kib = None
    try:
        body = {"program": args.program, "backend": args.backend,
                "input": json.loads(args.input), "timeout_secs": 86400}
        if args.backend == "risc0":
            body["proof_kind"] = "succinct"  # what risc0 splits
        tid = node.call("POST", "/v1/tasks", body)["id"]
        started = time.monotonic()
        stopped_after_s = None
        while True:
            task = node.call("GET", f"/v1/tasks/{tid}")
            if task["state"] not in ("queued", "leased"):
                break
            if args.stop_after and time.monotonic() - started > args.stop_after:
                stopped_after_s = time.monotonic() - started
                break
            node.sample_peak()
            time.sleep(1)
        if stopped_after_s is None and task["state"] != "succeeded":
            sys.exit(f"the task ended {task['state']}: {task.get('detail')}")
        # task lists hold submitted tasks only; ?parent= lists one split task's parts
        listed = node.call("GET", f"/v1/tasks?parent={tid}&limit=1000")["tasks"]
        parts = [node.call("GET", f"/v1/tasks/{t['id']}") for t in listed]
    finally:
        peak_kib = node.stop()
    if stopped_after_s is not None:
        return partial_row(args, workers, task, parts, stopped_after_s, peak_kib)
    by_id = {p["id"]: p for p in parts}
    segments = [p for p in parts if is_segment(p)]
    joins = [p for p in parts if not is_segment(p)]
    final = next(p for p in joins if p["part"]["lo"] == 0 and p["part"]["hi"] == len(segments))
    plan_s = attempt_secs(task)
    seg_s = [attempt_secs(p) for p in segments]
    join_s = [attempt_secs(p) for p in joins]
    row = {
        "backend": args.backend, "program": args.program, "input": json.loads(args.input),
        "segment_po2": plan_po2(args, task), "workers": workers, "segments": len(segments), "cycles": task["cycles"],
        "wall_s": (task["finished_ms"] - task["created_ms"]) / 1000.0,
        "plan_s": plan_s, "segment_s": seg_s, "join_s": join_s,
        "total_proving_s": plan_s + sum(seg_s) + sum(join_s),
        "critical_path_s": plan_s + critical_path(by_id, final),
        "peak_worker_rss_mib": peak_kib / 1024.0,
        "retried_parts": sum(1 for p in parts if p["attempts"] > 1),
    }
    return row


def partial_row(args, workers, task, parts, stopped_after_s, peak_kib):
    """The figures of a run stopped before its proof (--stop-after): the plan
    and the parts that had finished. No wall time, total or critical path:
    those need the whole tree."""
    plan_s = plan_secs(task)  # first: it says so when the plan had not finished
    done = [p for p in parts if p["state"] == "succeeded"]
    segments = [p for p in parts if is_segment(p)]
    return {
        "backend": args.backend, "program": args.program, "input": json.loads(args.input),
        "segment_po2": plan_po2(args, task), "workers": workers, "segments": len(segments), "cycles": task["cycles"],
        "partial": True, "stopped_after_s": round(stopped_after_s, 1),
        "plan_s": plan_s,
        "segment_s": [attempt_secs(p) for p in done if is_segment(p)],
        "join_s": [attempt_secs(p) for p in done if not is_segment(p)],
        "peak_worker_rss_mib": peak_kib / 1024.0,
        "retried_parts": sum(1 for p in parts if p["attempts"] > 1),
    }


def print_projection(segments, plan_s, mean_seg, mean_join, source):
    one = schedule(segments, 1, plan_s, mean_seg, mean_join)
    print(f"**projection** from {source} (segment {mean_seg:.1f} s, join {mean_join:.1f} s), "
          f"{segments} segments:")
    for agents in (1, 2, 4, 16, 64):
        wall = schedule(segments, agents, plan_s, mean_seg, mean_join)
        print(f"  {agents:>2} agents: {wall:8.1f} s, speed-up {one / wall:5.2f}, efficiency {one / wall / agents:6.1%}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backend", default="risc0")
    p.add_argument("--program", default="fibonacci")
    p.add_argument("--input", default='{"n": 100000}')
    p.add_argument("--po2", type=int, default=18,
                   help="segments of 2^N cycles, as asked of the node; the node lowers it to fit --memory-mib "
                        "(risc0: 10 KiB a row, so 2^19 needs 5120 and 2^20 10240), and the row records the size "
                        "its plan used (the API's split.segment_po2), with a note when that is smaller")
    p.add_argument("--memory-mib", type=int, default=4096,
                   help="each worker's memory limit (default 4096: room for 2^18 segments)")
    p.add_argument("--workers", type=int, action="append")
    p.add_argument("--json", help="append each row to this JSON file as soon as it is measured")
    p.add_argument("--machine", help="a label for this machine, stored in each row (rows from different "
                   "instances are not comparable as a speed-up)")
    p.add_argument("--stop-after", type=float, metavar="SECONDS",
                   help="stop each run after this long and report the plan and the parts finished by then "
                   "(a row marked partial: no wall time, total or critical path), for programs whose "
                   "split takes longer than one sitting")
    p.add_argument("--join-s", type=float, metavar="SECONDS",
                   help="the mean join time for the projection, when the first run finished no join "
                   "(a join proves the same recursion circuit whatever the program: take it from a "
                   "complete run on the same machine)")
    args = p.parse_args()
    # The node runs no more attempts at once than fit its memory budget (90% of
    # this machine's memory): with more workers than that, a row would say
    # "N workers" of a run that proved fewer parts at a time.
    budget_mib = total_memory_mib() * 9 // 10
    for w in args.workers or [1, 2]:
        if w * args.memory_mib > budget_mib:
            sys.exit(f"--workers {w} with --memory-mib {args.memory_mib} needs {w * args.memory_mib} MiB, over the "
                     f"node's memory budget here ({budget_mib} MiB, 90% of this machine's memory): it would prove "
                     f"at most {budget_mib // args.memory_mib} part(s) at once; lower --memory-mib to "
                     f"{budget_mib // w} or less (the node then lowers the segment size to fit)")
    rows = []
    for w in args.workers or [1, 2]:
        row = run(args, w)
        if args.machine:
            row["machine"] = args.machine
        rows.append(row)
        # Written at once: a run of several worker counts takes hours, and a
        # row measured is not lost if a later one is interrupted.
        if args.json:
            existing = []
            if os.path.exists(args.json):
                with open(args.json) as f:
                    existing = json.load(f)
            with open(args.json, "w") as f:
                json.dump(existing + [row], f, indent=1)
                f.write("\n")
    for r in rows:
        mean_seg = sum(r["segment_s"]) / max(1, len(r["segment_s"]))
        mean_join = sum(r["join_s"]) / max(1, len(r["join_s"]))
        print(f"{r['program']} {r['input']} on {r['backend']}, 2^{r['segment_po2']} segments, "
              f"{r['workers']} worker(s): {r['segments']} segments, {r['cycles']} cycles")
        if r.get("partial"):
            print(f"  stopped after {r['stopped_after_s']:.0f} s: plan {r['plan_s']:.2f} s; "
                  f"{len(r['segment_s'])} segment parts finished, mean {mean_seg:.1f} s "
                  f"(min {min(r['segment_s'], default=0):.1f}, max {max(r['segment_s'], default=0):.1f}); "
                  f"{len(r['join_s'])} joins finished; peak worker RSS {r['peak_worker_rss_mib']:.0f} MiB; "
                  f"parts retried {r['retried_parts']}")
            continue
        print(f"  wall {r['wall_s']:.1f} s; plan {r['plan_s']:.2f} s; segment parts mean {mean_seg:.1f} s "
              f"(min {min(r['segment_s']):.1f}, max {max(r['segment_s']):.1f}); joins mean {mean_join:.1f} s; "
              f"total proving {r['total_proving_s']:.1f} s; critical path {r['critical_path_s']:.1f} s; "
              f"peak worker RSS {r['peak_worker_rss_mib']:.0f} MiB; parts retried {r['retried_parts']}")
    # Parts that shared the cores with other workers took longer than one
    # alone; agents on machines of their own run at the 1-worker speed, so
    # the projection takes the run with the fewest workers, and says so when
    # even that one shared (its projection is then too slow).
    base = min(rows, key=lambda r: r["workers"])
    if base["workers"] > 1:
        print(f"note: the projection below takes part times stretched by {base['workers']} workers sharing this "
              f"machine's cores; agents on machines of their own would be faster: add --workers 1 for a "
              f"projection from parts proved alone", file=sys.stderr)
    if not base["segment_s"]:
        sys.exit("no segment part finished: no projection (a longer --stop-after?)")
    mean_seg = sum(base["segment_s"]) / len(base["segment_s"])
    if args.join_s is not None:
        mean_join, source = args.join_s, f"the {base['workers']}-worker run's mean segment part and --join-s"
    elif base["join_s"]:
        mean_join = sum(base["join_s"]) / len(base["join_s"])
        source = f"the {base['workers']}-worker run's mean times"
    else:
        sys.exit("no join finished: give the projection a join time with --join-s")
    print_projection(base["segments"], base["plan_s"], mean_seg, mean_join, source)


if __name__ == "__main__":
    main()
