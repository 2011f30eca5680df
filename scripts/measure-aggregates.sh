#!/usr/bin/env bash
# The batch rows of docs/backends.md (issue 21) and the one SP1 aggregate
# proof CI cannot afford. Hours on 2 cores; each step saves what it measured.
#
#   scripts/measure-aggregates.sh [trace|risc0|sp1|sp1-test]...   (default: trace risc0)
#
# Needs a release build with the backends it measures:
#   cargo build --release --locked --features risc0,sp1
# (CARGO_TARGET_DIR decides where; B= overrides the binary.)
set -euo pipefail
cd "$(dirname "$0")/.."
target_dir=${CARGO_TARGET_DIR:-target}
B=${B:-$target_dir/release/provernode}
steps=("$@")
[ ${#steps[@]} -gt 0 ] || steps=(trace risc0)
for step in "${steps[@]}"; do
    case "$step" in
    trace) "$B" bench --target trace --batch 4 --batch 8 --batch 32 --batch 64 --batch-results docs/batches.json ;;
    risc0) /usr/bin/time -v "$B" bench --target risc0 --batch 4 --batch 8 --batch-results docs/batches.json ;;
    sp1) /usr/bin/time -v "$B" bench --target sp1 --batch 4 --batch 8 --batch-results docs/batches.json ;;
    sp1-test)
        # Two compressed proofs and a compressed aggregate of them, verified:
        # the proving test of SP1's deferred-proofs facts (about 50 minutes, 20 GB).
        # The packages and features of CI's heavy step, so its build cache serves.
        cargo test --release --locked -p provernode -p provernode-backend-risc0 -p provernode-backend-sp1 \
            --features provernode/risc0,provernode/sp1 --test prove \
            -- --ignored --nocapture --test-threads 1 an_aggregate_of_compressed_sp1_proofs ;;
    *) echo "unknown step $step: use trace, risc0, sp1 or sp1-test" >&2; exit 2 ;;
    esac
done
"$B" bench --results docs/backends.json --batch-results docs/batches.json \
    --markdown docs/backends.md --plots docs/plots --render-only
