//! The queue end to end over real sockets: sessions, entering, live
//! positions over the WebSocket, admission, and handoff tokens that a
//! checkout verifies with standard JWT code.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{Backend, RedisServer, Session, TestNode, on_both, test_settings};
use futures_util::{StreamExt, stream};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{Value, json};

async fn sessions(node: &TestNode, n: usize) -> Vec<Session> {
    stream::iter(0..n)
        .map(|_| node.session())
        .buffered(50)
        .collect()
        .await
}

async fn jwks(node: &TestNode) -> Value {
    node.http
        .get(node.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Verifies a handoff token the way a checkout would: the JWKS, a standard
/// JWT library, and independently the raw Ed25519 signature.
async fn verify_like_a_checkout(node: &TestNode, token: &str) -> Value {
    let header = jsonwebtoken::decode_header(token).expect("a JWT header");
    assert_eq!(header.alg, Algorithm::EdDSA);
    let kid = header.kid.expect("kid in the header");
    let keys = jwks(node).await;
    let jwk = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .expect("the kid is published");
    assert_eq!(
        (jwk["kty"].as_str(), jwk["crv"].as_str()),
        (Some("OKP"), Some("Ed25519"))
    );
    let x = jwk["x"].as_str().unwrap();

    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_audience(&["checkout"]);
    validation.set_issuer(&["velvet"]);
    let key = DecodingKey::from_ed_components(x).unwrap();
    let claims = jsonwebtoken::decode::<Value>(token, &key, &validation)
        .unwrap()
        .claims;

    let public: [u8; 32] = URL_SAFE_NO_PAD.decode(x).unwrap().try_into().unwrap();
    let verifying = ed25519_dalek::VerifyingKey::from_bytes(&public).unwrap();
    let (signed, signature) = token.rsplit_once('.').unwrap();
    let signature: [u8; 64] = URL_SAFE_NO_PAD
        .decode(signature)
        .unwrap()
        .try_into()
        .unwrap();
    verifying
        .verify_strict(
            signed.as_bytes(),
            &ed25519_dalek::Signature::from_bytes(&signature),
        )
        .expect("the raw Ed25519 signature verifies");
    claims
}

#[tokio::test]
async fn a_person_watches_their_place_move_and_is_admitted_with_a_verifiable_token() {
    on_both(|backend| async move {
        let node = TestNode::start(backend).await;
        node.define_queue("flow", json!({ "admitPerMinute": 600, "paused": true }))
            .await;
        let ahead = sessions(&node, 4).await;
        for s in &ahead {
            assert_eq!(node.enter(s, "flow-q").await.0, 200);
        }
        let me = node.session().await;
        let (status, entered) = node.enter(&me, "flow-q").await;
        assert_eq!((status, entered["position"].as_u64()), (200, Some(5)));

        let mut ws = node.ws(&me).await;
        let first = ws
            .next_of("queue:position-updated")
            .await
            .expect("current place");
        assert_eq!(
            (first["queueId"].as_str(), first["position"].as_u64()),
            (Some("flow-q"), Some(5))
        );

        assert_eq!(
            node.admin_post("/v1/admin/sequences/flow-q/resume").await,
            200
        );
        let mut last = 5;
        let grant = loop {
            let message = ws.next_json().await.expect("a message before the grant");
            match message["type"].as_str() {
                Some("queue:position-updated") => {
                    let position = message["position"].as_u64().unwrap();
                    assert!(position < last, "{position} after {last}");
                    last = position;
                }
                Some("queue:access-granted") => break message,
                _ => {}
            }
        };
        assert!(last < 5, "saw the line move before the grant ({backend:?})");
        assert_eq!(grant["queueId"], "flow-q");
        assert!(grant["expiresAt"].as_str().is_some());

        let token = grant["handoffToken"].as_str().unwrap();
        let claims = verify_like_a_checkout(&node, token).await;
        assert_eq!(claims["sub"], me.consumer_id.as_str());
        assert_eq!(claims["experienceId"], "flow");
        assert_eq!(claims["sequenceId"], "flow-q");
        assert_eq!(claims["kind"], "queue");
        for claim in ["iss", "aud", "iat", "nbf", "exp", "jti"] {
            assert!(!claims[claim].is_null(), "claim {claim} is present");
        }
        let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
        assert_eq!(lifetime, 600, "the default tokenTtlSeconds");
    })
    .await;
}

#[tokio::test]
async fn a_thousand_people_entering_at_once_get_positions_one_to_a_thousand() {
    let node = TestNode::start(Backend::Redis).await;
    node.define_queue("rush", json!({ "paused": true })).await;
    let people = sessions(&node, 1000).await;
    let mut positions: Vec<u64> = stream::iter(&people)
        .map(|s| node.enter(s, "rush-q"))
        .buffer_unordered(100)
        .map(|(status, body)| {
            assert_eq!(status, 200, "{body}");
            body["position"].as_u64().unwrap()
        })
        .collect()
        .await;
    positions.sort_unstable();
    assert_eq!(positions, (1..=1000).collect::<Vec<_>>());
}

#[tokio::test]
async fn with_room_for_five_hundred_exactly_five_hundred_get_in() {
    let node = TestNode::start(Backend::Redis).await;
    node.define_queue("cap", json!({ "paused": true, "maxParticipants": 500 }))
        .await;
    let people = sessions(&node, 1000).await;
    let outcomes: Vec<(u16, Value)> = stream::iter(&people)
        .map(|s| node.enter(s, "cap-q"))
        .buffer_unordered(100)
        .collect()
        .await;
    let admitted = outcomes.iter().filter(|(s, _)| *s == 200).count();
    let refused = outcomes
        .iter()
        .filter(|(s, b)| *s == 409 && b["error"]["code"] == "CAPACITY_REACHED")
        .count();
    assert_eq!((admitted, refused), (500, 500));
    let positions: HashSet<u64> = outcomes
        .iter()
        .filter_map(|(_, b)| b["position"].as_u64())
        .collect();
    assert_eq!(positions, (1..=500).collect());
}

#[tokio::test]
async fn entering_again_refreshing_or_reconnecting_keeps_the_same_place() {
    on_both(|backend| async move {
        let node = TestNode::start(backend).await;
        node.define_queue("keep", json!({ "paused": true })).await;
        let people = sessions(&node, 3).await;
        for s in &people {
            node.enter(s, "keep-q").await;
        }
        let me = &people[1];
        let (_, first) = node.enter(me, "keep-q").await;
        let (_, again) = node.enter(me, "keep-q").await;
        assert_eq!(again["position"], 2);
        assert_eq!(again["enteredAt"], first["enteredAt"]);
        let (_, polled) = node.position(me, "keep-q").await;
        assert_eq!(
            (polled["state"].as_str(), polled["position"].as_u64()),
            (Some("waiting"), Some(2))
        );

        for _ in 0..2 {
            let mut ws = node.ws(me).await;
            let pushed = ws.next_of("queue:position-updated").await.unwrap();
            assert_eq!(pushed["position"], 2);
        }
    })
    .await;
}

#[tokio::test]
async fn an_admitted_person_who_comes_back_gets_the_same_token() {
    on_both(|backend| async move {
        let node = TestNode::start(backend).await;
        node.define_queue("back", json!({ "admitPerMinute": 6000 }))
            .await;
        let me = node.session().await;
        node.enter(&me, "back-q").await;
        let token = node.wait_admitted(&me, "back-q").await;

        let (_, again) = node.enter(&me, "back-q").await;
        assert_eq!(
            (again["state"].as_str(), again["handoffToken"].as_str()),
            (Some("admitted"), Some(token.as_str()))
        );
        let mut ws = node.ws(&me).await;
        let granted = ws.next_of("queue:access-granted").await.unwrap();
        assert_eq!(granted["handoffToken"].as_str(), Some(token.as_str()));
    })
    .await;
}

#[tokio::test]
async fn a_token_is_redeemed_once_and_then_refused_as_already_redeemed() {
    on_both(|backend| async move {
        let node = TestNode::start(backend).await;
        node.define_queue("once", json!({ "admitPerMinute": 6000 }))
            .await;
        let me = node.session().await;
        node.enter(&me, "once-q").await;
        let token = node.wait_admitted(&me, "once-q").await;

        let (status, verified) = node.merchant("verify", &token).await;
        assert_eq!((status, verified["valid"].as_bool()), (200, Some(true)));
        let (status, redeemed) = node.merchant("redeem", &token).await;
        assert_eq!(status, 200);
        assert_eq!(redeemed["claims"]["sub"], me.consumer_id.as_str());
        let (status, again) = node.merchant("redeem", &token).await;
        assert_eq!(
            (status, again["error"]["code"].as_str()),
            (409, Some("ALREADY_REDEEMED"))
        );
        let (_, entry) = node.position(&me, "once-q").await;
        assert_eq!(entry["state"], "redeemed");
        assert!(
            entry["handoffToken"].is_null(),
            "a used token is not handed out again"
        );
    })
    .await;
}

/// Signs `claims` the way an attacker might: with a key of their own.
fn sign(header: Value, claims: &Value, key: &ed25519_dalek::SigningKey) -> String {
    use ed25519_dalek::Signer;
    let head = URL_SAFE_NO_PAD.encode(header.to_string());
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signed = format!("{head}.{body}");
    let signature = key.sign(signed.as_bytes());
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
}

#[tokio::test]
async fn forged_expired_and_foreign_tokens_are_refused() {
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    let real = ed25519_dalek::SigningKey::from_bytes(&rand::random());
    let pem = real.to_pkcs8_pem(Default::default()).unwrap();
    let file =
        std::env::temp_dir().join(format!("velvet-key-{}.pem", uuid::Uuid::new_v4()));
    std::fs::write(&file, pem.as_bytes()).unwrap();
    let mut settings = test_settings();
    settings.tokens.signing_key_file = file.to_string_lossy().into_owned();
    let node = TestNode::with_settings(settings, None).await;
    node.define_queue("forge", json!({ "admitPerMinute": 6000 }))
        .await;
    let me = node.session().await;
    node.enter(&me, "forge-q").await;
    let genuine = node.wait_admitted(&me, "forge-q").await;
    let kid = jsonwebtoken::decode_header(&genuine).unwrap().kid.unwrap();
    let payload = genuine.split('.').nth(1).unwrap();
    let claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    let header = json!({ "alg": "EdDSA", "typ": "JWT", "kid": kid });

    let other_key = ed25519_dalek::SigningKey::from_bytes(&rand::random());
    let by_other_key = sign(header.clone(), &claims, &other_key);
    let none = format!(
        "{}.{payload}.",
        URL_SAFE_NO_PAD
            .encode(json!({ "alg": "none", "typ": "JWT", "kid": kid }).to_string())
    );
    // HS256 keyed with what an attacker knows: the published public key.
    let public = real.verifying_key().to_bytes();
    let mut hs = jsonwebtoken::Header::new(Algorithm::HS256);
    hs.kid = Some(kid.clone());
    let hs256 = jsonwebtoken::encode(
        &hs,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(&public),
    )
    .unwrap();
    let mut old = claims.clone();
    old["iat"] = json!(1_000_000);
    old["nbf"] = json!(1_000_000);
    old["exp"] = json!(1_000_600);
    let expired = sign(header.clone(), &old, &real);
    let mut foreign = claims.clone();
    foreign["aud"] = json!("another-shop");
    let other_audience = sign(header.clone(), &foreign, &real);
    let mut tampered = claims.clone();
    tampered["sub"] = json!(uuid::Uuid::new_v4().to_string());
    let tampered = format!(
        "{}.{}.{}",
        genuine.split('.').next().unwrap(),
        URL_SAFE_NO_PAD.encode(tampered.to_string()),
        genuine.rsplit('.').next().unwrap()
    );

    let cases = [
        ("another key", by_other_key, "INVALID_TOKEN"),
        ("alg none", none, "INVALID_TOKEN"),
        ("HS256 with the public key", hs256, "INVALID_TOKEN"),
        ("expired", expired, "TOKEN_EXPIRED"),
        ("another audience", other_audience, "INVALID_TOKEN"),
        ("tampered claims", tampered, "INVALID_TOKEN"),
        ("garbage", "not.a.jwt".into(), "INVALID_TOKEN"),
    ];
    for (what, token, code) in cases {
        for action in ["verify", "redeem"] {
            let (status, body) = node.merchant(action, &token).await;
            assert_eq!(
                (status, body["error"]["code"].as_str()),
                (401, Some(code)),
                "{what} on {action}"
            );
        }
    }
    // The genuine token still works after all that.
    assert_eq!(node.merchant("redeem", &genuine).await.0, 200);
    let _ = std::fs::remove_file(file);
}

#[tokio::test]
async fn outstanding_tokens_cap_admission_and_a_redeem_frees_a_slot() {
    on_both(|backend| async move {
        let node = TestNode::start(backend).await;
        node.define_queue("cap2", json!({ "admitPerMinute": 6000, "maxActive": 2 }))
            .await;
        let people = sessions(&node, 4).await;
        for s in &people {
            node.enter(s, "cap2-q").await;
        }
        let first = node.wait_admitted(&people[0], "cap2-q").await;
        node.wait_admitted(&people[1], "cap2-q").await;
        // Several ticks later the third is still waiting at the front.
        tokio::time::sleep(Duration::from_millis(600)).await;
        let (_, third) = node.position(&people[2], "cap2-q").await;
        assert_eq!(
            (third["state"].as_str(), third["position"].as_u64()),
            (Some("waiting"), Some(1))
        );

        assert_eq!(node.merchant("redeem", &first).await.0, 200);
        node.wait_admitted(&people[2], "cap2-q").await;
        let (_, fourth) = node.position(&people[3], "cap2-q").await;
        assert_eq!(fourth["state"], "waiting");
    })
    .await;
}

#[tokio::test]
async fn restarting_the_node_on_the_same_redis_loses_no_entry_and_no_admission() {
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    let redis = RedisServer::start();
    let key = ed25519_dalek::SigningKey::from_bytes(&rand::random());
    let file =
        std::env::temp_dir().join(format!("velvet-key-{}.pem", uuid::Uuid::new_v4()));
    std::fs::write(
        &file,
        key.to_pkcs8_pem(Default::default()).unwrap().as_bytes(),
    )
    .unwrap();
    let settings = || {
        let mut s = test_settings();
        s.redis.url = velvet::config::Secret::new(redis.url());
        s.tokens.signing_key_file = file.to_string_lossy().into_owned();
        s
    };

    let mut before = TestNode::with_settings(settings(), None).await;
    before
        .define_queue("keep2", json!({ "admitPerMinute": 6000, "maxActive": 3 }))
        .await;
    let people = sessions(&before, 6).await;
    for s in &people {
        before.enter(s, "keep2-q").await;
    }
    for s in &people[..3] {
        before.wait_admitted(s, "keep2-q").await;
    }
    let mut seen = Vec::new();
    for s in &people {
        seen.push(before.position(s, "keep2-q").await.1);
    }
    before.stop().await;

    let after = TestNode::with_settings(settings(), None).await;
    for (s, old) in people.iter().zip(&seen) {
        let (status, now) = after.position(s, "keep2-q").await;
        assert_eq!(status, 200);
        for field in ["state", "position", "handoffToken", "enteredAt"] {
            assert_eq!(now[field], old[field], "{field} of {}", s.consumer_id);
        }
    }
    assert_eq!(seen.iter().filter(|e| e["state"] == "admitted").count(), 3);
    // The tokens issued before the restart still verify and redeem.
    let token = seen[0]["handoffToken"].as_str().unwrap();
    assert_eq!(after.merchant("redeem", token).await.0, 200);
    after.wait_admitted(&people[3], "keep2-q").await;
    let _ = std::fs::remove_file(file);
}
