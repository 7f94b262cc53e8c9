//! Handoff tokens: the EdDSA JWT an admitted consumer carries to checkout.

use jsonwebtoken::{Algorithm, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{HandoffKeys, TokenError};
use crate::domain::{Grant, Id, Kind};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HandoffClaims {
    pub iss: String,
    pub aud: String,
    pub sub: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub jti: String,
    pub experience_id: String,
    pub sequence_id: String,
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
}

/// What the leader knows about one admission when it mints a token.
pub struct Admission<'a> {
    pub consumer: Uuid,
    pub experience: &'a Id,
    pub sequence: &'a Id,
    pub kind: Kind,
    pub external_id: Option<String>,
    pub now_ms: i64,
    pub ttl_ms: i64,
}

pub struct HandoffSigner {
    keys: HandoffKeys,
    issuer: String,
    audience: String,
    header: Header,
    validation: Validation,
}

impl HandoffSigner {
    pub fn new(keys: HandoffKeys, issuer: &str, audience: &str) -> Self {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(keys.kid.clone());
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        // Nodes share a clock closely enough; expiry is exact, as the store's is.
        validation.leeway = 0;
        Self {
            keys,
            issuer: issuer.into(),
            audience: audience.into(),
            header,
            validation,
        }
    }

    pub fn keys(&self) -> &HandoffKeys {
        &self.keys
    }

    pub fn mint(&self, a: &Admission<'_>) -> Result<Grant, TokenError> {
        let expires_at = a.now_ms + a.ttl_ms;
        let claims = HandoffClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: a.consumer.to_string(),
            iat: a.now_ms / 1000,
            nbf: a.now_ms / 1000,
            exp: expires_at / 1000,
            jti: Uuid::new_v4().simple().to_string(),
            experience_id: a.experience.to_string(),
            sequence_id: a.sequence.to_string(),
            kind: a.kind.as_str().into(),
            external_id: a.external_id.clone(),
        };
        let token = jsonwebtoken::encode(&self.header, &claims, &self.keys.signing)?;
        // The store expires the grant when the token does, to the second.
        Ok(Grant {
            jti: claims.jti,
            token,
            expires_at: claims.exp * 1000,
        })
    }

    /// Checks signature, algorithm, key id, issuer, audience and times.
    pub fn verify(&self, token: &str) -> Result<HandoffClaims, TokenError> {
        let header = jsonwebtoken::decode_header(token)?;
        if header.alg != Algorithm::EdDSA {
            return Err(TokenError::Invalid);
        }
        let kid = header.kid.ok_or(TokenError::Invalid)?;
        let key = self.keys.find(&kid).ok_or(TokenError::Invalid)?;
        let data = jsonwebtoken::decode::<HandoffClaims>(token, key, &self.validation)?;
        Ok(data.claims)
    }
}
