//! This node's connected consumers and what each is watching.
//!
//! Positions are kept here and moved by the store's events rather than read
//! from Redis per consumer: a batch of k moves every waiting consumer up by
//! k, a leave moves up those behind it. Each watch remembers the line
//! version it reflects; an event that skips a version means something was
//! missed, and only then is that consumer's place read again.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use uuid::Uuid;

use super::message::ServerMessage;
use crate::catalog::Catalog;
use crate::domain::clock::now_ms;
use crate::domain::{Entry, EntryState, Id};
use crate::store::{Event, GrantNote, Store};

pub type ConnId = u64;

pub struct Hub {
    inner: Mutex<Inner>,
    store: Arc<dyn Store>,
    catalog: Arc<Catalog>,
    queue_size: usize,
}

#[derive(Default)]
struct Inner {
    next_id: ConnId,
    conns: HashMap<ConnId, Conn>,
    by_consumer: HashMap<Uuid, Vec<ConnId>>,
    /// Sequence → consumer → where they stand.
    watches: HashMap<Id, HashMap<Uuid, Watch>>,
    /// Draw → consumers registered and waiting for the result.
    draw_watches: HashMap<Id, HashSet<Uuid>>,
    /// Newest line version seen per sequence, to re-read after a race.
    seen: HashMap<Id, u64>,
    /// Last experience state pushed, so unchanged ones are not re-sent.
    pushed: HashMap<Id, (String, Option<String>)>,
}

struct Conn {
    consumer: Uuid,
    tx: mpsc::Sender<Arc<str>>,
}

#[derive(Clone, Copy)]
struct Watch {
    score: u64,
    /// `None` before the queue opens.
    position: Option<u64>,
    version: u64,
}

/// Messages worked out under the lock, sent after it is released.
type Outbox = Vec<(Uuid, ServerMessage)>;

impl Hub {
    pub fn new(store: Arc<dyn Store>, catalog: Arc<Catalog>, queue_size: usize) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            store,
            catalog,
            queue_size,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Adds a socket; messages for it arrive on the returned receiver, which
    /// closes if the client falls too far behind.
    pub fn register(&self, consumer: Uuid) -> (ConnId, mpsc::Receiver<Arc<str>>) {
        let (tx, rx) = mpsc::channel(self.queue_size);
        let mut inner = self.lock();
        inner.next_id += 1;
        let id = inner.next_id;
        inner.conns.insert(id, Conn { consumer, tx });
        inner.by_consumer.entry(consumer).or_default().push(id);
        (id, rx)
    }

    pub fn unregister(&self, id: ConnId) {
        let mut inner = self.lock();
        inner.remove_conn(id);
    }

    pub fn connections(&self) -> usize {
        self.lock().conns.len()
    }

    /// Watches every entry a consumer has and returns their current state,
    /// for the socket to send before anything queued: a consumer with many
    /// entries must not overflow their own queue on connect.
    pub async fn sync_consumer(&self, consumer: Uuid) -> Vec<ServerMessage> {
        let snapshot = self.catalog.snapshot();
        let mut out = Vec::new();
        let mut involved = std::collections::BTreeSet::new();
        for (stored, seq) in snapshot.queues() {
            match self.store.entry(&seq.id, consumer).await {
                Ok(Some(entry)) => {
                    involved.insert(stored.experience.id().clone());
                    out.extend(self.record_entry(&seq.id, entry));
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "could not read entry for a socket"),
            }
        }
        for (stored, seq) in snapshot.draws() {
            match self.store.draw_entry(&seq.id, consumer).await {
                Ok(Some(entry)) if entry.status.drawn => {
                    involved.insert(stored.experience.id().clone());
                    let winners = seq.winners.unwrap_or(0);
                    let result =
                        crate::draw::result::result_of(&entry, winners, now_ms());
                    out.push(ServerMessage::draw(&seq.id, &result));
                }
                Ok(Some(_)) => {
                    involved.insert(stored.experience.id().clone());
                    let mut inner = self.lock();
                    let watches = inner.draw_watches.entry(seq.id.clone()).or_default();
                    watches.insert(consumer);
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "could not read a draw entry"),
            }
        }
        // Only the experiences this consumer is in: the others' ids (some
        // perhaps not announced yet) are none of their business.
        for id in involved {
            let Some(stored) = snapshot.experiences.get(&id) else {
                continue;
            };
            let state = stored.experience.state_at(now_ms(), stored.inventory);
            out.push(ServerMessage::experience(
                &id,
                state,
                stored.announcement.clone(),
            ));
        }
        out
    }

