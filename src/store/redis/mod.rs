//! The Redis store. Every multi-key change is one Lua script, so it is atomic
//! without WATCH/MULTI retry loops, and every key a script touches shares the
//! sequence's hash tag (`velvet:{seq}:…`), so the same scripts run on a
//! Redis Cluster. Scripts publish their own events: Redis runs them one at a
//! time, so the feed's order is the order of the changes.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures_util::StreamExt;
use redis::aio::ConnectionManager;
use redis::{Client, RedisError, Script, Value};
use serde::Deserialize;
use tokio::sync::broadcast;
use uuid::Uuid;

use super::{
    DrawEnterOutcome, DrawEnterRequest, DrawEntry, DrawEntryState, DrawSnapshot,
    DrawStatus, EnterOutcome, EnterRequest, Event, LeaveOutcome, Limits, PutOutcome,
    QueueStats, RedeemOutcome, Refusal, Store, StoreError, StoreResult, StoredExperience,
};
use crate::domain::clock::now_ms;
use crate::domain::{Entry, EntryState, Experience, Grant, Id};

/// Hash tag of the experience catalog; `_` cannot start a sequence id.
const CATALOG: &str = "_catalog";
const CHANNEL: &str = "velvet:events";

fn key(tag: &str, part: &str) -> String {
    format!("velvet:{{{tag}}}:{part}")
}

struct Scripts {
    enter: Script,
    entry: Script,
    leave: Script,
    room: Script,
    admit: Script,
    redeem: Script,
    stats: Script,
    lease: Script,
    release: Script,
    put_experience: Script,
    set_live: Script,
    take_inventory: Script,
    draw_enter: Script,
    draw_seed: Script,
    draw_status: Script,
    draw_close: Script,
    draw_commit: Script,
    draw_entry: Script,
    draw_record: Script,
    draw_room: Script,
    draw_promote: Script,
    draw_redeem: Script,
}

impl Scripts {
    fn load() -> Self {
        Self {
            enter: Script::new(include_str!("lua/enter.lua")),
            entry: Script::new(include_str!("lua/entry.lua")),
            leave: Script::new(include_str!("lua/leave.lua")),
            room: Script::new(include_str!("lua/room.lua")),
            admit: Script::new(include_str!("lua/admit.lua")),
            redeem: Script::new(include_str!("lua/redeem.lua")),
            stats: Script::new(include_str!("lua/stats.lua")),
            lease: Script::new(include_str!("lua/lease.lua")),
            release: Script::new(include_str!("lua/release.lua")),
            put_experience: Script::new(include_str!("lua/put_experience.lua")),
            set_live: Script::new(include_str!("lua/set_live.lua")),
            take_inventory: Script::new(include_str!("lua/take_inventory.lua")),
            draw_enter: Script::new(include_str!("lua/draw_enter.lua")),
            draw_seed: Script::new(include_str!("lua/draw_seed.lua")),
            draw_status: Script::new(include_str!("lua/draw_status.lua")),
            draw_close: Script::new(include_str!("lua/draw_close.lua")),
            draw_commit: Script::new(include_str!("lua/draw_commit.lua")),
            draw_entry: Script::new(include_str!("lua/draw_entry.lua")),
            draw_record: Script::new(include_str!("lua/draw_record.lua")),
            draw_room: Script::new(include_str!("lua/draw_room.lua")),
            draw_promote: Script::new(include_str!("lua/draw_promote.lua")),
            draw_redeem: Script::new(include_str!("lua/draw_redeem.lua")),
        }
    }
}

/// One Redis, or a Redis Cluster; the scripts run unchanged on either
/// because each touches one hash slot.
#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(redis::cluster_async::ClusterConnection),
}

impl redis::aio::ConnectionLike for Conn {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

pub struct RedisStore {
    conn: Conn,
    scripts: Scripts,
    events: broadcast::Sender<Event>,
}

/// An entry as the scripts keep it, in short field names.
#[derive(Deserialize)]
struct Record {
    s: String,
    t: f64,
    at: f64,
    j: Option<String>,
    k: Option<String>,
    x: Option<f64>,
    e: Option<String>,
}

fn unavailable(e: RedisError) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}

