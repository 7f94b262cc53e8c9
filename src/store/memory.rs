//! The in-process store: one node, nothing to install, the same behaviour as
//! Redis. One mutex guards everything; it is never held across an await, so
//! each method is as atomic as a Redis script.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Mutex;

use async_trait::async_trait;
use tokio::sync::broadcast;
use uuid::Uuid;

use super::{
    DrawEnterOutcome, DrawEnterRequest, DrawEntry, DrawEntryState, DrawSnapshot,
    DrawStatus, EnterOutcome, EnterRequest, Event, GrantNote, LeaveOutcome, Limits,
    PutOutcome, QueueStats, RedeemOutcome, Refusal, Store, StoreError, StoreResult,
    StoredExperience,
};
use crate::domain::clock::now_ms;
use crate::domain::entry::TICKET_BASE;
use crate::domain::{Entry, EntryState, Experience, Grant, Id};

const WINDOW_MS: i64 = 60_000;

pub struct MemoryStore {
    inner: Mutex<Inner>,
    events: broadcast::Sender<Event>,
}

#[derive(Default)]
struct Inner {
    schema: u32,
    experiences: BTreeMap<Id, StoredExperience>,
    /// Sequence id → the experience it was first defined in, for good.
    owners: HashMap<Id, Id>,
    queues: HashMap<Id, Queue>,
    draws: HashMap<Id, Draw>,
    leases: HashMap<String, Lease>,
    fences: HashMap<String, u64>,
}

struct Lease {
    holder: String,
    until: i64,
}

#[derive(Default)]
struct Queue {
    line: BTreeSet<(u64, Uuid)>,
    /// The same keys as `line`, counted: a place in line is read on every
    /// enter and position request, and counting `line` up to the entry
    /// costs as much as the line is long, under the store's one lock.
    ranks: RankIndex,
    entries: HashMap<Uuid, Record>,
    tickets: u64,
    /// Expiry of each outstanding token, by consumer.
    active: HashMap<Uuid, i64>,
    /// (time, count) of recent batches, oldest first.
    window: VecDeque<(i64, u64)>,
    admitted_total: u64,
    redeemed_total: u64,
    version: u64,
}

#[derive(Default)]
struct Draw {
    seed: Option<String>,
    closed: bool,
    drawn: bool,
    entrants: HashMap<Uuid, DrawRecord>,
    accounts: HashMap<String, Uuid>,
    order: Vec<Uuid>,
    next: usize,
    redeemed: u64,
}

struct DrawRecord {
    registered_at: i64,
    external_id: Option<String>,
    state: DrawEntryState,
    grant: Option<Grant>,
}

impl Draw {
    fn status(&self) -> DrawStatus {
        DrawStatus {
            seed: self.seed.clone(),
            closed: self.closed,
            drawn: self.drawn,
            entrants: self.entrants.len() as u64,
            redeemed: self.redeemed,
            next: self.next as u64,
        }
    }

    /// Slots held by unexpired, unredeemed grants.
    fn active(&self, now: i64) -> u64 {
        let holding = |r: &&DrawRecord| {
            r.state == DrawEntryState::Won
                && r.grant.as_ref().is_some_and(|g| g.expires_at > now)
        };
        self.entrants.values().filter(holding).count() as u64
    }

    fn grant(&mut self, consumer: Uuid, grant: &Grant) -> Option<GrantNote> {
        let rec = self.entrants.get_mut(&consumer)?;
        rec.state = DrawEntryState::Won;
        rec.grant = Some(grant.clone());
        Some(GrantNote {
            c: consumer,
            k: grant.token.clone(),
            x: grant.expires_at,
        })
    }
}

#[derive(Clone)]
struct Record {
    state: EntryState,
    external_id: Option<String>,
    score: u64,
    entered_at: i64,
    grant: Option<Grant>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        let (events, _) = broadcast::channel(4096);
        Self {
            inner: Mutex::new(Inner::default()),
            events,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data behind; keep going.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn publish(&self, event: Event) {
        // No receiver simply means no node is listening yet.
        let _ = self.events.send(event);
    }
}

impl Queue {
    fn rank(&self, score: u64, consumer: Uuid) -> u64 {
        self.ranks.count_below((score, consumer))
    }

