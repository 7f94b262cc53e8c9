//! Per-sequence leadership: every node competes for each queue's lease; the
//! holder admits the head of the line each tick and mints its tokens.
//!
//! Safety rests on two rules. The lease is renewed every tick, well inside
//! its TTL, and a leader that cannot renew, or whose last renewal is older
//! than the TTL minus a margin, stops before the lease can have passed on.
//! And every admission carries the lease's fencing token, which the store
//! checks atomically, so a paused-then-resumed leader writes nothing.

mod pace;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::catalog::Catalog;
use crate::domain::clock::now_ms;
use crate::domain::experience::Window;
use crate::domain::{Grant, Id, Kind, Sequence};
use crate::store::{Limits, Store, StoreError, StoredExperience, leader_lease};
use crate::tokens::HandoffSigner;
use crate::tokens::handoff::Admission;
pub use pace::Pace;

pub struct Leader {
    node_id: String,
    store: Arc<dyn Store>,
    catalog: Arc<Catalog>,
    signer: Arc<HandoffSigner>,
    tick: Duration,
    lease_ttl: Duration,
    held: HashMap<Id, Held>,
}

/// A lease this node holds, and the pacing state of its admission.
struct Held {
    fence: u64,
    /// After this instant the lease may already belong to someone else.
    valid_until: Instant,
    pace: Pace,
}

impl Leader {
    pub fn new(
        node_id: String,
        store: Arc<dyn Store>,
        catalog: Arc<Catalog>,
        signer: Arc<HandoffSigner>,
        tick: Duration,
        lease_ttl: Duration,
    ) -> Self {
        Self {
            node_id,
            store,
            catalog,
            signer,
            tick,
            lease_ttl,
            held: HashMap::new(),
        }
    }

