//! Figures from raw samples: exact percentiles by sorting (a run keeps at
//! most a few hundred thousand samples, so sorting is cheap and needs no
//! histogram crate), and the grouping of pushed messages into the
//! admission batch that caused them.

use serde::Serialize;

/// A latency distribution, in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    pub count: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl Summary {
    /// From samples in microseconds; sorts them in place.
    pub fn of_micros(samples: &mut [u64]) -> Self {
        if samples.is_empty() {
            return Self::default();
        }
        samples.sort_unstable();
        let ms = |us: u64| us as f64 / 1000.0;
        let sum: u128 = samples.iter().map(|&us| u128::from(us)).sum();
        Self {
            count: samples.len() as u64,
            p50_ms: ms(percentile(samples, 0.50)),
            p95_ms: ms(percentile(samples, 0.95)),
            p99_ms: ms(percentile(samples, 0.99)),
            max_ms: ms(samples[samples.len() - 1]),
            mean_ms: sum as f64 / samples.len() as f64 / 1000.0,
        }
    }
}

/// The nearest-rank percentile of sorted samples: the smallest sample that
/// at least `q` of all samples do not exceed.
pub fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushKind {
    /// `queue:position-updated` after the consumer's first state message.
    Position,
    /// `queue:access-granted` while the socket was already watching.
    Grant,
}

/// A message a batch pushed, and when it arrived (µs since the run began).
#[derive(Clone, Copy, Debug)]
pub struct Pushed {
    pub at_us: u64,
    pub kind: PushKind,
}

/// Delays of pushed messages from the start of their batch.
#[derive(Debug, Default)]
pub struct BatchDelays {
    pub batches: u64,
    pub position_us: Vec<u64>,
    pub grant_us: Vec<u64>,
    /// The longest time between a batch's first and last message.
    pub widest_us: u64,
}

/// Groups arrivals into batches, a quiet gap longer than `gap_us` starting
/// the next one, and measures each message from the first of its batch.
///
/// The consumers cannot see when the leader wrote a batch, only when its
/// messages arrive; the first arrival stands for the batch. So these
/// delays leave out the hop from the leader's write to the first socket
/// (one publish and one frame on the same machine) and measure the
/// fan-out: how long the last consumer waits after the first.
pub fn batch_delays(mut pushed: Vec<Pushed>, gap_us: u64) -> BatchDelays {
    pushed.sort_unstable_by_key(|p| p.at_us);
    let mut out = BatchDelays::default();
    let (mut first, mut last) = (0u64, 0u64);
    for (i, p) in pushed.iter().enumerate() {
        if i == 0 || p.at_us - last > gap_us {
            out.batches += 1;
            first = p.at_us;
        }
        last = p.at_us;
        out.widest_us = out.widest_us.max(p.at_us - first);
        match p.kind {
            PushKind::Position => out.position_us.push(p.at_us - first),
            PushKind::Grant => out.grant_us.push(p.at_us - first),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let mut samples: Vec<u64> = (1..=100).rev().map(|ms| ms * 1000).collect();
        let s = Summary::of_micros(&mut samples);
        assert_eq!(
            (s.count, s.p50_ms, s.p95_ms, s.p99_ms),
            (100, 50.0, 95.0, 99.0)
        );
        assert_eq!((s.max_ms, s.mean_ms), (100.0, 50.5));
        assert_eq!(percentile(&[7], 0.99), 7);
        assert_eq!(Summary::of_micros(&mut []), Summary::default());
    }

    #[test]
    fn a_quiet_gap_separates_batches() {
        let at = |at_us, kind| Pushed { at_us, kind };
        let pushed = vec![
            at(1_000, PushKind::Position),
            at(1_400, PushKind::Grant),
            at(1_200, PushKind::Position),
            at(900_000, PushKind::Position),
            at(900_050, PushKind::Position),
        ];
        let d = batch_delays(pushed, 100_000);
        assert_eq!(d.batches, 2);
        assert_eq!(d.position_us, vec![0, 200, 0, 50]);
        assert_eq!((d.grant_us, d.widest_us), (vec![400], 400));
    }
}
