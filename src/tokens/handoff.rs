//! Handoff tokens: the EdDSA JWT an admitted consumer carries to checkout.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::pkcs8::DecodePrivateKey;
use ed25519_dalek::{Signer, SigningKey};
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
    /// `None` only if the key could not be parsed back, in which case
    /// minting goes through jsonwebtoken.
    fast: Option<FastSigner>,
    validation: Validation,
}

/// Signs without jsonwebtoken's per-call cost: `encode` rebuilds the key
/// from its PKCS#8 document every time, and for Ed25519 that derives the
/// public key again, as dear as the signature itself. The key is parsed
/// once here, and the header, the same for every token, encoded once.
/// Ed25519 signatures are deterministic, so the tokens are byte for byte
/// those jsonwebtoken makes (a test below holds that).
struct FastSigner {
    key: SigningKey,
    /// `base64url(header JSON) + "."`.
    prefix: String,
}

impl FastSigner {
    fn new(keys: &HandoffKeys, header: &Header) -> Option<Self> {
        let key = SigningKey::from_pkcs8_der(keys.signing.inner()).ok()?;
        let mut prefix = URL_SAFE_NO_PAD.encode(serde_json::to_vec(header).ok()?);
        prefix.push('.');
        Some(Self { key, prefix })
    }

    fn sign(&self, claims: &HandoffClaims) -> Result<String, TokenError> {
        let payload = serde_json::to_vec(claims).map_err(|_| TokenError::Invalid)?;
        // Header, payload at 4/3, and the 86 characters of the signature.
        let mut token =
            String::with_capacity(self.prefix.len() + payload.len() * 4 / 3 + 90);
        token.push_str(&self.prefix);
        URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
        let signature = self.key.sign(token.as_bytes());
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature.to_bytes(), &mut token);
        Ok(token)
    }
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
        let fast = FastSigner::new(&keys, &header);
        Self {
            keys,
            issuer: issuer.into(),
            audience: audience.into(),
            header,
            fast,
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
        let token = match &self.fast {
            Some(fast) => fast.sign(&claims)?,
            None => jsonwebtoken::encode(&self.header, &claims, &self.keys.signing)?,
        };
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

#[cfg(test)]
mod tests {
    use super::*;

    fn admission<'a>(experience: &'a Id, sequence: &'a Id) -> Admission<'a> {
        Admission {
            consumer: Uuid::new_v4(),
            experience,
            sequence,
            kind: Kind::Queue,
            external_id: Some("shop-account-7".into()),
            now_ms: crate::domain::clock::now_ms(),
            ttl_ms: 600_000,
        }
    }

    #[test]
    fn tokens_are_exactly_what_jsonwebtoken_would_sign() {
        let signer = HandoffSigner::new(HandoffKeys::generate(), "velvet", "checkout");
        let (experience, sequence) =
            (Id::parse("drop").unwrap(), Id::parse("q").unwrap());
        assert!(signer.fast.is_some(), "the generated key parses back");

        let grant = signer.mint(&admission(&experience, &sequence)).unwrap();
        let claims = signer.verify(&grant.token).unwrap();
        let slow = jsonwebtoken::encode(&signer.header, &claims, &signer.keys.signing);

        assert_eq!(grant.token, slow.unwrap());
        let header = jsonwebtoken::decode_header(&grant.token).unwrap();
        assert_eq!(header.typ.as_deref(), Some("JWT"));
        assert_eq!(header.kid.as_deref(), Some(signer.keys.kid.as_str()));
    }
}
