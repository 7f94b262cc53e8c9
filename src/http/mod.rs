//! The HTTP side of a node: the contract's routes, and the layers every
//! request passes (request id, tracing span, metrics, body limit, timeout).

pub mod admin;
pub mod draws;
pub mod error;
pub mod experiences;
pub mod extract;
pub mod handoff;
pub mod limits;
pub mod openapi;
pub mod ops;
pub mod queues;
pub mod sessions;
pub mod view;

use std::time::{Duration, Instant};

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderName, Method};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use tower::ServiceBuilder;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower::load_shed::LoadShedLayer;
use tower_http::request_id::{
    MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;

use crate::app::AppState;
use error::ApiError;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

pub fn router(app: AppState) -> Router {
    let limits = &app.settings.server;
    let limiter = limits::ClientLimiter::new(limits);
    limiter.spawn_cleanup();
    // Routes that create work are rate limited per client address.
    let costly = Router::new()
        .route("/v1/sessions", post(sessions::create))
        .route("/v1/experiences/{id}/enter", post(experiences::enter))
        .route("/v1/queues/{id}/enter", post(queues::enter))
        .route("/v1/draws/{id}/enter", post(draws::enter))
        .route_layer(middleware::from_fn_with_state(limiter, limits::per_client));
    let api = Router::new()
        .merge(costly)
        .route("/v1/experiences/{id}", get(experiences::show))
        .route("/v1/experiences/{id}/status", get(experiences::status))
        .route("/v1/queues/{id}/position", get(queues::position))
        .route(
            "/v1/queues/{id}/entry",
            axum::routing::delete(queues::leave),
        )
        .route("/v1/draws/{id}/result", get(draws::result))
        .route("/v1/draws/{id}/proof", get(draws::proof))
        .route("/v1/admin/draws/{id}/run", post(draws::run))
        .route("/v1/handoff/verify", post(handoff::verify))
        .route("/v1/handoff/redeem", post(handoff::redeem))
        .route("/.well-known/jwks.json", get(handoff::jwks))
        .route(
            "/v1/admin/experiences/{id}",
            put(admin::put_experience).get(admin::show_experience),
        )
        .route(
            "/v1/admin/experiences/{id}/inventory",
            put(admin::put_inventory),
        )
        .route(
            "/v1/admin/experiences/{id}/announcement",
            put(admin::put_announcement),
        )
        .route("/v1/admin/sequences/{id}/pause", post(admin::pause))
        .route("/v1/admin/sequences/{id}/resume", post(admin::resume))
        .route(
            "/v1/admin/sequences/{id}",
            axum::routing::patch(admin::patch_sequence),
        )
        .route("/v1/ws", get(crate::ws::upgrade))
        .route("/openapi.json", get(openapi::openapi_json))
        .merge(crate::web::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);

    // Liveness, readiness and metrics stay outside the load shedder: a busy
    // node must not look dead to its orchestrator or its Prometheus.
    let ops = Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics));

    let timeout = Duration::from_millis(limits.request_timeout_ms);
    let body_limit = limits.body_limit_bytes;
    let guard = ServiceBuilder::new()
        // Outside the load shedder, so a shop page can read even a 503.
        .option_layer(crate::web::cors::layer(&limits.cors_origins))
        // A body declared too large is refused before it takes a slot.
        .layer(middleware::from_fn(move |req, next| {
            declared_size(body_limit, req, next)
        }))
        // Past the bound (one count for the whole node, hence Global), answer
        // 503 at once rather than queue.
        .layer(HandleErrorLayer::new(limits::overloaded))
        .layer(LoadShedLayer::new())
        .layer(GlobalConcurrencyLimitLayer::new(
            limits.max_concurrent_requests,
        ))
        .layer(middleware::from_fn(move |req, next| {
            deadline(timeout, req, next)
        }))
        .layer(DefaultBodyLimit::max(body_limit));
    let common = ServiceBuilder::new()
        .layer(middleware::from_fn(sanitize_request_id))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(TraceLayer::new_for_http().make_span_with(span_for))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(middleware::from_fn(track));
    api.layer(guard).merge(ops).layer(common).with_state(app)
}

/// A client's request id is kept only if it is short visible ASCII; any
/// other is replaced, so it cannot bloat logs or responses.
async fn sanitize_request_id(mut req: Request, next: Next) -> Response {
    let acceptable = req.headers().get(&REQUEST_ID).is_none_or(|v| {
        let bytes = v.as_bytes();
        !bytes.is_empty()
            && bytes.len() <= 128
            && bytes.iter().all(|b| b.is_ascii_graphic())
    });
    if !acceptable {
        req.headers_mut().remove(&REQUEST_ID);
    }
    next.run(req).await
}

/// Refuses at once a body whose declared length is over the limit, rather
/// than waiting for it to arrive.
async fn declared_size(limit: usize, req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return ApiError::PayloadTooLarge.into_response();
    }
    next.run(req).await
}

/// The span of one request: its route template (never the raw path, which
/// carries ids) and request id.
fn span_for(req: &Request) -> tracing::Span {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |m| m.as_str());
    let id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    tracing::info_span!("request", method = %req.method(), route, request_id = id)
}

/// Counts and times each request by route template and status.
async fn track(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = method_label(req.method());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    let elapsed = started.elapsed().as_secs_f64();
    metrics::counter!("velvet_http_requests_total",
        "method" => method, "route" => route.clone(), "status" => status)
    .increment(1);
    metrics::histogram!("velvet_http_request_duration_seconds",
        "method" => method, "route" => route)
    .record(elapsed);
    response
}

/// A request still running at the deadline is answered 503, so callers
/// retry elsewhere instead of waiting on a stuck store.
async fn deadline(limit: Duration, req: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(response) => response,
        Err(_) => ApiError::Unavailable { retry_after: 1 }.into_response(),
    }
}

/// Methods outside this set are folded into one label to bound cardinality.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such route".into())
}

async fn method_not_allowed(method: Method) -> ApiError {
    ApiError::MethodNotAllowed(format!("method {method} is not allowed here"))
}
