# syntax=docker/dockerfile:1

# --- build: compile the release binary -------------------------------------
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# The caches keep downloaded crates and compiled dependencies between builds;
# the binary is copied out of the cached target/ in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
    && cp target/release/velvet /usr/local/bin/velvet

# --- runtime: a slim image with the binary and its config/ -----------------
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --create-home --home-dir /home/velvet \
        --shell /usr/sbin/nologin velvet

COPY --from=build /usr/local/bin/velvet /usr/local/bin/velvet
COPY config/ /app/config/
WORKDIR /app

# config/production.toml: listen on 0.0.0.0:8080, JSON logs, no demo. The
# admin and merchant keys are then required (VELVET__AUTH__ADMIN_KEY,
# VELVET__AUTH__MERCHANT_KEY); set VELVET__AUTH__SESSION_SECRET and
# VELVET__TOKENS__SIGNING_KEY_FILE too, or sessions and handoff keys
# change at every restart.
ENV VELVET_ENV=production
USER velvet
EXPOSE 8080

# Liveness only; the port must match VELVET__SERVER__LISTEN.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1

ENTRYPOINT ["/usr/local/bin/velvet"]
