//! The hosted pages: the waiting room `/e/{id}` and the public status page
//! `/status/{id}`.
//!
//! Both are rendered whole on the server from this node's catalog, so they
//! read at once and cost the store nothing; their scripts then follow the
//! live state through the SDK (waiting room) or the status JSON.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::assets::{ROOM_JS, STATUS_JS};
use super::html::{self, Page, escape, fill};
use crate::app::AppState;
use crate::domain::Id;
use crate::domain::clock::now_ms;
use crate::http::experiences::{self, describe};
use crate::http::extract::IdPath;
use crate::store::StoredExperience;

const ROOM: &str = include_str!("assets/room.html");
const STATUS: &str = include_str!("assets/status.html");

/// Without scripts, the status page still refreshes itself.
const NOSCRIPT_REFRESH: &str =
    "<noscript><meta http-equiv=\"refresh\" content=\"30\"></noscript>\n";

fn find(app: &AppState, raw: &str) -> Option<Arc<StoredExperience>> {
    let id = Id::parse(raw).ok()?;
    app.catalog.snapshot().experiences.get(&id).cloned()
}

fn unknown() -> Response {
    html::message(
        StatusCode::NOT_FOUND,
        "Nothing here",
        "There is no waiting room at this address. Check the link you followed.",
    )
}

pub async fn room(State(app): State<AppState>, Path(raw): Path<String>) -> Response {
    let Some(stored) = find(&app, &raw) else {
        return unknown();
    };
    let now = now_ms();
    let exp = &stored.experience;
    let current = exp.current_sequence(now).map_or("", |s| s.name.as_str());
    let announcement = stored.announcement.as_deref().unwrap_or("");
    let body = fill(
        ROOM,
        &[
            ("name", &escape(&exp.name)),
            ("sequence", &escape(current)),
            ("announcement", &escape(announcement)),
            ("announcement_hidden", hidden_if(announcement.is_empty())),
        ],
    );
    let title = format!("{} · waiting room", exp.name);
    Page::new(&title, body)
        .script(&ROOM_JS, &room_config(&stored, now))
        .into_response()
}

fn hidden_if(hide: bool) -> &'static str {
    if hide { "hidden" } else { "" }
}

/// What the page script needs to pick its flow: the sequences with their
/// windows, the one open now, and where admitted people go.
fn room_config(stored: &StoredExperience, now: i64) -> Value {
    let described = describe(stored, now);
    let current = stored
        .experience
        .current_sequence(now)
        .map(|s| json!({ "id": s.id, "kind": s.kind, "state": s.window(now) }));
    json!({
        "experienceId": stored.experience.id(),
        "name": stored.experience.name,
        "state": described["state"],
        "checkoutUrl": described["checkoutUrl"],
        "announcement": described["announcement"],
        "sequences": described["sequences"],
        "current": current,
    })
}

pub async fn status(State(app): State<AppState>, Path(raw): Path<String>) -> Response {
    let Some(stored) = find(&app, &raw) else {
        return unknown();
    };
    let id = stored.experience.id().clone();
    // The same numbers as `GET /v1/experiences/{id}/status`, by its code.
    let data = match experiences::status(State(app), IdPath(id.clone())).await {
        Ok(Json(body)) => serde_json::to_value(&body).unwrap_or_default(),
        Err(e) => return html::message(e.status(), "Status unavailable", &e.to_string()),
    };
    let name = &stored.experience.name;
    let owned = status_slots(name, &data);
    let slots: Vec<(&str, &str)> = owned.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let body = fill(STATUS, &slots);
    let title = format!("{name} · status");
    Page::new(&title, body)
        .head(NOSCRIPT_REFRESH)
        .script(&STATUS_JS, &json!({ "experienceId": id, "status": data }))
        .into_response()
}

fn status_slots<'a>(name: &str, data: &Value) -> Vec<(&'a str, String)> {
    let count = |key: &str| data[key].as_u64().map_or("–".into(), |n| n.to_string());
    let announcement = data["announcement"].as_str().unwrap_or("");
    vec![
        ("name", escape(name)),
        ("state", escape(data["state"].as_str().unwrap_or(""))),
        (
            "state_label",
            state_label(data["state"].as_str()).to_owned(),
        ),
        ("depth", count("queueDepth")),
        ("wait", wait_label(data["estimatedWaitSeconds"].as_u64())),
        ("admitted", count("admittedTotal")),
        ("inventory", count("inventoryRemaining")),
        ("announcement", escape(announcement)),
        (
            "announcement_hidden",
            hidden_if(announcement.is_empty()).into(),
        ),
        ("updated", escape(data["updatedAt"].as_str().unwrap_or(""))),
    ]
}

/// The words the status script uses too (`assets/status.js`).
fn state_label(state: Option<&str>) -> &'static str {
    match state {
        Some("open") => "Open",
        Some("paused") => "Paused",
        Some("sold_out") => "Sold out",
        Some("scheduled") => "Opens soon",
        Some("closed") => "Closed",
        _ => "Unknown",
    }
}

/// A wait as a person reads it; rounded, since it is an estimate.
pub fn wait_label(seconds: Option<u64>) -> String {
    match seconds {
        None => "Not known yet".into(),
        Some(s) if s < 60 => "Less than a minute".into(),
        Some(s) if s < 3600 => {
            let minutes = s.div_ceil(60);
            format!(
                "About {minutes} minute{}",
                if minutes == 1 { "" } else { "s" }
            )
        }
        Some(s) => format!("About {} h {} min", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_are_rounded_for_people() {
        assert_eq!(wait_label(None), "Not known yet");
        assert_eq!(wait_label(Some(30)), "Less than a minute");
        assert_eq!(wait_label(Some(61)), "About 2 minutes");
        assert_eq!(wait_label(Some(3 * 3600 + 120)), "About 3 h 2 min");
    }
}
