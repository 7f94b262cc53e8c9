//! `POST /v1/sessions`: a new anonymous consumer, optionally bound to the
//! shop account a shop-signed assertion names.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::extract::OptionalJson;
use super::openapi::ErrorBody;
use crate::app::AppState;
use crate::domain::clock::{now_ms, rfc3339};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSession {
    assertion: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionBody {
    consumer_id: String,
    session_token: String,
    expires_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    external_id: Option<String>,
}

#[utoipa::path(post, path = "/v1/sessions", tag = "consumer",
    request_body(content = Option<NewSession>, description = "optional shop assertion"),
    responses(
        (status = 201, body = SessionBody),
        (status = 400, description = "malformed body", body = ErrorBody),
        (status = 401, description = "forged or expired assertion", body = ErrorBody),
        (status = 429, description = "rate limited", body = ErrorBody),
    ))]
pub async fn create(
    State(app): State<AppState>,
    OptionalJson(body): OptionalJson<NewSession>,
) -> Result<(StatusCode, Json<SessionBody>), ApiError> {
    let assertion = body.and_then(|b| b.assertion);
    let external_id = match assertion.as_deref() {
        None => None,
        Some(text) => match app.sessions.account_of(text) {
            None => {
                return Err(ApiError::InvalidRequest(
                    "assertion: this node has no shop key configured".into(),
                ));
            }
            Some(checked) => Some(checked?),
        },
    };
    let (claims, token) = app.sessions.issue(now_ms() / 1000, external_id)?;
    let body = SessionBody {
        consumer_id: claims.sub.to_string(),
        session_token: token,
        expires_at: rfc3339(claims.exp * 1000),
        external_id: claims.ext,
    };
    Ok((StatusCode::CREATED, Json(body)))
}
