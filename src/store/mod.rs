//! All shared state lives behind [`Store`]: queue order, entries, grants,
//! admission windows, leases, the experience catalog, and the events that
//! tell every node what changed.
//!
//! Two implementations behave the same: [`memory::MemoryStore`] for a single
//! node with nothing configured, and [`redis::RedisStore`] for a fleet. The
//! behavioural suite in `tests/store_behaviour.rs` runs against both.

pub mod events;
pub mod memory;
pub mod redis;

use async_trait::async_trait;
use tokio::sync::broadcast;
use uuid::Uuid;

use crate::domain::{Entry, Experience, Grant, Id};
pub use events::{Event, GrantNote};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store could not be reached or timed out; callers retry later.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A leader write carried a fencing token that is no longer current.
    #[error("stale fencing token")]
    StaleFence,
    /// Data in the store could not be read back.
    #[error("corrupt store data: {0}")]
    Corrupt(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// What a consumer asks for when entering a queue.
#[derive(Clone, Debug)]
pub struct EnterRequest {
    pub consumer_id: Uuid,
    pub external_id: Option<String>,
    pub now: i64,
    pub opens_at: i64,
    pub max_participants: Option<u64>,
    /// Sort key used if the consumer arrives before opening.
    pub prequeue_score: u64,
    /// Why a newcomer must be turned away (closed, sold out); someone who
    /// already has an entry still gets it back.
    pub refuse: Option<Refusal>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    Closed,
    SoldOut,
    Full,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Closed => "closed",
            Refusal::SoldOut => "soldout",
            Refusal::Full => "full",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "closed" => Some(Refusal::Closed),
            "soldout" => Some(Refusal::SoldOut),
            "full" => Some(Refusal::Full),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum EnterOutcome {
    /// `true` when the entry was created by this call.
    Entered(Entry, bool),
    Refused(Refusal),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaveOutcome {
    /// Taken out of the line.
    Left,
    /// Admitted but not yet redeemed: the token is revoked, its slot freed.
    Released,
    /// Redeemed or expired: nothing to undo.
    Unchanged,
    NotFound,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedeemOutcome {
    Redeemed,
    AlreadyRedeemed,
    /// The consumer gave the place up after admission.
    Revoked,
    Expired,
    /// No entry holds this token id.
    Unknown,
}

/// Admission limits the leader asks the store to respect in one tick.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub want: u64,
    pub per_minute: u64,
    pub max_active: Option<u64>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueStats {
    pub waiting: u64,
    /// Tokens issued and neither redeemed, released nor expired.
    pub active: u64,
    pub admitted_last_minute: u64,
    /// Time of the oldest batch within the last minute.
    pub window_started: Option<i64>,
    pub admitted_total: u64,
    pub redeemed_total: u64,
    pub version: u64,
}

/// What a consumer asks for when registering for a draw.
#[derive(Clone, Debug)]
pub struct DrawEnterRequest {
    pub consumer_id: Uuid,
    pub external_id: Option<String>,
    pub now: i64,
    pub max_participants: Option<u64>,
    pub refuse: Option<Refusal>,
    /// Kept as the draw's seed if it has none yet.
    pub seed: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DrawEnterOutcome {
    Registered {
        registered_at: i64,
        new: bool,
    },
    Refused(Refusal),
    /// Another session of the same shop account is already registered.
    AccountTaken,
}

/// Where a draw stands.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DrawStatus {
    pub seed: Option<String>,
    pub closed: bool,
    pub drawn: bool,
    pub entrants: u64,
    pub redeemed: u64,
    /// Index in the drawn order of the next entrant to get a freed slot.
    pub next: u64,
}

/// The entrants of a closed draw, as the runner needs them.
#[derive(Clone, Debug)]
pub struct DrawSnapshot {
    pub seed: String,
    pub drawn: bool,
    pub entrants: Vec<(Uuid, Option<String>)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DrawEntryState {
    Registered,
    /// Holds a slot: drawn among the winners or given one by backfill.
    Won,
    Redeemed,
}

#[derive(Clone, Debug)]
pub struct DrawEntry {
    pub registered_at: i64,
    pub state: DrawEntryState,
    pub grant: Option<Grant>,
    pub status: DrawStatus,
    /// Length of the drawn order (0 before the draw).
    pub order_len: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PutOutcome {
    Written,
    /// `create_only` and the experience existed: left as it was.
    Kept,
    /// A sequence id belongs to another experience (now or in the past).
    SequenceOwned {
        sequence: Id,
        owner: Id,
    },
}

/// An experience as stored, with the live values the admin API changes.
#[derive(Clone, Debug)]
pub struct StoredExperience {
    pub experience: Experience,
    pub inventory: Option<u64>,
    pub announcement: Option<String>,
    pub updated_at: i64,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Reachability, for readiness.
    async fn ping(&self) -> StoreResult<()>;
    async fn schema_version(&self) -> StoreResult<u32>;
    /// Runs one keyspace migration script and records its version.
    async fn apply_migration(&self, version: u32, script: &str) -> StoreResult<()>;

    /// Stores a definition; with `create_only`, keeps an existing one. The
    /// definition's `inventory` becomes the live count. A sequence id, once
    /// used, belongs to its experience for good: its line and draw data stay
    /// in the store, and must never pass to another experience.
    async fn put_experience(
        &self,
        exp: &Experience,
        create_only: bool,
    ) -> StoreResult<PutOutcome>;
    async fn experiences(&self) -> StoreResult<Vec<StoredExperience>>;
    async fn set_inventory(&self, id: &Id, remaining: Option<u64>) -> StoreResult<()>;
    async fn set_announcement(&self, id: &Id, message: Option<&str>) -> StoreResult<()>;
    /// Takes one unit of inventory (never below 0); what is left, or `None`
    /// when the experience has no inventory limit.
    async fn take_inventory(&self, id: &Id) -> StoreResult<Option<u64>>;

    async fn enter(&self, seq: &Id, req: EnterRequest) -> StoreResult<EnterOutcome>;
    async fn entry(&self, seq: &Id, consumer: Uuid) -> StoreResult<Option<Entry>>;
    async fn leave(
        &self,
        seq: &Id,
        consumer: Uuid,
        now: i64,
    ) -> StoreResult<LeaveOutcome>;
    /// The consumers at the head of the line who fit within the limits now,
    /// with their shop account ids.
    async fn admission_room(
        &self,
        seq: &Id,
        now: i64,
        limits: Limits,
    ) -> StoreResult<Vec<(Uuid, Option<String>)>>;
    /// Records grants for those still in line, if `fence` is current.
    /// Returns the grants recorded.
    async fn admit(
        &self,
        seq: &Id,
        fence: u64,
        now: i64,
        grants: &[(Uuid, Grant)],
    ) -> StoreResult<u64>;
    async fn redeem(
        &self,
        seq: &Id,
        consumer: Uuid,
        jti: &str,
        now: i64,
    ) -> StoreResult<RedeemOutcome>;
    async fn queue_stats(&self, seq: &Id, now: i64) -> StoreResult<QueueStats>;

    async fn draw_enter(
        &self,
        seq: &Id,
        req: DrawEnterRequest,
    ) -> StoreResult<DrawEnterOutcome>;
    /// The draw's seed, set to `candidate` if it has none: one seed ever.
    async fn draw_seed(&self, seq: &Id, candidate: &str) -> StoreResult<String>;
    async fn draw_status(&self, seq: &Id) -> StoreResult<DrawStatus>;
    /// Closes registration for good and returns who registered.
    async fn draw_close(
        &self,
        seq: &Id,
        candidate_seed: &str,
    ) -> StoreResult<DrawSnapshot>;
    /// Records the drawn order and the winners' grants, unless the draw was
    /// recorded before; `true` when this call recorded it.
    async fn draw_commit(
        &self,
        seq: &Id,
        now: i64,
        order: &[Uuid],
        grants: &[(Uuid, Grant)],
    ) -> StoreResult<bool>;
    async fn draw_entry(
        &self,
        seq: &Id,
        consumer: Uuid,
    ) -> StoreResult<Option<DrawEntry>>;
    /// Entrants (unordered) and the drawn order, for the proof.
    async fn draw_record(&self, seq: &Id) -> StoreResult<(Vec<Uuid>, Vec<Uuid>)>;
    /// The next entrants in drawn order for slots freed by expired tokens.
    async fn draw_backfill_room(
        &self,
        seq: &Id,
        now: i64,
        winners: u64,
    ) -> StoreResult<Vec<(Uuid, Option<String>)>>;
    /// Gives freed slots to the next in order, if `fence` is current.
    async fn draw_promote(
        &self,
        seq: &Id,
        fence: u64,
        now: i64,
        grants: &[(Uuid, Grant)],
    ) -> StoreResult<u64>;
    async fn draw_redeem(
        &self,
        seq: &Id,
        consumer: Uuid,
        jti: &str,
        now: i64,
    ) -> StoreResult<RedeemOutcome>;

    /// Acquires or renews the lease `name`; its fencing token while held.
    async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        ttl_ms: u64,
    ) -> StoreResult<Option<u64>>;
    async fn release_lease(&self, name: &str, holder: &str) -> StoreResult<()>;

    /// Every node's feed of changes, in the order the store made them.
    fn subscribe(&self) -> broadcast::Receiver<Event>;
}

/// Lease name of the per-sequence admission leader.
pub fn leader_lease(seq: &Id) -> String {
    seq.as_str().to_owned()
}