impl RedisStore {
    /// Connects, and subscribes to the event channel before returning so that
    /// no change made after start-up can be missed.
    pub async fn connect(url: &str) -> StoreResult<Self> {
        let client = Client::open(url).map_err(unavailable)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_with_config(client.clone(), config)
            .await
            .map_err(unavailable)?;
        Self::finish(Conn::Single(conn), vec![client]).await
    }

    /// Connects to a Redis Cluster through any of its `seeds`.
    pub async fn connect_cluster(seeds: &[&str]) -> StoreResult<Self> {
        let cluster = redis::cluster::ClusterClientBuilder::new(seeds.to_vec())
            .connection_timeout(Duration::from_secs(2))
            .response_timeout(Duration::from_secs(2))
            .retries(2)
            .build()
            .map_err(unavailable)?;
        let conn = cluster.get_async_connection().await.map_err(unavailable)?;
        // Classic pub/sub is broadcast to every node of a cluster, so one
        // subscription to any seed hears every publish.
        let clients = seeds
            .iter()
            .map(|s| Client::open(*s).map_err(unavailable))
            .collect::<StoreResult<Vec<_>>>()?;
        Self::finish(Conn::Cluster(conn), clients).await
    }

    async fn finish(conn: Conn, feeds: Vec<Client>) -> StoreResult<Self> {
        let (events, _) = broadcast::channel(4096);
        let pubsub = subscribe(&feeds[0]).await?;
        tokio::spawn(relay_events(feeds, pubsub, events.downgrade()));
        Ok(Self {
            conn,
            scripts: Scripts::load(),
            events,
        })
    }

    /// Times a store call and counts its failures.
    async fn timed<T>(
        &self,
        fut: impl Future<Output = Result<T, RedisError>>,
    ) -> StoreResult<T> {
        let started = Instant::now();
        let result = fut.await;
        metrics::histogram!("velvet_store_request_duration_seconds")
            .record(started.elapsed().as_secs_f64());
        result.map_err(|e| {
            metrics::counter!("velvet_store_errors_total").increment(1);
            unavailable(e)
        })
    }

    fn conn(&self) -> Conn {
        // Cheap: a handle to multiplexed connections.
        self.conn.clone()
    }
}

async fn subscribe(client: &Client) -> StoreResult<redis::aio::PubSub> {
    let mut pubsub = client.get_async_pubsub().await.map_err(unavailable)?;
    pubsub.subscribe(CHANNEL).await.map_err(unavailable)?;
    Ok(pubsub)
}

/// Forwards the channel to local subscribers; after a drop, resubscribes and
/// tells them to re-read, since messages sent meanwhile are gone. Holds the
/// sender weakly so that the relay ends with its store.
async fn relay_events(
    feeds: Vec<Client>,
    first: redis::aio::PubSub,
    events: broadcast::WeakSender<Event>,
) {
    let mut pubsub = Some(first);
    let mut delay = Duration::from_millis(100);
    // After a drop, try the next seed: the one we used may be the one down.
    let mut feed = 0;
    loop {
        if let Some(conn) = pubsub.take() {
            let mut stream = conn.into_on_message();
            while let Some(msg) = stream.next().await {
                let Some(events) = events.upgrade() else {
                    return;
                };
                match serde_json::from_slice::<Event>(msg.get_payload_bytes()) {
                    Ok(event) => {
                        let _ = events.send(event);
                    }
                    Err(e) => tracing::warn!(error = %e, "unreadable event on the feed"),
                }
            }
            tracing::warn!("event feed dropped; resubscribing");
            if let Some(sender) = events.upgrade() {
                let _ = sender.send(Event::FeedLost);
            }
        }
        tokio::time::sleep(delay).await;
        let Some(sender) = events.upgrade() else {
            return;
        };
        feed = (feed + 1) % feeds.len();
        match subscribe(&feeds[feed]).await {
            Ok(conn) => {
                pubsub = Some(conn);
                delay = Duration::from_millis(100);
                let _ = sender.send(Event::Resync);
                tracing::info!("event feed resubscribed");
            }
            Err(_) => delay = (delay * 2).min(Duration::from_secs(2)),
        }
    }
}

