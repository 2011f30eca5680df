#!/usr/bin/env bash
# Builds every guest program for every zkVM ABI with Debian's
# gcc-riscv64-unknown-elf, and checks each ELF for instructions no zkVM runs.
#
#   build.sh [OUT_DIR]    (default: ../elf, the committed ELFs)
#
# The output is deterministic: CI rebuilds into a temporary directory and
# fails if any byte differs from the committed ELFs (.ci/run).
set -euo pipefail
cd "$(dirname "$0")"
out=${1:-../elf}
cc=${RISCV_CC:-riscv64-unknown-elf-gcc}
objdump=${RISCV_OBJDUMP:-riscv64-unknown-elf-objdump}
if ! command -v "$cc" >/dev/null; then
    echo "error: $cc not found; install it with: apt-get install gcc-riscv64-unknown-elf" >&2
    exit 1
fi

programs=(fibonacci sha256-chain sha256 spin memhog)
common=(-std=c11 -O2 -Wall -Wextra -Werror
    -ffreestanding -fno-builtin -fno-tree-loop-distribute-patterns
    -fno-stack-protector -fno-pic -fno-asynchronous-unwind-tables -fno-unwind-tables
    -mno-relax -nostdlib -static -s
    -Wl,--no-relax -Wl,--build-id=none -Wl,-z,max-page-size=4096
    -ffile-prefix-map="$PWD"=. -Iinclude)

# Every instruction must be a 32-bit word (no compressed encodings) from the
# base integer set plus M: no atomics, CSRs, fences or floating point.
check() {
    local elf=$1
    local bad
    bad=$("$objdump" -d -M no-aliases "$elf" | awk -F'\t' '
        /^ +[0-9a-f]+:\t/ {
            word = $2; gsub(/ /, "", word)
            split($3, m, " "); op = m[1]
            if (length(word) != 8 || op ~ /^(c\.|fence|csr|lr\.|sc\.|amo|f|ebreak|wfi|mret|sret|uret)/)
                print
        }')
    if [ -n "$bad" ]; then
        echo "error: $elf contains instructions no zkVM executes:" >&2
        echo "$bad" >&2
        exit 1
    fi
}

abi_risc0=(-march=rv32im -mabi=ilp32)
abi_sp1=(-march=rv64im -mabi=lp64 -mcmodel=medany)

# build ABI PROGRAM [CFLAGS...]: one guest for one zkVM ABI, checked.
build() {
    local abi=$1 prog=$2 flags start runtime
    shift 2
    if [ "$abi" = risc0 ]; then
        flags=("${abi_risc0[@]}") start=start_risc0.S runtime=risc0_v1compat.c
    else
        flags=("${abi_sp1[@]}") start=start_sp1.S runtime=sp1_v6.c
    fi
    mkdir -p "$out/$abi"
    "$cc" "${common[@]}" "${flags[@]}" "$@" -T "runtime/$abi.ld" \
        "runtime/$start" runtime/common.c runtime/sha256.c "runtime/$runtime" \
        "programs/$prog.c" -lgcc -o "$out/$abi/$prog.elf"
    check "$out/$abi/$prog.elf"
}

for prog in "${programs[@]}"; do
    build risc0 "$prog"
    build sp1 "$prog"
done
# Test programs for one ABI only.
sp1_only=(sp1-precompile-probe sp1-profiler-probe)
for prog in "${sp1_only[@]}"; do build sp1 "$prog"; done
risc0_only=(risc0-accel-probe)
for prog in "${risc0_only[@]}"; do build risc0 "$prog"; done
# Programs that verify proofs: their runtime has pn_verify and commits what
# it verified at halt (PN_VERIFY), and on RISC Zero hashes with the SHA
# accelerator (PN_RISC0_SHA_ECALL: claim digests are many small SHA-256s);
# every other program is unchanged.
verifying=(aggregate)
for prog in "${verifying[@]}"; do
    build risc0 "$prog" -DPN_VERIFY -DPN_RISC0_SHA_ECALL
    build sp1 "$prog" -DPN_VERIFY
done
echo "built ${#programs[@]} programs x 2 ABIs, ${#sp1_only[@]} SP1-only, ${#risc0_only[@]} RISC Zero-only and ${#verifying[@]} verifying x 2 ABIs into $out"