    fn join_line(&mut self, key: Key) {
        if self.line.insert(key) {
            self.ranks.insert(key);
        }
    }

    fn quit_line(&mut self, key: Key) {
        if self.line.remove(&key) {
            self.ranks.remove(key);
        }
    }

    fn view(&self, consumer: Uuid, rec: &Record) -> Entry {
        let position = (rec.state == EntryState::Waiting)
            .then(|| self.rank(rec.score, consumer) + 1);
        Entry {
            consumer_id: consumer,
            state: rec.state,
            score: rec.score,
            position,
            entered_at: rec.entered_at,
            grant: rec.grant.clone(),
            external_id: rec.external_id.clone(),
            version: self.version,
        }
    }

    fn expire(&mut self, now: i64) {
        self.active.retain(|_, exp| *exp > now);
        while self
            .window
            .front()
            .is_some_and(|(t, _)| *t <= now - WINDOW_MS)
        {
            self.window.pop_front();
        }
    }

    fn window_used(&self, now: i64) -> u64 {
        self.window
            .iter()
            .filter(|(t, _)| *t > now - WINDOW_MS)
            .map(|(_, n)| n)
            .sum()
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn ping(&self) -> StoreResult<()> {
        Ok(())
    }

    async fn schema_version(&self) -> StoreResult<u32> {
        Ok(self.lock().schema)
    }

    async fn apply_migration(&self, version: u32, _script: &str) -> StoreResult<()> {
        // The in-process keyspace is born current; only the version moves.
        let mut inner = self.lock();
        inner.schema = inner.schema.max(version);
        Ok(())
    }

    async fn put_experience(
        &self,
        exp: &Experience,
        create_only: bool,
    ) -> StoreResult<PutOutcome> {
        let id = exp.id().clone();
        {
            let mut inner = self.lock();
            if create_only && inner.experiences.contains_key(&id) {
                return Ok(PutOutcome::Kept);
            }
            for seq in &exp.sequences {
                if let Some(owner) = inner.owners.get(&seq.id).filter(|o| **o != id) {
                    let (sequence, owner) = (seq.id.clone(), owner.clone());
                    return Ok(PutOutcome::SequenceOwned { sequence, owner });
                }
            }
            for seq in &exp.sequences {
                inner.owners.insert(seq.id.clone(), id.clone());
            }
            let announcement = inner
                .experiences
                .get(&id)
                .and_then(|s| s.announcement.clone());
            let stored = StoredExperience {
                experience: exp.clone(),
                inventory: exp.inventory,
                announcement,
                updated_at: now_ms(),
            };
            inner.experiences.insert(id.clone(), stored);
        }
        self.publish(Event::Experience { id });
        Ok(PutOutcome::Written)
    }

    async fn experiences(&self) -> StoreResult<Vec<StoredExperience>> {
        Ok(self.lock().experiences.values().cloned().collect())
    }

    async fn set_inventory(&self, id: &Id, remaining: Option<u64>) -> StoreResult<()> {
        if let Some(stored) = self.lock().experiences.get_mut(id) {
            stored.inventory = remaining;
            stored.updated_at = now_ms();
        }
        self.publish(Event::Experience { id: id.clone() });
        Ok(())
    }

    async fn set_announcement(&self, id: &Id, message: Option<&str>) -> StoreResult<()> {
        if let Some(stored) = self.lock().experiences.get_mut(id) {
            stored.announcement = message.map(str::to_owned);
            stored.updated_at = now_ms();
        }
        self.publish(Event::Experience { id: id.clone() });
        Ok(())
    }

    async fn take_inventory(&self, id: &Id) -> StoreResult<Option<u64>> {
        let left = {
            let mut inner = self.lock();
            let Some(stored) = inner.experiences.get_mut(id) else {
                return Ok(None);
            };
            let Some(left) = stored.inventory.as_mut() else {
                return Ok(None);
            };
            *left = left.saturating_sub(1);
            stored.updated_at = now_ms();
            *left
        };
        if left == 0 {
            self.publish(Event::Experience { id: id.clone() });
        }
        Ok(Some(left))
    }

    async fn enter(&self, seq: &Id, req: EnterRequest) -> StoreResult<EnterOutcome> {
        let mut inner = self.lock();
        let queue = inner.queues.entry(seq.clone()).or_default();
        if let Some(rec) = queue.entries.get(&req.consumer_id) {
            return Ok(EnterOutcome::Entered(
                queue.view(req.consumer_id, rec),
                false,
            ));
        }
        if let Some(refusal) = req.refuse {
            return Ok(EnterOutcome::Refused(refusal));
        }
        if req
            .max_participants
            .is_some_and(|max| queue.entries.len() as u64 >= max)
        {
            return Ok(EnterOutcome::Refused(Refusal::Full));
        }
        let score = if req.now < req.opens_at {
            req.prequeue_score
        } else {
            queue.tickets += 1;
            TICKET_BASE + queue.tickets
        };
        let rec = Record {
            state: EntryState::Waiting,
            external_id: req.external_id.clone(),
            score,
            entered_at: req.now,
            grant: None,
        };
        queue.join_line((score, req.consumer_id));
        let entry = queue.view(req.consumer_id, &rec);
        queue.entries.insert(req.consumer_id, rec);
        let event = Event::Entered {
            seq: seq.clone(),
            v: queue.version,
            c: req.consumer_id,
            score,
            pos: entry.position.unwrap_or(1),
        };
        // Sent under the lock so events leave in the order they happened.
        let _ = self.events.send(event);
        Ok(EnterOutcome::Entered(entry, true))
    }

    async fn entry(&self, seq: &Id, consumer: Uuid) -> StoreResult<Option<Entry>> {
        let inner = self.lock();
        let Some(queue) = inner.queues.get(seq) else {
            return Ok(None);
        };
        Ok(queue
            .entries
            .get(&consumer)
            .map(|rec| queue.view(consumer, rec)))
    }

    async fn leave(
        &self,
        seq: &Id,
        consumer: Uuid,
        now: i64,
    ) -> StoreResult<LeaveOutcome> {
        let mut inner = self.lock();
        let Some(queue) = inner.queues.get_mut(seq) else {
            return Ok(LeaveOutcome::NotFound);
        };
        let Some(rec) = queue.entries.get_mut(&consumer) else {
            return Ok(LeaveOutcome::NotFound);
        };
        match rec.state {
            EntryState::Waiting => {
                let score = rec.score;
                queue.quit_line((score, consumer));
                queue.entries.remove(&consumer);
                queue.version += 1;
                let event = Event::Left {
                    seq: seq.clone(),
                    v: queue.version,
                    score,
                };
                let _ = self.events.send(event);
                Ok(LeaveOutcome::Left)
            }
            EntryState::Admitted
                if rec.grant.as_ref().is_some_and(|g| g.expires_at > now) =>
            {
                rec.state = EntryState::Left;
                queue.active.remove(&consumer);
                Ok(LeaveOutcome::Released)
            }
            _ => Ok(LeaveOutcome::Unchanged),
        }
    }

    async fn admission_room(
        &self,
        seq: &Id,
        now: i64,
        limits: Limits,
    ) -> StoreResult<Vec<(Uuid, Option<String>)>> {
        let mut inner = self.lock();
        let queue = inner.queues.entry(seq.clone()).or_default();
        queue.expire(now);
        let by_rate = limits.per_minute.saturating_sub(queue.window_used(now));
        let mut room = limits.want.min(by_rate);
        if let Some(max) = limits.max_active {
            room = room.min(max.saturating_sub(queue.active.len() as u64));
        }
        let head = queue.line.iter().take(room as usize);
        Ok(head
            .map(|(_, c)| (*c, queue.entries.get(c).and_then(|r| r.external_id.clone())))
            .collect())
    }

    async fn admit(
        &self,
        seq: &Id,
        fence: u64,
        now: i64,
        grants: &[(Uuid, Grant)],
    ) -> StoreResult<u64> {
        let mut inner = self.lock();
        if inner.fences.get(seq.as_str()).copied() != Some(fence) {
            return Err(StoreError::StaleFence);
        }
        let queue = inner.queues.entry(seq.clone()).or_default();
        let mut notes = Vec::new();
        for (consumer, grant) in grants {
            let Some(rec) = queue.entries.get_mut(consumer) else {
                continue;
            };
            if rec.state != EntryState::Waiting {
                continue;
            }
            let key = (rec.score, *consumer);
            rec.state = EntryState::Admitted;
            rec.grant = Some(grant.clone());
            queue.active.insert(*consumer, grant.expires_at);
            queue.quit_line(key);
            notes.push(GrantNote {
                c: *consumer,
                k: grant.token.clone(),
                x: grant.expires_at,
            });
        }
        if notes.is_empty() {
            return Ok(0);
        }
        let count = notes.len() as u64;
        queue.admitted_total += count;
        queue.version += 1;
        queue.window.push_back((now, count));
        let event = Event::Batch {
            seq: seq.clone(),
            v: queue.version,
            admitted: notes,
            total: queue.admitted_total,
        };
        let _ = self.events.send(event);
        Ok(count)
    }

    async fn redeem(
        &self,
        seq: &Id,
        consumer: Uuid,
        jti: &str,
        now: i64,
    ) -> StoreResult<RedeemOutcome> {
        let mut inner = self.lock();
        let Some(queue) = inner.queues.get_mut(seq) else {
            return Ok(RedeemOutcome::Unknown);
        };
        let Some(rec) = queue.entries.get_mut(&consumer) else {
            return Ok(RedeemOutcome::Unknown);
        };
        let Some(grant) = rec.grant.as_ref().filter(|g| g.jti == jti) else {
            return Ok(RedeemOutcome::Unknown);
        };
        let outcome = match rec.state {
            EntryState::Redeemed => RedeemOutcome::AlreadyRedeemed,
            EntryState::Left => RedeemOutcome::Revoked,
            _ if grant.expires_at <= now => RedeemOutcome::Expired,
            _ => RedeemOutcome::Redeemed,
        };
        if outcome == RedeemOutcome::Redeemed {
            rec.state = EntryState::Redeemed;
            queue.active.remove(&consumer);
            queue.redeemed_total += 1;
        }
        Ok(outcome)
    }

    async fn queue_stats(&self, seq: &Id, now: i64) -> StoreResult<QueueStats> {
        let inner = self.lock();
        let Some(queue) = inner.queues.get(seq) else {
            return Ok(QueueStats::default());
        };
        Ok(QueueStats {
            waiting: queue.line.len() as u64,
            active: queue.active.values().filter(|exp| **exp > now).count() as u64,
            admitted_last_minute: queue.window_used(now),
            window_started: queue
                .window
                .iter()
                .find(|(t, _)| *t > now - WINDOW_MS)
                .map(|(t, _)| *t),
            admitted_total: queue.admitted_total,
            redeemed_total: queue.redeemed_total,
            version: queue.version,
        })
    }

    async fn draw_enter(
        &self,
        seq: &Id,
        req: DrawEnterRequest,
    ) -> StoreResult<DrawEnterOutcome> {
        let mut inner = self.lock();
        let draw = inner.draws.entry(seq.clone()).or_default();
        draw.seed.get_or_insert(req.seed);
        if let Some(rec) = draw.entrants.get(&req.consumer_id) {
            let registered_at = rec.registered_at;
            return Ok(DrawEnterOutcome::Registered {
                registered_at,
                new: false,
            });
        }
        if draw.closed {
            return Ok(DrawEnterOutcome::Refused(Refusal::Closed));
        }
        if let Some(refusal) = req.refuse {
            return Ok(DrawEnterOutcome::Refused(refusal));
        }
        if let Some(ext) = &req.external_id
            && draw
                .accounts
                .get(ext)
                .is_some_and(|c| *c != req.consumer_id)
        {
            return Ok(DrawEnterOutcome::AccountTaken);
        }
        if req
            .max_participants
            .is_some_and(|m| draw.entrants.len() as u64 >= m)
        {
            return Ok(DrawEnterOutcome::Refused(Refusal::Full));
        }
        if let Some(ext) = &req.external_id {
            draw.accounts.insert(ext.clone(), req.consumer_id);
        }
        let rec = DrawRecord {
            registered_at: req.now,
            external_id: req.external_id,
            state: DrawEntryState::Registered,
            grant: None,
        };
        draw.entrants.insert(req.consumer_id, rec);
        let _ = self.events.send(Event::Registered {
            seq: seq.clone(),
            c: req.consumer_id,
        });
        Ok(DrawEnterOutcome::Registered {
            registered_at: req.now,
            new: true,
        })
    }

    async fn draw_seed(&self, seq: &Id, candidate: &str) -> StoreResult<String> {
        let mut inner = self.lock();
        let draw = inner.draws.entry(seq.clone()).or_default();
        Ok(draw
            .seed
            .get_or_insert_with(|| candidate.to_owned())
            .clone())
    }

    async fn draw_status(&self, seq: &Id) -> StoreResult<DrawStatus> {
        let inner = self.lock();
        Ok(inner.draws.get(seq).map(Draw::status).unwrap_or_default())
    }

    async fn draw_close(
        &self,
        seq: &Id,
        candidate_seed: &str,
    ) -> StoreResult<DrawSnapshot> {
        let mut inner = self.lock();
        let draw = inner.draws.entry(seq.clone()).or_default();
        let seed = draw
            .seed
            .get_or_insert_with(|| candidate_seed.to_owned())
            .clone();
        draw.closed = true;
        let entrants = draw
            .entrants
            .iter()
            .map(|(c, r)| (*c, r.external_id.clone()))
            .collect();
        Ok(DrawSnapshot {
            seed,
            drawn: draw.drawn,
            entrants,
        })
    }

    async fn draw_commit(
        &self,
        seq: &Id,
        _now: i64,
        order: &[Uuid],
        grants: &[(Uuid, Grant)],
    ) -> StoreResult<bool> {
        let mut inner = self.lock();
        let draw = inner.draws.entry(seq.clone()).or_default();
        if draw.drawn {
            return Ok(false);
        }
        draw.drawn = true;
        draw.order = order.to_vec();
        let notes: Vec<GrantNote> = grants
            .iter()
            .filter_map(|(c, g)| draw.grant(*c, g))
            .collect();
        draw.next = notes.len();
        let _ = self.events.send(Event::Drawn {
            seq: seq.clone(),
            grants: notes,
        });
        Ok(true)
    }

    async fn draw_entry(
        &self,
        seq: &Id,
        consumer: Uuid,
    ) -> StoreResult<Option<DrawEntry>> {
        let inner = self.lock();
        let Some(draw) = inner.draws.get(seq) else {
            return Ok(None);
        };
        Ok(draw.entrants.get(&consumer).map(|rec| DrawEntry {
            registered_at: rec.registered_at,
            state: rec.state,
            grant: rec.grant.clone(),
            status: draw.status(),
            order_len: draw.order.len() as u64,
        }))
    }

    async fn draw_record(&self, seq: &Id) -> StoreResult<(Vec<Uuid>, Vec<Uuid>)> {
        let inner = self.lock();
        let Some(draw) = inner.draws.get(seq) else {
            return Ok((Vec::new(), Vec::new()));
        };
        Ok((draw.entrants.keys().copied().collect(), draw.order.clone()))
    }

    async fn draw_backfill_room(
        &self,
        seq: &Id,
        now: i64,
        winners: u64,
    ) -> StoreResult<Vec<(Uuid, Option<String>)>> {
        let inner = self.lock();
        let Some(draw) = inner.draws.get(seq).filter(|d| d.drawn) else {
            return Ok(Vec::new());
        };
        let slots = winners.saturating_sub(draw.redeemed + draw.active(now));
        let next = draw.order.iter().skip(draw.next).take(slots as usize);
        Ok(next
            .map(|c| (*c, draw.entrants.get(c).and_then(|r| r.external_id.clone())))
            .collect())
    }

    async fn draw_promote(
        &self,
        seq: &Id,
        fence: u64,
        _now: i64,
        grants: &[(Uuid, Grant)],
    ) -> StoreResult<u64> {
        let mut inner = self.lock();
        if inner.fences.get(seq.as_str()).copied() != Some(fence) {
            return Err(StoreError::StaleFence);
        }
        let Some(draw) = inner.draws.get_mut(seq) else {
            return Ok(0);
        };
        let mut notes = Vec::new();
        for (consumer, grant) in grants {
            // Only ever the next in drawn order, so no one is skipped.
            if draw.order.get(draw.next) != Some(consumer) {
                break;
            }
            draw.next += 1;
            notes.extend(draw.grant(*consumer, grant));
        }
        let count = notes.len() as u64;
        if count > 0 {
            let _ = self.events.send(Event::Promoted {
                seq: seq.clone(),
                grants: notes,
            });
        }
        Ok(count)
    }

    async fn draw_redeem(
        &self,
        seq: &Id,
        consumer: Uuid,
        jti: &str,
        now: i64,
    ) -> StoreResult<RedeemOutcome> {
        let mut inner = self.lock();
        let Some(draw) = inner.draws.get_mut(seq) else {
            return Ok(RedeemOutcome::Unknown);
        };
        let Some(rec) = draw.entrants.get_mut(&consumer) else {
            return Ok(RedeemOutcome::Unknown);
        };
        let Some(grant) = rec.grant.as_ref().filter(|g| g.jti == jti) else {
            return Ok(RedeemOutcome::Unknown);
        };
        let outcome = match rec.state {
            DrawEntryState::Redeemed => RedeemOutcome::AlreadyRedeemed,
            _ if grant.expires_at <= now => RedeemOutcome::Expired,
            _ => RedeemOutcome::Redeemed,
        };
        if outcome == RedeemOutcome::Redeemed {
            rec.state = DrawEntryState::Redeemed;
            draw.redeemed += 1;
        }
        Ok(outcome)
    }

    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl_ms: u64,
    ) -> StoreResult<Option<u64>> {
        let now = now_ms();
        let mut inner = self.lock();
        let until = now + ttl_ms as i64;
        match inner.leases.get_mut(name) {
            Some(lease) if lease.until > now && lease.holder != holder => Ok(None),
            Some(lease) if lease.until > now => {
                lease.until = until;
                Ok(inner.fences.get(name).copied())
            }
            _ => {
                let lease = Lease {
                    holder: holder.to_owned(),
                    until,
                };
                inner.leases.insert(name.to_owned(), lease);
                let fence = inner.fences.entry(name.to_owned()).or_default();
                *fence += 1;
                Ok(Some(*fence))
            }
        }
    }

