//! Admin routes (admin key): define experiences, pause and resume admission,
//! change limits live, set inventory and announcements.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::ApiError;
use super::experiences::describe;
use super::extract::{AdminKey, ApiJson, IdPath};
use super::openapi;
use super::openapi::ErrorBody;
use crate::app::AppState;
use crate::domain::clock::now_ms;
use crate::domain::{Experience, Id, Kind, SequencePatch};
use crate::store::{PutOutcome, StoredExperience};

#[utoipa::path(put, path = "/v1/admin/experiences/{id}", tag = "admin",
    params(("id" = String, Path, description = "experience id")),
    request_body = Experience,
    security(("admin" = [])),
    responses(
        (status = 200, body = openapi::AdminExperienceView),
        (status = 400, description = "invalid definition, naming the field", body = ErrorBody),
        (status = 401, description = "no key", body = ErrorBody),
        (status = 403, description = "wrong key", body = ErrorBody),
    ))]
pub async fn put_experience(
    State(app): State<AppState>,
    _key: AdminKey,
    IdPath(id): IdPath,
    ApiJson(mut exp): ApiJson<Experience>,
) -> Result<Json<Value>, ApiError> {
    if exp.id.as_ref().is_some_and(|given| given != &id) {
        return Err(ApiError::InvalidRequest("id: must match the URL".into()));
    }
    exp.id = Some(id.clone());
    exp.validate()
        .map_err(|e| ApiError::InvalidRequest(e.to_string()))?;

    // A sequence id names one queue or draw across all experiences, for good.
    if let PutOutcome::SequenceOwned { sequence, owner } =
        app.store.put_experience(&exp, false).await?
    {
        let i = exp
            .sequences
            .iter()
            .position(|s| s.id == sequence)
            .unwrap_or(0);
        return Err(ApiError::InvalidRequest(format!(
            "sequences[{i}].id: `{sequence}` belongs to experience `{owner}`"
        )));
    }
    app.catalog.refresh().await?;
    tracing::info!(experience = %id, "experience defined");
    show_experience(State(app), AdminKey, IdPath(id)).await
}

#[utoipa::path(get, path = "/v1/admin/experiences/{id}", tag = "admin",
    params(("id" = String, Path, description = "experience id")),
    security(("admin" = [])),
    responses(
        (status = 200, body = openapi::AdminExperienceView),
        (status = 401, description = "no key", body = ErrorBody),
        (status = 403, description = "wrong key", body = ErrorBody),
        (status = 404, description = "no such experience", body = ErrorBody),
    ))]
pub async fn show_experience(
    State(app): State<AppState>,
    _key: AdminKey,
    IdPath(id): IdPath,
) -> Result<Json<Value>, ApiError> {
    let stored = stored(&app, &id)?;
    let now = now_ms();
    let mut body = describe(&stored, now);
    let mut live = serde_json::Map::new();
    for seq in stored
        .experience
        .sequences
        .iter()
        .filter(|s| s.kind == Kind::Queue)
    {
        let stats = app.store.queue_stats(&seq.id, now).await?;
        live.insert(
            seq.id.to_string(),
            json!({
                "waiting": stats.waiting,
                "activeTokens": stats.active,
                "admittedLastMinute": stats.admitted_last_minute,
                "admittedTotal": stats.admitted_total,
                "redeemedTotal": stats.redeemed_total,
            }),
        );
    }
    body["live"] = Value::Object(live);
    Ok(Json(body))
}

#[utoipa::path(post, path = "/v1/admin/sequences/{id}/pause", tag = "admin",
    params(("id" = String, Path, description = "queue id")),
    security(("admin" = [])),
    responses(
        (status = 200, body = openapi::PausedBody),
        (status = 401, description = "no key", body = ErrorBody),
        (status = 403, description = "wrong key", body = ErrorBody),
        (status = 404, description = "no such sequence", body = ErrorBody),
    ))]
pub async fn pause(
    State(app): State<AppState>,
    _key: AdminKey,
    IdPath(seq): IdPath,
) -> Result<Json<Value>, ApiError> {
    set_paused(&app, &seq, true).await
}

#[utoipa::path(post, path = "/v1/admin/sequences/{id}/resume", tag = "admin",
    params(("id" = String, Path, description = "queue id")),
    security(("admin" = [])),
    responses(
        (status = 200, body = openapi::PausedBody),
        (status = 401, description = "no key", body = ErrorBody),
        (status = 403, description = "wrong key", body = ErrorBody),
        (status = 404, description = "no such sequence", body = ErrorBody),
    ))]
pub async fn resume(
    State(app): State<AppState>,
    _key: AdminKey,
    IdPath(seq): IdPath,
) -> Result<Json<Value>, ApiError> {
    set_paused(&app, &seq, false).await
}

async fn set_paused(
    app: &AppState,
    seq_id: &Id,
    paused: bool,
) -> Result<Json<Value>, ApiError> {
    let (mut exp, _) = owning(app, seq_id)?;
    let seq = exp
        .sequence_mut(seq_id)
        .ok_or_else(|| ApiError::not_found("sequence", seq_id))?;
    if seq.kind != Kind::Queue {
        return Err(ApiError::InvalidRequest("only queues can be paused".into()));
    }
    seq.paused = paused;
    app.store.put_experience(&exp, false).await?;
    app.catalog.refresh().await?;
    tracing::info!(sequence = %seq_id, paused, "admission paused or resumed");
    Ok(Json(json!({ "sequenceId": seq_id, "paused": paused })))
}

