# syntax=docker/dockerfile:1
#
# creditd container image.
#
#   docker build -t creditd:dev .
#   docker run --rm --env-file deploy/.env -p 8080:8080 creditd:dev          # serve
#   docker run --rm --env-file deploy/.env creditd:dev migrate               # one-shot migrations
#
# Two stages: a Rust builder (Debian bookworm, same glibc as the runtime) and a
# bookworm-slim runtime that only adds CA certificates and a non-root user.

# Rust >= 1.85 is required (edition 2024). Override with --build-arg to pin an
# exact toolchain, e.g. --build-arg RUST_IMAGE=rust:1.95-bookworm.
ARG RUST_IMAGE=rust:1-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

# ---------------------------------------------------------------------------
FROM ${RUST_IMAGE} AS builder

WORKDIR /build

# sqlx's query macros read the checked query descriptions from .sqlx/, so the
# build never reaches a database. --locked keeps the build on Cargo.lock.
ENV SQLX_OFFLINE=true \
    CARGO_TERM_COLOR=never \
    CARGO_INCREMENTAL=0

# 1) Dependencies only. This layer is rebuilt only when Cargo.toml/Cargo.lock
#    change, so editing src/ does not recompile axum/sqlx/reqwest/tokio.
COPY Cargo.toml Cargo.lock ./
RUN mkdir -p src \
    && printf 'fn main() {}\n' > src/main.rs \
    && : > src/lib.rs \
    && cargo build --release --locked --no-default-features --bin creditd \
    && rm -rf src \
    && rm -rf target/release/deps/creditd-* target/release/deps/libcreditd-* \
              target/release/.fingerprint/creditd-* \
              target/release/creditd target/release/libcreditd.*

# The release image leaves out the Stripe sandbox (`creditd sandbox`, `creditd demo`): the cargo
# feature `sandbox` is on by default for developers and off here (--no-default-features).
#
# 2) The crate itself. migrations/ must be present: sqlx::migrate! embeds the
#    SQL files into the binary at compile time (nothing is read at run time);
#    .sqlx/ holds the query descriptions sqlx::query! checks against.
COPY migrations ./migrations
COPY .sqlx ./.sqlx
COPY src ./src
# COPY keeps the build context's mtimes, which may be older than the dummy
# build above; touch so cargo never mistakes the real sources for fresh.
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked --no-default-features --bin creditd \
    && install -D -m 0755 target/release/creditd /out/creditd

# ---------------------------------------------------------------------------
FROM ${RUNTIME_IMAGE} AS runtime

# Only CA certificates are added: reqwest/sqlx use rustls (ring), so no OpenSSL
# and no curl. Versions are not pinned on purpose: the package must follow
# Debian security updates of the base tag.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 creditd \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
               --home-dir /nonexistent --shell /usr/sbin/nologin creditd

COPY --from=builder /out/creditd /usr/local/bin/creditd

ENV LISTEN_ADDR=0.0.0.0:8080 \
    LOG_FORMAT=json \
    RUST_LOG=info

# Numeric UID:GID so Kubernetes' runAsNonRoot can verify it without /etc/passwd.
USER 10001:10001
WORKDIR /

EXPOSE 8080

# `creditd healthcheck` GETs http://127.0.0.1:<port of LISTEN_ADDR>/healthz and
# exits 0/1, so the image needs no curl/wget.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["creditd", "healthcheck"]

# creditd handles SIGTERM itself (drains for SHUTDOWN_DRAIN_SECS, default 20 s),
# so it runs as PID 1 without an init shim. Give it more than 20 s to stop:
# `docker stop -t 30`, compose stop_grace_period, k8s terminationGracePeriodSeconds.
STOPSIGNAL SIGTERM
ENTRYPOINT ["creditd"]
CMD ["serve"]