    async fn release_lease(&self, name: &str, holder: &str) -> StoreResult<()> {
        let mut inner = self.lock();
        if inner.leases.get(name).is_some_and(|l| l.holder == holder) {
            inner.leases.remove(name);
        }
        Ok(())
    }

    fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }
}

/// A place in line: score, then consumer id for equal scores.
type Key = (u64, Uuid);

const NIL: u32 = u32::MAX;

/// An order-statistic set of line keys: a treap (a binary search tree kept
/// balanced, in expectation, by random heap priorities) whose nodes count
/// their subtree, so the number of keys below any key is one walk from the
/// root, O(log n), instead of a scan. Nodes live in one vector, linked by
/// index, so there is no unsafe code and no allocation per node.
///
/// Priorities come from a counter through a mixing function rather than
/// from the keys, so ids handed out in order cannot unbalance the tree.
struct RankIndex {
    nodes: Vec<RankNode>,
    free: Vec<u32>,
    root: u32,
    drawn: u64,
}

struct RankNode {
    key: Key,
    priority: u64,
    size: u32,
    left: u32,
    right: u32,
}

impl Default for RankIndex {
    fn default() -> Self {
        Self {
            nodes: Vec::new(),
            free: Vec::new(),
            root: NIL,
            drawn: 0,
        }
    }
}

