//! Public experience routes: definition, status, and entering whichever
//! sequence is open now.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use serde_json::{Value, json};

use super::draws::{DrawEntryBody, enter_draw};
use super::error::ApiError;
use super::extract::{IdPath, Session};
use super::openapi;
use super::openapi::ErrorBody;
use super::queues::enter_queue;
use super::view::QueueEntryBody;
use crate::app::AppState;
use crate::domain::clock::{now_ms, rfc3339};
use crate::domain::{Id, Kind};
use crate::store::StoredExperience;

/// The definition with its live state, for consumers and for the admin view.
pub fn describe(stored: &StoredExperience, now: i64) -> Value {
    let exp = &stored.experience;
    let mut body = serde_json::to_value(exp).unwrap_or_default();
    body["state"] = json!(exp.state_at(now, stored.inventory));
    body["inventoryRemaining"] = json!(stored.inventory);
    body["announcement"] = json!(stored.announcement);
    if let Some(seqs) = body["sequences"].as_array_mut() {
        for (value, seq) in seqs.iter_mut().zip(&exp.sequences) {
            value["state"] = json!(seq.window(now));
        }
    }
    body
}

#[utoipa::path(get, path = "/v1/experiences/{id}", tag = "consumer",
    params(("id" = String, Path, description = "experience id")),
    responses(
        (status = 200, body = openapi::ExperienceView),
        (status = 404, description = "no such experience", body = ErrorBody),
    ))]
pub async fn show(
    State(app): State<AppState>,
    IdPath(id): IdPath,
) -> Result<Json<Value>, ApiError> {
    let snapshot = app.catalog.snapshot();
    let stored = snapshot
        .experiences
        .get(&id)
        .ok_or_else(|| ApiError::not_found("experience", &id))?;
    Ok(Json(describe(stored, now_ms())))
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatusBody {
    state: crate::domain::ExperienceState,
    queue_depth: u64,
    estimated_wait_seconds: Option<u64>,
    admitted_total: u64,
    inventory_remaining: Option<u64>,
    announcement: Option<String>,
    updated_at: String,
}

/// Served from this node's cache, refreshed every second.
#[utoipa::path(get, path = "/v1/experiences/{id}/status", tag = "consumer",
    params(("id" = String, Path, description = "experience id")),
    responses(
        (status = 200, body = StatusBody),
        (status = 404, description = "no such experience", body = ErrorBody),
    ))]
pub async fn status(
    State(app): State<AppState>,
    IdPath(id): IdPath,
) -> Result<Json<StatusBody>, ApiError> {
    let snapshot = app.catalog.snapshot();
    let stored = snapshot
        .experiences
        .get(&id)
        .ok_or_else(|| ApiError::not_found("experience", &id))?;
    let now = now_ms();
    let queues = stored
        .experience
        .sequences
        .iter()
        .filter(|s| s.kind == Kind::Queue);
    let (mut depth, mut admitted) = (0, 0);
    for seq in queues {
        let stats = app.catalog.stats(&seq.id);
        depth += stats.waiting;
        admitted += stats.admitted_total;
    }
    let current = stored
        .experience
        .current_sequence(now)
        .filter(|s| s.kind == Kind::Queue);
    let wait = current.and_then(|s| {
        let behind = app.catalog.stats(&s.id).waiting + 1;
        app.catalog.estimated_wait(&s.id, Some(behind))
    });
    Ok(Json(StatusBody {
        state: stored.experience.state_at(now, stored.inventory),
        queue_depth: depth,
        estimated_wait_seconds: wait,
        admitted_total: admitted,
        inventory_remaining: stored.inventory,
        announcement: stored.announcement.clone(),
        updated_at: rfc3339(now),
    }))
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExperienceEntryBody {
    sequence_id: Id,
    kind: Kind,
    #[serde(flatten)]
    entry: EntryBody,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
enum EntryBody {
    Queue(QueueEntryBody),
    Draw(DrawEntryBody),
}

#[utoipa::path(post, path = "/v1/experiences/{id}/enter", tag = "consumer",
    params(("id" = String, Path, description = "experience id")),
    security(("session" = [])),
    responses(
        (status = 200, body = ExperienceEntryBody),
        (status = 401, description = "missing or bad session", body = ErrorBody),
        (status = 403, description = "account required", body = ErrorBody),
        (status = 404, description = "no such experience", body = ErrorBody),
        (status = 409, description = "not open, closed, full or already entered", body = ErrorBody),
        (status = 410, description = "sold out", body = ErrorBody),
        (status = 429, description = "rate limited", body = ErrorBody),
    ))]
pub async fn enter(
    State(app): State<AppState>,
    IdPath(id): IdPath,
    Session(session): Session,
) -> Result<Json<ExperienceEntryBody>, ApiError> {
    let snapshot = app.catalog.snapshot();
    let stored = snapshot
        .experiences
        .get(&id)
        .ok_or_else(|| ApiError::not_found("experience", &id))?;
    let now = now_ms();
    let seq = stored
        .experience
        .current_sequence(now)
        .ok_or(ApiError::Closed)?;
    let entry = match seq.kind {
        Kind::Queue => EntryBody::Queue(enter_queue(&app, &seq.id, &session).await?),
        Kind::Draw => EntryBody::Draw(enter_draw(&app, &seq.id, &session).await?),
    };
    Ok(Json(ExperienceEntryBody {
        sequence_id: seq.id.clone(),
        kind: seq.kind,
        entry,
    }))
}
