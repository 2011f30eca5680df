# provernode's container image: the binary, a non-root user, the built-in
# programs as verified artifacts, and an entrypoint that checks the image
# and runs the command's preflight (doctor) before it starts.
#
# Two targets make the same runtime image:
#
#   docker build -t provernode .
#       (needs the internet) compiles provernode with RISC Zero and SP1 in
#       the `builder` stage: a long build (see README).
#
#   docker build --target runtime-prebuilt --build-arg BASE=IMAGE -t provernode .
#       takes a binary built on the host from dist/provernode in the build
#       context (CI does this, so RISC Zero and SP1 are not compiled twice;
#       it also works where no registry is reachable, with a base image made
#       by deploy/docker/base-image.sh).
#
# The classic builder (Docker 20.10) builds every stage before its target,
# so the prebuilt target comes before the builder. BuildKit (Docker 23+)
# builds only the stages a target needs.
#
# Run it with a stop grace period long enough to drain running proofs
# (`docker stop -t 120`, `stop_grace_period` in deploy/compose/): on
# SIGTERM the node stops claiming and lets running attempts finish.

ARG BASE=debian:bookworm-slim

FROM ${BASE} AS runtime-base
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/provernode --create-home provernode \
    && mkdir -p /opt/provernode/elf \
    && chown -R provernode:provernode /opt/provernode
COPY deploy/docker/entrypoint.sh /usr/local/bin/provernode-entrypoint
COPY deploy/docker/bake.sh /usr/local/lib/provernode/bake.sh
COPY --chown=provernode:provernode crates/provernode-guests/elf /opt/provernode/elf
ENV PROVERNODE_DATA_DIR=/var/lib/provernode/data \
    PROVERNODE_LOG=info
# The node's data (queue database, artifacts, scratch): keep it in a volume.
VOLUME /var/lib/provernode
WORKDIR /var/lib/provernode
EXPOSE 7878
STOPSIGNAL SIGTERM
# Ready, not merely alive: the queue opens, the artifacts verify, workers run.
HEALTHCHECK --interval=15s --timeout=10s --start-period=120s --retries=3 \
    CMD ["provernode", "ready"]
ENTRYPOINT ["provernode-entrypoint"]
CMD ["run"]

FROM runtime-base AS runtime-prebuilt
COPY dist/provernode /usr/local/bin/provernode
USER provernode
RUN ["/bin/sh", "/usr/local/lib/provernode/bake.sh"]

# The toolchain CI builds with; SP1 6.10 needs Rust 1.91.1 or newer.
FROM rust:1.95-bookworm AS builder
RUN apt-get update \
    && apt-get install -y --no-install-recommends protobuf-compiler libprotobuf-dev clang cmake \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p provernode --features risc0,sp1 \
    && install -D target/release/provernode /out/provernode

FROM runtime-base AS runtime
COPY --from=builder /out/provernode /usr/local/bin/provernode
USER provernode
RUN ["/bin/sh", "/usr/local/lib/provernode/bake.sh"]