fn parse_entry(
    consumer: Uuid,
    record: &str,
    rank: i64,
    version: u64,
) -> StoreResult<Entry> {
    let rec: Record = serde_json::from_str(record).map_err(corrupt)?;
    let state = match rec.s.as_str() {
        "w" => EntryState::Waiting,
        "a" => EntryState::Admitted,
        "r" => EntryState::Redeemed,
        "l" => EntryState::Left,
        other => return Err(corrupt(format!("entry state `{other}`"))),
    };
    let grant = match (rec.j, rec.k, rec.x) {
        (Some(jti), Some(token), Some(exp)) => Some(Grant {
            jti,
            token,
            expires_at: exp as i64,
        }),
        _ => None,
    };
    let position = (state == EntryState::Waiting && rank >= 0).then(|| rank as u64 + 1);
    Ok(Entry {
        consumer_id: consumer,
        state,
        score: rec.t as u64,
        position,
        entered_at: rec.at as i64,
        grant,
        external_id: rec.e,
        version,
    })
}

/// A draw registration as the scripts keep it.
#[derive(Deserialize)]
struct DrawRecordJson {
    s: String,
    at: f64,
    e: Option<String>,
    j: Option<String>,
    k: Option<String>,
    x: Option<f64>,
}

fn redeem_outcome(reply: &str) -> RedeemOutcome {
    match reply {
        "ok" => RedeemOutcome::Redeemed,
        "already" => RedeemOutcome::AlreadyRedeemed,
        "revoked" => RedeemOutcome::Revoked,
        "expired" => RedeemOutcome::Expired,
        _ => RedeemOutcome::Unknown,
    }
}

/// Grants as the scripts take them: consumer, jti, expiry, token, ….
fn grant_args(call: &mut redis::ScriptInvocation<'_>, grants: &[(Uuid, Grant)]) {
    for (consumer, grant) in grants {
        call.arg(consumer.to_string()).arg(&grant.jti);
        call.arg(grant.expires_at).arg(&grant.token);
    }
}

/// A fenced script answers -1 when the writer's fence is no longer current.
fn fenced(recorded: i64) -> StoreResult<u64> {
    u64::try_from(recorded).map_err(|_| StoreError::StaleFence)
}

/// `consumer, external id ('' = none), …` as pairs.
fn pairs(flat: &[String]) -> StoreResult<Vec<(Uuid, Option<String>)>> {
    flat.chunks(2)
        .map(|pair| {
            let consumer = Uuid::parse_str(&pair[0]).map_err(corrupt)?;
            let ext = pair.get(1).filter(|e| !e.is_empty()).cloned();
            Ok((consumer, ext))
        })
        .collect()
}

fn text(v: &Value) -> StoreResult<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).map_err(corrupt),
        Value::SimpleString(s) => Ok(s.clone()),
        Value::Int(i) => Ok(i.to_string()),
        other => Err(corrupt(format!("expected text, got {other:?}"))),
    }
}

fn int(v: &Value) -> StoreResult<i64> {
    match v {
        Value::Int(i) => Ok(*i),
        Value::Nil => Ok(0),
        other => text(other)?.parse().map_err(corrupt),
    }
}

#[async_trait]
impl Store for RedisStore {
    async fn ping(&self) -> StoreResult<()> {
        let mut conn = self.conn();
        self.timed(redis::cmd("PING").query_async::<String>(&mut conn))
            .await?;
        Ok(())
    }

    async fn schema_version(&self) -> StoreResult<u32> {
        let mut conn = self.conn();
        let cmd = redis::cmd("GET").arg(key(CATALOG, "schema")).clone();
        let v: Option<u32> = self.timed(cmd.query_async(&mut conn)).await?;
        Ok(v.unwrap_or(0))
    }

