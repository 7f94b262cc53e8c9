//! `GET /openapi.json`: the API description, generated from the handlers'
//! `#[utoipa::path]` annotations and the body types' schemas. Bodies that
//! handlers build as JSON values are described by the types below, and the
//! test suite checks real responses against them.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use axum::Json;
use serde::Serialize;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use super::{admin, draws, experiences, handoff, ops, queues, sessions};
use crate::domain::experience::Window;
use crate::domain::{
    EntryState, Experience, ExperienceState, Id, Kind, Sequence, SequencePatch,
};
use crate::draw::Proof;
use crate::draw::result::ResultState;
use crate::tokens::HandoffClaims;

/// Every error: `{"error":{"code","message","retryAfterSeconds"?}}`.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ErrorDetail {
    /// One of the contract's codes, e.g. `CAPACITY_REACHED`.
    pub code: String,
    pub message: String,
    /// Mirrors `Retry-After` where retrying helps.
    #[schema(required = false)]
    pub retry_after_seconds: Option<u64>,
}

/// A sequence with its window at the time of the request.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SequenceView {
    #[serde(flatten)]
    pub sequence: Sequence,
    pub state: Window,
}

/// An experience's definition with its live state.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExperienceView {
    pub id: Id,
    pub name: String,
    pub inventory: Option<u64>,
    pub checkout_url: Option<String>,
    pub state: ExperienceState,
    pub inventory_remaining: Option<u64>,
    pub announcement: Option<String>,
    pub sequences: Vec<SequenceView>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LiveCounts {
    pub waiting: u64,
    pub active_tokens: u64,
    pub admitted_last_minute: u64,
    pub admitted_total: u64,
    pub redeemed_total: u64,
}

/// The admin view: the definition, live state, and counts per queue.
#[derive(Serialize, ToSchema)]
pub struct AdminExperienceView {
    #[serde(flatten)]
    pub experience: ExperienceView,
    pub live: BTreeMap<String, LiveCounts>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DrawResultBody {
    pub draw_id: Id,
    pub state: ResultState,
    pub is_winner: bool,
    pub handoff_token: Option<String>,
    pub expires_at: Option<String>,
    pub registered_at: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DrawRunBody {
    pub draw_id: Id,
    pub state: String,
    pub already_drawn: bool,
}

#[derive(Serialize, ToSchema)]
pub struct VerifyBody {
    pub valid: bool,
    /// Whether the token was used already (verify never uses it).
    pub redeemed: bool,
    pub claims: HandoffClaims,
}

#[derive(Serialize, ToSchema)]
pub struct RedeemBody {
    pub redeemed: bool,
    pub claims: HandoffClaims,
}

#[derive(Serialize, ToSchema)]
pub struct Jwk {
    pub kty: String,
    pub crv: String,
    pub alg: String,
    #[serde(rename = "use")]
    pub use_: String,
    pub kid: String,
    pub x: String,
}

#[derive(Serialize, ToSchema)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PausedBody {
    pub sequence_id: Id,
    pub paused: bool,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct InventoryReply {
    pub experience_id: Id,
    pub remaining: Option<u64>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnnouncementReply {
    pub experience_id: Id,
    pub message: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    pub status: String,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Ready {
    pub status: String,
    pub schema_version: u32,
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        let components = api.components.get_or_insert_with(Default::default);
        for name in ["session", "merchant", "admin"] {
            let scheme = SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer));
            components.add_security_scheme(name, scheme);
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Velvet",
        description = "A self-hosted virtual waiting room. WebSocket messages on \
                       /v1/ws are described in docs/DESIGN.md."
    ),
    paths(
        sessions::create,
        experiences::show,
        experiences::status,
        experiences::enter,
        queues::enter,
        queues::position,
        queues::leave,
        draws::enter,
        draws::result,
        draws::proof,
        draws::run,
        handoff::verify,
        handoff::redeem,
        handoff::jwks,
        admin::put_experience,
        admin::show_experience,
        admin::pause,
        admin::resume,
        admin::patch_sequence,
        admin::put_inventory,
        admin::put_announcement,
        ops::healthz,
        ops::readyz,
        ops::metrics,
    ),
    components(schemas(
        ErrorBody, Experience, Sequence, SequencePatch, Kind, EntryState, Proof, HandoffClaims
    )),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

pub async fn openapi_json() -> Json<&'static utoipa::openapi::OpenApi> {
    static DOC: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    Json(DOC.get_or_init(ApiDoc::openapi))
}
