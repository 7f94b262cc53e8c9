//! A consumer's place in one queue, and the handoff grant it ends with.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum EntryState {
    PreQueue,
    Waiting,
    Admitted,
    Redeemed,
    Expired,
    Left,
}

impl EntryState {
    pub fn is_in_line(self) -> bool {
        matches!(self, EntryState::PreQueue | EntryState::Waiting)
    }
}

/// A minted handoff token as the store keeps it for re-delivery.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    pub jti: String,
    pub token: String,
    pub expires_at: i64,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub consumer_id: Uuid,
    pub state: EntryState,
    /// Sort key in the line: random below 2^32 for pre-queue arrivals,
    /// `TICKET_BASE + n` for the n-th arrival after opening.
    pub score: u64,
    /// 1 means next; only for waiting entries.
    pub position: Option<u64>,
    pub entered_at: i64,
    pub grant: Option<Grant>,
    /// The shop account the session was bound to when entering.
    pub external_id: Option<String>,
    /// The line's event version when this was read (see `store::events`).
    pub version: u64,
}

/// Scores of arrivals after opening start here, above every pre-queue score,
/// so the shuffled pre-queue stays ahead of later arrivals.
pub const TICKET_BASE: u64 = 1 << 33;