    async fn apply_migration(&self, version: u32, script: &str) -> StoreResult<()> {
        let mut conn = self.conn();
        let script = Script::new(script);
        let mut call = script.key(key(CATALOG, "schema"));
        call.arg(version);
        self.timed(call.invoke_async::<Value>(&mut conn)).await?;
        Ok(())
    }

    async fn put_experience(
        &self,
        exp: &Experience,
        create_only: bool,
    ) -> StoreResult<PutOutcome> {
        let json = serde_json::to_string(exp).map_err(corrupt)?;
        let inventory = exp.inventory.map(|n| n.to_string()).unwrap_or_default();
        let mut conn = self.conn();
        let mut call = self.scripts.put_experience.key(key(CATALOG, "definitions"));
        call.key(key(CATALOG, "inventory"))
            .key(key(CATALOG, "updated"));
        call.key(key(CATALOG, "owners"));
        call.arg(exp.id().as_str()).arg(json).arg(inventory);
        call.arg(if create_only { "1" } else { "0" })
            .arg(now_ms())
            .arg(CHANNEL);
        for seq in &exp.sequences {
            call.arg(seq.id.as_str());
        }
        let reply: Vec<String> = self.timed(call.invoke_async(&mut conn)).await?;
        match reply
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .as_slice()
        {
            ["written"] => Ok(PutOutcome::Written),
            ["kept"] => Ok(PutOutcome::Kept),
            ["owned", sequence, owner] => Ok(PutOutcome::SequenceOwned {
                sequence: Id::parse(sequence).map_err(corrupt)?,
                owner: Id::parse(owner).map_err(corrupt)?,
            }),
            _ => Err(corrupt("unexpected put_experience reply")),
        }
    }

    async fn experiences(&self) -> StoreResult<Vec<StoredExperience>> {
        let mut conn = self.conn();
        let mut pipe = redis::pipe();
        for part in ["definitions", "inventory", "announcements", "updated"] {
            pipe.cmd("HGETALL").arg(key(CATALOG, part));
        }
        type Map = std::collections::HashMap<String, String>;
        let (defs, inv, ann, upd): (Map, Map, Map, Map) =
            self.timed(pipe.query_async(&mut conn)).await?;
        let mut out = Vec::with_capacity(defs.len());
        for (id, json) in defs {
            let experience: Experience = serde_json::from_str(&json).map_err(corrupt)?;
            out.push(StoredExperience {
                experience,
                inventory: inv.get(&id).and_then(|n| n.parse().ok()),
                announcement: ann.get(&id).cloned(),
                updated_at: upd.get(&id).and_then(|n| n.parse().ok()).unwrap_or(0),
            });
        }
        Ok(out)
    }

    async fn set_inventory(&self, id: &Id, remaining: Option<u64>) -> StoreResult<()> {
        let value = remaining.map(|n| n.to_string()).unwrap_or_default();
        self.set_live(id, "inventory", &value).await
    }

    async fn set_announcement(&self, id: &Id, message: Option<&str>) -> StoreResult<()> {
        self.set_live(id, "announcements", message.unwrap_or_default())
            .await
    }

    async fn take_inventory(&self, id: &Id) -> StoreResult<Option<u64>> {
        let mut conn = self.conn();
        let mut call = self.scripts.take_inventory.key(key(CATALOG, "inventory"));
        call.key(key(CATALOG, "updated"))
            .arg(id.as_str())
            .arg(now_ms())
            .arg(CHANNEL);
        let left: i64 = self.timed(call.invoke_async(&mut conn)).await?;
        Ok((left >= 0).then_some(left as u64))
    }

