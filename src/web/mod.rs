//! What a browser loads from a node: the JS SDK, the hosted waiting-room
//! and status pages, and the demo checkout.
//!
//! Everything here is compiled into the binary (`assets/`), server-rendered
//! and dependency-free: no build step, no third-party origin a page needs.
//! The pages speak to the node only through the public contract, via the
//! same SDK that shops embed.

pub mod assets;
pub mod checkout;
pub mod cors;
pub mod html;
pub mod pages;

use axum::Router;
use axum::routing::get;

use crate::app::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/sdk/v1/velvet.js", get(assets::sdk_module))
        .route("/sdk/v1/velvet.d.ts", get(assets::sdk_types))
        .route("/web/v1/{file}", get(assets::page_asset))
        .route("/e/{id}", get(pages::room))
        .route("/status/{id}", get(pages::status))
        .route("/demo/checkout", get(checkout::show))
}
