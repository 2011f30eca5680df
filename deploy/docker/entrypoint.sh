#!/bin/sh
# provernode's container entrypoint. Before the command:
# 1. the image's own artifacts (the built-in programs, baked in at build)
#    are verified against their SHA-256 manifest; a damaged image stops here;
# 2. for `run`, `broker` and `agent`, doctor checks the machine with the
#    command's own flags and environment, and a failed check stops the start
#    with its fix (the node repeats the same checks itself).
# Then it becomes the command (exec), so SIGTERM from `docker stop` reaches
# provernode, which drains.
set -eu
if [ -f /opt/provernode/artifacts/manifest.json ]; then
    if ! provernode artifacts verify \
        --artifacts-dir /opt/provernode/artifacts \
        --artifacts-backup-dir /opt/provernode/artifacts-backup >/tmp/image-artifacts.txt 2>&1; then
        cat /tmp/image-artifacts.txt >&2
        echo "provernode-entrypoint: the image's artifacts failed verification: the image is damaged; pull or build it again" >&2
        exit 70
    fi
fi
case "${1:-}" in
    run | broker | agent)
        if ! provernode doctor "$@" >&2; then
            echo "provernode-entrypoint: doctor found a failed check (above, with its fix); not starting" >&2
            exit 78
        fi
        ;;
esac
exec provernode "$@"
