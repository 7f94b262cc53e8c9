//! Experiences (launch events) and their sequences (access stages), as the
//! admin API takes them, with the validation that names the bad field.

use serde::de::IgnoredAny;
use serde::{Deserialize, Deserializer, Serialize};

use super::clock::rfc3339_ms;
use super::id::Id;

pub const DEFAULT_TOKEN_TTL_SECONDS: u64 = 600;
pub const DEFAULT_ADMIT_PER_MINUTE: u64 = 600;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Queue,
    Draw,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Queue => "queue",
            Kind::Draw => "draw",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExperienceState {
    Scheduled,
    Open,
    Paused,
    SoldOut,
    Closed,
}

/// Where a sequence stands at one instant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Window {
    Scheduled,
    Open,
    Closed,
}

#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Experience {
    /// Taken from the URL on upsert; present in files and in storage.
    #[serde(default)]
    pub id: Option<Id>,
    pub name: String,
    /// Stock at upsert; the live counter is kept by the store.
    #[serde(default)]
    pub inventory: Option<u64>,
    #[serde(default)]
    pub checkout_url: Option<String>,
    pub sequences: Vec<Sequence>,
    /// Read-only fields of a `GET`, ignored so that its output can be put back.
    #[serde(default, skip_serializing)]
    #[schema(ignore)]
    pub state: IgnoredAny,
    #[serde(default, skip_serializing)]
    #[schema(ignore)]
    pub live: IgnoredAny,
    #[serde(default, skip_serializing)]
    #[schema(ignore)]
    pub inventory_remaining: IgnoredAny,
    #[serde(default, skip_serializing)]
    #[schema(ignore)]
    pub announcement: IgnoredAny,
}

#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Sequence {
    pub id: Id,
    pub name: String,
    pub kind: Kind,
    /// Missing means open from the moment it is defined.
    #[serde(default, with = "rfc3339_ms")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub opens_at: Option<i64>,
    #[serde(default, with = "rfc3339_ms")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub closes_at: Option<i64>,
    #[serde(default)]
    pub max_participants: Option<u64>,
    #[serde(default)]
    pub token_ttl_seconds: Option<u64>,
    #[serde(default)]
    pub admit_per_minute: Option<u64>,
    #[serde(default)]
    pub max_active: Option<u64>,
    #[serde(default)]
    pub winners: Option<u64>,
    #[serde(default)]
    pub require_account: bool,
    /// Set by the pause and resume admin routes.
    #[serde(default)]
    pub paused: bool,
    /// Read-only in a `GET`; ignored on the way back in.
    #[serde(default, skip_serializing)]
    #[schema(ignore)]
    pub state: IgnoredAny,
}

/// The live changes `PATCH /v1/admin/sequences/{id}` accepts; `null` removes
/// a limit, a missing field leaves it alone.
#[derive(Clone, Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SequencePatch {
    #[serde(default, deserialize_with = "present")]
    pub admit_per_minute: Option<Option<u64>>,
    #[serde(default, deserialize_with = "present")]
    pub max_active: Option<Option<u64>>,
    #[serde(default, deserialize_with = "present")]
    pub max_participants: Option<Option<u64>>,
    #[serde(default, deserialize_with = "present_time")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub closes_at: Option<Option<i64>>,
}

fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Ok(Some(Option::deserialize(d)?))
}

fn present_time<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<i64>>, D::Error> {
    Ok(Some(rfc3339_ms::deserialize(d)?))
}

/// A definition that breaks a rule, with the JSON path of the culprit.
#[derive(Debug, thiserror::Error)]
#[error("{field}: {reason}")]
pub struct Invalid {
    pub field: String,
    pub reason: String,
}

fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Invalid {
    Invalid {
        field: field.into(),
        reason: reason.into(),
    }
}

impl Experience {
    pub fn id(&self) -> &Id {
        // Upsert and file loading always set the id before storing.
        self.id.as_ref().expect("stored experiences carry their id")
    }

    pub fn sequence(&self, id: &Id) -> Option<&Sequence> {
        self.sequences.iter().find(|s| &s.id == id)
    }

    pub fn sequence_mut(&mut self, id: &Id) -> Option<&mut Sequence> {
        self.sequences.iter_mut().find(|s| &s.id == id)
    }

