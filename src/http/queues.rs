//! Queue routes: enter (idempotent), position, leave.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use super::error::ApiError;
use super::extract::{IdPath, Session};
use super::openapi::ErrorBody;
use super::view::{QueueEntryBody, at};
use crate::app::AppState;
use crate::domain::clock::now_ms;
use crate::domain::experience::Window;
use crate::domain::{Id, Kind};
use crate::store::{EnterOutcome, EnterRequest, LeaveOutcome, Refusal};
use crate::tokens::SessionClaims;

#[utoipa::path(post, path = "/v1/queues/{id}/enter", tag = "consumer",
    params(("id" = String, Path, description = "queue id")),
    security(("session" = [])),
    responses(
        (status = 200, body = QueueEntryBody),
        (status = 400, description = "bad id", body = ErrorBody),
        (status = 401, description = "missing or bad session", body = ErrorBody),
        (status = 404, description = "no such queue", body = ErrorBody),
        (status = 409, description = "closed or full", body = ErrorBody),
        (status = 410, description = "sold out", body = ErrorBody),
        (status = 429, description = "rate limited", body = ErrorBody),
        (status = 503, description = "store unavailable", body = ErrorBody),
    ))]
pub async fn enter(
    State(app): State<AppState>,
    IdPath(seq): IdPath,
    Session(session): Session,
) -> Result<Json<QueueEntryBody>, ApiError> {
    Ok(Json(enter_queue(&app, &seq, &session).await?))
}

/// Shared by the queue route and the experience route.
pub async fn enter_queue(
    app: &AppState,
    seq_id: &Id,
    session: &SessionClaims,
) -> Result<QueueEntryBody, ApiError> {
    let snapshot = app.catalog.snapshot();
    let (stored, seq) = snapshot
        .sequence(seq_id)
        .filter(|(_, s)| s.kind == Kind::Queue)
        .ok_or_else(|| ApiError::not_found("queue", seq_id))?;
    let now = now_ms();
    let refuse = if seq.window(now) == Window::Closed {
        Some(Refusal::Closed)
    } else if stored.inventory == Some(0) {
        Some(Refusal::SoldOut)
    } else {
        None
    };
    let request = EnterRequest {
        consumer_id: session.sub,
        external_id: session.ext.clone(),
        now,
        opens_at: seq.opens_at_or_epoch(),
        max_participants: seq.max_participants,
        prequeue_score: u64::from(rand::random::<u32>()),
        refuse,
    };
    match app.store.enter(seq_id, request).await? {
        EnterOutcome::Entered(entry, _) => {
            let entry = at(entry, now, seq.opens_at_or_epoch());
            Ok(QueueEntryBody::new(app, seq_id, &entry))
        }
        EnterOutcome::Refused(Refusal::Closed) => Err(ApiError::Closed),
        EnterOutcome::Refused(Refusal::SoldOut) => Err(ApiError::SoldOut),
        EnterOutcome::Refused(Refusal::Full) => Err(ApiError::CapacityReached),
    }
}

#[utoipa::path(get, path = "/v1/queues/{id}/position", tag = "consumer",
    params(("id" = String, Path, description = "queue id")),
    security(("session" = [])),
    responses(
        (status = 200, body = QueueEntryBody),
        (status = 401, description = "missing or bad session", body = ErrorBody),
        (status = 404, description = "no such queue or no entry", body = ErrorBody),
    ))]
pub async fn position(
    State(app): State<AppState>,
    IdPath(seq_id): IdPath,
    Session(session): Session,
) -> Result<Json<QueueEntryBody>, ApiError> {
    let opens_at = queue_opens_at(&app, &seq_id)?;
    let entry = app
        .store
        .entry(&seq_id, session.sub)
        .await?
        .ok_or_else(|| ApiError::NotFound("you have no entry in this queue".into()))?;
    let entry = at(entry, now_ms(), opens_at);
    Ok(Json(QueueEntryBody::new(&app, &seq_id, &entry)))
}

#[utoipa::path(delete, path = "/v1/queues/{id}/entry", tag = "consumer",
    params(("id" = String, Path, description = "queue id")),
    security(("session" = [])),
    responses(
        (status = 204, description = "left the line (or gave up an admission)"),
        (status = 401, description = "missing or bad session", body = ErrorBody),
        (status = 404, description = "no such queue or no entry", body = ErrorBody),
    ))]
pub async fn leave(
    State(app): State<AppState>,
    IdPath(seq_id): IdPath,
    Session(session): Session,
) -> Result<StatusCode, ApiError> {
    queue_opens_at(&app, &seq_id)?;
    match app.store.leave(&seq_id, session.sub, now_ms()).await? {
        LeaveOutcome::NotFound => {
            Err(ApiError::NotFound("you have no entry in this queue".into()))
        }
        _ => Ok(StatusCode::NO_CONTENT),
    }
}

fn queue_opens_at(app: &AppState, seq_id: &Id) -> Result<i64, ApiError> {
    let snapshot = app.catalog.snapshot();
    snapshot
        .sequence(seq_id)
        .filter(|(_, s)| s.kind == Kind::Queue)
        .map(|(_, s)| s.opens_at_or_epoch())
        .ok_or_else(|| ApiError::not_found("queue", seq_id))
}