    async fn enter(&self, seq: &Id, req: EnterRequest) -> StoreResult<EnterOutcome> {
        let tag = seq.as_str();
        let mut conn = self.conn();
        let mut call = self.scripts.enter.key(key(tag, "line"));
        call.key(key(tag, "entries"))
            .key(key(tag, "tickets"))
            .key(key(tag, "stats"));
        call.arg(req.consumer_id.to_string())
            .arg(req.now)
            .arg(req.opens_at);
        call.arg(
            req.max_participants
                .map_or(-1, |m| m.min(i64::MAX as u64) as i64),
        );
        call.arg(req.prequeue_score);
        call.arg(req.refuse.map(Refusal::as_str).unwrap_or_default());
        call.arg(CHANNEL)
            .arg(tag)
            .arg(req.external_id.as_deref().unwrap_or_default());
        let reply: Vec<Value> = self.timed(call.invoke_async(&mut conn)).await?;
        let kind = reply.first().map(text).transpose()?.unwrap_or_default();
        match (kind.as_str(), reply.as_slice()) {
            ("refused", [_, reason]) => {
                let reason = text(reason)?;
                Refusal::parse(&reason)
                    .map(EnterOutcome::Refused)
                    .ok_or_else(|| corrupt(format!("refusal `{reason}`")))
            }
            ("existing" | "new", [_, record, rank, version]) => {
                let version = int(version)? as u64;
                let entry =
                    parse_entry(req.consumer_id, &text(record)?, int(rank)?, version)?;
                Ok(EnterOutcome::Entered(entry, kind == "new"))
            }
            _ => Err(corrupt("unexpected enter reply")),
        }
    }

    async fn entry(&self, seq: &Id, consumer: Uuid) -> StoreResult<Option<Entry>> {
        let tag = seq.as_str();
        let mut conn = self.conn();
        let mut call = self.scripts.entry.key(key(tag, "line"));
        call.key(key(tag, "entries"))
            .key(key(tag, "stats"))
            .arg(consumer.to_string());
        let reply: Vec<Value> = self.timed(call.invoke_async(&mut conn)).await?;
        match reply.as_slice() {
            [] => Ok(None),
            [record, rank, version] => {
                let version = int(version)? as u64;
                Ok(Some(parse_entry(
                    consumer,
                    &text(record)?,
                    int(rank)?,
                    version,
                )?))
            }
            _ => Err(corrupt("unexpected entry reply")),
        }
    }

    async fn leave(
        &self,
        seq: &Id,
        consumer: Uuid,
        now: i64,
    ) -> StoreResult<LeaveOutcome> {
        let tag = seq.as_str();
        let mut conn = self.conn();
        let mut call = self.scripts.leave.key(key(tag, "line"));
        call.key(key(tag, "entries"))
            .key(key(tag, "active"))
            .key(key(tag, "stats"));
        call.arg(consumer.to_string())
            .arg(now)
            .arg(CHANNEL)
            .arg(tag);
        let reply: String = self.timed(call.invoke_async(&mut conn)).await?;
        Ok(match reply.as_str() {
            "left" => LeaveOutcome::Left,
            "released" => LeaveOutcome::Released,
            "unchanged" => LeaveOutcome::Unchanged,
            _ => LeaveOutcome::NotFound,
        })
    }

    async fn admission_room(
        &self,
        seq: &Id,
        now: i64,
        limits: Limits,
    ) -> StoreResult<Vec<(Uuid, Option<String>)>> {
        let tag = seq.as_str();
        let mut conn = self.conn();
        let mut call = self.scripts.room.key(key(tag, "line"));
        call.key(key(tag, "active"))
            .key(key(tag, "window"))
            .key(key(tag, "entries"));
        call.arg(now).arg(limits.want).arg(limits.per_minute);
        call.arg(
            limits
                .max_active
                .map_or(-1, |m| m.min(i64::MAX as u64) as i64),
        );
        let flat: Vec<String> = self.timed(call.invoke_async(&mut conn)).await?;
        pairs(&flat)
    }

    async fn admit(
        &self,
        seq: &Id,
        fence: u64,
        now: i64,
        grants: &[(Uuid, Grant)],
    ) -> StoreResult<u64> {
        let tag = seq.as_str();
        let mut conn = self.conn();
        let mut call = self.scripts.admit.key(key(tag, "line"));
        call.key(key(tag, "entries")).key(key(tag, "active"));
        call.key(key(tag, "window")).key(key(tag, "stats"));
        call.arg(fence).arg(now).arg(CHANNEL).arg(tag);
        grant_args(&mut call, grants);
        fenced(self.timed(call.invoke_async(&mut conn)).await?)
    }

