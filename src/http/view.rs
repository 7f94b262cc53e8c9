//! Response bodies of queue entries, as the contract spells them.

use serde::Serialize;

use crate::app::AppState;
use crate::domain::clock::rfc3339;
use crate::domain::{Entry, EntryState, Id};

/// An entry as seen at `now`: waiting before opening is `pre-queue`, with
/// no position yet; a grant past its expiry is `expired`.
pub fn at(mut entry: Entry, now: i64, opens_at: i64) -> Entry {
    match entry.state {
        EntryState::Waiting if now < opens_at => {
            entry.state = EntryState::PreQueue;
            entry.position = None;
        }
        EntryState::Admitted
            if entry.grant.as_ref().is_some_and(|g| g.expires_at <= now) =>
        {
            entry.state = EntryState::Expired;
        }
        _ => {}
    }
    entry
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct QueueEntryBody {
    pub queue_id: Id,
    pub state: EntryState,
    pub position: Option<u64>,
    pub estimated_wait_seconds: Option<u64>,
    pub handoff_token: Option<String>,
    pub expires_at: Option<String>,
    pub entered_at: String,
}

impl QueueEntryBody {
    pub fn new(app: &AppState, seq: &Id, entry: &Entry) -> Self {
        // The token travels only while it can still be used.
        let grant = entry
            .grant
            .as_ref()
            .filter(|_| entry.state == EntryState::Admitted);
        Self {
            queue_id: seq.clone(),
            state: entry.state,
            position: entry.position,
            estimated_wait_seconds: app.catalog.estimated_wait(seq, entry.position),
            handoff_token: grant.map(|g| g.token.clone()),
            expires_at: grant.map(|g| rfc3339(g.expires_at)),
            entered_at: rfc3339(entry.entered_at),
        }
    }
}
