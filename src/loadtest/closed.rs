//! The loadtest's client as a closed loop: a fixed number of requests in
//! flight, each sent as soon as the one before it answered, until all are
//! done or time is up. This finds a server's throughput ceiling, which an
//! open-loop launch schedule cannot; the benchmarks use it to measure
//! Velvet's enter and a bare endpoint the same way in the same run.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::http::Method;

use super::net::Http;
use super::stats::Summary;

#[derive(Debug)]
pub struct ClosedLoop {
    /// Answers with a 2xx status.
    pub ok: u64,
    /// Everything else, by contract code (or transport failure).
    pub failed: BTreeMap<String, u64>,
    pub elapsed: Duration,
    pub per_second: f64,
    /// Of the successful requests.
    pub latency: Summary,
}

/// Sends `POST path` once per bearer (each a distinct session), with
/// `workers` in flight, stopping early after `limit`.
pub async fn post_each(
    http: Arc<Http>,
    path: &str,
    bearers: Arc<Vec<String>>,
    workers: usize,
    limit: Duration,
) -> ClosedLoop {
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..workers.max(1) {
        let (http, bearers, next) = (http.clone(), bearers.clone(), next.clone());
        let path = path.to_owned();
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            let mut failed: BTreeMap<String, u64> = BTreeMap::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= bearers.len() || started.elapsed() > limit {
                    break;
                }
                let reply = http
                    .request(Method::POST, &path, Some(&bearers[i]), None)
                    .await;
                match reply {
                    Ok(r) if (200..300).contains(&r.status) => {
                        latencies.push(r.latency.as_micros() as u64);
                    }
                    Ok(r) => *failed.entry(r.error_code()).or_default() += 1,
                    Err(e) => *failed.entry(e.code().to_owned()).or_default() += 1,
                }
            }
            (latencies, failed)
        });
    }
    let mut latencies = Vec::new();
    let mut failed: BTreeMap<String, u64> = BTreeMap::new();
    while let Some(done) = tasks.join_next().await {
        let Ok((l, f)) = done else { continue };
        latencies.extend(l);
        for (code, n) in f {
            *failed.entry(code).or_default() += n;
        }
    }
    let elapsed = started.elapsed();
    let ok = latencies.len() as u64;
    ClosedLoop {
        ok,
        failed,
        elapsed,
        per_second: ok as f64 / elapsed.as_secs_f64().max(1e-9),
        latency: Summary::of_micros(&mut latencies),
    }
}