    async fn redeem(
        &self,
        seq: &Id,
        consumer: Uuid,
        jti: &str,
        now: i64,
    ) -> StoreResult<RedeemOutcome> {
        let tag = seq.as_str();
        let mut conn = self.conn();
        let mut call = self.scripts.redeem.key(key(tag, "entries"));
        call.key(key(tag, "active")).key(key(tag, "stats"));
        call.arg(consumer.to_string()).arg(jti).arg(now);
        let reply: String = self.timed(call.invoke_async(&mut conn)).await?;
        Ok(redeem_outcome(&reply))
    }

    async fn queue_stats(&self, seq: &Id, now: i64) -> StoreResult<QueueStats> {
        let tag = seq.as_str();
        let mut conn = self.conn();
        let mut call = self.scripts.stats.key(key(tag, "line"));
        call.key(key(tag, "active"))
            .key(key(tag, "window"))
            .key(key(tag, "stats"));
        call.arg(now);
        let v: Vec<i64> = self.timed(call.invoke_async(&mut conn)).await?;
        let count = |n: &i64| u64::try_from(*n).unwrap_or(0);
        match v.as_slice() {
            [waiting, active, recent, admitted, redeemed, version, oldest] => {
                Ok(QueueStats {
                    waiting: count(waiting),
                    active: count(active),
                    admitted_last_minute: count(recent),
                    window_started: (*oldest >= 0).then_some(*oldest),
                    admitted_total: count(admitted),
                    redeemed_total: count(redeemed),
                    version: count(version),
                })
            }
            _ => Err(corrupt("unexpected stats reply")),
        }
    }

    async fn draw_enter(
        &self,
        seq: &Id,
        req: DrawEnterRequest,
    ) -> StoreResult<DrawEnterOutcome> {
        let tag = seq.as_str();
        let mut conn = self.conn();
        let mut call = self.scripts.draw_enter.key(key(tag, "draw"));
        call.key(key(tag, "entrants")).key(key(tag, "accounts"));
        call.arg(req.consumer_id.to_string()).arg(req.now);
        call.arg(
            req.max_participants
                .map_or(-1, |m| m.min(i64::MAX as u64) as i64),
        );
        call.arg(req.refuse.map(Refusal::as_str).unwrap_or_default())
            .arg(&req.seed);
        call.arg(req.external_id.as_deref().unwrap_or_default())
            .arg(CHANNEL)
            .arg(tag);
        let reply: Vec<String> = self.timed(call.invoke_async(&mut conn)).await?;
        match reply
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .as_slice()
        {
            ["taken"] => Ok(DrawEnterOutcome::AccountTaken),
            ["refused", reason] => Refusal::parse(reason)
                .map(DrawEnterOutcome::Refused)
                .ok_or_else(|| corrupt(format!("refusal `{reason}`"))),
            [kind @ ("existing" | "new"), record] => {
                let rec: DrawRecordJson =
                    serde_json::from_str(record).map_err(corrupt)?;
                let new = *kind == "new";
                Ok(DrawEnterOutcome::Registered {
                    registered_at: rec.at as i64,
                    new,
                })
            }
            _ => Err(corrupt("unexpected draw enter reply")),
        }
    }

    async fn draw_seed(&self, seq: &Id, candidate: &str) -> StoreResult<String> {
        let mut conn = self.conn();
        let mut call = self.scripts.draw_seed.key(key(seq.as_str(), "draw"));
        call.arg(candidate);
        self.timed(call.invoke_async(&mut conn)).await
    }

