//! Static files: the SDK under `/sdk/v1/`, and the pages' scripts and
//! styles under `/web/v1/`.
//!
//! The SDK's URL is its public version, so it is cached for a year; a
//! change that old pages must not see needs a new `/sdk/vN/`. Page assets
//! are linked with a content hash (`?v=`), so they too can be cached for
//! good while a new build's pages still fetch the new files.

use std::collections::HashMap;
use std::sync::LazyLock;

use axum::extract::{Path, Query};
use axum::http::{HeaderName, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::http::error::ApiError;

pub struct Asset {
    pub name: &'static str,
    pub body: &'static str,
    pub content_type: &'static str,
}

const JS: &str = "text/javascript; charset=utf-8";

pub const SDK: Asset = Asset {
    name: "velvet.js",
    body: include_str!("assets/velvet.js"),
    content_type: JS,
};

pub const SDK_TYPES: Asset = Asset {
    name: "velvet.d.ts",
    body: include_str!("assets/velvet.d.ts"),
    content_type: "application/typescript; charset=utf-8",
};

pub const ROOM_JS: Asset = Asset {
    name: "room.js",
    body: include_str!("assets/room.js"),
    content_type: JS,
};

pub const STATUS_JS: Asset = Asset {
    name: "status.js",
    body: include_str!("assets/status.js"),
    content_type: JS,
};

pub const STYLE: Asset = Asset {
    name: "velvet.css",
    body: include_str!("assets/velvet.css"),
    content_type: "text/css; charset=utf-8",
};

const PAGE_ASSETS: [&Asset; 3] = [&ROOM_JS, &STATUS_JS, &STYLE];

/// Short content hashes of the page assets, worked out once.
static VERSIONS: LazyLock<HashMap<&'static str, String>> = LazyLock::new(|| {
    PAGE_ASSETS
        .iter()
        .map(|a| (a.name, hex::encode(&Sha256::digest(a.body)[..6])))
        .collect()
});

const IMMUTABLE: &str = "public, max-age=31536000, immutable";

impl Asset {
    /// The URL a page links this asset with, versioned by its content.
    pub fn url(&self) -> String {
        let version = VERSIONS.get(self.name).map_or("", String::as_str);
        format!("/web/v1/{}?v={version}", self.name)
    }

    fn response(&self, cache: &'static str) -> Response {
        let headers = [
            (header::CONTENT_TYPE, self.content_type),
            (header::CACHE_CONTROL, cache),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ];
        (headers, self.body).into_response()
    }
}

/// The SDK is public code that shops import as a module from their own
/// origin, which browsers fetch in CORS mode: any origin may read it.
fn shareable(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    headers.insert(
        HeaderName::from_static("cross-origin-resource-policy"),
        HeaderValue::from_static("cross-origin"),
    );
    response
}

pub async fn sdk_module() -> Response {
    shareable(SDK.response(IMMUTABLE))
}

pub async fn sdk_types() -> Response {
    shareable(SDK_TYPES.response(IMMUTABLE))
}

#[derive(Deserialize)]
pub struct Version {
    v: Option<String>,
}

/// A page asset; cached for good only under its current hash, so a stale
/// or missing `?v=` is revalidated rather than pinned.
pub async fn page_asset(Path(file): Path<String>, Query(q): Query<Version>) -> Response {
    let Some(asset) = PAGE_ASSETS.iter().find(|a| a.name == file) else {
        return ApiError::NotFound(format!("no file `{file}` here")).into_response();
    };
    let current = VERSIONS.get(asset.name);
    if q.v.is_some() && q.v.as_ref() == current {
        asset.response(IMMUTABLE)
    } else {
        asset.response("no-cache")
    }
}
