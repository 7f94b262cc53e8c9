//! Protection against a surge bigger than planned: per-client rate limits
//! on the routes that create work (sessions, enters), and a per-node bound
//! on requests in flight that sheds the excess with 503 at once instead of
//! letting every request slow down.

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::error::ApiError;
use crate::config::ServerSettings;

/// Rate limiter keyed by client address.
pub struct ClientLimiter {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    header: Option<axum::http::HeaderName>,
}

impl ClientLimiter {
    pub fn new(settings: &ServerSettings) -> Arc<Self> {
        let rate =
            NonZeroU32::new(settings.client_rate_per_second).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(settings.client_burst).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::per_second(rate).allow_burst(burst);
        let header = (!settings.client_ip_header.is_empty())
            .then(|| settings.client_ip_header.parse().ok())
            .flatten();
        Arc::new(Self {
            limiter: RateLimiter::dashmap(quota),
            header,
        })
    }

    /// The client's address: the trusted proxy's header when configured
    /// (its first address), else the peer of the connection.
    fn client(&self, req: &Request) -> Option<IpAddr> {
        if let Some(name) = &self.header {
            let value = req.headers().get(name)?.to_str().ok()?;
            return value.split(',').next()?.trim().parse().ok();
        }
        let ConnectInfo(peer) = req.extensions().get::<ConnectInfo<SocketAddr>>()?;
        Some(peer.ip())
    }

    /// Forgets clients that have been quiet, so the table does not grow
    /// with every address ever seen.
    pub fn spawn_cleanup(self: &Arc<Self>) {
        let limiter = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(30));
            loop {
                every.tick().await;
                let Some(limiter) = limiter.upgrade() else {
                    return;
                };
                limiter.limiter.retain_recent();
                limiter.limiter.shrink_to_fit();
            }
        });
    }
}

pub async fn per_client(
    State(limiter): State<Arc<ClientLimiter>>,
    req: Request,
    next: Next,
) -> Response {
    // Without an address (a test router without a socket) there is no key.
    let Some(client) = limiter.client(&req) else {
        return next.run(req).await;
    };
    match limiter.limiter.check_key(&client) {
        Ok(()) => next.run(req).await,
        Err(not_until) => {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            let retry_after = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
            ApiError::RateLimited {
                retry_after: retry_after.max(1),
            }
            .into_response()
        }
    }
}

/// Answer for requests the node is too busy to start.
pub async fn overloaded(_: tower::BoxError) -> ApiError {
    ApiError::Unavailable { retry_after: 1 }
}