    /// Records a freshly read entry and tells the consumer where they stand.
    fn apply_entry(&self, seq: &Id, entry: Entry) {
        let consumer = entry.consumer_id;
        if let Some(message) = self.record_entry(seq, entry) {
            self.send(&[(consumer, message)]);
        }
    }

    /// Watches an entry still in line; the message that describes it.
    fn record_entry(&self, seq: &Id, entry: Entry) -> Option<ServerMessage> {
        let opens_at = self.opens_at(seq);
        let entry = crate::http::view::at(entry, now_ms(), opens_at);
        let mut inner = self.lock();
        if !inner.by_consumer.contains_key(&entry.consumer_id) {
            return None;
        }
        let watches = inner.watches.entry(seq.clone()).or_default();
        match entry.state {
            EntryState::Waiting | EntryState::PreQueue => {
                let watch = Watch {
                    score: entry.score,
                    position: entry.position,
                    version: entry.version,
                };
                watches.insert(entry.consumer_id, watch);
                drop(inner);
                entry.position.map(|p| self.position_message(seq, p))
            }
            EntryState::Admitted => {
                watches.remove(&entry.consumer_id);
                let grant = entry.grant.as_ref()?;
                let note = GrantNote {
                    c: entry.consumer_id,
                    k: grant.token.clone(),
                    x: grant.expires_at,
                };
                Some(ServerMessage::granted(seq, &note))
            }
            _ => {
                watches.remove(&entry.consumer_id);
                None
            }
        }
    }

    /// Applies one event from the store's feed.
    pub fn on_event(self: &Arc<Self>, event: Event) {
        let mut out = Outbox::new();
        let mut reread: Vec<(Id, Vec<Uuid>)> = Vec::new();
        let mut reread_draws: Vec<(Id, Uuid)> = Vec::new();
        match event {
            Event::Entered {
                seq,
                v,
                c,
                score,
                pos,
            } => {
                let position = (now_ms() >= self.opens_at(&seq)).then_some(pos);
                let mut inner = self.lock();
                inner.note_version(&seq, v);
                if inner.by_consumer.contains_key(&c) {
                    let watch = Watch {
                        score,
                        position,
                        version: v,
                    };
                    inner
                        .watches
                        .entry(seq.clone())
                        .or_default()
                        .insert(c, watch);
                    if let Some(p) = position {
                        out.push((c, self.position_message(&seq, p)));
                    }
                }
            }
            Event::Left { seq, v, score } => {
                let message = self.position_messages(&seq);
                let mut inner = self.lock();
                inner.note_version(&seq, v);
                let stale =
                    inner.advance(&seq, v, |w| w.score > score, 1, &mut |c, p| {
                        out.push((c, message(p)))
                    });
                reread.push((seq, stale));
            }
            Event::Batch {
                seq, v, admitted, ..
            } => {
                let mut inner = self.lock();
                inner.note_version(&seq, v);
                let granted: HashMap<Uuid, &GrantNote> =
                    admitted.iter().map(|n| (n.c, n)).collect();
                for note in &admitted {
                    if inner.by_consumer.contains_key(&note.c) {
                        out.push((note.c, ServerMessage::granted(&seq, note)));
                    }
                }
                if let Some(watches) = inner.watches.get_mut(&seq) {
                    watches.retain(|c, _| !granted.contains_key(c));
                }
                let k = admitted.len() as u64;
                let message = self.position_messages(&seq);
                let stale = inner
                    .advance(&seq, v, |_| true, k, &mut |c, p| out.push((c, message(p))));
                reread.push((seq, stale));
            }
            Event::Registered { seq, c } => {
                let mut inner = self.lock();
                if inner.by_consumer.contains_key(&c) {
                    inner.draw_watches.entry(seq).or_default().insert(c);
                }
            }
            Event::Drawn { seq, grants } => {
                let mut inner = self.lock();
                let watching = inner.draw_watches.remove(&seq).unwrap_or_default();
                let won: HashSet<Uuid> = grants.iter().map(|g| g.c).collect();
                for note in grants
                    .iter()
                    .filter(|g| inner.by_consumer.contains_key(&g.c))
                {
                    out.push((note.c, ServerMessage::draw_won(&seq, note)));
                }
                drop(inner);
                // Everyone else registered here learns the result too.
                for c in watching.into_iter().filter(|c| !won.contains(c)) {
                    reread_draws.push((seq.clone(), c));
                }
            }
            Event::Promoted { seq, grants } => {
                let inner = self.lock();
                for note in grants
                    .iter()
                    .filter(|g| inner.by_consumer.contains_key(&g.c))
                {
                    out.push((note.c, ServerMessage::draw_won(&seq, note)));
                }
            }
            Event::Experience { id } => {
                if let Some(message) = self.experience_change(&id) {
                    let inner = self.lock();
                    out.extend(inner.by_consumer.keys().map(|c| (*c, message.clone())));
                }
            }
            // Consumers keep their sockets and are told their place is safe.
            Event::FeedLost => {
                let inner = self.lock();
                let note = ServerMessage::error(
                    "SERVICE_UNAVAILABLE",
                    "temporarily unavailable; your place in line is kept",
                );
                out.extend(inner.by_consumer.keys().map(|c| (*c, note.clone())));
            }
            Event::Resync => {
                let inner = self.lock();
                for (seq, watches) in &inner.watches {
                    reread.push((seq.clone(), watches.keys().copied().collect()));
                }
            }
        }
        self.send(&out);
        for (seq, consumers) in reread.into_iter().filter(|(_, c)| !c.is_empty()) {
            let hub = Arc::clone(self);
            tokio::spawn(async move { hub.reread(seq, consumers).await });
        }
        if !reread_draws.is_empty() {
            let hub = Arc::clone(self);
            tokio::spawn(async move { hub.tell_draw_results(reread_draws).await });
        }
    }

