//! The server's WebSocket messages, named as the JS SDK's events.

use serde::Serialize;

use crate::domain::clock::rfc3339;
use crate::domain::{ExperienceState, Id};
use crate::store::GrantNote;

#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type")]
pub enum ServerMessage {
    #[serde(rename = "ready", rename_all = "camelCase")]
    Ready { consumer_id: String },
    #[serde(rename = "queue:position-updated", rename_all = "camelCase")]
    Position {
        queue_id: Id,
        position: u64,
        estimated_wait_seconds: Option<u64>,
    },
    #[serde(rename = "queue:access-granted", rename_all = "camelCase")]
    Granted {
        queue_id: Id,
        handoff_token: String,
        expires_at: String,
    },
    #[serde(rename = "draw:completed", rename_all = "camelCase")]
    DrawCompleted {
        draw_id: Id,
        is_winner: bool,
        state: crate::draw::result::ResultState,
        handoff_token: Option<String>,
        expires_at: Option<String>,
    },
    #[serde(rename = "experience:updated", rename_all = "camelCase")]
    Experience {
        experience_id: Id,
        state: ExperienceState,
        announcement: Option<String>,
    },
    #[serde(rename = "error")]
    Error { code: &'static str, message: String },
}

impl ServerMessage {
    pub fn position(seq: &Id, position: u64, wait: Option<u64>) -> Self {
        Self::Position {
            queue_id: seq.clone(),
            position,
            estimated_wait_seconds: wait,
        }
    }

    pub fn granted(seq: &Id, note: &GrantNote) -> Self {
        Self::Granted {
            queue_id: seq.clone(),
            handoff_token: note.k.clone(),
            expires_at: rfc3339(note.x),
        }
    }

    pub fn draw(seq: &Id, result: &crate::draw::result::DrawResult) -> Self {
        Self::DrawCompleted {
            draw_id: seq.clone(),
            is_winner: result.is_winner,
            state: result.state,
            handoff_token: result.handoff_token.clone(),
            expires_at: result.expires_at.clone(),
        }
    }

    pub fn draw_won(seq: &Id, note: &GrantNote) -> Self {
        Self::DrawCompleted {
            draw_id: seq.clone(),
            is_winner: true,
            state: crate::draw::result::ResultState::Won,
            handoff_token: Some(note.k.clone()),
            expires_at: Some(rfc3339(note.x)),
        }
    }

    pub fn experience(
        id: &Id,
        state: ExperienceState,
        announcement: Option<String>,
    ) -> Self {
        Self::Experience {
            experience_id: id.clone(),
            state,
            announcement,
        }
    }

    pub fn error(code: &'static str, message: impl Into<String>) -> Self {
        Self::Error {
            code,
            message: message.into(),
        }
    }

    /// The `type` label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Ready { .. } => "ready",
            Self::Position { .. } => "queue:position-updated",
            Self::Granted { .. } => "queue:access-granted",
            Self::DrawCompleted { .. } => "draw:completed",
            Self::Experience { .. } => "experience:updated",
            Self::Error { .. } => "error",
        }
    }

    pub fn to_json(&self) -> String {
        // Plain data with string keys: serialization cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}
