//! Ed25519 key material for handoff tokens and the JWKS that publishes it.
//!
//! The signing key comes from a PKCS#8 PEM file, or is made up at start for
//! development. Older public keys can be listed so that tokens signed before
//! a rotation still verify while they live.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey};
use ed25519_dalek::{SigningKey, VerifyingKey};
use jsonwebtoken::{DecodingKey, EncodingKey};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::TokenError;

pub struct VerifyKey {
    pub kid: String,
    pub key: DecodingKey,
    public: [u8; 32],
}

pub struct HandoffKeys {
    pub kid: String,
    pub signing: EncodingKey,
    pub verifying: Vec<VerifyKey>,
    /// True when the key was generated at start and dies with the process.
    pub ephemeral: bool,
}

/// A short stable key id: the start of the public key's SHA-256.
fn kid_of(public: &[u8; 32]) -> String {
    hex::encode(&Sha256::digest(public)[..8])
}

fn verify_key(public: VerifyingKey) -> VerifyKey {
    let bytes = public.to_bytes();
    VerifyKey {
        kid: kid_of(&bytes),
        key: DecodingKey::from_ed_der(&bytes),
        public: bytes,
    }
}

impl HandoffKeys {
    pub fn from_signing_key(
        key: &SigningKey,
        ephemeral: bool,
    ) -> Result<Self, TokenError> {
        let der = key
            .to_pkcs8_der()
            .map_err(|e| TokenError::Key(e.to_string()))?;
        let own = verify_key(key.verifying_key());
        Ok(Self {
            kid: own.kid.clone(),
            signing: EncodingKey::from_ed_der(der.as_bytes()),
            verifying: vec![own],
            ephemeral,
        })
    }

    /// A fresh key for development and tests.
    pub fn generate() -> Self {
        let key = SigningKey::from_bytes(&rand::random());
        // Encoding a freshly made key as PKCS#8 cannot fail.
        Self::from_signing_key(&key, true).expect("a fresh Ed25519 key encodes")
    }

    pub fn from_pem(pem: &str) -> Result<Self, TokenError> {
        let key = SigningKey::from_pkcs8_pem(pem)
            .map_err(|e| TokenError::Key(format!("not a PKCS#8 Ed25519 key: {e}")))?;
        Self::from_signing_key(&key, false)
    }

    /// Adds a public key (SPKI PEM) that still verifies but no longer signs.
    pub fn add_previous(&mut self, pem: &str) -> Result<(), TokenError> {
        let public = VerifyingKey::from_public_key_pem(pem)
            .map_err(|e| TokenError::Key(format!("not an Ed25519 public key: {e}")))?;
        self.verifying.push(verify_key(public));
        Ok(())
    }

    pub fn find(&self, kid: &str) -> Option<&DecodingKey> {
        self.verifying.iter().find(|k| k.kid == kid).map(|k| &k.key)
    }

    /// The body of `/.well-known/jwks.json`.
    pub fn jwks(&self) -> Value {
        let keys: Vec<Value> = self
            .verifying
            .iter()
            .map(|k| {
                json!({
                    "kty": "OKP",
                    "crv": "Ed25519",
                    "alg": "EdDSA",
                    "use": "sig",
                    "kid": k.kid,
                    "x": URL_SAFE_NO_PAD.encode(k.public),
                })
            })
            .collect();
        json!({ "keys": keys })
    }
}
