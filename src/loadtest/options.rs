//! The loadtest's flags, its hard caps, and the launch shape they describe.

use std::path::PathBuf;
use std::time::Duration;

/// Hard caps: a mistyped flag must not start a run that never ends.
pub const MAX_CONSUMERS: u64 = 100_000;
pub const MAX_PLANNED: Duration = Duration::from_secs(3_600);
/// Connections per source address before the next one is used; below the
/// ~28,000 ephemeral ports Linux gives one address by default.
const PER_SOURCE: u64 = 20_000;

pub const USAGE: &str = "usage: velvet loadtest [FLAGS]

Drives a running deployment with the shape of a launch: a pre-launch
surge, the peak at opening, a sustained sale, a decline. Each consumer
creates a session, enters the queue, holds a WebSocket until admitted,
and (with --merchant-key) redeems its handoff token.

  --target URL            node to drive (default http://127.0.0.1:8080)
  --queue ID              queue to enter; or, with --admin-key, the run
                          defines its own experience, opening after the surge
  --admin-key KEY         admin key (or VELVET_LOADTEST_ADMIN_KEY)
  --merchant-key KEY      merchant key, to redeem tokens
                          (or VELVET_LOADTEST_MERCHANT_KEY)
  --consumers N           total consumers, split over the shape (default 1000)
  --duration SECS         arrival time, split over the shape (default 30)
  --surge N,SECS          pre-launch arrivals and their span
  --peak N,SECS           arrivals at opening (SECS 0: all at once)
  --sustain N,SECS        the sustained sale
  --decline N,SECS        arrivals thinning out to none
  --hold SECS             keep sockets open after the last arrival (default 10)
  --admit-per-minute N    admission rate of a queue the run defines (default 6000)
  --connections N         keep-alive HTTP connections (default 32)
  --sources N             loopback source addresses 127.0.0.1..N (default:
                          one per 20,000 sockets)
  --server-pid PID        a local node process: report its memory per socket
  --batch-gap-ms MS       silence that separates two batches (default 100)
  --json FILE             write the report as JSON
  --quiet                 no progress lines
  --allow-remote          allow a target that is not loopback";

/// One part of the launch: how many arrive, over how long.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Phase {
    pub name: &'static str,
    pub consumers: u64,
    pub span: Duration,
}

impl Phase {
    /// When the `i`-th of this phase's consumers arrives, from its start.
    /// The surge builds up, the decline thins out, the rest are even.
    pub fn offset(&self, i: u64) -> Duration {
        if self.consumers == 0 {
            return Duration::ZERO;
        }
        let x = i as f64 / self.consumers as f64;
        let share = match self.name {
            "surge" => x.sqrt(),
            "decline" => 1.0 - (1.0 - x).sqrt(),
            _ => x,
        };
        self.span.mul_f64(share)
    }
}

#[derive(Clone, Debug)]
pub struct Options {
    pub target: String,
    pub queue: Option<String>,
    pub admin_key: Option<String>,
    pub merchant_key: Option<String>,
    /// Surge, peak, sustain, decline.
    pub phases: [Phase; 4],
    pub hold: Duration,
    pub admit_per_minute: u64,
    pub connections: usize,
    /// `None`: one per 20,000 sockets.
    pub sources: Option<u8>,
    pub server_pid: Option<u32>,
    pub batch_gap: Duration,
    pub json: Option<PathBuf>,
    pub progress: bool,
    pub allow_remote: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            target: "http://127.0.0.1:8080".into(),
            queue: None,
            admin_key: None,
            merchant_key: None,
            phases: shape(1_000, Duration::from_secs(30)),
            hold: Duration::from_secs(10),
            admit_per_minute: 6_000,
            connections: 32,
            sources: None,
            server_pid: None,
            batch_gap: Duration::from_millis(100),
            json: None,
            progress: true,
            allow_remote: false,
        }
    }
}

/// The default launch: a quarter arrive in the surge before opening, a
/// third at the opening itself, most of the rest during the sale, and a
/// tail. Arrival time is split 40 / 0 / 40 / 20.
pub fn shape(consumers: u64, duration: Duration) -> [Phase; 4] {
    let surge = consumers / 4;
    let peak = consumers * 35 / 100;
    let decline = consumers / 10;
    let sustain = consumers - surge - peak - decline;
    let phase = |name, consumers, share| Phase {
        name,
        consumers,
        span: duration.mul_f64(share),
    };
    [
        phase("surge", surge, 0.4),
        phase("peak", peak, 0.0),
        phase("sustain", sustain, 0.4),
        phase("decline", decline, 0.2),
    ]
}

