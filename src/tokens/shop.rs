//! Keys a shop signs account assertions with: one HS256 secret, or the
//! public keys of a JWKS file (RS256, ES256, EdDSA, …) for shops that would
//! rather not share a secret with us.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::TokenError;

pub enum ShopKeys {
    Secret(DecodingKey),
    Jwks(Vec<ShopKey>),
}

pub struct ShopKey {
    kid: Option<String>,
    key: DecodingKey,
    /// From the JWK when it names one; else the token's own header, which
    /// the library still checks against the key's family.
    alg: Option<Algorithm>,
}

#[derive(Deserialize)]
struct Assertion {
    sub: String,
}

impl ShopKeys {
    pub fn secret(secret: &[u8]) -> Self {
        Self::Secret(DecodingKey::from_secret(secret))
    }

    /// Reads a JWKS document (`{"keys":[…]}`).
    pub fn from_jwks(text: &str) -> Result<Self, TokenError> {
        let set: JwkSet =
            serde_json::from_str(text).map_err(|e| TokenError::Key(e.to_string()))?;
        let mut keys = Vec::new();
        for jwk in &set.keys {
            let key =
                DecodingKey::from_jwk(jwk).map_err(|e| TokenError::Key(e.to_string()))?;
            let alg = jwk
                .common
                .key_algorithm
                .and_then(|a| a.to_string().parse::<Algorithm>().ok());
            keys.push(ShopKey {
                kid: jwk.common.key_id.clone(),
                key,
                alg,
            });
        }
        if keys.is_empty() {
            return Err(TokenError::Key("the JWKS holds no key".into()));
        }
        Ok(Self::Jwks(keys))
    }

    /// The account id (`sub`) of a valid assertion.
    pub fn account_of(&self, assertion: &str) -> Result<String, TokenError> {
        let header = jsonwebtoken::decode_header(assertion)?;
        let (key, alg) = match self {
            ShopKeys::Secret(key) => (key, Algorithm::HS256),
            ShopKeys::Jwks(keys) => {
                let found = match &header.kid {
                    Some(kid) => keys.iter().find(|k| k.kid.as_deref() == Some(kid)),
                    None if keys.len() == 1 => keys.first(),
                    None => None,
                };
                let found = found.ok_or(TokenError::Invalid)?;
                (&found.key, found.alg.unwrap_or(header.alg))
            }
        };
        let mut validation = Validation::new(alg);
        validation.validate_aud = false;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        let data = jsonwebtoken::decode::<Assertion>(assertion, key, &validation)?;
        let sub = data.claims.sub;
        let ok = !sub.is_empty() && sub.len() <= 256;
        ok.then_some(sub).ok_or(TokenError::Invalid)
    }
}
