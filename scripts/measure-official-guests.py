#!/usr/bin/env python3
"""Official guests on trace and on SP1's own executor, side by side.

    python3 scripts/measure-official-guests.py --binary PATH/TO/provernode [--runs 3]

The binary must be built with the `sp1` feature (`cargo build --release
--features sp1`). For every official SP1 guest in fixtures/official-guests/
(RSP, an Ethereum block, included) it runs `provernode execute --json` on
`trace` and on `sp1` and prints, per run: instructions, public output equal
or not, and wall time inside the command (the "seconds" it reports, which
leaves out process start-up). Then the marginal cost of one precompile
call: the SHA-256 and Keccak guests are run on two input sizes, and the
difference in time divided by the difference in blocks is the cost of one
block (SHA_EXTEND + SHA_COMPRESS, or one KECCAK_PERMUTE, plus the guest's
own instructions for that block, which the instruction counts show).
"""

import argparse
import json
import os
import statistics
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = os.path.join(ROOT, "fixtures", "official-guests")


def pattern(n):
    return bytes(((i * 7 + 3) % 251) for i in range(n))


def run(binary, backend, program, flags):
    cmd = [binary, "execute", "--json", "--backend", backend, "--max-memory", str(8 << 30), program] + flags
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{out.stderr[-2000:]}")
    # SP1 prints the guest's stdout lines on stdout before our JSON.
    text = out.stdout[out.stdout.index("{"):]
    return json.loads(text)


def median_run(binary, backend, program, flags, runs):
    results = [run(binary, backend, program, flags) for _ in range(runs)]
    return results[0], statistics.median(r["seconds"] for r in results)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp()

    def write(name, data):
        path = os.path.join(tmp, name)
        with open(path, "wb") as f:
            f.write(data)
        return path

    rsp_elf = os.path.join(tmp, "rsp.elf")
    rsp_stdin = os.path.join(tmp, "rsp.stdin")
    for src, dst in [("sp1-cluster-rsp.elf.zst", rsp_elf), ("sp1-cluster-rsp.stdin.zst", rsp_stdin)]:
        subprocess.run(["zstd", "-q", "-d", "-f", os.path.join(FIXTURES, src), "-o", dst], check=True)

    u64 = lambda n: write(f"u64-{n}", struct.pack("<Q", n))
    u32 = lambda n: write(f"u32-{n}", struct.pack("<I", n))
    jobs = [
        ("RSP, mainnet block (Titan builder)", rsp_elf, ["--stdin-file", rsp_stdin]),
        ("sp1-cluster fibonacci (committed stdin)", os.path.join(FIXTURES, "sp1-cluster-fibonacci.elf"),
         ["--stdin-file", os.path.join(FIXTURES, "sp1-cluster-fibonacci.stdin")]),
        ("sp1-cluster artifacts fibonacci n=5000", os.path.join(FIXTURES, "sp1-cluster-artifacts-fibonacci.elf"),
         ["--input-file", u32(5000)]),
        ("sp1-gpu fibonacci n=100", os.path.join(FIXTURES, "sp1-gpu-fibonacci.elf"), ["--input-file", u64(100)]),
        ("sp1-gpu loop n=100", os.path.join(FIXTURES, "sp1-gpu-loop.elf"), ["--input-file", u64(100)]),
        ("sp1-gpu sha2, 1 MiB", os.path.join(FIXTURES, "sp1-gpu-sha2.elf"),
         ["--input-file", write("p1m", pattern(1 << 20))]),
        ("sp1-gpu keccak, 1 MiB", os.path.join(FIXTURES, "sp1-gpu-keccak.elf"),
         ["--input-file", write("p1m", pattern(1 << 20))]),
    ]
    print("| guest | instructions (trace = SP1) | output equal | trace s | SP1 executor s | trace MIPS | SP1 MIPS |")
    print("|---|---|---|---|---|---|---|")
    for label, program, flags in jobs:
        t, t_s = median_run(args.binary, "trace", program, flags, args.runs)
        s, s_s = median_run(args.binary, "sp1", program, flags, args.runs)
        same_cycles = "yes" if t["cycles"] == s["cycles"] else f"NO: trace {t['cycles']:,}, SP1 {s['cycles']:,}"
        same_out = "yes" if t["public_output_hex"] == s["public_output_hex"] else "NO"
        print(f"| {label} | {t['cycles']:,} ({same_cycles}) | {same_out} | {t_s:.3f} | {s_s:.3f} | "
              f"{t['cycles'] / t_s / 1e6:.1f} | {s['cycles'] / s_s / 1e6:.1f} |")

    print()
    print("| precompile block | guest instructions per block | trace µs per block | SP1 executor µs per block |")
    print("|---|---|---|---|")
    for label, elf, block in [("SHA-256 (SHA_EXTEND + SHA_COMPRESS)", "sp1-gpu-sha2.elf", 64),
                              ("Keccak-256 (KECCAK_PERMUTE)", "sp1-gpu-keccak.elf", 136)]:
        small = write("p64k", pattern(64 << 10))
        large = write("p1m", pattern(1 << 20))
        program = os.path.join(FIXTURES, elf)
        blocks = ((1 << 20) - (64 << 10)) / block
        row = []
        for backend in ["trace", "sp1"]:
            a, a_s = median_run(args.binary, backend, program, ["--input-file", small], args.runs)
            b, b_s = median_run(args.binary, backend, program, ["--input-file", large], args.runs)
            row.append(((b["cycles"] - a["cycles"]) / blocks, (b_s - a_s) / blocks * 1e6))
        print(f"| {label} | {row[0][0]:.0f} | {row[0][1]:.2f} | {row[1][1]:.2f} |")


if __name__ == "__main__":
    main()
