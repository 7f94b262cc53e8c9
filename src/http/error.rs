//! The API's one error type. Each variant knows its status and contract
//! code; causes inside the node are logged where they are mapped and never
//! reach the client.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::store::StoreError;
use crate::tokens::TokenError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("token is invalid")]
    InvalidToken,
    #[error("token has expired")]
    TokenExpired,
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    MethodNotAllowed(String),
    #[error("not open yet")]
    NotOpen,
    #[error("closed")]
    Closed,
    #[error("the line is full")]
    CapacityReached,
    #[error("sold out")]
    SoldOut,
    #[error("this token was redeemed before")]
    AlreadyRedeemed,
    #[error("this account already has an entry")]
    AlreadyEntered,
    #[error("request body is too large")]
    PayloadTooLarge,
    #[error("too many requests")]
    RateLimited { retry_after: u64 },
    #[error("temporarily unavailable; your place in line is kept")]
    Unavailable { retry_after: u64 },
}

impl ApiError {
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) | Self::MethodNotAllowed(_) => "INVALID_REQUEST",
            Self::Unauthorized(_) => "UNAUTHORIZED",
            Self::InvalidToken => "INVALID_TOKEN",
            Self::TokenExpired => "TOKEN_EXPIRED",
            Self::Forbidden(_) => "FORBIDDEN",
            Self::NotFound(_) => "NOT_FOUND",
            Self::NotOpen => "NOT_OPEN",
            Self::Closed => "CLOSED",
            Self::CapacityReached => "CAPACITY_REACHED",
            Self::SoldOut => "SOLD_OUT",
            Self::AlreadyRedeemed => "ALREADY_REDEEMED",
            Self::AlreadyEntered => "ALREADY_ENTERED",
            Self::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Self::RateLimited { .. } => "RATE_LIMITED",
            Self::Unavailable { .. } => "SERVICE_UNAVAILABLE",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized(_) | Self::InvalidToken | Self::TokenExpired => {
                StatusCode::UNAUTHORIZED
            }
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::NotOpen
            | Self::Closed
            | Self::CapacityReached
            | Self::AlreadyRedeemed
            | Self::AlreadyEntered => StatusCode::CONFLICT,
            Self::SoldOut => StatusCode::GONE,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn retry_after(&self) -> Option<u64> {
        match self {
            Self::RateLimited { retry_after } | Self::Unavailable { retry_after } => {
                Some(*retry_after)
            }
            _ => None,
        }
    }

    pub fn not_found(what: &str, id: impl std::fmt::Display) -> Self {
        Self::NotFound(format!("no {what} `{id}`"))
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        // The one place a store failure is logged for a request.
        tracing::warn!(error = %e, "store request failed");
        Self::Unavailable { retry_after: 2 }
    }
}

impl From<TokenError> for ApiError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::Expired => Self::TokenExpired,
            TokenError::Invalid => Self::InvalidToken,
            TokenError::Key(reason) => {
                tracing::error!(%reason, "token key material failed");
                Self::Unavailable { retry_after: 5 }
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.code();
        metrics::counter!("velvet_errors_total", "code" => code).increment(1);
        let mut body = json!({ "code": code, "message": self.to_string() });
        let retry = self.retry_after();
        if let Some(secs) = retry {
            body["retryAfterSeconds"] = secs.into();
        }
        let mut response =
            (self.status(), Json(json!({ "error": body }))).into_response();
        if let Some(secs) = retry {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
