//! `velvet loadtest`: a launch simulator. It drives a running deployment
//! with the shape of a launch (a pre-launch surge, the peak at opening, a
//! sustained sale, a decline), each consumer a real session that enters
//! over HTTP and holds a real WebSocket until admitted, and reports what a
//! shop needs to know before launch day: enter throughput and latency,
//! errors by contract code, how fast positions and grants reach sockets,
//! redemption, and the node's memory per socket.
//!
//! A run is bounded in consumers and time (`options`' hard caps), aims at
//! loopback unless told otherwise, and spreads its sockets over several
//! loopback source addresses (`net`). `closed` is the same client as a
//! closed loop, for benchmarks that want a throughput ceiling.

pub mod closed;
pub mod consumer;
pub mod net;
pub mod options;
pub mod report;
pub mod stats;

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::http::Method;
use serde_json::json;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::domain::clock::{now_ms, rfc3339};
use consumer::{Outcome, Shared};
use net::{Http, Sources, Target};
pub use options::Options;
use report::{MemoryReport, Report, RunFacts};

/// Past the planned end, how long consumers get to finish their last step
/// (every step has its own timeout) before the run stops them.
const GRACE: Duration = Duration::from_secs(30);

/// The subcommand: parses flags, runs, prints the table, writes the JSON.
pub fn main(args: &[String]) -> ExitCode {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{}", options::USAGE);
        return ExitCode::SUCCESS;
    }
    let options = match Options::parse(args) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("velvet loadtest: {e}\n\n{}", options::USAGE);
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("velvet loadtest: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let report = match runtime.block_on(run(&options)) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("velvet loadtest: {e}");
            return ExitCode::FAILURE;
        }
    };
    print!("{}", report.table());
    if let Some(path) = &options.json {
        let written = serde_json::to_vec_pretty(&report)
            .map_err(|e| e.to_string())
            .and_then(|json| std::fs::write(path, json).map_err(|e| e.to_string()));
        if let Err(e) = written {
            eprintln!("velvet loadtest: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

/// One run, start to report.
pub async fn run(options: &Options) -> Result<Report, String> {
    let target = Target::resolve(&options.target).await?;
    let loopback = target.addr.ip().is_loopback();
    if !loopback && !options.allow_remote {
        return Err(format!(
            "{} is not a loopback address: pass --allow-remote to drive it",
            target.addr
        ));
    }
    check_open_files(options)?;
    // Extra source addresses only exist on the loopback interface.
    let sources = match (loopback, target.addr) {
        (true, std::net::SocketAddr::V4(_)) => Sources::loopback(options.source_count()),
        _ => Sources::loopback(0),
    };
    let sources = Arc::new(sources);
    let http = Http::new(target.clone(), sources.clone(), options.connections);
    healthy(&http).await?;
    let queue = match &options.queue {
        Some(queue) => queue.clone(),
        None => define_queue(&http, options).await?,
    };

    let (stop_tx, stop) = watch::channel(false);
    let shared = Arc::new(Shared {
        http,
        target,
        sources,
        queue,
        merchant_key: options.merchant_key.clone(),
        started: Instant::now(),
        stop,
        live: Default::default(),
    });
    let started_at = rfc3339(now_ms());
    let rss_before = options.server_pid.and_then(rss_kib);
    let progress = tokio::spawn(progress(shared.clone(), options.clone()));

    let (outcomes, arrived, unfinished) = drive(&shared, options, stop_tx).await;
    let peak = progress.await.unwrap_or_default();

    let memory = match (options.server_pid, rss_before, peak) {
        (Some(pid), Some(before), Some((sockets, rss))) if sockets > 0 => {
            Some(MemoryReport {
                pid,
                rss_before_kib: before,
                rss_at_peak_kib: rss,
                sockets_at_peak: sockets,
                kib_per_socket: rss.saturating_sub(before) as f64 / sockets as f64,
            })
        }
        _ => None,
    };
    let facts = RunFacts {
        target: options.target.clone(),
        queue: shared.queue.clone(),
        started_at,
        elapsed_seconds: shared.started.elapsed().as_secs_f64(),
        source_addresses: shared.sources.len().max(1),
        arrived,
        unfinished,
        memory,
    };
    Ok(Report::build(options, facts, outcomes))
}

/// Starts each consumer at its arrival time, holds, stops, and collects.
/// Returns the outcomes, how many arrived, and how many were cut off.
async fn drive(
    shared: &Arc<Shared>,
    options: &Options,
    stop: watch::Sender<bool>,
) -> (Vec<Outcome>, u64, u64) {
    let start = tokio::time::Instant::from_std(shared.started);
    let mut tasks = JoinSet::new();
    let mut outcomes = Vec::new();
    let mut arrived = 0u64;
    for (offset, phase) in schedule(options) {
        tokio::time::sleep_until(start + offset).await;
        tasks.spawn(consumer::live(shared.clone(), phase));
        arrived += 1;
        // Collect as we go, so finished consumers free their memory.
        while let Some(done) = tasks.try_join_next() {
            outcomes.extend(done.ok());
        }
    }

    // Hold: let batches run and grants arrive, unless everyone is done.
    let hold_end = tokio::time::Instant::now() + options.hold;
    while !tasks.is_empty() {
        tokio::select! {
            done = tasks.join_next() => outcomes.extend(done.and_then(Result::ok)),
            _ = tokio::time::sleep_until(hold_end) => break,
        }
    }
    let _ = stop.send(true);
    let cut_off = tokio::time::Instant::now() + GRACE;
    while let Ok(Some(done)) = tokio::time::timeout_at(cut_off, tasks.join_next()).await {
        outcomes.extend(done.ok());
    }
    let unfinished = tasks.len() as u64;
    tasks.abort_all();
    (outcomes, arrived, unfinished)
}

/// Arrival offsets from the start of the run, in order, with their phase.
fn schedule(options: &Options) -> Vec<(Duration, usize)> {
    let mut arrivals = Vec::with_capacity(options.consumers() as usize);
    let mut phase_start = Duration::ZERO;
    for (i, phase) in options.phases.iter().enumerate() {
        for n in 0..phase.consumers {
            arrivals.push((phase_start + phase.offset(n), i));
        }
        phase_start += phase.span;
    }
    arrivals
}

/// Prints a line a second until the run stops; returns the sample with the
/// most sockets open: (sockets, server RSS in KiB).
async fn progress(shared: Arc<Shared>, options: Options) -> Option<(u64, u64)> {
    let mut stop = shared.stop.clone();
    let mut every = tokio::time::interval(Duration::from_secs(1));
    let mut peak: Option<(u64, u64)> = None;
    let planned = options.consumers();
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = stop.wait_for(|s| *s) => return peak,
        }
        let live = &shared.live;
        let sockets = live.sockets.load(Ordering::Relaxed);
        let rss = options.server_pid.and_then(rss_kib);
        if let Some(rss) = rss
            && peak.is_none_or(|(most, _)| sockets > most)
        {
            peak = Some((sockets, rss));
        }
        if options.progress {
            let rss =
                rss.map_or(String::new(), |kib| format!("  rss {} MiB", kib / 1024));
            eprintln!(
                "[{:>5.0}s] arrived {}/{planned}  entered {}  sockets {}  granted {}  \
                 errors {}{rss}",
                shared.started.elapsed().as_secs_f64(),
                live.arrived.load(Ordering::Relaxed),
                live.entered.load(Ordering::Relaxed),
                sockets,
                live.granted.load(Ordering::Relaxed),
                live.errors.load(Ordering::Relaxed),
            );
        }
    }
}

/// Resident memory of a local process, from `/proc/PID/status` (Linux).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Each socket is a file in this process: refuse a run that cannot fit.
fn check_open_files(options: &Options) -> Result<(), String> {
    let need = options.consumers() + options.connections as u64 + 256;
    match options::open_files_limit() {
        Some(limit) if limit < need => Err(format!(
            "{} consumers need about {need} open files and the limit is {limit}: \
             raise it (ulimit -n) or run fewer",
            options.consumers()
        )),
        _ => Ok(()),
    }
}

async fn healthy(http: &Http) -> Result<(), String> {
    let authority = &http.target().authority;
    match http.request(Method::GET, "/healthz", None, None).await {
        Ok(reply) if reply.status == 200 => Ok(()),
        Ok(reply) => Err(format!("{authority}/healthz answered {}", reply.status)),
        Err(e) => Err(format!("{authority} is not answering: {e}")),
    }
}

/// Defines a fresh experience with one queue that opens when the surge
/// ends, so the surge really is a pre-queue. Returns the queue id.
async fn define_queue(http: &Http, options: &Options) -> Result<String, String> {
    let key = options.admin_key.as_deref().unwrap_or_default();
    let id = format!(
        "loadtest-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    );
    let queue = format!("{id}-q");
    let opens_at = now_ms() + options.phases[0].span.as_millis() as i64;
    let body = json!({
        "name": format!("Load test {id}"),
        "sequences": [{
            "id": queue,
            "name": "Load test",
            "kind": "queue",
            "opensAt": rfc3339(opens_at),
            "admitPerMinute": options.admit_per_minute,
            "tokenTtlSeconds": 600,
        }],
    });
    let path = format!("/v1/admin/experiences/{id}");
    match http
        .request(Method::PUT, &path, Some(key), Some(&body))
        .await
    {
        Ok(reply) if reply.status == 200 => Ok(queue),
        Ok(reply) => Err(format!(
            "defining the test queue: {} {}",
            reply.status,
            reply.error_code()
        )),
        Err(e) => Err(format!("defining the test queue: {e}")),
    }
}
