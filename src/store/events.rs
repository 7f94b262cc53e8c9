//! Changes the store announces to every node, in the order it made them.
//!
//! Queue events carry a per-sequence `version` so that a node can tell
//! whether it missed one (and must re-read positions) without asking Redis
//! on every batch.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::domain::Id;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Event {
    /// A consumer got a new place in line; `pos` is 1-based.
    Entered {
        seq: Id,
        v: u64,
        c: Uuid,
        score: u64,
        pos: u64,
    },
    /// Someone at `score` left the line.
    Left { seq: Id, v: u64, score: u64 },
    /// The leader admitted the head of the line.
    Batch {
        seq: Id,
        v: u64,
        admitted: Vec<GrantNote>,
        total: u64,
    },
    /// A consumer registered for a draw.
    Registered { seq: Id, c: Uuid },
    /// A draw ran: its winners' grants.
    Drawn { seq: Id, grants: Vec<GrantNote> },
    /// Slots freed by expired tokens went to the next in drawn order.
    Promoted { seq: Id, grants: Vec<GrantNote> },
    /// An experience's definition, inventory or announcement changed.
    Experience { id: Id },
    /// Local only: the feed was interrupted, anything may have been missed.
    Resync,
    /// Local only: the store cannot be reached right now.
    FeedLost,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GrantNote {
    pub c: Uuid,
    /// The handoff token, re-delivered to the consumer's sockets.
    pub k: String,
    /// Expiry, Unix milliseconds.
    pub x: i64,
}
