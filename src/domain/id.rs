//! Ids of experiences and sequences: `^[a-z0-9][a-z0-9-]{0,63}$`.
//!
//! The pattern keeps ids safe inside Redis key names and hash tags (no
//! braces, no colons) and inside URL paths.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

#[derive(
    Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, utoipa::ToSchema,
)]
#[serde(transparent)]
#[schema(value_type = String, pattern = "^[a-z0-9][a-z0-9-]{0,63}$")]
pub struct Id(String);

#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not a valid id (lowercase letters, digits and '-', 1 to 64)")]
pub struct InvalidId(pub String);

impl Id {
    pub fn parse(text: &str) -> Result<Self, InvalidId> {
        let bytes = text.as_bytes();
        let first_ok = bytes
            .first()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
        let rest_ok = bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
        if first_ok && rest_ok && bytes.len() <= 64 {
            Ok(Self(text.to_owned()))
        } else {
            // Cap the echo so a huge bad id cannot bloat the error body.
            Err(InvalidId(text.chars().take(80).collect()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Id::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::Id;

    #[test]
    fn ids_follow_the_contract_pattern() {
        for ok in ["a", "spring-drop", "0-9", &"a".repeat(64)] {
            assert!(Id::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "-a", "A", "a_b", "a{b}", "a:b", &"a".repeat(65), "é"] {
            assert!(Id::parse(bad).is_err(), "{bad}");
        }
    }
}