impl RankIndex {
    fn size(&self, node: u32) -> u32 {
        if node == NIL {
            0
        } else {
            self.nodes[node as usize].size
        }
    }

    fn node(&mut self, node: u32) -> &mut RankNode {
        &mut self.nodes[node as usize]
    }

    fn resize(&mut self, node: u32) {
        let n = &self.nodes[node as usize];
        let size = 1 + self.size(n.left) + self.size(n.right);
        self.node(node).size = size;
    }

    /// Keys strictly below `key`.
    fn count_below(&self, key: Key) -> u64 {
        let (mut node, mut below) = (self.root, 0u64);
        while node != NIL {
            let n = &self.nodes[node as usize];
            if n.key < key {
                below += u64::from(self.size(n.left)) + 1;
                node = n.right;
            } else {
                node = n.left;
            }
        }
        below
    }

    /// Adds a key that is not in the set yet (the caller's `line` says so).
    fn insert(&mut self, key: Key) {
        self.drawn += 1;
        let node = RankNode {
            key,
            priority: mix(self.drawn),
            size: 1,
            left: NIL,
            right: NIL,
        };
        let index = match self.free.pop() {
            Some(i) => {
                self.nodes[i as usize] = node;
                i
            }
            None => {
                self.nodes.push(node);
                (self.nodes.len() - 1) as u32
            }
        };
        let (below, above) = self.split(self.root, key);
        let joined = self.merge(below, index);
        self.root = self.merge(joined, above);
    }

