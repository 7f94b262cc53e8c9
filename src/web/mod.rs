//! What a browser loads from a node: the JS SDK, the hosted waiting-room
//! and status pages, and the demo checkout.

use axum::Router;

use crate::app::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
}
