//! What this node knows of shared state, cached: the experience definitions
//! (refreshed every second and on change events) and each queue's counts
//! (refreshed every second). Handlers read snapshots without touching the
//! store, so a polling storm on the status page costs Redis nothing.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::domain::{Id, Kind, Sequence};
use crate::store::{QueueStats, Store, StoreResult, StoredExperience};

#[derive(Default)]
pub struct Snapshot {
    pub experiences: HashMap<Id, Arc<StoredExperience>>,
    /// Sequence id → owning experience id.
    pub sequences: HashMap<Id, Id>,
}

pub struct Catalog {
    store: Arc<dyn Store>,
    snapshot: RwLock<Arc<Snapshot>>,
    stats: RwLock<HashMap<Id, QueueStats>>,
    stats_read_at: RwLock<i64>,
}

impl Snapshot {
    /// A sequence with the experience it belongs to.
    pub fn sequence(&self, id: &Id) -> Option<(&Arc<StoredExperience>, &Sequence)> {
        let stored = self.experiences.get(self.sequences.get(id)?)?;
        Some((stored, stored.experience.sequence(id)?))
    }

    pub fn queues(&self) -> impl Iterator<Item = (&Arc<StoredExperience>, &Sequence)> {
        self.of_kind(Kind::Queue)
    }

    pub fn draws(&self) -> impl Iterator<Item = (&Arc<StoredExperience>, &Sequence)> {
        self.of_kind(Kind::Draw)
    }

    fn of_kind(
        &self,
        kind: Kind,
    ) -> impl Iterator<Item = (&Arc<StoredExperience>, &Sequence)> {
        self.experiences.values().flat_map(move |stored| {
            let seqs = stored.experience.sequences.iter();
            seqs.filter(move |s| s.kind == kind)
                .map(move |s| (stored, s))
        })
    }
}

impl Catalog {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self {
            store,
            snapshot: RwLock::new(Arc::default()),
            stats: RwLock::new(HashMap::new()),
            stats_read_at: RwLock::new(0),
        }
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        // Readers clone an Arc and never hold the lock across an await.
        self.snapshot
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub async fn refresh(&self) -> StoreResult<()> {
        let mut next = Snapshot::default();
        for stored in self.store.experiences().await? {
            let id = stored.experience.id().clone();
            for seq in &stored.experience.sequences {
                next.sequences.insert(seq.id.clone(), id.clone());
            }
            next.experiences.insert(id, Arc::new(stored));
        }
        *self.snapshot.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(next);
        Ok(())
    }

    /// Re-reads the counts of every queue and publishes them as gauges.
    pub async fn refresh_stats(&self, now: i64) -> StoreResult<()> {
        let snapshot = self.snapshot();
        let mut fresh = HashMap::new();
        for (_, seq) in snapshot.queues() {
            let stats = self.store.queue_stats(&seq.id, now).await?;
            let label = seq.id.to_string();
            metrics::gauge!("velvet_queue_waiting", "queue" => label.clone())
                .set(stats.waiting as f64);
            let capacity = seq.max_participants.unwrap_or(0) as f64;
            metrics::gauge!("velvet_queue_capacity", "queue" => label).set(capacity);
            fresh.insert(seq.id.clone(), stats);
        }
        // Counters exist from the start, so that rate() and increase() over
        // them see each node's first event rather than dropping it.
        for (_, seq) in snapshot.queues().chain(snapshot.draws()) {
            let label = seq.id.to_string();
            metrics::counter!("velvet_handoff_issued_total", "sequence" => label.clone())
                .increment(0);
            metrics::counter!("velvet_handoff_redeemed_total", "sequence" => label.clone())
                .increment(0);
            if seq.kind == Kind::Queue {
                metrics::counter!("velvet_queue_admitted_total", "queue" => label)
                    .increment(0);
            }
        }
        *self.stats.write().unwrap_or_else(|e| e.into_inner()) = fresh;
        *self
            .stats_read_at
            .write()
            .unwrap_or_else(|e| e.into_inner()) = now;
        Ok(())
    }

    pub fn stats(&self, seq: &Id) -> QueueStats {
        let stats = self.stats.read().unwrap_or_else(|e| e.into_inner());
        stats.get(seq).copied().unwrap_or_default()
    }

    /// Seconds until `position` is admitted at the rate observed over the
    /// last minute; unknown while nothing was admitted or admission is held.
    pub fn estimated_wait(&self, seq: &Id, position: Option<u64>) -> Option<u64> {
        Some(wait_at(position?, self.admission_rate(seq)?))
    }

    /// People admitted per second, as observed; `None` while unknown or
    /// while admission is held. Fan-out asks once per batch, not per person.
    pub fn admission_rate(&self, seq: &Id) -> Option<f64> {
        let snapshot = self.snapshot();
        let (stored, sequence) = snapshot.sequence(seq)?;
        if sequence.paused || stored.inventory == Some(0) {
            return None;
        }
        let stats = self.stats(seq);
        let started = stats.window_started?;
        if stats.admitted_last_minute == 0 {
            return None;
        }
        // The rate over the time admission has actually run, up to a minute,
        // so a queue that opened seconds ago is not judged on a full minute.
        let read_at = *self.stats_read_at.read().unwrap_or_else(|e| e.into_inner());
        let span_ms = ((read_at - started).max(0) + 1_000).min(60_000) as u64;
        Some(stats.admitted_last_minute as f64 * 1000.0 / span_ms as f64)
    }
}

/// Seconds until `position` is admitted at `per_second`.
pub fn wait_at(position: u64, per_second: f64) -> u64 {
    (position as f64 / per_second).ceil() as u64
}