    async fn draw_status(&self, seq: &Id) -> StoreResult<DrawStatus> {
        let tag = seq.as_str();
        let mut conn = self.conn();
        let mut call = self.scripts.draw_status.key(key(tag, "draw"));
        call.key(key(tag, "entrants")).key(key(tag, "order"));
        let v: Vec<Value> = self.timed(call.invoke_async(&mut conn)).await?;
        match v.as_slice() {
            [seed, closed, drawn, entrants, redeemed, next, _] => {
                let seed = text(seed)?;
                Ok(DrawStatus {
                    seed: (!seed.is_empty()).then_some(seed),
                    closed: text(closed)? == "1",
                    drawn: text(drawn)? == "1",
                    entrants: int(entrants)? as u64,
                    redeemed: int(redeemed)? as u64,
                    next: int(next)? as u64,
                })
            }
            _ => Err(corrupt("unexpected draw status reply")),
        }
    }

    async fn draw_close(
        &self,
        seq: &Id,
        candidate_seed: &str,
    ) -> StoreResult<DrawSnapshot> {
        let tag = seq.as_str();
        let mut conn = self.conn();
        let mut call = self.scripts.draw_close.key(key(tag, "draw"));
        call.key(key(tag, "entrants")).arg(candidate_seed);
        let v: Vec<String> = self.timed(call.invoke_async(&mut conn)).await?;
        let [seed, drawn, rest @ ..] = v.as_slice() else {
            return Err(corrupt("unexpected draw close reply"));
        };
        let mut entrants = Vec::with_capacity(rest.len() / 2);
        for pair in rest.chunks(2) {
            let consumer = Uuid::parse_str(&pair[0]).map_err(corrupt)?;
            let rec: DrawRecordJson =
                serde_json::from_str(pair.get(1).map_or("", |s| s.as_str()))
                    .map_err(corrupt)?;
            entrants.push((consumer, rec.e));
        }
        Ok(DrawSnapshot {
            seed: seed.clone(),
            drawn: drawn == "1",
            entrants,
        })
    }

    async fn draw_commit(
        &self,
        seq: &Id,
        now: i64,
        order: &[Uuid],
        grants: &[(Uuid, Grant)],
    ) -> StoreResult<bool> {
        let tag = seq.as_str();
        let mut conn = self.conn();
        let mut call = self.scripts.draw_commit.key(key(tag, "draw"));
        call.key(key(tag, "entrants"))
            .key(key(tag, "order"))
            .key(key(tag, "active"));
        call.arg(now).arg(CHANNEL).arg(tag).arg(order.len());
        for consumer in order {
            call.arg(consumer.to_string());
        }
        grant_args(&mut call, grants);
        let written: i64 = self.timed(call.invoke_async(&mut conn)).await?;
        Ok(written == 1)
    }

    async fn draw_entry(
        &self,
        seq: &Id,
        consumer: Uuid,
    ) -> StoreResult<Option<DrawEntry>> {
        let tag = seq.as_str();
        let mut conn = self.conn();
        let mut call = self.scripts.draw_entry.key(key(tag, "draw"));
        call.key(key(tag, "entrants"))
            .key(key(tag, "order"))
            .arg(consumer.to_string());
        let v: Vec<Value> = self.timed(call.invoke_async(&mut conn)).await?;
        let [record, closed, drawn, redeemed, next, order_len, entrants] = v.as_slice()
        else {
            return Ok(None);
        };
        let rec: DrawRecordJson =
            serde_json::from_str(&text(record)?).map_err(corrupt)?;
        let state = match rec.s.as_str() {
            "w" => DrawEntryState::Won,
            "x" => DrawEntryState::Redeemed,
            _ => DrawEntryState::Registered,
        };
        let grant = match (rec.j, rec.k, rec.x) {
            (Some(jti), Some(token), Some(x)) => Some(Grant {
                jti,
                token,
                expires_at: x as i64,
            }),
            _ => None,
        };
        Ok(Some(DrawEntry {
            registered_at: rec.at as i64,
            state,
            grant,
            status: DrawStatus {
                seed: None,
                closed: text(closed)? == "1",
                drawn: text(drawn)? == "1",
                entrants: int(entrants)? as u64,
                redeemed: int(redeemed)? as u64,
                next: int(next)? as u64,
            },
            order_len: int(order_len)? as u64,
        }))
    }

