//! What a run found, for machines (JSON, `--json`) and for people (a
//! table on stdout). Every count is built from the consumers' outcomes, so
//! the parts add up: each consumer that arrived either finished every step
//! or stopped at exactly one error.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::consumer::Outcome;
use super::options::Options;
use super::stats::{PushKind, Summary, batch_delays};

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub target: String,
    pub queue: String,
    pub started_at: String,
    pub elapsed_seconds: f64,
    pub source_addresses: usize,
    pub http_connections: usize,
    pub consumers: Counts,
    pub phases: Vec<PhaseReport>,
    pub enter: EnterReport,
    pub errors: ErrorReport,
    pub position_updates: PushReport,
    pub grants: GrantReport,
    pub redeem: Option<RedeemReport>,
    pub memory: Option<MemoryReport>,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Counts {
    pub planned: u64,
    /// Consumers started (their arrival time came before the hard cap).
    pub arrived: u64,
    /// Still running when the hard cap ended the run; counted nowhere else.
    pub unfinished: u64,
    pub sessions: u64,
    pub entered: u64,
    /// Sockets that authenticated (`ready`).
    pub sockets: u64,
    pub granted: u64,
    /// Connected, not admitted by the end of the run, no error.
    pub still_waiting: u64,
    /// Consumers stopped by an error (one each).
    pub failed: u64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PhaseReport {
    pub name: &'static str,
    pub planned: u64,
    pub span_seconds: f64,
    pub arrived: u64,
    pub entered: u64,
    /// Successful enters over the time from the phase's first request to
    /// its last answer.
    pub enters_per_second: f64,
    pub latency: Summary,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EnterReport {
    pub ok: u64,
    /// Over the whole run: first enter sent to last answered.
    pub per_second: f64,
    /// The best phase's rate: at the opening, the node's capacity.
    pub peak_per_second: f64,
    pub latency: Summary,
    /// Time requests waited for a pooled connection in the generator,
    /// before being sent (not part of `latency`).
    pub generator_wait: Summary,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorReport {
    pub total: u64,
    /// Requests (sessions, enters, socket opens, redeems) made.
    pub requests: u64,
    /// `total / requests`.
    pub rate: f64,
    pub by_code: BTreeMap<String, u64>,
    pub by_step: BTreeMap<&'static str, BTreeMap<String, u64>>,
    /// `error` messages on sockets that stayed open.
    pub socket_notices: BTreeMap<String, u64>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PushReport {
    pub count: u64,
    pub batches: u64,
    /// From the first message of the same batch (see `stats::batch_delays`).
    pub delay: Summary,
    pub widest_batch_ms: f64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GrantReport {
    pub received: u64,
    /// Pushed by a batch while the socket watched.
    pub pushed: u64,
    /// Already admitted when the socket came up.
    pub on_connect: u64,
    /// Pushed grants, from the first message of their batch.
    pub delay: Summary,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RedeemReport {
    pub attempted: u64,
    pub ok: u64,
    /// `ok / attempted`.
    pub success: f64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MemoryReport {
    pub pid: u32,
    pub rss_before_kib: u64,
    /// When the most sockets were open at once.
    pub rss_at_peak_kib: u64,
    pub sockets_at_peak: u64,
    /// Growth over the sockets open: a socket's node memory, plus whatever
    /// else the node keeps per consumer (its entry, on the in-process store).
    pub kib_per_socket: f64,
}

/// What the run knew besides the outcomes.
pub struct RunFacts {
    pub target: String,
    pub queue: String,
    pub started_at: String,
    pub elapsed_seconds: f64,
    pub source_addresses: usize,
    pub arrived: u64,
    pub unfinished: u64,
    pub memory: Option<MemoryReport>,
}

impl Report {
    pub fn build(options: &Options, facts: RunFacts, outcomes: Vec<Outcome>) -> Self {
        let counts = counts(options, &facts, &outcomes);
        let phases = phases(options, &outcomes);
        let enter = enter(&outcomes, &phases);
        let errors = errors(&outcomes);
        let (position_updates, grants) = pushes(options, &outcomes);
        let redeem = options.merchant_key.as_ref().map(|_| {
            let attempted = outcomes.iter().filter(|o| o.redeemed.is_some()).count();
            let ok = outcomes.iter().filter(|o| o.redeemed == Some(true)).count();
            RedeemReport {
                attempted: attempted as u64,
                ok: ok as u64,
                success: ratio(ok as u64, attempted as u64),
            }
        });
        Self {
            target: facts.target,
            queue: facts.queue,
            started_at: facts.started_at,
            elapsed_seconds: facts.elapsed_seconds,
            source_addresses: facts.source_addresses,
            http_connections: options.connections,
            consumers: counts,
            phases,
            enter,
            errors,
            position_updates,
            grants,
            redeem,
            memory: facts.memory,
        }
    }
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

fn counts(options: &Options, facts: &RunFacts, outcomes: &[Outcome]) -> Counts {
    let count = |f: &dyn Fn(&Outcome) -> bool| outcomes.iter().filter(|o| f(o)).count();
    Counts {
        planned: options.consumers(),
        arrived: facts.arrived,
        unfinished: facts.unfinished,
        sessions: count(&|o| o.session) as u64,
        entered: count(&|o| o.enter.is_some()) as u64,
        sockets: count(&|o| o.socket) as u64,
        granted: count(&|o| o.grant.is_some()) as u64,
        still_waiting: count(&|o| o.socket && o.grant.is_none() && o.error.is_none())
            as u64,
        failed: count(&|o| o.error.is_some()) as u64,
    }
}

fn phases(options: &Options, outcomes: &[Outcome]) -> Vec<PhaseReport> {
    let mut reports = Vec::new();
    for (i, phase) in options.phases.iter().enumerate() {
        let mine: Vec<&Outcome> = outcomes.iter().filter(|o| o.phase == i).collect();
        let mut latency: Vec<u64> =
            mine.iter().filter_map(|o| o.enter).map(|e| e.0).collect();
        let first = mine.iter().map(|o| o.enter_started_us).min().unwrap_or(0);
        let last = mine.iter().filter_map(|o| o.enter).map(|e| e.1).max();
        let span_us = last.map_or(0, |l| l.saturating_sub(first));
        reports.push(PhaseReport {
            name: phase.name,
            planned: phase.consumers,
            span_seconds: phase.span.as_secs_f64(),
            arrived: mine.len() as u64,
            entered: latency.len() as u64,
            enters_per_second: ratio(latency.len() as u64 * 1_000_000, span_us),
            latency: Summary::of_micros(&mut latency),
        });
    }
    reports
}

fn enter(outcomes: &[Outcome], phases: &[PhaseReport]) -> EnterReport {
    let mut latency: Vec<u64> = outcomes
        .iter()
        .filter_map(|o| o.enter)
        .map(|e| e.0)
        .collect();
    let entered = outcomes.iter().filter(|o| o.enter.is_some());
    let first = entered
        .clone()
        .map(|o| o.enter_started_us)
        .min()
        .unwrap_or(0);
    let last = entered
        .map(|o| o.enter.map_or(0, |e| e.1))
        .max()
        .unwrap_or(0);
    let mut waits: Vec<u64> = outcomes.iter().flat_map(|o| o.waited_us.clone()).collect();
    let peak = phases
        .iter()
        .map(|p| p.enters_per_second)
        .fold(0.0, f64::max);
    EnterReport {
        ok: latency.len() as u64,
        per_second: ratio(latency.len() as u64 * 1_000_000, last.saturating_sub(first)),
        peak_per_second: peak,
        latency: Summary::of_micros(&mut latency),
        generator_wait: Summary::of_micros(&mut waits),
    }
}

fn errors(outcomes: &[Outcome]) -> ErrorReport {
    let mut report = ErrorReport::default();
    for o in outcomes {
        // One request per step reached: a session always, then an enter
        // after a session, a socket after an enter, a redeem after a grant.
        report.requests += 1 + u64::from(o.session) + u64::from(o.enter.is_some());
        report.requests += u64::from(o.redeemed.is_some());
        if let Some((step, code)) = &o.error {
            report.total += 1;
            *report.by_code.entry(code.clone()).or_default() += 1;
            let step_codes = report.by_step.entry(step.as_str()).or_default();
            *step_codes.entry(code.clone()).or_default() += 1;
        }
        for code in &o.notices {
            *report.socket_notices.entry(code.clone()).or_default() += 1;
        }
    }
    report.rate = ratio(report.total, report.requests);
    report
}

fn pushes(options: &Options, outcomes: &[Outcome]) -> (PushReport, GrantReport) {
    let pushed: Vec<_> = outcomes.iter().flat_map(|o| o.pushed.clone()).collect();
    let positions = pushed
        .iter()
        .filter(|p| p.kind == PushKind::Position)
        .count();
    let gap_us = options.batch_gap.as_micros() as u64;
    let mut delays = batch_delays(pushed, gap_us);
    let grants = outcomes.iter().filter_map(|o| o.grant);
    let on_connect = grants.clone().filter(|g| g.on_connect).count() as u64;
    let received = grants.count() as u64;
    let positions = PushReport {
        count: positions as u64,
        batches: delays.batches,
        delay: Summary::of_micros(&mut delays.position_us),
        widest_batch_ms: delays.widest_us as f64 / 1000.0,
    };
    let grants = GrantReport {
        received,
        pushed: received - on_connect,
        on_connect,
        delay: Summary::of_micros(&mut delays.grant_us),
    };
    (positions, grants)
}

impl Report {
    /// A table for people.
    pub fn table(&self) -> String {
        let mut t = String::new();
        let c = &self.consumers;
        let _ = writeln!(t, "velvet loadtest: {} queue {}", self.target, self.queue);
        let _ = writeln!(
            t,
            "  {:.1} s, {} source addresses, {} HTTP connections",
            self.elapsed_seconds, self.source_addresses, self.http_connections
        );
        let _ = writeln!(
            t,
            "consumers  planned {}  arrived {}  sessions {}  entered {}  sockets {}  \
             granted {}  waiting {}  failed {}  unfinished {}",
            c.planned,
            c.arrived,
            c.sessions,
            c.entered,
            c.sockets,
            c.granted,
            c.still_waiting,
            c.failed,
            c.unfinished
        );
        let _ = writeln!(
            t,
            "\n{:<9} {:>8} {:>8} {:>10} {:>9} {:>9} {:>9} {:>9}",
            "phase",
            "arrived",
            "entered",
            "enters/s",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "max ms"
        );
        for p in &self.phases {
            let l = &p.latency;
            let _ = writeln!(
                t,
                "{:<9} {:>8} {:>8} {:>10.0} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
                p.name,
                p.arrived,
                p.entered,
                p.enters_per_second,
                l.p50_ms,
                l.p95_ms,
                l.p99_ms,
                l.max_ms
            );
        }
        let e = &self.enter;
        let _ = writeln!(
            t,
            "{:<9} {:>8} {:>8} {:>10.0} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
            "all",
            c.arrived,
            e.ok,
            e.per_second,
            e.latency.p50_ms,
            e.latency.p95_ms,
            e.latency.p99_ms,
            e.latency.max_ms
        );
        let _ = writeln!(
            t,
            "  peak {:.0} enters/s; generator queue wait p99 {:.2} ms",
            e.peak_per_second, e.generator_wait.p99_ms
        );
        self.table_pushes(&mut t);
        self.table_errors(&mut t);
        t
    }

    fn table_pushes(&self, t: &mut String) {
        let (p, g) = (&self.position_updates, &self.grants);
        let _ = writeln!(
            t,
            "\nposition updates  {} in {} batches  delay p50 {:.1} p95 {:.1} p99 {:.1} \
             max {:.1} ms",
            p.count,
            p.batches,
            p.delay.p50_ms,
            p.delay.p95_ms,
            p.delay.p99_ms,
            p.delay.max_ms
        );
        let _ = writeln!(
            t,
            "grants            {} ({} pushed, {} on connect)  delay p50 {:.1} p95 {:.1} \
             p99 {:.1} max {:.1} ms",
            g.received,
            g.pushed,
            g.on_connect,
            g.delay.p50_ms,
            g.delay.p95_ms,
            g.delay.p99_ms,
            g.delay.max_ms
        );
        if let Some(r) = &self.redeem {
            let _ = writeln!(
                t,
                "redeem            {} of {} ok ({:.1}%)",
                r.ok,
                r.attempted,
                r.success * 100.0
            );
        }
        if let Some(m) = &self.memory {
            let _ = writeln!(
                t,
                "server memory     pid {}: {} KiB before, {} KiB with {} sockets: \
                 {:.2} KiB per socket",
                m.pid,
                m.rss_before_kib,
                m.rss_at_peak_kib,
                m.sockets_at_peak,
                m.kib_per_socket
            );
        }
    }

    fn table_errors(&self, t: &mut String) {
        let e = &self.errors;
        let _ = writeln!(
            t,
            "\nerrors            {} of {} requests ({:.3}%)",
            e.total,
            e.requests,
            e.rate * 100.0
        );
        for (step, codes) in &e.by_step {
            for (code, n) in codes {
                let _ = writeln!(t, "  {step:<8} {code:<24} {n}");
            }
        }
        for (code, n) in &e.socket_notices {
            let _ = writeln!(t, "  notice   {code:<24} {n}");
        }
    }
}