    /// Ticks until shutdown, then hands every lease back at once so another
    /// node can take over without waiting for expiry.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let mut every = tokio::time::interval(self.tick);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = every.tick() => self.tick_all().await,
                _ = shutdown.changed() => break,
            }
        }
        for seq in self.held.keys() {
            let _ = self
                .store
                .release_lease(&leader_lease(seq), &self.node_id)
                .await;
            metrics::gauge!("velvet_leader", "sequence" => seq.to_string()).set(0.0);
        }
    }

    async fn tick_all(&mut self) {
        let snapshot = self.catalog.snapshot();
        let now = now_ms();
        let mut seen = Vec::new();
        let all = snapshot.queues().chain(snapshot.draws());
        for (stored, seq) in all {
            if seq.window(now) == Window::Scheduled {
                continue;
            }
            seen.push(seq.id.clone());
            match seq.kind {
                Kind::Queue => self.tick_one(stored, seq).await,
                Kind::Draw => self.tick_draw(stored, seq).await,
            }
        }
        // Sequences removed from the catalog: give their leases back.
        let gone: Vec<Id> = self
            .held
            .keys()
            .filter(|s| !seen.contains(s))
            .cloned()
            .collect();
        for seq in gone {
            self.step_down(&seq, "sequence no longer defined");
            let _ = self
                .store
                .release_lease(&leader_lease(&seq), &self.node_id)
                .await;
        }
    }

    async fn tick_one(&mut self, stored: &StoredExperience, seq: &Sequence) {
        if !self.renew(&seq.id).await {
            return;
        }
        if seq.paused || stored.inventory == Some(0) {
            if let Some(held) = self.held.get_mut(&seq.id) {
                held.pace.hold();
            }
            return;
        }
        if let Err(e) = self.admit(stored, seq).await {
            match e {
                StoreError::StaleFence => {
                    self.step_down(&seq.id, "fencing token refused")
                }
                e => tracing::warn!(sequence = %seq.id, error = %e, "admission failed"),
            }
        }
    }

    /// A draw's leader commits its seed at opening, runs it at closing, and
    /// then hands slots freed by expired tokens down the drawn order.
    async fn tick_draw(&mut self, stored: &StoredExperience, seq: &Sequence) {
        if !self.renew(&seq.id).await {
            return;
        }
        let result = async {
            let status = self.store.draw_status(&seq.id).await?;
            let now = now_ms();
            if status.drawn {
                return self.backfill(stored, seq, now).await;
            }
            match seq.window(now) {
                Window::Open if status.seed.is_none() => {
                    self.store
                        .draw_seed(&seq.id, &crate::draw::new_seed())
                        .await?;
                    tracing::info!(draw = %seq.id, "draw seed committed");
                }
                Window::Closed => {
                    crate::draw::run::run(
                        self.store.as_ref(),
                        &self.signer,
                        stored,
                        seq,
                        now,
                    )
                    .await?;
                }
                _ => {}
            }
            Ok(())
        };
        match result.await {
            Ok(()) => {}
            Err(StoreError::StaleFence) => {
                self.step_down(&seq.id, "fencing token refused")
            }
            Err(e) => tracing::warn!(draw = %seq.id, error = %e, "draw work failed"),
        }
    }

    async fn backfill(
        &mut self,
        stored: &StoredExperience,
        seq: &Sequence,
        now: i64,
    ) -> Result<(), StoreError> {
        let winners = seq.winners.unwrap_or(0);
        let next = self.store.draw_backfill_room(&seq.id, now, winners).await?;
        if next.is_empty() {
            return Ok(());
        }
        let Some(held) = self.held.get(&seq.id) else {
            return Ok(());
        };
        let (fence, valid_until) = (held.fence, held.valid_until);
        let grants: Vec<(uuid::Uuid, Grant)> = next
            .into_iter()
            .filter_map(|(c, ext)| {
                crate::draw::run::mint(&self.signer, stored, seq, c, ext, now)
            })
            .collect();
        if Instant::now() + self.tick / 2 >= valid_until {
            self.step_down(&seq.id, "lease too close to expiry");
            return Ok(());
        }
        let promoted = self
            .store
            .draw_promote(&seq.id, fence, now, &grants)
            .await?;
        if promoted > 0 {
            tracing::info!(draw = %seq.id, promoted, "freed draw slots passed on");
            metrics::counter!("velvet_handoff_issued_total", "sequence" => seq.id.to_string())
                .increment(promoted);
        }
        Ok(())
    }

    /// Acquires or renews the lease; false when this node must not lead.
    async fn renew(&mut self, seq: &Id) -> bool {
        let asked_at = Instant::now();
        let name = leader_lease(seq);
        let ttl_ms = self.lease_ttl.as_millis() as u64;
        match self.store.acquire_lease(&name, &self.node_id, ttl_ms).await {
            Ok(Some(fence)) => {
                let valid_until = asked_at + self.lease_ttl;
                match self.held.get_mut(seq) {
                    Some(held) if held.fence == fence => held.valid_until = valid_until,
                    _ => {
                        tracing::info!(sequence = %seq, fence, "leader acquired");
                        metrics::gauge!("velvet_leader", "sequence" => seq.to_string())
                            .set(1.0);
                        let pace = Pace::new(self.tick);
                        self.held.insert(
                            seq.clone(),
                            Held {
                                fence,
                                valid_until,
                                pace,
                            },
                        );
                    }
                }
                true
            }
            Ok(None) => {
                self.step_down(seq, "lease held by another node");
                // Followers report 0 too, so "no node leads" is visible.
                metrics::gauge!("velvet_leader", "sequence" => seq.to_string()).set(0.0);
                false
            }
            Err(e) => {
                tracing::warn!(sequence = %seq, error = %e, "lease renewal failed");
                self.step_down(seq, "lease renewal failed");
                false
            }
        }
    }

    fn step_down(&mut self, seq: &Id, why: &'static str) {
        if self.held.remove(seq).is_some() {
            tracing::info!(sequence = %seq, reason = why, "leader lost");
            metrics::gauge!("velvet_leader", "sequence" => seq.to_string()).set(0.0);
        }
    }

    /// One batch: who fits, their tokens, then one fenced write.
    async fn admit(
        &mut self,
        stored: &StoredExperience,
        seq: &Sequence,
    ) -> Result<(), StoreError> {
        let Some(held) = self.held.get_mut(&seq.id) else {
            return Ok(());
        };
        let want = held.pace.allowance(seq.admit_per_minute(), Instant::now());
        if want == 0 {
            return Ok(());
        }
        let (fence, valid_until) = (held.fence, held.valid_until);
        let now = now_ms();
        // Each outstanding token may buy one unit: never more out than stock.
        let max_active = match (seq.max_active, stored.inventory) {
            (Some(a), Some(i)) => Some(a.min(i)),
            (a, i) => a.or(i),
        };
        let limits = Limits {
            want,
            per_minute: seq.admit_per_minute(),
            max_active,
        };
        let head = self.store.admission_room(&seq.id, now, limits).await?;
        if head.is_empty() {
            if let Some(held) = self.held.get_mut(&seq.id) {
                held.pace.idle();
            }
            return Ok(());
        }
        let grants = self.mint(stored, seq, head, now);

        // Margin for the write's own trip: never write near the lease's end.
        if Instant::now() + self.tick / 2 >= valid_until {
            self.step_down(&seq.id, "lease too close to expiry");
            return Ok(());
        }
        let recorded = self.store.admit(&seq.id, fence, now, &grants).await?;
        if let Some(held) = self.held.get_mut(&seq.id) {
            held.pace.spend(recorded);
        }
        if recorded > 0 {
            let label = seq.id.to_string();
            metrics::counter!("velvet_queue_admitted_total", "queue" => label.clone())
                .increment(recorded);
            metrics::counter!("velvet_handoff_issued_total", "sequence" => label)
                .increment(recorded);
            tracing::debug!(sequence = %seq.id, admitted = recorded, "batch admitted");
        }
        Ok(())
    }

    fn mint(
        &self,
        stored: &StoredExperience,
        seq: &Sequence,
        head: Vec<(uuid::Uuid, Option<String>)>,
        now: i64,
    ) -> Vec<(uuid::Uuid, Grant)> {
        let experience = stored.experience.id();
        head.into_iter()
            .filter_map(|(consumer, external_id)| {
                let admission = Admission {
                    consumer,
                    experience,
                    sequence: &seq.id,
                    kind: Kind::Queue,
                    external_id,
                    now_ms: now,
                    ttl_ms: seq.token_ttl_ms(),
                };
                match self.signer.mint(&admission) {
                    Ok(grant) => Some((consumer, grant)),
                    Err(e) => {
                        tracing::error!(error = %e, "handoff token could not be signed");
                        None
                    }
                }
            })
            .collect()
    }
}
