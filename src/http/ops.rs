//! Operator routes: liveness, readiness, Prometheus metrics.

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use serde_json::{Value, json};

use super::error::ApiError;
use super::openapi;
use super::openapi::ErrorBody;
use crate::app::AppState;

#[utoipa::path(get, path = "/healthz", tag = "ops",
    responses((status = 200, body = openapi::Health)))]
pub async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// Ready when the store answers and its keyspace is the version we know.
#[utoipa::path(get, path = "/readyz", tag = "ops",
    responses(
        (status = 200, body = openapi::Ready),
        (status = 503, description = "store down or keyspace not current", body = ErrorBody),
    ))]
pub async fn readyz(State(app): State<AppState>) -> Result<Json<Value>, ApiError> {
    app.store.ping().await?;
    let version = app.store.schema_version().await?;
    if version != crate::migrations::latest() {
        return Err(ApiError::Unavailable { retry_after: 5 });
    }
    Ok(Json(json!({ "status": "ready", "schemaVersion": version })))
}

#[utoipa::path(get, path = "/metrics", tag = "ops",
    responses(
        (status = 200, description = "Prometheus text", content_type = "text/plain"),
    ))]
pub async fn metrics(State(app): State<AppState>) -> impl IntoResponse {
    let content_type = "text/plain; version=0.0.4; charset=utf-8";
    ([(header::CONTENT_TYPE, content_type)], app.metrics.render())
}
