//! Merchant routes: verify a handoff token, or redeem it once; and the JWKS
//! that lets a checkout verify tokens offline.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use serde_json::{Value, json};
use uuid::Uuid;

use super::error::ApiError;
use super::extract::{ApiJson, MerchantKey};
use crate::app::AppState;
use crate::domain::Id;
use crate::domain::clock::now_ms;
use crate::store::RedeemOutcome;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenBody {
    token: String,
}

pub async fn jwks(State(app): State<AppState>) -> Json<Value> {
    Json(app.handoff.keys().jwks())
}

pub async fn verify(
    State(app): State<AppState>,
    _key: MerchantKey,
    ApiJson(body): ApiJson<TokenBody>,
) -> Result<Json<Value>, ApiError> {
    let claims = app.handoff.verify(&body.token)?;
    Ok(Json(json!({ "valid": true, "claims": claims })))
}

pub async fn redeem(
    State(app): State<AppState>,
    _key: MerchantKey,
    ApiJson(body): ApiJson<TokenBody>,
) -> Result<Json<Value>, ApiError> {
    let claims = app.handoff.verify(&body.token)?;
    // A validly signed token names an id and a consumer we minted.
    let seq = Id::parse(&claims.sequence_id).map_err(|_| ApiError::InvalidToken)?;
    let consumer = Uuid::parse_str(&claims.sub).map_err(|_| ApiError::InvalidToken)?;
    match app
        .store
        .redeem(&seq, consumer, &claims.jti, now_ms())
        .await?
    {
        RedeemOutcome::Redeemed => {
            metrics::counter!("velvet_handoff_redeemed_total", "sequence" => seq.to_string())
                .increment(1);
            Ok(Json(json!({ "redeemed": true, "claims": claims })))
        }
        RedeemOutcome::AlreadyRedeemed => Err(ApiError::AlreadyRedeemed),
        RedeemOutcome::Expired => Err(ApiError::TokenExpired),
        RedeemOutcome::Revoked | RedeemOutcome::Unknown => Err(ApiError::InvalidToken),
    }
}
