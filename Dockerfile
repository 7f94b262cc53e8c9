# syntax=docker/dockerfile:1

# --- build: compile the release binary -------------------------------------
FROM rust:1-bookworm AS build
WORKDIR /src
# Only what the build reads, so that nothing else in the checkout (secrets/,
# an .env file, tests/browser/node_modules, target/) lands in a layer or a
# cache export, and docs or test edits do not rebuild. A new top-level input
# of the build (a build.rs, a directory read by include_str!) goes here too.
COPY Cargo.toml Cargo.lock ./
COPY src/ src/
COPY migrations/ migrations/
# Cargo.toml declares these benches; the manifest does not load without them.
COPY benches/ benches/
# The caches keep downloaded crates and compiled dependencies between builds;
# the binary is copied out of the cached target/ in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin velvet \
    && cp target/release/velvet /usr/local/bin/velvet

# --- runtime: a slim image with the binary and its config/ -----------------
FROM debian:bookworm-slim
# A fixed uid/gid (10001), so that a key file or volume can be given to it
# from the host (docs/deploy.md).
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 velvet \
    && useradd --system --uid 10001 --gid velvet --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin velvet

COPY --from=build /usr/local/bin/velvet /usr/local/bin/velvet
# Owned by root: the node reads its settings, it never writes them.
COPY config/ /app/config/
# The settings are found as config/ under the working directory.
WORKDIR /app

# config/production.toml: listen on 0.0.0.0:8080, JSON logs, no demo. The
# admin and merchant keys are then required (VELVET__AUTH__ADMIN_KEY,
# VELVET__AUTH__MERCHANT_KEY); set VELVET__AUTH__SESSION_SECRET and
# VELVET__TOKENS__SIGNING_KEY_FILE too, or sessions and handoff keys
# change at every restart.
ENV VELVET_ENV=production
USER 10001:10001
EXPOSE 8080
# SIGTERM: the node stops accepting, closes WebSockets with 1001, hands its
# leases back and waits up to server.shutdown_grace_ms (5 s) for requests;
# give `docker stop -t` / stop_grace_period more than that.
STOPSIGNAL SIGTERM

# Liveness on the port of VELVET__SERVER__LISTEN (8080, production.toml's,
# when the variable is unset or has no port).
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
    CMD port="${VELVET__SERVER__LISTEN##*:}"; \
        case "$port" in ''|*[!0-9]*) port=8080 ;; esac; \
        curl -fsS --max-time 2 -o /dev/null "http://127.0.0.1:${port}/healthz" || exit 1

ENTRYPOINT ["/usr/local/bin/velvet"]
CMD ["serve"]