    /// Removes a key that is in the set (the caller's `line` says so).
    fn remove(&mut self, key: Key) {
        let root = self.root;
        self.root = self.remove_from(root, key);
        if self.root == NIL {
            // The line emptied: give the arena back rather than keep the
            // peak size of a past launch.
            self.nodes = Vec::new();
            self.free = Vec::new();
        }
    }

    fn remove_from(&mut self, node: u32, key: Key) -> u32 {
        if node == NIL {
            return NIL;
        }
        let n = &self.nodes[node as usize];
        let (left, right) = (n.left, n.right);
        match key.cmp(&n.key) {
            std::cmp::Ordering::Equal => {
                self.free.push(node);
                self.merge(left, right)
            }
            std::cmp::Ordering::Less => {
                let left = self.remove_from(left, key);
                self.node(node).left = left;
                self.resize(node);
                node
            }
            std::cmp::Ordering::Greater => {
                let right = self.remove_from(right, key);
                self.node(node).right = right;
                self.resize(node);
                node
            }
        }
    }

    /// Splits a subtree into the keys below `key` and the rest.
    fn split(&mut self, node: u32, key: Key) -> (u32, u32) {
        if node == NIL {
            return (NIL, NIL);
        }
        if self.nodes[node as usize].key < key {
            let (below, above) = self.split(self.nodes[node as usize].right, key);
            self.node(node).right = below;
            self.resize(node);
            (node, above)
        } else {
            let (below, above) = self.split(self.nodes[node as usize].left, key);
            self.node(node).left = above;
            self.resize(node);
            (below, node)
        }
    }

