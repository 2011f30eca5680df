#!/usr/bin/env python3
"""Each emulated SP1 precompile, one call's cost on trace and on SP1's own
executor.

    python3 scripts/measure-precompiles.py --binary PATH/TO/provernode [--calls 5000] [--runs 3]

The binary must be built with the `sp1` feature (`cargo build --release
--features sp1`). The SP1-only probe guest
(crates/provernode-guests/elf/sp1/sp1-precompile-probe.elf) calls the
precompile its input names `repeat` times on buffers from its input; each
precompile is run with repeat = 1 and repeat = N on both backends
(`provernode execute --json`, median of RUNS; N starts at CALLS and grows
tenfold until the calls add at least a second, since SP1's executor start
varies by tens of milliseconds), and one call costs the difference in the
time the command reports (which leaves out process start-up) divided by
N - 1. The instruction counts of both backends are
compared too. Curve points come from the backends themselves: DOUBLE of a
generator gives the point that ADD then adds the generator to, call after
call.
"""

import argparse
import json
import os
import random
import statistics
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROBE = os.path.join(ROOT, "crates", "provernode-guests", "elf", "sp1", "sp1-precompile-probe.elf")


def probe_input(code, a, b, arg, repeat):
    words = [code, len(a), len(b), arg, repeat] + list(a) + list(b)
    return struct.pack(f"<{len(words)}Q", *words)


def run(binary, backend, item, tmp):
    path = os.path.join(tmp, "item.bin")
    with open(path, "wb") as f:
        f.write(item)
    cmd = [binary, "execute", "--json", "--backend", backend, PROBE, "--input-item", path]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout[out.stdout.index("{"):])


def words_of(hex_output):
    data = bytes.fromhex(hex_output)
    return list(struct.unpack(f"<{len(data) // 8}Q", data))


def hex_words(h, n):
    b = bytes.fromhex(h)[::-1] + bytes(8 * n - len(bytes.fromhex(h)))
    return list(struct.unpack(f"<{n}Q", b))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--calls", type=int, default=5000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    tmp = tempfile.mkdtemp()
    rng = random.Random(0x5EED)
    r64 = lambda: rng.getrandbits(64)

    def element(n):
        v = [r64() for _ in range(n)]
        per = 4 if n % 4 == 0 and n != 12 else 6
        for i in range(per - 1, n, per):
            v[i] &= 0x0FFF_FFFF
        return v

    jobs = [
        ("SHA_EXTEND", 0x0030_0105, [r64() & 0xFFFF_FFFF for _ in range(16)] + [0] * 48, [], 0),
        ("SHA_COMPRESS", 0x0001_0106, [r64() & 0xFFFF_FFFF for _ in range(64)],
         [r64() & 0xFFFF_FFFF for _ in range(8)], 0),
        ("KECCAK_PERMUTE", 0x0001_0109, [r64() for _ in range(25)], [], 0),
        ("POSEIDON2", 0x133, [r64() & 0x3FFF_FFFF_3FFF_FFFF for _ in range(8)], [], 0),
    ]
    for name, code, n in [("BN254_FP_ADD", 0x0001_0126, 4), ("BN254_FP_SUB", 0x0001_0127, 4),
                          ("BN254_FP_MUL", 0x0001_0128, 4), ("BLS12381_FP_ADD", 0x0001_0120, 6),
                          ("BLS12381_FP_SUB", 0x0001_0121, 6), ("BLS12381_FP_MUL", 0x0001_0122, 6),
                          ("BN254_FP2_ADD", 0x0001_0129, 8), ("BN254_FP2_SUB", 0x0001_012A, 8),
                          ("BN254_FP2_MUL", 0x0001_012B, 8), ("BLS12381_FP2_ADD", 0x0001_0123, 12),
                          ("BLS12381_FP2_SUB", 0x0001_0124, 12), ("BLS12381_FP2_MUL", 0x0001_0125, 12)]:
        jobs.append((name, code, element(n), element(n), 0))
    jobs.append(("UINT256_MUL", 0x0001_011D, [r64() for _ in range(4)], [r64() for _ in range(8)], 0))
    curves = [
        ("SECP256K1", 0x0001_010A, 0x0000_010B, 4,
         "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798",
         "483ada7726a3c4655da4fbfc0e1108a8fd17b448a68554199c47d08ffb10d4b8"),
        ("SECP256R1", 0x0001_012C, 0x0000_012D, 4,
         "6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296",
         "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5"),
        ("BN254", 0x0001_010E, 0x0000_010F, 4, "01", "02"),
        ("BLS12381", 0x0001_011E, 0x0000_011F, 6,
         "17f1d3a73197d7942695638c4fa9ac0fc3688c4f9774b905a14e3a3f171bac586c55e83ff97a1aeffb3af00adb22c6bb",
         "08b3f481e3aaa0f1a09e30ed741d8ae4fcf5e095d5d00af600db18cb2c04b3edd03cc744a2888ae40caa232946c5e7e1"),
    ]
    for name, add, double, n, gx, gy in curves:
        g = hex_words(gx, n) + hex_words(gy, n)
        jobs.append((f"{name}_DOUBLE", double, g, [], 0))
        g2 = words_of(run(args.binary, "trace", probe_input(double, g, [], 0, 1), tmp)["public_output_hex"])
        jobs.append((f"{name}_ADD", add, g2, g, 0))
    ed_y = hex_words("6666666666666666666666666666666666666666666666666666666666666658", 4)
    jobs.append(("ED_DECOMPRESS", 0x0000_0108, [0] * 4 + ed_y, [], 0))
    ed_b = words_of(run(args.binary, "trace", probe_input(0x0000_0108, [0] * 4 + ed_y, [], 0, 1), tmp)
                    ["public_output_hex"])
    jobs.append(("ED_ADD", 0x0001_0107, ed_b, ed_b, 0))

    print(f"at least {args.calls} calls per run, 10x more until they add a second; median of {args.runs} runs")
    print()
    print("| precompile | instructions equal | trace µs per call | SP1 executor µs per call | SP1 / trace |")
    print("|---|---|---|---|---|")

    def per_call(backend, code, a, b, arg):
        one = [run(args.binary, backend, probe_input(code, a, b, arg, 1), tmp) for _ in range(args.runs)]
        base = statistics.median(r["seconds"] for r in one)
        calls = args.calls
        while True:
            many = [run(args.binary, backend, probe_input(code, a, b, arg, calls), tmp)
                    for _ in range(args.runs)]
            extra = statistics.median(r["seconds"] for r in many) - base
            # The executor's own start varies by tens of milliseconds: the
            # calls must add a second or more for the difference to mean
            # anything.
            if extra >= 1.0 or calls >= 10_000_000:
                return extra / (calls - 1) * 1e6, (one[0]["cycles"], many[0]["cycles"], calls,
                                                   many[0]["public_output_hex"])
            calls *= 10

    for name, code, a, b, arg in jobs:
        t_us, t_facts = per_call("trace", code, a, b, arg)
        s_us, s_facts = per_call("sp1", code, a, b, arg)
        # Equal instruction counts and outputs where both ran the same
        # number of calls; otherwise only the one-call count is comparable.
        equal = t_facts[0] == s_facts[0] and (t_facts[2] != s_facts[2] or t_facts[1:] == s_facts[1:])
        print(f"| {name} | {'yes' if equal else 'NO'} | {t_us:.2f} | {s_us:.2f} | {s_us / t_us:.1f}× |",
              flush=True)


if __name__ == "__main__":
    main()