    async fn draw_record(&self, seq: &Id) -> StoreResult<(Vec<Uuid>, Vec<Uuid>)> {
        let tag = seq.as_str();
        let mut conn = self.conn();
        let mut call = self.scripts.draw_record.key(key(tag, "entrants"));
        call.key(key(tag, "order"));
        let (entrants, order): (Vec<String>, Vec<String>) =
            self.timed(call.invoke_async(&mut conn)).await?;
        let parse = |ids: Vec<String>| -> StoreResult<Vec<Uuid>> {
            ids.iter()
                .map(|id| Uuid::parse_str(id).map_err(corrupt))
                .collect()
        };
        Ok((parse(entrants)?, parse(order)?))
    }

    async fn draw_backfill_room(
        &self,
        seq: &Id,
        now: i64,
        winners: u64,
    ) -> StoreResult<Vec<(Uuid, Option<String>)>> {
        let tag = seq.as_str();
        let mut conn = self.conn();
        let mut call = self.scripts.draw_room.key(key(tag, "draw"));
        call.key(key(tag, "order"))
            .key(key(tag, "active"))
            .key(key(tag, "entrants"));
        call.arg(now).arg(winners);
        let flat: Vec<String> = self.timed(call.invoke_async(&mut conn)).await?;
        pairs(&flat)
    }

    async fn draw_promote(
        &self,
        seq: &Id,
        fence: u64,
        now: i64,
        grants: &[(Uuid, Grant)],
    ) -> StoreResult<u64> {
        let tag = seq.as_str();
        let mut conn = self.conn();
        let mut call = self.scripts.draw_promote.key(key(tag, "draw"));
        call.key(key(tag, "entrants")).key(key(tag, "order"));
        call.key(key(tag, "active")).key(key(tag, "stats"));
        call.arg(fence).arg(now).arg(CHANNEL).arg(tag);
        grant_args(&mut call, grants);
        fenced(self.timed(call.invoke_async(&mut conn)).await?)
    }

    async fn draw_redeem(
        &self,
        seq: &Id,
        consumer: Uuid,
        jti: &str,
        now: i64,
    ) -> StoreResult<RedeemOutcome> {
        let tag = seq.as_str();
        let mut conn = self.conn();
        let mut call = self.scripts.draw_redeem.key(key(tag, "draw"));
        call.key(key(tag, "entrants")).key(key(tag, "active"));
        call.arg(consumer.to_string()).arg(jti).arg(now);
        let reply: String = self.timed(call.invoke_async(&mut conn)).await?;
        Ok(redeem_outcome(&reply))
    }

    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl_ms: u64,
    ) -> StoreResult<Option<u64>> {
        let mut conn = self.conn();
        let mut call = self.scripts.lease.key(key(name, "lease"));
        call.key(key(name, "stats")).arg(holder).arg(ttl_ms);
        let fence: u64 = self.timed(call.invoke_async(&mut conn)).await?;
        Ok((fence > 0).then_some(fence))
    }

    async fn release_lease(&self, name: &str, holder: &str) -> StoreResult<()> {
        let mut conn = self.conn();
        let mut call = self.scripts.release.key(key(name, "lease"));
        call.arg(holder);
        self.timed(call.invoke_async::<i64>(&mut conn)).await?;
        Ok(())
    }

    fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }
}

impl RedisStore {
    async fn set_live(&self, id: &Id, part: &str, value: &str) -> StoreResult<()> {
        let mut conn = self.conn();
        let mut call = self.scripts.set_live.key(key(CATALOG, part));
        call.key(key(CATALOG, "updated"));
        call.arg(id.as_str()).arg(value).arg(now_ms()).arg(CHANNEL);
        self.timed(call.invoke_async::<i64>(&mut conn)).await?;
        Ok(())
    }
}

/// Lease name of keyspace migrations, outside the sequence id space.
pub const MIGRATION_LEASE: &str = "_migrations";