    /// Checks every rule and fills defaults, so stored definitions are whole.
    pub fn validate(&mut self) -> Result<(), Invalid> {
        if self.name.trim().is_empty() || self.name.chars().count() > 200 {
            return Err(invalid("name", "must be 1 to 200 characters"));
        }
        if let Some(url) = &self.checkout_url
            && !is_checkout_url(url)
        {
            return Err(invalid(
                "checkoutUrl",
                "must be an http(s) URL or a path starting with /",
            ));
        }
        if self.sequences.is_empty() || self.sequences.len() > 16 {
            return Err(invalid("sequences", "must hold 1 to 16 sequences"));
        }
        for i in 0..self.sequences.len() {
            let id = &self.sequences[i].id;
            if self.sequences[..i].iter().any(|s| &s.id == id) {
                return Err(invalid(format!("sequences[{i}].id"), "is used twice"));
            }
            self.sequences[i].validate(&format!("sequences[{i}]"))?;
        }
        Ok(())
    }

    /// The state shown to consumers, given the live inventory.
    pub fn state_at(&self, now: i64, inventory: Option<u64>) -> ExperienceState {
        if inventory == Some(0) {
            return ExperienceState::SoldOut;
        }
        if let Some(open) = self
            .sequences
            .iter()
            .find(|s| s.window(now) == Window::Open)
        {
            return if open.paused {
                ExperienceState::Paused
            } else {
                ExperienceState::Open
            };
        }
        if self
            .sequences
            .iter()
            .any(|s| s.window(now) == Window::Scheduled)
        {
            ExperienceState::Scheduled
        } else {
            ExperienceState::Closed
        }
    }

    /// The sequence a consumer entering the experience now should join: the
    /// open one, or else the next one to open.
    pub fn current_sequence(&self, now: i64) -> Option<&Sequence> {
        let open = self
            .sequences
            .iter()
            .find(|s| s.window(now) == Window::Open);
        open.or_else(|| {
            self.sequences
                .iter()
                .filter(|s| s.window(now) == Window::Scheduled)
                .min_by_key(|s| s.opens_at)
        })
    }
}

/// An absolute http(s) URL, or a path on the node itself (`/demo/checkout`).
/// `//host` is refused: browsers read it as another host, not a path.
/// An absolute http(s) URL with a host, or a path on this node. Browsers
/// drop tabs and newlines inside URLs, so `/\t/evil` would turn into
/// `//evil` and leave the site: no whitespace or control characters at all.
fn is_checkout_url(url: &str) -> bool {
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) || url.contains('\\') {
        return false;
    }
    let host = |rest: &str| {
        rest.split(['/', '?', '#'])
            .next()
            .is_some_and(|h| !h.is_empty())
    };
    match (url.strip_prefix("https://"), url.strip_prefix("http://")) {
        (Some(rest), _) | (None, Some(rest)) => host(rest),
        _ => url.starts_with('/') && !url.starts_with("//"),
    }
}

impl Sequence {
    fn validate(&mut self, at: &str) -> Result<(), Invalid> {
        let field = |name: &str| format!("{at}.{name}");
        if self.name.trim().is_empty() || self.name.chars().count() > 200 {
            return Err(invalid(field("name"), "must be 1 to 200 characters"));
        }
        if let (Some(open), Some(close)) = (self.opens_at, self.closes_at)
            && close <= open
        {
            return Err(invalid(field("closesAt"), "must be after opensAt"));
        }
        let ttl = self.token_ttl_seconds.unwrap_or(DEFAULT_TOKEN_TTL_SECONDS);
        if !(10..=86_400).contains(&ttl) {
            return Err(invalid(field("tokenTtlSeconds"), "must be 10 to 86400"));
        }
        self.token_ttl_seconds = Some(ttl);
        for (name, value) in [
            ("maxParticipants", self.max_participants),
            ("maxActive", self.max_active),
            ("winners", self.winners),
        ] {
            if value == Some(0) {
                return Err(invalid(field(name), "must be at least 1 (or null)"));
            }
        }
        match self.kind {
            Kind::Queue => {
                if self.winners.is_some() {
                    return Err(invalid(field("winners"), "applies to draws only"));
                }
                let rate = self.admit_per_minute.unwrap_or(DEFAULT_ADMIT_PER_MINUTE);
                if !(1..=1_000_000).contains(&rate) {
                    return Err(invalid(field("admitPerMinute"), "must be 1 to 1000000"));
                }
                self.admit_per_minute = Some(rate);
            }
            Kind::Draw => {
                if self.admit_per_minute.is_some() || self.max_active.is_some() {
                    return Err(invalid(
                        field("admitPerMinute"),
                        "applies to queues only",
                    ));
                }
                if self.winners.is_none() {
                    return Err(invalid(field("winners"), "is required for a draw"));
                }
            }
        }
        Ok(())
    }