#[utoipa::path(patch, path = "/v1/admin/sequences/{id}", tag = "admin",
    params(("id" = String, Path, description = "sequence id")),
    request_body = SequencePatch,
    security(("admin" = [])),
    responses(
        (status = 200, body = crate::domain::Sequence),
        (status = 400, description = "invalid change, naming the field", body = ErrorBody),
        (status = 401, description = "no key", body = ErrorBody),
        (status = 403, description = "wrong key", body = ErrorBody),
        (status = 404, description = "no such sequence", body = ErrorBody),
    ))]
pub async fn patch_sequence(
    State(app): State<AppState>,
    _key: AdminKey,
    IdPath(seq_id): IdPath,
    ApiJson(patch): ApiJson<SequencePatch>,
) -> Result<Json<Value>, ApiError> {
    let (mut exp, _) = owning(&app, &seq_id)?;
    let seq = exp
        .sequence_mut(&seq_id)
        .ok_or_else(|| ApiError::not_found("sequence", &seq_id))?;
    seq.apply(&patch)
        .map_err(|e| ApiError::InvalidRequest(e.to_string()))?;
    let body = serde_json::to_value(&*seq).unwrap_or_default();
    app.store.put_experience(&exp, false).await?;
    app.catalog.refresh().await?;
    tracing::info!(sequence = %seq_id, "sequence changed");
    Ok(Json(body))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InventoryBody {
    /// Required, so that `{}` cannot lift the limit by accident; `null` does.
    #[serde(deserialize_with = "required_nullable")]
    remaining: Option<u64>,
}

fn required_nullable<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<u64>, D::Error> {
    Option::<u64>::deserialize(d)
}

#[utoipa::path(put, path = "/v1/admin/experiences/{id}/inventory", tag = "admin",
    params(("id" = String, Path, description = "experience id")),
    request_body = InventoryBody,
    security(("admin" = [])),
    responses(
        (status = 200, body = openapi::InventoryReply),
        (status = 401, description = "no key", body = ErrorBody),
        (status = 403, description = "wrong key", body = ErrorBody),
        (status = 404, description = "no such experience", body = ErrorBody),
    ))]
pub async fn put_inventory(
    State(app): State<AppState>,
    _key: AdminKey,
    IdPath(id): IdPath,
    ApiJson(body): ApiJson<InventoryBody>,
) -> Result<Json<Value>, ApiError> {
    stored(&app, &id)?;
    app.store.set_inventory(&id, body.remaining).await?;
    app.catalog.refresh().await?;
    tracing::info!(experience = %id, remaining = ?body.remaining, "inventory set");
    Ok(Json(
        json!({ "experienceId": id, "remaining": body.remaining }),
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AnnouncementBody {
    message: Option<String>,
}

#[utoipa::path(put, path = "/v1/admin/experiences/{id}/announcement", tag = "admin",
    params(("id" = String, Path, description = "experience id")),
    request_body = AnnouncementBody,
    security(("admin" = [])),
    responses(
        (status = 200, body = openapi::AnnouncementReply),
        (status = 401, description = "no key", body = ErrorBody),
        (status = 403, description = "wrong key", body = ErrorBody),
        (status = 404, description = "no such experience", body = ErrorBody),
    ))]
pub async fn put_announcement(
    State(app): State<AppState>,
    _key: AdminKey,
    IdPath(id): IdPath,
    ApiJson(body): ApiJson<AnnouncementBody>,
) -> Result<Json<Value>, ApiError> {
    stored(&app, &id)?;
    let message = body.message.filter(|m| !m.trim().is_empty());
    if message.as_ref().is_some_and(|m| m.chars().count() > 500) {
        return Err(ApiError::InvalidRequest(
            "message: at most 500 characters".into(),
        ));
    }
    app.store.set_announcement(&id, message.as_deref()).await?;
    app.catalog.refresh().await?;
    Ok(Json(json!({ "experienceId": id, "message": message })))
}

fn stored(app: &AppState, id: &Id) -> Result<StoredExperience, ApiError> {
    let snapshot = app.catalog.snapshot();
    let stored = snapshot
        .experiences
        .get(id)
        .ok_or_else(|| ApiError::not_found("experience", id))?;
    Ok(StoredExperience::clone(stored))
}

/// The experience that owns a sequence, as a definition to change. Its
/// inventory is the live one, so that writing it back changes no stock.
fn owning(app: &AppState, seq: &Id) -> Result<(Experience, Id), ApiError> {
    let snapshot = app.catalog.snapshot();
    let (stored, _) = snapshot
        .sequence(seq)
        .ok_or_else(|| ApiError::not_found("sequence", seq))?;
    let mut exp = stored.experience.clone();
    exp.inventory = stored.inventory;
    Ok((exp, stored.experience.id().clone()))
}
