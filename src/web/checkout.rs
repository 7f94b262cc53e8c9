//! `/demo/checkout?token=…`: a stand-in for a shop's checkout, so the demo
//! runs end to end. It redeems the handoff token on the server, through the
//! same code as `POST /v1/handoff/redeem`, and shows the token's claims.
//!
//! Only experiences whose `checkoutUrl` is this page opt into it: a real
//! launch's tokens cannot be spent here by whoever holds one.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::html::{self, Page, escape, fill};
use crate::app::AppState;
use crate::domain::Id;
use crate::domain::clock::rfc3339;
use crate::http::error::ApiError;
use crate::http::extract::{ApiJson, MerchantKey};
use crate::http::handoff;

const CHECKOUT: &str = include_str!("assets/checkout.html");
pub const PATH: &str = "/demo/checkout";

#[derive(Deserialize)]
pub struct Params {
    token: Option<String>,
}

pub async fn show(State(app): State<AppState>, Query(params): Query<Params>) -> Response {
    let Some(token) = params.token.filter(|t| !t.is_empty()) else {
        return html::message(
            StatusCode::BAD_REQUEST,
            "No access token",
            "This checkout is reached from a waiting room, with a handoff token.",
        );
    };
    let claims = match app.handoff.verify(&token) {
        Ok(claims) => claims,
        Err(e) => return refused(&ApiError::from(e)),
    };
    if !uses_demo_checkout(&app, &claims.experience_id) {
        return html::message(
            StatusCode::FORBIDDEN,
            "Not this checkout",
            "This experience sends its visitors to its own checkout, not the demo.",
        );
    }
    match redeem(&app, token).await {
        Ok(claims) => receipt(StatusCode::OK, Outcome::Redeemed, &claims),
        Err(ApiError::AlreadyRedeemed) => {
            let claims = serde_json::to_value(&claims).unwrap_or_default();
            receipt(StatusCode::CONFLICT, Outcome::AlreadyUsed, &claims)
        }
        Err(e) => refused(&e),
    }
}

fn uses_demo_checkout(app: &AppState, experience: &str) -> bool {
    let Ok(id) = Id::parse(experience) else {
        return false;
    };
    let snapshot = app.catalog.snapshot();
    let url = snapshot
        .experiences
        .get(&id)
        .and_then(|s| s.experience.checkout_url.clone());
    url.is_some_and(|u| u.split(['?', '#']).next() == Some(PATH))
}

/// Redeems as the merchant route does, so the once-only check, the metric
/// and the inventory count are the same code; no merchant key travels.
async fn redeem(app: &AppState, token: String) -> Result<Value, ApiError> {
    let body = serde_json::from_value(json!({ "token": token }))
        .map_err(|e| ApiError::InvalidRequest(e.to_string()))?;
    let Json(answer) =
        handoff::redeem(State(app.clone()), MerchantKey, ApiJson(body)).await?;
    Ok(answer["claims"].clone())
}

enum Outcome {
    Redeemed,
    AlreadyUsed,
}

fn receipt(status: StatusCode, outcome: Outcome, claims: &Value) -> Response {
    let (outcome, heading, lead) = match outcome {
        Outcome::Redeemed => (
            "redeemed",
            "You're through: checkout is yours",
            "Your access token was checked and redeemed. In a real shop, your \
             cart and payment would be here.",
        ),
        Outcome::AlreadyUsed => (
            "already-redeemed",
            "This access was already used",
            "This token was redeemed before: each one works once.",
        ),
    };
    let body = fill(
        CHECKOUT,
        &[
            ("outcome", outcome),
            ("heading", heading),
            ("lead", lead),
            ("claims", &claim_rows(claims)),
        ],
    );
    Page::new("Demo checkout", body)
        .status(status)
        .into_response()
}

/// The claims as a definition list, times in RFC 3339.
fn claim_rows(claims: &Value) -> String {
    let time = |key: &str| claims[key].as_i64().map(|s| rfc3339(s * 1000));
    let text = |key: &str| claims[key].as_str().map(str::to_owned);
    let rows = [
        ("Consumer (sub)", "sub", text("sub")),
        ("Experience", "experienceId", text("experienceId")),
        ("Sequence", "sequenceId", text("sequenceId")),
        ("Kind", "kind", text("kind")),
        ("Shop account", "externalId", text("externalId")),
        ("Token id (jti)", "jti", text("jti")),
        ("Issued", "iat", time("iat")),
        ("Expires", "exp", time("exp")),
        ("Issuer · audience", "iss", issuer(claims)),
    ];
    let mut out = String::new();
    for (label, key, value) in rows {
        let Some(value) = value else { continue };
        out.push_str(&format!(
            "<div><dt>{}</dt><dd data-claim=\"{key}\">{}</dd></div>\n",
            escape(label),
            escape(&value),
        ));
    }
    out
}

fn issuer(claims: &Value) -> Option<String> {
    let iss = claims["iss"].as_str()?;
    let aud = claims["aud"].as_str().unwrap_or("");
    Some(format!("{iss} · {aud}"))
}

fn refused(error: &ApiError) -> Response {
    let (title, text) = match error.code() {
        "TOKEN_EXPIRED" => (
            "This access has expired",
            "Access tokens are short-lived. Go back to the waiting room to see \
             where you stand.",
        ),
        "INVALID_TOKEN" => (
            "This access token is not valid",
            "The token was changed or was not issued by this waiting room.",
        ),
        _ => (
            "Checkout is unavailable",
            "Something went wrong on our side. Please try again in a moment.",
        ),
    };
    html::message(error.status(), title, text)
}
