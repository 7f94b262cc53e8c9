#!/usr/bin/env bash
# The project's test command: formatting, lints, then every test target.
#
# Runs from any directory and on a fresh Debian machine that has only the
# Rust toolchain: what the tests need is installed when missing. Tests start
# their own redis-server (the one on PATH) on free loopback ports; they never
# touch a Redis already running on this machine.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

step() {
    printf '\n==> %s\n' "$*"
}

# Root runs apt-get directly; anyone else needs sudo.
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        echo "tests/run.sh: need root or sudo to run: $*" >&2
        exit 1
    fi
}

step "Checking test dependencies"
# Command on PATH, and the Debian package that provides it. Chromium, Node.js
# and npm serve the browser tests (tests/browser.rs, tests/browser/).
missing=()
for need in redis-server:redis-server chromium:chromium node:nodejs npm:npm; do
    if command -v "${need%%:*}" >/dev/null 2>&1; then
        echo "${need%%:*}: $(command -v "${need%%:*}")"
    else
        missing+=("${need#*:}")
    fi
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "not found: installing ${missing[*]} from Debian packages"
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get update
    as_root apt-get install -y --no-install-recommends "${missing[@]}"
fi
redis-server --version
chromium --version 2>/dev/null  # its wrapper script warns on stderr
echo "node $(node --version), npm $(npm --version)"

# The browser suite's one npm package (playwright-core), exactly as locked.
# It drives the Chromium above: no browser is downloaded.
step "Browser test packages: npm ci in tests/browser"
(cd tests/browser && npm ci --no-audit --no-fund)

# rustfmt and clippy are rustup components that a minimal toolchain may lack.
if command -v rustup >/dev/null 2>&1; then
    installed="$(rustup component list --installed)"
    for component in rustfmt clippy; do
        if ! grep -q "^${component}" <<<"${installed}"; then
            step "Installing the ${component} component"
            rustup component add "${component}"
        fi
    done
fi
cargo --version

# promtool (Debian's prometheus package, installed when missing) checks the
# alert rules and runs their unit tests; tests/metrics.rs also runs it on a
# live node's /metrics.
step "Alert rules: config/prometheus/check.sh"
bash config/prometheus/check.sh

step "Formatting: cargo fmt --all -- --check"
cargo fmt --all -- --check

step "Lints: cargo clippy --all-targets --locked -- -D warnings"
cargo clippy --all-targets --locked -- -D warnings

# --all-targets includes the benches, which criterion runs once each in
# test mode, so they are checked to build and run without measuring.
step "Tests: cargo test --locked --all-targets"
cargo test --locked --all-targets

step "All checks passed"
