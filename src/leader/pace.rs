//! Spreads `admitPerMinute` evenly over ticks. Fractions carry over, so 30
//! a minute at one tick a second admits one every other tick; the store's
//! one-minute window is the hard limit, this only keeps batches smooth.

use std::time::{Duration, Instant};

pub struct Pace {
    tick: Duration,
    last: Option<Instant>,
    carry: f64,
}

impl Pace {
    pub fn new(tick: Duration) -> Self {
        Self {
            tick,
            last: None,
            carry: 0.0,
        }
    }

    /// How many may be admitted now.
    pub fn allowance(&mut self, per_minute: u64, now: Instant) -> u64 {
        // A late tick earns at most two ticks' worth: no burst after a stall.
        let elapsed = self
            .last
            .map_or(self.tick, |last| now - last)
            .min(self.tick * 2);
        self.last = Some(now);
        let per_tick = per_minute as f64 * self.tick.as_secs_f64() / 60.0;
        let earned = per_minute as f64 * elapsed.as_secs_f64() / 60.0;
        self.carry = (self.carry + earned).min(2.0 * per_tick + 1.0);
        self.carry.floor() as u64
    }

    pub fn spend(&mut self, admitted: u64) {
        self.carry = (self.carry - admitted as f64).max(0.0);
    }

    /// Nobody was waiting: keep at most a fraction, so the next arrival is
    /// not met with a saved-up burst.
    pub fn idle(&mut self) {
        self.carry = self.carry.fract();
    }

    /// Admission is paused: start afresh on resume.
    pub fn hold(&mut self) {
        self.carry = 0.0;
        self.last = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slow_rate_admits_every_other_tick() {
        let tick = Duration::from_secs(1);
        let mut pace = Pace::new(tick);
        let start = Instant::now();
        let mut total = 0;
        for i in 0..60 {
            let n = pace.allowance(30, start + tick * i);
            pace.spend(n);
            total += n;
        }
        assert_eq!(total, 30);
    }

    #[test]
    fn a_stall_does_not_earn_a_burst() {
        let tick = Duration::from_secs(1);
        let mut pace = Pace::new(tick);
        let start = Instant::now();
        pace.allowance(600, start);
        let after_stall = pace.allowance(600, start + Duration::from_secs(30));
        assert!(after_stall <= 21, "{after_stall}");
    }
}
