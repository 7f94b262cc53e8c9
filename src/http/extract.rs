//! Extractors that turn every client mistake into the contract's errors:
//! JSON bodies, ids in paths, and the three kinds of bearer credentials.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, JsonRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::StatusCode;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq;

use super::error::ApiError;
use crate::app::AppState;
use crate::domain::Id;
use crate::tokens::SessionClaims;

/// `Json<T>` whose rejections speak the contract.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_rejection(rejection)),
        }
    }
}

fn json_rejection(rejection: JsonRejection) -> ApiError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::PayloadTooLarge;
    }
    ApiError::InvalidRequest(rejection.body_text())
}

/// A JSON body that may also be absent (empty).
pub struct OptionalJson<T>(pub Option<T>);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes =
            Bytes::from_request(req, state)
                .await
                .map_err(|e: BytesRejection| {
                    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                        ApiError::PayloadTooLarge
                    } else {
                        ApiError::InvalidRequest(e.body_text())
                    }
                })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(None));
        }
        serde_json::from_slice(&bytes)
            .map(|v| Self(Some(v)))
            .map_err(|e| ApiError::InvalidRequest(format!("invalid JSON body: {e}")))
    }
}

/// An `{id}` path segment that follows the id pattern.
pub struct IdPath(pub Id);

impl<S: Send + Sync> FromRequestParts<S> for IdPath {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::InvalidRequest(e.body_text()))?;
        Id::parse(&raw)
            .map(Self)
            .map_err(|e| ApiError::InvalidRequest(e.to_string()))
    }
}

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    if parts
        .headers
        .get_all(axum::http::header::AUTHORIZATION)
        .iter()
        .count()
        > 1
    {
        return Err(ApiError::InvalidRequest(
            "send one Authorization header".into(),
        ));
    }
    let value = parts.headers.get(axum::http::header::AUTHORIZATION).ok_or(
        ApiError::Unauthorized("an Authorization: Bearer header is required"),
    )?;
    let text = value.to_str().map_err(|_| ApiError::InvalidToken)?;
    // The scheme is case-insensitive (RFC 7235).
    let token = text
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token)
        .ok_or(ApiError::Unauthorized(
            "the Authorization header must be Bearer",
        ))?;
    Ok(token.trim())
}

/// The consumer behind a session token.
pub struct Session(pub SessionClaims);

impl FromRequestParts<AppState> for Session {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer(parts)?;
        Ok(Self(app.sessions.verify(token)?))
    }
}

/// Compares in constant time, so timing reveals nothing about the key.
fn key_matches(given: &str, expected: &str) -> bool {
    !expected.is_empty() && bool::from(given.as_bytes().ct_eq(expected.as_bytes()))
}

pub struct AdminKey;

impl FromRequestParts<AppState> for AdminKey {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let given = bearer(parts)?;
        if key_matches(given, app.admin_key.expose()) {
            Ok(Self)
        } else {
            Err(ApiError::Forbidden("this key may not use the admin API"))
        }
    }
}

pub struct MerchantKey;

impl FromRequestParts<AppState> for MerchantKey {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let given = bearer(parts)?;
        if key_matches(given, app.merchant_key.expose()) {
            Ok(Self)
        } else {
            Err(ApiError::Forbidden("this key may not use the handoff API"))
        }
    }
}
