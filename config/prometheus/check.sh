#!/usr/bin/env bash
# Checks Velvet's Prometheus files with promtool, and optionally a live node's
# /metrics output.
#
#   bash config/prometheus/check.sh                          # rules, tests, config, dashboard
#   bash config/prometheus/check.sh http://127.0.0.1:8080    # ... and lint that node's /metrics
#   bash config/prometheus/check.sh http://127.0.0.1:8080/metrics
#
# promtool comes from Debian's `prometheus` package, installed here when it is
# missing (the package ships a service; this script never starts it).
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$repo_root"

prom_dir=config/prometheus
dashboard=config/grafana/velvet-dashboard.json
metrics_url="${1:-}"

log() { printf '== %s\n' "$*"; }

ensure_promtool() {
    if command -v promtool >/dev/null 2>&1; then
        return
    fi
    log "promtool missing: installing Debian's prometheus package"
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        sudo=(sudo)
    fi
    # Whatever service the package brings is not started here (and in a
    # container policy-rc.d usually forbids it anyway).
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" \
        apt-get install -y -qq --no-install-recommends prometheus >/dev/null
    command -v promtool >/dev/null 2>&1 || {
        echo "promtool still missing after installing prometheus" >&2
        exit 1
    }
}

# The dashboard's PromQL has no promtool command of its own: write its queries
# (Grafana variables replaced by values) into a throw-away rules file and let
# `promtool check rules` parse them.
check_dashboard_queries() {
    if [ ! -f "$dashboard" ]; then
        echo "missing $dashboard" >&2
        return 1
    fi
    if ! command -v jq >/dev/null 2>&1; then
        log "jq missing: skipping the dashboard query check"
        return 0
    fi
    local tmp
    tmp="$(mktemp -d)"
    # shellcheck disable=SC2064
    trap "rm -rf '$tmp'" RETURN
    jq -e '.schemaVersion and (.panels | length > 0)' "$dashboard" >/dev/null
    {
        echo "groups:"
        echo "  - name: dashboard"
        echo "    rules:"
        # shellcheck disable=SC2016 # the $names are Grafana's, not the shell's
        jq -r '[.. | objects | select(has("expr")) | .expr] | to_entries[]
               | "      - record: dashboard:query_\(.key)\n        expr: \(.value | @json)"' \
            "$dashboard" |
            sed -e 's/\$__rate_interval/5m/g' \
                -e 's/\$__interval/1m/g' \
                -e 's/\$queue/.*/g' \
                -e 's/\$sequence/.*/g' \
                -e 's/\$instance/.*/g'
    } >"$tmp/dashboard-rules.yml"
    local count
    count="$(grep -c 'record: dashboard:query_' "$tmp/dashboard-rules.yml" || true)"
    log "dashboard: parsing $count PromQL queries"
    promtool check rules "$tmp/dashboard-rules.yml"
}

check_live_metrics() {
    local url="$1"
    case "$url" in
        */metrics) ;;
        *) url="${url%/}/metrics" ;;
    esac
    log "promtool check metrics < $url"
    local body
    body="$(curl -fsS --max-time 10 "$url")"
    printf '%s\n' "$body" | promtool check metrics
    # Informational: which of the contract's metrics this node exports yet
    # (counters and histograms appear only once first used).
    local name missing=()
    for name in velvet_http_requests_total velvet_http_request_duration_seconds \
        velvet_errors_total velvet_ws_connections velvet_ws_messages_sent_total \
        velvet_queue_waiting velvet_queue_capacity velvet_queue_admitted_total \
        velvet_handoff_issued_total velvet_handoff_redeemed_total velvet_leader \
        velvet_store_errors_total velvet_store_request_duration_seconds; do
        if ! grep -Eq "^${name}(_bucket|_sum|_count)?(\{| )" <<<"$body"; then
            missing+=("$name")
        fi
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        log "not exported (yet) by this node: ${missing[*]}"
    else
        log "all contract metrics present"
    fi
}

ensure_promtool
promtool --version 2>&1 | head -n 1

log "promtool check rules $prom_dir/alerts.yml"
promtool check rules "$prom_dir/alerts.yml"

log "promtool test rules $prom_dir/alerts_test.yml"
promtool test rules "$prom_dir/alerts_test.yml"

# The scrape targets (velvet-1:8080, ...) are compose service names; promtool
# parses them without resolving, so this works on a machine without them.
log "promtool check config $prom_dir/prometheus.yml"
promtool check config "$prom_dir/prometheus.yml"

check_dashboard_queries

if [ -n "$metrics_url" ]; then
    check_live_metrics "$metrics_url"
fi

log "all checks passed"
