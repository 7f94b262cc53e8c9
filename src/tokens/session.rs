//! Session tokens: an anonymous consumer id (and, when the shop vouches for
//! it, the shop's account id) signed with a secret all nodes share, so any
//! node recognises the same person without a store lookup.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::TokenError;
use super::shop::ShopKeys;

const SESSION_AUDIENCE: &str = "velvet-session";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionClaims {
    pub sub: Uuid,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    /// The shop's account id, when bound by an assertion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ext: Option<String>,
}

pub struct SessionSigner {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl_seconds: i64,
    shop: Option<ShopKeys>,
}

impl SessionSigner {
    pub fn new(secret: &[u8], ttl_seconds: u64, shop: Option<ShopKeys>) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&[SESSION_AUDIENCE]);
        // A little slack for clocks between nodes, not the library's minute.
        validation.leeway = 5;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            ttl_seconds: i64::try_from(ttl_seconds).unwrap_or(i64::MAX / 2),
            shop,
        }
    }

    /// A new session; returns its claims and the signed token.
    pub fn issue(
        &self,
        now_s: i64,
        ext: Option<String>,
    ) -> Result<(SessionClaims, String), TokenError> {
        let claims = SessionClaims {
            sub: Uuid::new_v4(),
            aud: SESSION_AUDIENCE.into(),
            iat: now_s,
            exp: now_s + self.ttl_seconds,
            ext,
        };
        let token = jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.encoding,
        )?;
        Ok((claims, token))
    }

    pub fn verify(&self, token: &str) -> Result<SessionClaims, TokenError> {
        Ok(jsonwebtoken::decode::<SessionClaims>(
            token,
            &self.decoding,
            &self.validation,
        )?
        .claims)
    }

    /// The account id of a shop-signed assertion. `None` when no shop key
    /// is configured, so that assertions cannot be accepted unverified.
    pub fn account_of(&self, assertion: &str) -> Option<Result<String, TokenError>> {
        Some(self.shop.as_ref()?.account_of(assertion))
    }
}