    /// Reads each registration's result (waitlisted or lost) and sends it.
    async fn tell_draw_results(&self, who: Vec<(Id, Uuid)>) {
        let snapshot = self.catalog.snapshot();
        for (seq, consumer) in who {
            let Some((_, sequence)) = snapshot.sequence(&seq) else {
                continue;
            };
            let winners = sequence.winners.unwrap_or(0);
            match self.store.draw_entry(&seq, consumer).await {
                Ok(Some(entry)) => {
                    let result =
                        crate::draw::result::result_of(&entry, winners, now_ms());
                    self.send(&[(consumer, ServerMessage::draw(&seq, &result))]);
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "could not read a draw result"),
            }
        }
    }

    /// Reads places again from the store, after a missed event or opening.
    pub async fn reread(&self, seq: Id, consumers: Vec<Uuid>) {
        for consumer in consumers {
            match self.store.entry(&seq, consumer).await {
                Ok(Some(entry)) => self.apply_entry(&seq, entry),
                Ok(None) => {
                    let mut inner = self.lock();
                    if let Some(w) = inner.watches.get_mut(&seq) {
                        w.remove(&consumer);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "could not re-read a position"),
            }
        }
    }

    /// Watches still without a position whose queue has opened, and watches
    /// behind the newest version seen: both need a fresh read.
    pub fn due_for_reread(&self) -> Vec<(Id, Vec<Uuid>)> {
        let now = now_ms();
        let inner = self.lock();
        let mut due = Vec::new();
        for (seq, watches) in &inner.watches {
            let opened = now >= self.opens_at(seq);
            let newest = inner.seen.get(seq).copied().unwrap_or(0);
            let stale: Vec<Uuid> = watches
                .iter()
                .filter(|(_, w)| (opened && w.position.is_none()) || w.version < newest)
                .map(|(c, _)| *c)
                .collect();
            if !stale.is_empty() {
                due.push((seq.clone(), stale));
            }
        }
        due
    }

    /// Tells every connected consumer of an experience's new state, once.
    fn experience_change(&self, id: &Id) -> Option<ServerMessage> {
        let snapshot = self.catalog.snapshot();
        let stored = snapshot.experiences.get(id)?;
        let state = stored.experience.state_at(now_ms(), stored.inventory);
        let message = ServerMessage::experience(id, state, stored.announcement.clone());
        let key = (format!("{state:?}"), stored.announcement.clone());
        let mut inner = self.lock();
        if inner.pushed.get(id) == Some(&key) {
            return None;
        }
        inner.pushed.insert(id.clone(), key);
        Some(message)
    }

    fn opens_at(&self, seq: &Id) -> i64 {
        let snapshot = self.catalog.snapshot();
        snapshot
            .sequence(seq)
            .map_or(0, |(_, s)| s.opens_at_or_epoch())
    }

    fn position_message(&self, seq: &Id, position: u64) -> ServerMessage {
        let wait = self.catalog.estimated_wait(seq, Some(position));
        ServerMessage::position(seq, position, wait)
    }

    /// For many consumers of one queue: the rate is read once.
    fn position_messages(&self, seq: &Id) -> impl Fn(u64) -> ServerMessage + use<'_> {
        let rate = self.catalog.admission_rate(seq);
        let seq = seq.clone();
        move |p| {
            ServerMessage::position(&seq, p, rate.map(|r| crate::catalog::wait_at(p, r)))
        }
    }

