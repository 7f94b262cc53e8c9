//! The Prometheus recorder and the names of the contract's metrics.
//!
//! One recorder serves the process (the `metrics` facade is global), so tests
//! that start several nodes in one process share it.

use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Buckets around the 2 s latency alert, fine enough below it for p95.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0,
    10.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("duration_seconds".into()),
                    LATENCY_BUCKETS,
                )
                .expect("the bucket list is not empty");
            let handle = match builder.install_recorder() {
                Ok(handle) => handle,
                // Another recorder is already global (an embedding program):
                // keep a private one so /metrics still answers.
                Err(_) => PrometheusBuilder::new().build_recorder().handle(),
            };
            describe();
            metrics::gauge!("velvet_ws_connections").set(0.0);
            metrics::counter!("velvet_store_errors_total").increment(0);
            spawn_upkeep(handle.clone());
            handle
        })
        .clone()
}

/// Histograms are summarised in place; upkeep drains them so memory stays flat.
fn spawn_upkeep(handle: PrometheusHandle) {
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        rt.spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(5));
            loop {
                every.tick().await;
                handle.run_upkeep();
            }
        });
    }
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "velvet_http_requests_total",
        "HTTP requests by route and status"
    );
    describe_histogram!(
        "velvet_http_request_duration_seconds",
        "HTTP latency by route"
    );
    describe_counter!("velvet_errors_total", "Error responses by contract code");
    describe_gauge!(
        "velvet_ws_connections",
        "Open WebSocket connections on this node"
    );
    describe_counter!(
        "velvet_ws_messages_sent_total",
        "WebSocket messages sent by type"
    );
    describe_gauge!("velvet_queue_waiting", "Consumers waiting in a queue");
    describe_gauge!(
        "velvet_queue_capacity",
        "maxParticipants of a queue (0 = none)"
    );
    describe_counter!(
        "velvet_queue_admitted_total",
        "Consumers admitted by this node"
    );
    describe_counter!("velvet_handoff_issued_total", "Handoff tokens issued");
    describe_counter!("velvet_handoff_redeemed_total", "Handoff tokens redeemed");
    describe_gauge!("velvet_leader", "1 while this node leads the sequence");
    describe_counter!("velvet_store_errors_total", "Failed store requests");
    describe_histogram!(
        "velvet_store_request_duration_seconds",
        "Store request latency"
    );
}