    pub fn window(&self, now: i64) -> Window {
        if self.closes_at.is_some_and(|c| now >= c) {
            Window::Closed
        } else if self.opens_at.is_none_or(|o| now >= o) {
            Window::Open
        } else {
            Window::Scheduled
        }
    }

    pub fn opens_at_or_epoch(&self) -> i64 {
        self.opens_at.unwrap_or(0)
    }

    pub fn token_ttl_ms(&self) -> i64 {
        let secs = self.token_ttl_seconds.unwrap_or(DEFAULT_TOKEN_TTL_SECONDS);
        i64::try_from(secs).unwrap_or(i64::MAX / 1000) * 1000
    }

    pub fn admit_per_minute(&self) -> u64 {
        self.admit_per_minute.unwrap_or(DEFAULT_ADMIT_PER_MINUTE)
    }

    /// Applies a live change and re-checks the rules.
    pub fn apply(&mut self, patch: &SequencePatch) -> Result<(), Invalid> {
        let mut next = self.clone();
        if let Some(v) = patch.admit_per_minute {
            next.admit_per_minute = v;
        }
        if let Some(v) = patch.max_active {
            next.max_active = v;
        }
        if let Some(v) = patch.max_participants {
            next.max_participants = v;
        }
        if let Some(v) = patch.closes_at {
            next.closes_at = v;
        }
        next.validate("")
            .map_err(|e| invalid(e.field.trim_start_matches('.'), e.reason))?;
        *self = next;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Experience {
        serde_json::from_str(json).expect("valid json")
    }

    #[test]
    fn checkout_urls_cannot_leave_the_site_through_whitespace() {
        for ok in [
            "https://shop.example/checkout",
            "http://127.0.0.1:8080/x",
            "/demo/checkout",
        ] {
            assert!(is_checkout_url(ok), "{ok}");
        }
        for bad in [
            "/\t/evil.example",
            "/\n/evil",
            "//evil",
            "/\\evil",
            "http://",
            "https:///x",
            "javascript:x",
        ] {
            assert!(!is_checkout_url(bad), "{bad:?}");
        }
    }

    #[test]
    fn a_bad_field_is_named_in_the_error() {
        let mut e = parse(
            r#"{"name":"X","sequences":[{"id":"a","name":"A","kind":"queue",
                "admitPerMinute":0}]}"#,
        );
        let err = e.validate().unwrap_err();
        assert_eq!(err.field, "sequences[0].admitPerMinute");
    }

    #[test]
    fn a_checkout_url_may_be_absolute_or_a_path_on_the_node() {
        let with_url = |url: &str| {
            parse(&format!(
                r#"{{"name":"X","checkoutUrl":"{url}",
                    "sequences":[{{"id":"a","name":"A","kind":"queue"}}]}}"#
            ))
        };
        for good in ["https://shop.example/checkout", "/demo/checkout"] {
            assert!(with_url(good).validate().is_ok(), "{good}");
        }
        for bad in ["//evil.example/checkout", "javascript:alert(1)", "checkout"] {
            let err = with_url(bad).validate().unwrap_err();
            assert_eq!(err.field, "checkoutUrl", "{bad}");
        }
    }

    #[test]
    fn a_missing_opens_at_means_open_now_and_defaults_are_filled() {
        let mut e =
            parse(r#"{"name":"X","sequences":[{"id":"a","name":"A","kind":"queue"}]}"#);
        e.validate().unwrap();
        let s = &e.sequences[0];
        assert_eq!(s.window(0), Window::Open);
        assert_eq!(s.admit_per_minute, Some(DEFAULT_ADMIT_PER_MINUTE));
        assert_eq!(e.state_at(0, None), ExperienceState::Open);
        assert_eq!(e.state_at(0, Some(0)), ExperienceState::SoldOut);
    }
}