impl Options {
    pub fn parse(args: &[String]) -> Result<Self, String> {
        let mut o = Self {
            admin_key: std::env::var("VELVET_LOADTEST_ADMIN_KEY").ok(),
            merchant_key: std::env::var("VELVET_LOADTEST_MERCHANT_KEY").ok(),
            ..Self::default()
        };
        let (mut consumers, mut duration) = (1_000u64, Duration::from_secs(30));
        let mut overrides: Vec<(usize, Phase)> = Vec::new();
        let mut it = args.iter();
        while let Some(flag) = it.next() {
            let mut value = || {
                it.next()
                    .cloned()
                    .ok_or_else(|| format!("{flag} needs a value"))
            };
            match flag.as_str() {
                "--target" => o.target = value()?,
                "--queue" => o.queue = Some(value()?),
                "--admin-key" => o.admin_key = Some(value()?),
                "--merchant-key" => o.merchant_key = Some(value()?),
                "--consumers" => consumers = number(flag, &value()?)?,
                "--duration" => duration = seconds(flag, &value()?)?,
                "--surge" => overrides.push((0, phase_flag("surge", &value()?)?)),
                "--peak" => overrides.push((1, phase_flag("peak", &value()?)?)),
                "--sustain" => overrides.push((2, phase_flag("sustain", &value()?)?)),
                "--decline" => overrides.push((3, phase_flag("decline", &value()?)?)),
                "--hold" => o.hold = seconds(flag, &value()?)?,
                "--admit-per-minute" => o.admit_per_minute = number(flag, &value()?)?,
                "--connections" => o.connections = number(flag, &value()?)? as usize,
                "--sources" => o.sources = Some(number(flag, &value()?)?.min(255) as u8),
                "--server-pid" => o.server_pid = Some(number(flag, &value()?)? as u32),
                "--batch-gap-ms" => {
                    o.batch_gap = Duration::from_millis(number(flag, &value()?)?)
                }
                "--json" => o.json = Some(PathBuf::from(value()?)),
                "--quiet" => o.progress = false,
                "--allow-remote" => o.allow_remote = true,
                other => return Err(format!("unknown flag `{other}`")),
            }
        }
        o.phases = shape(consumers, duration);
        for (i, phase) in overrides {
            o.phases[i] = phase;
        }
        o.check()?;
        Ok(o)
    }

    fn check(&self) -> Result<(), String> {
        let total = self.consumers();
        if total == 0 {
            return Err("no consumers: give --consumers or a phase".into());
        }
        if total > MAX_CONSUMERS {
            return Err(format!(
                "{total} consumers: at most {MAX_CONSUMERS} per run"
            ));
        }
        if self.planned() > MAX_PLANNED {
            return Err(format!(
                "phases and hold last {:?}: at most {MAX_PLANNED:?}",
                self.planned()
            ));
        }
        if self.connections == 0 || self.connections > 4_096 {
            return Err("--connections: between 1 and 4096".into());
        }
        if self.queue.is_none() && self.admin_key.is_none() {
            return Err("give --queue, or --admin-key to define a queue".into());
        }
        if self.sources == Some(0) {
            return Err("--sources: at least 1".into());
        }
        Ok(())
    }

    pub fn consumers(&self) -> u64 {
        self.phases.iter().map(|p| p.consumers).sum()
    }

    /// Arrivals plus hold: how long the run means to take.
    pub fn planned(&self) -> Duration {
        self.phases.iter().map(|p| p.span).sum::<Duration>() + self.hold
    }

    /// Source addresses for a loopback target.
    pub fn source_count(&self) -> u8 {
        let sockets = self.consumers() + self.connections as u64;
        self.sources
            .unwrap_or_else(|| sockets.div_ceil(PER_SOURCE).clamp(1, 255) as u8)
    }
}

fn number(flag: &str, text: &str) -> Result<u64, String> {
    text.replace('_', "")
        .parse()
        .map_err(|_| format!("{flag}: `{text}` is not a whole number"))
}

fn seconds(flag: &str, text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .parse()
        .map_err(|_| format!("{flag}: `{text}` is not a number of seconds"))?;
    if !(0.0..=MAX_PLANNED.as_secs_f64()).contains(&secs) {
        return Err(format!("{flag}: {secs} s is out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// `N,SECS`.
fn phase_flag(name: &'static str, text: &str) -> Result<Phase, String> {
    let flag = format!("--{name}");
    let (n, secs) = text
        .split_once(',')
        .ok_or_else(|| format!("{flag}: expected N,SECS, got `{text}`"))?;
    Ok(Phase {
        name,
        consumers: number(&flag, n)?,
        span: seconds(&flag, secs)?,
    })
}

/// The soft limit on open files, from `/proc/self/limits` (Linux).
pub fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn the_default_shape_places_every_consumer() {
        let o =
            Options::parse(&args("--queue q --consumers 1001 --duration 10")).unwrap();
        assert_eq!(o.consumers(), 1001);
        let spans: Vec<f64> = o.phases.iter().map(|p| p.span.as_secs_f64()).collect();
        assert_eq!(spans, vec![4.0, 0.0, 4.0, 2.0]);
        assert_eq!(o.planned(), Duration::from_secs(20));
    }

    #[test]
    fn a_phase_flag_replaces_its_share() {
        let o = Options::parse(&args("--queue q --consumers 100 --peak 500,2")).unwrap();
        assert_eq!(o.phases[1].consumers, 500);
        assert_eq!(o.phases[1].span, Duration::from_secs(2));
        assert_eq!(o.consumers(), 565);
    }

    #[test]
    fn runs_past_the_caps_are_refused() {
        let too_many = Options::parse(&args("--queue q --consumers 100001"));
        assert!(too_many.unwrap_err().contains("at most"));
        assert!(Options::parse(&args("--queue q --hold 4000")).is_err());
        assert!(Options::parse(&args("--queue q --bogus 1")).is_err());
    }

    #[test]
    fn arrivals_build_up_and_thin_out() {
        let surge = Phase {
            name: "surge",
            consumers: 100,
            span: Duration::from_secs(10),
        };
        assert!(surge.offset(25) > Duration::from_secs(4));
        let decline = Phase {
            name: "decline",
            ..surge
        };
        assert!(decline.offset(75) < Duration::from_secs(6));
    }

    #[test]
    fn sources_follow_the_socket_count() {
        let o = Options::parse(&args("--queue q --consumers 50000")).unwrap();
        assert_eq!(o.source_count(), 3);
    }
}
