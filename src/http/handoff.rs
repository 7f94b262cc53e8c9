//! Merchant routes: verify a handoff token, or redeem it once; and the JWKS
//! that lets a checkout verify tokens offline.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::error::ApiError;
use super::extract::{ApiJson, MerchantKey};
use super::openapi;
use super::openapi::ErrorBody;
use crate::app::AppState;
use crate::domain::clock::now_ms;
use crate::domain::{EntryState, Id, Kind};
use crate::store::{DrawEntryState, RedeemOutcome};
use crate::tokens::HandoffClaims;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenBody {
    token: String,
}

#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "merchant",
    responses((status = 200, body = openapi::Jwks)))]
pub async fn jwks(State(app): State<AppState>) -> Json<Value> {
    Json(app.handoff.keys().jwks())
}

/// A validly signed token names a sequence and a consumer we minted for.
fn subject(claims: &HandoffClaims) -> Result<(Id, Uuid), ApiError> {
    let seq = Id::parse(&claims.sequence_id).map_err(|_| ApiError::InvalidToken)?;
    let consumer = Uuid::parse_str(&claims.sub).map_err(|_| ApiError::InvalidToken)?;
    Ok((seq, consumer))
}

/// Checks a token without using it up; says whether it was redeemed.
#[utoipa::path(post, path = "/v1/handoff/verify", tag = "merchant",
    request_body = TokenBody,
    security(("merchant" = [])),
    responses(
        (status = 200, body = openapi::VerifyBody),
        (status = 400, description = "malformed body", body = ErrorBody),
        (status = 401, description = "invalid or expired token, or no key", body = ErrorBody),
        (status = 403, description = "wrong key", body = ErrorBody),
    ))]
pub async fn verify(
    State(app): State<AppState>,
    _key: MerchantKey,
    ApiJson(body): ApiJson<TokenBody>,
) -> Result<Json<Value>, ApiError> {
    let claims = app.handoff.verify(&body.token)?;
    let (seq, consumer) = subject(&claims)?;
    let redeemed = if claims.kind == Kind::Draw.as_str() {
        let entry = app.store.draw_entry(&seq, consumer).await?;
        entry.is_some_and(|e| {
            e.state == DrawEntryState::Redeemed
                && e.grant.is_some_and(|g| g.jti == claims.jti)
        })
    } else {
        let entry = app.store.entry(&seq, consumer).await?;
        let ours =
            entry.filter(|e| e.grant.as_ref().is_some_and(|g| g.jti == claims.jti));
        // A place given up after admission revokes its token, as redeem says.
        if ours.as_ref().is_some_and(|e| e.state == EntryState::Left) {
            return Err(ApiError::InvalidToken);
        }
        ours.is_some_and(|e| e.state == EntryState::Redeemed)
    };
    Ok(Json(
        json!({ "valid": true, "redeemed": redeemed, "claims": claims }),
    ))
}

/// Uses a token up. Each redemption takes one unit of the experience's
/// inventory, when it has one.
#[utoipa::path(post, path = "/v1/handoff/redeem", tag = "merchant",
    request_body = TokenBody,
    security(("merchant" = [])),
    responses(
        (status = 200, body = openapi::RedeemBody),
        (status = 400, description = "malformed body", body = ErrorBody),
        (status = 401, description = "bad, revoked or expired token; no key", body = ErrorBody),
        (status = 403, description = "wrong key", body = ErrorBody),
        (status = 409, description = "already redeemed", body = ErrorBody),
    ))]
pub async fn redeem(
    State(app): State<AppState>,
    _key: MerchantKey,
    ApiJson(body): ApiJson<TokenBody>,
) -> Result<Json<Value>, ApiError> {
    let claims = app.handoff.verify(&body.token)?;
    let (seq, consumer) = subject(&claims)?;
    // Stock gone (an operator set it to 0): refuse without using the token,
    // which works again after a restock.
    let experience =
        Id::parse(&claims.experience_id).map_err(|_| ApiError::InvalidToken)?;
    let stock = app
        .catalog
        .snapshot()
        .experiences
        .get(&experience)
        .and_then(|s| s.inventory);
    if stock == Some(0) {
        return Err(ApiError::SoldOut);
    }
    let now = now_ms();
    let outcome = if claims.kind == Kind::Draw.as_str() {
        app.store
            .draw_redeem(&seq, consumer, &claims.jti, now)
            .await?
    } else {
        app.store.redeem(&seq, consumer, &claims.jti, now).await?
    };
    match outcome {
        RedeemOutcome::Redeemed => {
            metrics::counter!("velvet_handoff_redeemed_total", "sequence" => seq.to_string())
                .increment(1);
            if let Ok(experience) = Id::parse(&claims.experience_id) {
                app.store.take_inventory(&experience).await?;
            }
            Ok(Json(json!({ "redeemed": true, "claims": claims })))
        }
        RedeemOutcome::AlreadyRedeemed => Err(ApiError::AlreadyRedeemed),
        RedeemOutcome::Expired => Err(ApiError::TokenExpired),
        RedeemOutcome::Revoked | RedeemOutcome::Unknown => Err(ApiError::InvalidToken),
    }
}
