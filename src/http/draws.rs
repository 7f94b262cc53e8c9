//! Draw routes: register, result, the public proof, and the admin run.

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use serde_json::{Value, json};

use super::error::ApiError;
use super::extract::{AdminKey, IdPath, Session};
use super::openapi;
use super::openapi::ErrorBody;
use crate::app::AppState;
use crate::domain::clock::{now_ms, rfc3339};
use crate::domain::experience::Window;
use crate::domain::{Id, Kind, Sequence};
use crate::draw::result::result_of;
use crate::draw::run::RunOutcome;
use crate::store::{DrawEnterOutcome, DrawEnterRequest, Refusal, StoredExperience};
use crate::tokens::SessionClaims;

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DrawEntryBody {
    pub draw_id: Id,
    pub state: &'static str,
    /// When the draw runs, if it has a closing time.
    pub draw_at: Option<String>,
    pub registered_at: String,
}

fn find(app: &AppState, id: &Id) -> Result<(StoredExperience, Sequence), ApiError> {
    let snapshot = app.catalog.snapshot();
    let (stored, seq) = snapshot
        .sequence(id)
        .filter(|(_, s)| s.kind == Kind::Draw)
        .ok_or_else(|| ApiError::not_found("draw", id))?;
    Ok((StoredExperience::clone(stored), seq.clone()))
}

#[utoipa::path(post, path = "/v1/draws/{id}/enter", tag = "consumer",
    params(("id" = String, Path, description = "draw id")),
    security(("session" = [])),
    responses(
        (status = 200, body = DrawEntryBody),
        (status = 401, description = "missing or bad session", body = ErrorBody),
        (status = 403, description = "account required", body = ErrorBody),
        (status = 404, description = "no such draw", body = ErrorBody),
        (status = 409, description = "not open, closed, full or already entered", body = ErrorBody),
        (status = 410, description = "sold out", body = ErrorBody),
        (status = 429, description = "rate limited", body = ErrorBody),
    ))]
pub async fn enter(
    State(app): State<AppState>,
    IdPath(id): IdPath,
    Session(session): Session,
) -> Result<Json<DrawEntryBody>, ApiError> {
    Ok(Json(enter_draw(&app, &id, &session).await?))
}

/// Shared by the draw route and the experience route.
pub async fn enter_draw(
    app: &AppState,
    id: &Id,
    session: &SessionClaims,
) -> Result<DrawEntryBody, ApiError> {
    let (stored, seq) = find(app, id)?;
    let now = now_ms();
    let refuse = match seq.window(now) {
        Window::Scheduled => return Err(ApiError::NotOpen),
        Window::Closed => Some(Refusal::Closed),
        Window::Open if stored.inventory == Some(0) => Some(Refusal::SoldOut),
        Window::Open => None,
    };
    if seq.require_account && session.ext.is_none() {
        return Err(ApiError::Forbidden(
            "this draw requires a session bound to a shop account",
        ));
    }
    let request = DrawEnterRequest {
        consumer_id: session.sub,
        external_id: session.ext.clone(),
        now,
        max_participants: seq.max_participants,
        refuse,
        seed: crate::draw::new_seed(),
    };
    match app.store.draw_enter(id, request).await? {
        DrawEnterOutcome::Registered { registered_at, .. } => Ok(DrawEntryBody {
            draw_id: id.clone(),
            state: "registered",
            draw_at: seq.closes_at.map(rfc3339),
            registered_at: rfc3339(registered_at),
        }),
        DrawEnterOutcome::AccountTaken => Err(ApiError::AlreadyEntered),
        DrawEnterOutcome::Refused(Refusal::Closed) => Err(ApiError::Closed),
        DrawEnterOutcome::Refused(Refusal::SoldOut) => Err(ApiError::SoldOut),
        DrawEnterOutcome::Refused(Refusal::Full) => Err(ApiError::CapacityReached),
    }
}

#[utoipa::path(get, path = "/v1/draws/{id}/result", tag = "consumer",
    params(("id" = String, Path, description = "draw id")),
    security(("session" = [])),
    responses(
        (status = 200, body = openapi::DrawResultBody),
        (status = 401, description = "missing or bad session", body = ErrorBody),
        (status = 404, description = "no such draw or not registered", body = ErrorBody),
    ))]
pub async fn result(
    State(app): State<AppState>,
    IdPath(id): IdPath,
    Session(session): Session,
) -> Result<Json<Value>, ApiError> {
    let (_, seq) = find(&app, &id)?;
    let entry = app
        .store
        .draw_entry(&id, session.sub)
        .await?
        .ok_or_else(|| {
            ApiError::NotFound("you are not registered for this draw".into())
        })?;
    let result = result_of(&entry, seq.winners.unwrap_or(0), now_ms());
    Ok(Json(json!({
        "drawId": id,
        "state": result.state,
        "isWinner": result.is_winner,
        "handoffToken": result.handoff_token,
        "expiresAt": result.expires_at,
        "registeredAt": rfc3339(entry.registered_at),
    })))
}

#[utoipa::path(get, path = "/v1/draws/{id}/proof", tag = "consumer",
    params(("id" = String, Path, description = "draw id")),
    responses(
        (status = 200, body = crate::draw::Proof),
        (status = 404, description = "no such draw", body = ErrorBody),
    ))]
pub async fn proof(
    State(app): State<AppState>,
    IdPath(id): IdPath,
) -> Result<Json<crate::draw::Proof>, ApiError> {
    let (_, seq) = find(&app, &id)?;
    Ok(Json(
        crate::draw::run::proof(app.store.as_ref(), &seq).await?,
    ))
}

#[utoipa::path(post, path = "/v1/admin/draws/{id}/run", tag = "admin",
    params(("id" = String, Path, description = "draw id")),
    security(("admin" = [])),
    responses(
        (status = 200, body = openapi::DrawRunBody),
        (status = 401, description = "no key", body = ErrorBody),
        (status = 403, description = "wrong key", body = ErrorBody),
        (status = 404, description = "no such draw", body = ErrorBody),
        (status = 409, description = "not open yet", body = ErrorBody),
    ))]
pub async fn run(
    State(app): State<AppState>,
    _key: AdminKey,
    IdPath(id): IdPath,
) -> Result<Json<Value>, ApiError> {
    let (stored, seq) = find(&app, &id)?;
    let now = now_ms();
    if seq.window(now) == Window::Scheduled {
        return Err(ApiError::NotOpen);
    }
    let outcome =
        crate::draw::run::run(app.store.as_ref(), &app.handoff, &stored, &seq, now)
            .await?;
    let already = outcome == RunOutcome::AlreadyDrawn;
    Ok(Json(
        json!({ "drawId": id, "state": "drawn", "alreadyDrawn": already }),
    ))
}
