#!/usr/bin/env bash
# A launch against one node on a private redis-server, on this machine:
# starts both on free loopback ports, runs `velvet loadtest` against the
# node with --server-pid (memory per socket), and stops both at the end.
# The machine's own Redis (6379) is never touched.
#
#   cargo build --release
#   bash benches/launch.sh --consumers 18000 --duration 40 --hold 20 \
#       --admit-per-minute 600 --json /tmp/launch.json
#
# Extra arguments go to `velvet loadtest`; set VELVET__… variables in the
# environment to change the node's settings.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bin=target/release/velvet
[ -x "$bin" ] || { echo "build first: cargo build --release" >&2; exit 1; }

# A port the kernel hands out now; free until someone else takes it.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

dir=$(mktemp -d)
redis_port=$(free_port)
redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
    --dir "$dir" >"$dir/redis.log" 2>&1 &
redis_pid=$!
node_pid=""
cleanup() {
    [ -n "$node_pid" ] && kill "$node_pid" 2>/dev/null || true
    kill "$redis_pid" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT
for _ in $(seq 100); do
    redis-cli -p "$redis_port" ping >/dev/null 2>&1 && break
    sleep 0.05
done

# All load comes from this machine: per-client limits out of the way.
VELVET__SERVER__LISTEN=127.0.0.1:0 \
VELVET__REDIS__URL="redis://127.0.0.1:$redis_port" \
VELVET__EXPERIENCES__FILE= \
VELVET__AUTH__ADMIN_KEY=launch-admin-key \
VELVET__AUTH__MERCHANT_KEY=launch-merchant-key \
VELVET__SERVER__CLIENT_RATE_PER_SECOND=1000000 \
VELVET__SERVER__CLIENT_BURST=1000000 \
VELVET__SERVER__MAX_CONCURRENT_REQUESTS=100000 \
VELVET__LOG__FILTER=${VELVET__LOG__FILTER:-warn} \
    "$bin" >"$dir/node.log" 2>&1 &
node_pid=$!
addr=""
for _ in $(seq 200); do
    addr=$(sed -n 's/^listening on //p' "$dir/node.log" | head -1)
    [ -n "$addr" ] && break
    sleep 0.05
done
[ -n "$addr" ] || { cat "$dir/node.log" >&2; exit 1; }
echo "node $node_pid on $addr, redis-server on $redis_port; ulimit -n $(ulimit -n)" >&2

"$bin" loadtest --target "http://$addr" --server-pid "$node_pid" \
    --admin-key launch-admin-key --merchant-key launch-merchant-key "$@"
