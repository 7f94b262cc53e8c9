//! What a registration means for its holder at a given moment.

use serde::Serialize;

use crate::domain::clock::rfc3339;
use crate::store::{DrawEntry, DrawEntryState};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ResultState {
    Pending,
    Won,
    Lost,
    Waitlisted,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DrawResult {
    pub state: ResultState,
    pub is_winner: bool,
    /// Present while the token can still be used.
    pub handoff_token: Option<String>,
    pub expires_at: Option<String>,
}

pub fn result_of(entry: &DrawEntry, winners: u64, now: i64) -> DrawResult {
    let status = &entry.status;
    let live = entry.grant.as_ref().filter(|g| g.expires_at > now);
    let (state, token) = match entry.state {
        _ if !status.drawn => (ResultState::Pending, None),
        DrawEntryState::Won if live.is_some() => (ResultState::Won, live),
        DrawEntryState::Redeemed => (ResultState::Won, None),
        // A winner whose token ran out: the slot has passed on.
        DrawEntryState::Won => (ResultState::Lost, None),
        DrawEntryState::Registered => {
            let slots_may_free =
                status.redeemed < winners && status.next < entry.order_len;
            let state = if slots_may_free {
                ResultState::Waitlisted
            } else {
                ResultState::Lost
            };
            (state, None)
        }
    };
    DrawResult {
        state,
        is_winner: state == ResultState::Won,
        handoff_token: token.map(|g| g.token.clone()),
        expires_at: token.map(|g| rfc3339(g.expires_at)),
    }
}
