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
    pub admitted_total: u64,
    pub redeemed_total: u64,
    pub version: u64,
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

    /// Stores a definition; with `create_only`, keeps an existing one and
    /// returns `false`. The definition's `inventory` becomes the live count.
    async fn put_experience(
        &self,
        exp: &Experience,
        create_only: bool,
    ) -> StoreResult<bool>;
    async fn experiences(&self) -> StoreResult<Vec<StoredExperience>>;
    async fn set_inventory(&self, id: &Id, remaining: Option<u64>) -> StoreResult<()>;
    async fn set_announcement(&self, id: &Id, message: Option<&str>) -> StoreResult<()>;

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
