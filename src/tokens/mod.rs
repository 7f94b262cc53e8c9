//! Signed tokens: session tokens that carry a consumer's identity (HS256,
//! a secret shared by all nodes) and handoff tokens that the shop's checkout
//! verifies offline (EdDSA, public keys in the JWKS).

pub mod handoff;
pub mod keys;
pub mod session;
pub mod shop;

pub use handoff::{HandoffClaims, HandoffSigner};
pub use keys::HandoffKeys;
pub use session::{SessionClaims, SessionSigner};
pub use shop::ShopKeys;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("token expired")]
    Expired,
    #[error("invalid token")]
    Invalid,
    #[error("key material: {0}")]
    Key(String),
}

impl From<jsonwebtoken::errors::Error> for TokenError {
    fn from(e: jsonwebtoken::errors::Error) -> Self {
        match e.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenError::Expired,
            _ => TokenError::Invalid,
        }
    }
}
