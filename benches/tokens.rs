//! What a handoff token costs to mint and to verify: Velvet's EdDSA signer,
//! and the same claims through jsonwebtoken with ES256 and HS256 for
//! comparison. The bare signatures, without JWT encoding, show how much of
//! each figure is the curve and how much the wrapping.
//!
//! Figures and how to read them: `benches/README.md`.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use p256::elliptic_curve::sec1::ToEncodedPoint;
use p256::pkcs8::EncodePrivateKey;
use uuid::Uuid;
use velvet::domain::clock::now_ms;
use velvet::domain::{Id, Kind};
use velvet::tokens::handoff::Admission;
use velvet::tokens::{HandoffClaims, HandoffKeys, HandoffSigner};

const ISSUER: &str = "https://velvet.bench";
const AUDIENCE: &str = "bench-shop";

/// One algorithm set up as jsonwebtoken users would: keys parsed once,
/// validation as strict as Velvet's own.
struct Jwt {
    name: &'static str,
    header: Header,
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl Jwt {
    fn new(alg: Algorithm, encoding: EncodingKey, decoding: DecodingKey) -> Self {
        let mut validation = Validation::new(alg);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = 0;
        let name = match alg {
            Algorithm::EdDSA => "jwt_eddsa",
            Algorithm::ES256 => "jwt_es256",
            Algorithm::HS256 => "jwt_hs256",
            _ => "jwt",
        };
        Self {
            name,
            header: Header::new(alg),
            encoding,
            decoding,
            validation,
        }
    }

    fn mint(&self, claims: &HandoffClaims) -> String {
        jsonwebtoken::encode(&self.header, claims, &self.encoding).expect("encode")
    }

    fn verify(&self, token: &str) -> HandoffClaims {
        jsonwebtoken::decode(token, &self.decoding, &self.validation)
            .expect("a valid token")
            .claims
    }
}

/// A fresh P-256 key; a random scalar is out of range with odds near 2^-32.
fn p256_key() -> p256::SecretKey {
    loop {
        if let Ok(key) = p256::SecretKey::from_slice(&rand::random::<[u8; 32]>()) {
            return key;
        }
    }
}

fn es256() -> Jwt {
    let key = p256_key();
    let der = key.to_pkcs8_der().expect("PKCS#8 of a fresh key");
    let public = key.public_key().to_encoded_point(false);
    Jwt::new(
        Algorithm::ES256,
        EncodingKey::from_ec_der(der.as_bytes()),
        DecodingKey::from_ec_der(public.as_bytes()),
    )
}

fn hs256() -> Jwt {
    let secret: [u8; 32] = rand::random();
    Jwt::new(
        Algorithm::HS256,
        EncodingKey::from_secret(&secret),
        DecodingKey::from_secret(&secret),
    )
}

/// Velvet's own key through jsonwebtoken, without the signer's claim building.
fn eddsa(signer: &HandoffSigner) -> Jwt {
    let keys = signer.keys();
    let decoding = keys.find(&keys.kid).expect("own key verifies").clone();
    let mut jwt = Jwt::new(Algorithm::EdDSA, keys.signing.clone(), decoding);
    jwt.header.kid = Some(keys.kid.clone());
    jwt
}

fn bench_tokens(c: &mut Criterion) {
    let signer = HandoffSigner::new(HandoffKeys::generate(), ISSUER, AUDIENCE);
    let experience = Id::parse("spring-drop").expect("id");
    let sequence = Id::parse("spring-general").expect("id");
    let admission = Admission {
        consumer: Uuid::new_v4(),
        experience: &experience,
        sequence: &sequence,
        kind: Kind::Queue,
        external_id: None,
        now_ms: now_ms(),
        ttl_ms: 600_000,
    };
    let token = signer.mint(&admission).expect("mint").token;
    // Every algorithm signs exactly the claims Velvet puts in its tokens.
    let claims = signer.verify(&token).expect("own token verifies");
    let jwts = [eddsa(&signer), es256(), hs256()];

    let mut group = c.benchmark_group("mint");
    group.throughput(Throughput::Elements(1));
    group.bench_function("velvet_eddsa", |b| {
        b.iter(|| signer.mint(black_box(&admission)).expect("mint"))
    });
    for jwt in &jwts {
        group.bench_function(jwt.name, |b| b.iter(|| jwt.mint(black_box(&claims))));
    }
    group.finish();

    let mut group = c.benchmark_group("verify");
    group.throughput(Throughput::Elements(1));
    group.bench_function("velvet_eddsa", |b| {
        b.iter(|| signer.verify(black_box(&token)).expect("verify"))
    });
    for jwt in &jwts {
        let token = jwt.mint(&claims);
        assert_eq!(jwt.verify(&token), claims);
        group.bench_function(jwt.name, |b| b.iter(|| jwt.verify(black_box(&token))));
    }
    group.finish();

    bench_signatures(c, token.rsplit_once('.').expect("a JWT").0.as_bytes());
}

/// The curves alone on the same signing input, keys already parsed:
/// jsonwebtoken parses its key again on every call.
fn bench_signatures(c: &mut Criterion, input: &[u8]) {
    // One `signature` crate serves both curves.
    use ed25519_dalek::{Signer as _, Verifier as _};

    let ed = ed25519_dalek::SigningKey::from_bytes(&rand::random());
    let ed_public = ed.verifying_key();
    let ed_sig = ed.sign(input);
    let ec = p256::ecdsa::SigningKey::from(p256_key());
    let ec_public = *ec.verifying_key();
    let ec_sig: p256::ecdsa::Signature = ec.sign(input);

    let mut group = c.benchmark_group("signature");
    group.throughput(Throughput::Elements(1));
    group.bench_function("ed25519_sign", |b| b.iter(|| ed.sign(black_box(input))));
    group.bench_function("ed25519_verify", |b| {
        b.iter(|| ed_public.verify(black_box(input), &ed_sig).expect("verify"))
    });
    group.bench_function("p256_sign", |b| {
        b.iter(|| -> p256::ecdsa::Signature { ec.sign(black_box(input)) })
    });
    group.bench_function("p256_verify", |b| {
        b.iter(|| ec_public.verify(black_box(input), &ec_sig).expect("verify"))
    });
    group.finish();
}

criterion_group!(benches, bench_tokens);
criterion_main!(benches);