    /// Queues messages; a client whose queue is full is dropped, so one slow
    /// reader never holds up the rest.
    fn send(&self, out: &[(Uuid, ServerMessage)]) {
        if out.is_empty() {
            return;
        }
        let mut inner = self.lock();
        let mut dropped = Vec::new();
        for (consumer, message) in out {
            let Some(ids) = inner.by_consumer.get(consumer) else {
                continue;
            };
            let text: Arc<str> = message.to_json().into();
            for id in ids {
                let Some(conn) = inner.conns.get(id) else {
                    continue;
                };
                match conn.tx.try_send(text.clone()) {
                    Ok(()) => {
                        metrics::counter!("velvet_ws_messages_sent_total", "type" => message.kind())
                            .increment(1);
                    }
                    Err(_) => dropped.push(*id),
                }
            }
        }
        for id in dropped {
            tracing::debug!(conn = id, "dropping a socket that fell behind");
            inner.remove_conn(id);
        }
    }
}

impl Inner {
    fn remove_conn(&mut self, id: ConnId) {
        let Some(conn) = self.conns.remove(&id) else {
            return;
        };
        let consumer = conn.consumer;
        let last = match self.by_consumer.get_mut(&consumer) {
            Some(ids) => {
                ids.retain(|i| *i != id);
                ids.is_empty()
            }
            None => false,
        };
        if last {
            self.by_consumer.remove(&consumer);
            for watches in self.watches.values_mut() {
                watches.remove(&consumer);
            }
            for watches in self.draw_watches.values_mut() {
                watches.remove(&consumer);
            }
        }
    }

    fn note_version(&mut self, seq: &Id, v: u64) {
        let seen = self.seen.entry(seq.clone()).or_default();
        *seen = (*seen).max(v);
    }

    /// Moves up by `k` the waiting watches that `affected` selects, for the
    /// event at version `v`. Returns the watches that missed an event.
    fn advance(
        &mut self,
        seq: &Id,
        v: u64,
        affected: impl Fn(&Watch) -> bool,
        k: u64,
        moved: &mut dyn FnMut(Uuid, u64),
    ) -> Vec<Uuid> {
        let mut stale = Vec::new();
        let Some(watches) = self.watches.get_mut(seq) else {
            return stale;
        };
        for (consumer, watch) in watches.iter_mut() {
            if watch.version >= v {
                continue;
            }
            if watch.version + 1 < v {
                stale.push(*consumer);
                continue;
            }
            watch.version = v;
            if let Some(p) = watch.position.filter(|_| affected(watch) && k > 0) {
                let next = p.saturating_sub(k).max(1);
                watch.position = Some(next);
                moved(*consumer, next);
            }
        }
        stale
    }
}
