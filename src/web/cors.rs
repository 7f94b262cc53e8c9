//! Cross-origin access for the shop pages listed in `server.cors_origins`.
//!
//! Consumers authenticate with a bearer token, never a cookie, so no
//! credentials mode is needed; listing the shop's origin is what lets its
//! page read the answers. Origins not listed get no CORS headers at all,
//! and the browser keeps their scripts out.

use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, Method, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// `None` when no origin is listed: then there is no layer at all.
pub fn layer(origins: &[String]) -> Option<CorsLayer> {
    // Settings validation has checked each entry is a bare origin.
    let allowed: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    if allowed.is_empty() {
        return None;
    }
    let layer = CorsLayer::new()
        .allow_origin(AllowOrigin::list(allowed))
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT])
        // Retry-After lets the SDK honour a back-off; the request id lets a
        // shop quote a failing call to the operator.
        .expose_headers([header::RETRY_AFTER, HeaderName::from_static("x-request-id")])
        // Preflights are answered for an hour, so each call is not doubled.
        .max_age(Duration::from_secs(3600));
    Some(layer)
}