    /// Joins two subtrees whose keys are all below, then all above.
    fn merge(&mut self, low: u32, high: u32) -> u32 {
        if low == NIL {
            return high;
        }
        if high == NIL {
            return low;
        }
        if self.nodes[low as usize].priority > self.nodes[high as usize].priority {
            let right = self.merge(self.nodes[low as usize].right, high);
            self.node(low).right = right;
            self.resize(low);
            low
        } else {
            let left = self.merge(low, self.nodes[high as usize].left);
            self.node(high).left = left;
            self.resize(high);
            high
        }
    }
}

/// SplitMix64's finaliser: consecutive counters give unrelated priorities.
fn mix(n: u64) -> u64 {
    let mut z = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against the plain count it replaces, through inserts and removals
    /// that empty the line and fill it again, with tied scores.
    #[test]
    fn rank_index_counts_like_the_ordered_set() {
        let mut index = RankIndex::default();
        let mut set = BTreeSet::new();
        for round in 0..3u64 {
            for n in 0..2_000u64 {
                let key = ((mix(n + round) % 500), Uuid::from_u128(u128::from(n)));
                if set.insert(key) {
                    index.insert(key);
                }
                if n % 3 == 0 {
                    let gone = (mix(n * 7) % 500, Uuid::from_u128(u128::from(n / 2)));
                    if set.remove(&gone) {
                        index.remove(gone);
                    }
                }
            }
            for probe in (0..600u64).map(|s| (s, Uuid::from_u128(u128::from(s * 3)))) {
                let expected = set.range(..probe).count() as u64;
                assert_eq!(index.count_below(probe), expected);
            }
            for key in std::mem::take(&mut set) {
                index.remove(key);
            }
            assert_eq!(index.root, NIL);
        }
    }
}
