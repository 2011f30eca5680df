#!/bin/sh
# Run once while the image is built: the built-in guest programs become the
# image's artifacts (manifest, SHA-256, backup copy), which the entrypoint
# verifies at every start. Nothing is fetched, then or later.
set -eu
store="--artifacts-dir /opt/provernode/artifacts --artifacts-backup-dir /opt/provernode/artifacts-backup"
provernode --version
for abi in /opt/provernode/elf/*/; do
    abi_name=$(basename "$abi")
    for elf in "$abi"*.elf; do
        # shellcheck disable=SC2086
        provernode artifacts import "$elf" --name "builtin-$abi_name-$(basename "$elf")" $store >/dev/null
    done
done
# shellcheck disable=SC2086
provernode artifacts verify $store
