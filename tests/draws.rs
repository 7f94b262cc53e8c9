//! Draws: fair (chi-square over many draws), reproducible from the proof,
//! run exactly once under races, backfilled in drawn order, one entry per
//! shop account.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::{
    ADMIN_KEY, Backend, RedisServer, Session, TestNode, on_both, test_settings,
};
use jsonwebtoken::{EncodingKey, Header};
use serde_json::{Value, json};
use uuid::Uuid;
use velvet::domain::{Experience, Id};
use velvet::draw::result::{ResultState, result_of};
use velvet::draw::run::{RunOutcome, run};
use velvet::store::memory::MemoryStore;
use velvet::store::{DrawEnterRequest, RedeemOutcome, Store, StoredExperience};
use velvet::tokens::{HandoffKeys, HandoffSigner};

const SHOP_SECRET: &str = "shop-secret-for-assertions";

fn draw_experience(id: &str, winners: u64, ttl: u64) -> StoredExperience {
    let json = json!({
        "id": id, "name": id,
        "sequences": [{ "id": id, "name": "Draw", "kind": "draw",
            "winners": winners, "tokenTtlSeconds": ttl }]
    });
    let mut experience: Experience = serde_json::from_value(json).unwrap();
    experience.validate().unwrap();
    StoredExperience {
        experience,
        inventory: None,
        announcement: None,
        updated_at: 0,
    }
}

async fn register(store: &dyn Store, draw: &Id, consumer: Uuid, now: i64) {
    let req = DrawEnterRequest {
        consumer_id: consumer,
        external_id: None,
        now,
        max_participants: None,
        refuse: None,
        seed: velvet::draw::new_seed(),
    };
    store.draw_enter(draw, req).await.unwrap();
}

fn signer() -> HandoffSigner {
    HandoffSigner::new(HandoffKeys::generate(), "velvet", "checkout")
}

#[tokio::test]
async fn every_entrant_has_the_same_chance_whenever_they_registered() {
    // 2,000 draws of 3 winners among 10, each with a fresh seed, through the
    // real store and runner; entrant i is always the i-th to register.
    let store = MemoryStore::new();
    let signer = signer();
    let mut wins = [0u64; 10];
    for round in 0..2_000 {
        let stored = draw_experience(&format!("fair-{round}"), 3, 600);
        let seq = &stored.experience.sequences[0];
        let people: Vec<Uuid> = (0..10).map(|_| Uuid::new_v4()).collect();
        for (i, person) in people.iter().enumerate() {
            register(&store, &seq.id, *person, 1_000 + i as i64).await;
        }
        run(&store, &signer, &stored, seq, 2_000).await.unwrap();
        for (i, person) in people.iter().enumerate() {
            let entry = store.draw_entry(&seq.id, *person).await.unwrap().unwrap();
            if result_of(&entry, 3, 2_000).is_winner {
                wins[i] += 1;
            }
        }
    }
    assert_eq!(wins.iter().sum::<u64>(), 6_000);
    let expected = 600.0;
    let chi2: f64 = wins
        .iter()
        .map(|w| (*w as f64 - expected).powi(2) / expected)
        .sum();
    // Chi-square with 9 degrees of freedom: 27.88 is the p = 0.001 point.
    assert!(
        chi2 < 27.88,
        "win counts {wins:?} give chi-square {chi2:.2}"
    );
}

#[tokio::test]
async fn racing_runners_on_one_redis_produce_one_result_and_one_token_per_winner() {
    let redis = RedisServer::start();
    let (a, b) = (redis.store().await, redis.store().await);
    let stored = draw_experience("race", 3, 600);
    let seq = stored.experience.sequences[0].clone();
    let people: Vec<Uuid> = (0..12).map(|_| Uuid::new_v4()).collect();
    for person in &people {
        register(a.as_ref(), &seq.id, *person, 1_000).await;
    }
    let (sa, sb) = (Arc::new(signer()), Arc::new(signer()));
    let mut runners = Vec::new();
    for (store, signer) in [
        (a.clone(), sa),
        (b.clone(), sb),
        (a.clone(), Arc::new(signer())),
    ] {
        let (stored, seq) = (stored.clone(), seq.clone());
        runners.push(tokio::spawn(async move {
            run(store.as_ref(), &signer, &stored, &seq, 5_000)
                .await
                .unwrap()
        }));
    }
    let mut outcomes = Vec::new();
    for r in runners {
        outcomes.push(r.await.unwrap());
    }
    let drawn = outcomes
        .iter()
        .filter(|o| matches!(o, RunOutcome::Drawn { .. }))
        .count();
    assert_eq!(drawn, 1, "{outcomes:?}");

    let mut tokens = Vec::new();
    for person in &people {
        let from_a = a.draw_entry(&seq.id, *person).await.unwrap().unwrap();
        let from_b = b.draw_entry(&seq.id, *person).await.unwrap().unwrap();
        assert_eq!(from_a.grant, from_b.grant);
        tokens.extend(from_a.grant.map(|g| g.token));
    }
    assert_eq!(tokens.len(), 3);
    let proof = velvet::draw::run::proof(a.as_ref(), &seq).await.unwrap();
    velvet::draw::verify(&proof).expect("the recorded draw verifies");
}

#[tokio::test]
async fn freed_slots_pass_down_the_drawn_order_and_redeemed_winners_stay() {
    on_both(|backend| async move {
        let redis = matches!(backend, Backend::Redis).then(RedisServer::start);
        let store: Arc<dyn Store> = match &redis {
            Some(server) => server.store().await,
            None => Arc::new(MemoryStore::new()),
        };
        let stored = draw_experience("backfill", 2, 60);
        let seq = &stored.experience.sequences[0];
        let people: Vec<Uuid> = (0..5).map(|_| Uuid::new_v4()).collect();
        for person in &people {
            register(store.as_ref(), &seq.id, *person, 1_000).await;
        }
        let t0 = velvet::domain::clock::now_ms();
        run(store.as_ref(), &signer(), &stored, seq, t0)
            .await
            .unwrap();
        let (_, order) = store.draw_record(&seq.id).await.unwrap();
        let fence = store
            .acquire_lease(seq.id.as_str(), "n", 60_000)
            .await
            .unwrap()
            .unwrap();
        let state = |c: Uuid, now: i64| {
            let store = store.clone();
            let id = seq.id.clone();
            async move {
                let entry = store.draw_entry(&id, c).await.unwrap().unwrap();
                result_of(&entry, 2, now).state
            }
        };
        assert_eq!(state(order[0], t0).await, ResultState::Won);
        assert_eq!(state(order[2], t0).await, ResultState::Waitlisted);

        // The first winner redeems; the second lets the token expire.
        let jti = store
            .draw_entry(&seq.id, order[0])
            .await
            .unwrap()
            .unwrap()
            .grant
            .unwrap()
            .jti;
        let redeemed = store
            .draw_redeem(&seq.id, order[0], &jti, t0)
            .await
            .unwrap();
        assert_eq!(redeemed, RedeemOutcome::Redeemed);
        let later = t0 + 61_000;
        let next = store.draw_backfill_room(&seq.id, later, 2).await.unwrap();
        assert_eq!(next.iter().map(|n| n.0).collect::<Vec<_>>(), vec![order[2]]);
        let promote = |c: Uuid, now: i64| velvet::domain::Grant {
            jti: Uuid::new_v4().to_string(),
            token: format!("t-{c}"),
            expires_at: now + 60_000,
        };
        let grants = vec![(order[2], promote(order[2], later))];
        assert_eq!(
            store
                .draw_promote(&seq.id, fence, later, &grants)
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            state(order[0], later).await,
            ResultState::Won,
            "redeemed stays"
        );
        assert_eq!(
            state(order[1], later).await,
            ResultState::Lost,
            "expired passed on"
        );
        assert_eq!(state(order[2], later).await, ResultState::Won);
        assert_eq!(state(order[3], later).await, ResultState::Waitlisted);

        // Skipping anyone in line is refused.
        let skip = vec![(order[4], promote(order[4], later))];
        assert_eq!(
            store
                .draw_promote(&seq.id, fence, later, &skip)
                .await
                .unwrap(),
            0
        );

        // Once both slots are redeemed, backfill stops for good.
        let jti = store
            .draw_entry(&seq.id, order[2])
            .await
            .unwrap()
            .unwrap()
            .grant
            .unwrap()
            .jti;
        store
            .draw_redeem(&seq.id, order[2], &jti, later)
            .await
            .unwrap();
        let much_later = later + 120_000;
        assert!(
            store
                .draw_backfill_room(&seq.id, much_later, 2)
                .await
                .unwrap()
                .is_empty()
        );
        assert_eq!(state(order[3], much_later).await, ResultState::Lost);
    })
    .await;
}

fn proof_file(proof: &Value) -> std::path::PathBuf {
    let file = std::env::temp_dir().join(format!("velvet-proof-{}.json", Uuid::new_v4()));
    std::fs::write(&file, serde_json::to_vec_pretty(proof).unwrap()).unwrap();
    file
}

fn verify_draw(proof: &Value) -> bool {
    let file = proof_file(proof);
    let status = Command::new(env!("CARGO_BIN_EXE_velvet"))
        .args(["verify-draw", file.to_str().unwrap()])
        .output()
        .unwrap();
    let _ = std::fs::remove_file(file);
    status.status.success()
}

async fn define_draw(node: &TestNode, id: &str, winners: u64, extra: Value) {
    let mut seq = json!({ "id": id, "name": "Draw", "kind": "draw", "winners": winners,
        "closesAt": "2099-01-01T00:00:00Z" });
    for (k, v) in extra.as_object().unwrap() {
        seq[k] = v.clone();
    }
    node.define(
        &format!("{id}-exp"),
        json!({ "name": id, "sequences": [seq] }),
    )
    .await;
}

async fn post(node: &TestNode, path: &str, bearer: &str) -> (u16, Value) {
    let res = node
        .http
        .post(node.url(path))
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap();
    (
        res.status().as_u16(),
        res.json().await.unwrap_or(Value::Null),
    )
}

async fn get(node: &TestNode, path: &str, bearer: Option<&str>) -> (u16, Value) {
    let mut req = node.http.get(node.url(path));
    if let Some(b) = bearer {
        req = req.bearer_auth(b);
    }
    let res = req.send().await.unwrap();
    (
        res.status().as_u16(),
        res.json().await.unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn a_draw_is_committed_run_revealed_and_recomputed_by_verify_draw() {
    on_both(|backend| async move {
        let node = TestNode::start(backend).await;
        define_draw(&node, "fair", 2, json!({})).await;
        let people: Vec<Session> =
            futures_util::future::join_all((0..6).map(|_| node.session())).await;
        let loser_ws_target = people.clone();
        let mut sockets = Vec::new();
        for (i, person) in people.iter().enumerate() {
            let (status, body) = post(&node, "/v1/draws/fair/enter", &person.token).await;
            assert_eq!(
                (status, body["state"].as_str()),
                (200, Some("registered")),
                "{body}"
            );
            if i < 6 {
                sockets.push(node.ws(&loser_ws_target[i]).await);
            }
        }
        let again = post(&node, "/v1/draws/fair/enter", &people[0].token).await;
        assert_eq!(again.0, 200, "registering twice is harmless");

        let (_, before) = get(&node, "/v1/draws/fair/proof", None).await;
        let commitment = before["seedCommitment"]
            .as_str()
            .expect("committed at opening");
        assert!(
            before["seed"].is_null(),
            "the seed stays secret until the draw"
        );
        let (_, pending) =
            get(&node, "/v1/draws/fair/result", Some(&people[0].token)).await;
        assert_eq!(pending["state"], "pending");

        let (status, ran) = post(&node, "/v1/admin/draws/fair/run", ADMIN_KEY).await;
        assert_eq!((status, ran["alreadyDrawn"].as_bool()), (200, Some(false)));
        let (_, ran_again) = post(&node, "/v1/admin/draws/fair/run", ADMIN_KEY).await;
        assert_eq!(ran_again["alreadyDrawn"], true);

        let (_, proof) = get(&node, "/v1/draws/fair/proof", None).await;
        assert_eq!(proof["seedCommitment"].as_str(), Some(commitment));
        assert_eq!(proof["entrantCount"], 6);
        assert!(verify_draw(&proof), "verify-draw accepts the genuine proof");

        // Winners over HTTP and WebSocket agree, and tokens verify.
        let mut winners = 0;
        for (person, ws) in people.iter().zip(sockets.iter_mut()) {
            let (_, result) =
                get(&node, "/v1/draws/fair/result", Some(&person.token)).await;
            let pushed = ws.next_of("draw:completed").await.expect("told the result");
            assert_eq!(pushed["isWinner"], result["isWinner"]);
            if result["isWinner"] == true {
                winners += 1;
                let token = result["handoffToken"].as_str().unwrap();
                assert_eq!(pushed["handoffToken"].as_str(), Some(token));
                let (status, verified) = node.merchant("verify", token).await;
                assert_eq!(
                    (status, verified["claims"]["kind"].as_str()),
                    (200, Some("draw"))
                );
                let mut again = node.ws(person).await;
                let replay = again.next_of("draw:completed").await.unwrap();
                assert_eq!(replay["handoffToken"].as_str(), Some(token), "on reconnect");
            } else {
                assert_eq!(result["state"], "waitlisted");
            }
        }
        assert_eq!(winners, 2);

        let tamper = |path: &str, value: Value| {
            let mut p = proof.clone();
            p.pointer_mut(path).map(|v| *v = value).expect("field");
            p
        };
        let other = proof["drawnOrder"][5].clone();
        let fake_seed = hex::encode([9u8; 32]);
        assert!(
            !verify_draw(&tamper("/winnerIds/0", other)),
            "winner altered"
        );
        assert!(
            !verify_draw(&tamper("/entrants/0", json!("00".repeat(32)))),
            "entrant altered"
        );
        assert!(
            !verify_draw(&tamper("/seed", json!(fake_seed))),
            "seed altered"
        );
        let mut forged = proof.clone();
        let new_commitment = velvet::draw::commitment(&[9u8; 32]);
        forged["seed"] = json!(fake_seed);
        forged["seedCommitment"] = json!(new_commitment);
        assert!(
            !verify_draw(&forged),
            "a consistent new seed still changes the order"
        );
        assert!(
            !verify_draw(&tamper("/seedCommitment", json!("ab".repeat(32)))),
            "commitment"
        );
    })
    .await;
}

fn assertion(account: &str, secret: &str) -> String {
    let claims = json!({ "sub": account, "exp": 4_000_000_000u64 });
    jsonwebtoken::encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

async fn bound_session(node: &TestNode, assertion: &str) -> (u16, Value) {
    let res = node
        .http
        .post(node.url("/v1/sessions"))
        .json(&json!({ "assertion": assertion }))
        .send()
        .await
        .unwrap();
    (
        res.status().as_u16(),
        res.json().await.unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn one_shop_account_gets_one_entry_and_unbound_sessions_are_refused() {
    let mut settings = test_settings();
    settings.auth.shop_secret = velvet::config::Secret::new(SHOP_SECRET);
    let node = TestNode::with_settings(settings, None).await;
    define_draw(&node, "members", 1, json!({ "requireAccount": true })).await;

    let (status, first) = bound_session(&node, &assertion("acct-1", SHOP_SECRET)).await;
    assert_eq!(
        (status, first["externalId"].as_str()),
        (201, Some("acct-1"))
    );
    let first_token = first["sessionToken"].as_str().unwrap();
    assert_eq!(
        post(&node, "/v1/draws/members/enter", first_token).await.0,
        200
    );

    let (_, second) = bound_session(&node, &assertion("acct-1", SHOP_SECRET)).await;
    let (status, body) = post(
        &node,
        "/v1/draws/members/enter",
        second["sessionToken"].as_str().unwrap(),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("ALREADY_ENTERED"))
    );

    let anonymous = node.session().await;
    let (status, body) = post(&node, "/v1/draws/members/enter", &anonymous.token).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("FORBIDDEN"))
    );

    let (status, body) = bound_session(&node, &assertion("acct-2", "not-the-shop")).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("INVALID_TOKEN"))
    );

    // The account id travels into the winner's handoff token.
    post(&node, "/v1/admin/draws/members/run", ADMIN_KEY).await;
    let (_, result) = get(&node, "/v1/draws/members/result", Some(first_token)).await;
    let token = result["handoffToken"]
        .as_str()
        .expect("the only entrant wins");
    let (_, verified) = node.merchant("verify", token).await;
    assert_eq!(verified["claims"]["externalId"], "acct-1");
}

#[tokio::test]
async fn bad_draw_requests_get_the_contract_errors() {
    let node = TestNode::start(Backend::Memory).await;
    define_draw(&node, "d", 1, json!({})).await;
    define_draw(
        &node,
        "later",
        1,
        json!({ "opensAt": "2098-01-01T00:00:00Z" }),
    )
    .await;
    define_draw(
        &node,
        "past",
        1,
        json!({ "opensAt": "2020-01-01T00:00:00Z", "closesAt": "2020-01-02T00:00:00Z" }),
    )
    .await;
    node.define_queue("qq", json!({})).await;
    let me = node.session().await;
    let t = me.token.as_str();
    let cases = [
        (
            post(&node, "/v1/draws/nope/enter", t).await,
            404,
            "NOT_FOUND",
        ),
        (
            post(&node, "/v1/draws/qq-q/enter", t).await,
            404,
            "NOT_FOUND",
        ),
        (post(&node, "/v1/queues/d/enter", t).await, 404, "NOT_FOUND"),
        (
            post(&node, "/v1/draws/later/enter", t).await,
            409,
            "NOT_OPEN",
        ),
        (post(&node, "/v1/draws/past/enter", t).await, 409, "CLOSED"),
        (
            post(&node, "/v1/draws/BAD/enter", t).await,
            400,
            "INVALID_REQUEST",
        ),
        (
            get(&node, "/v1/draws/d/result", Some(t)).await,
            404,
            "NOT_FOUND",
        ),
        (
            get(&node, "/v1/draws/nope/proof", None).await,
            404,
            "NOT_FOUND",
        ),
        (
            post(&node, "/v1/admin/draws/nope/run", ADMIN_KEY).await,
            404,
            "NOT_FOUND",
        ),
        (
            post(&node, "/v1/admin/draws/later/run", ADMIN_KEY).await,
            409,
            "NOT_OPEN",
        ),
        (
            post(&node, "/v1/admin/draws/d/run", t).await,
            403,
            "FORBIDDEN",
        ),
    ];
    for (i, ((status, body), want_status, want_code)) in cases.into_iter().enumerate() {
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (want_status, Some(want_code)),
            "case {i}"
        );
    }
    for bad in [
        json!({ "assertion": 5 }),
        json!({ "assertion": "x", "extra": 1 }),
    ] {
        let res = node
            .http
            .post(node.url("/v1/sessions"))
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{bad}");
    }
    // An experience whose open sequence is a draw routes entries to it.
    let (status, body) = post(&node, "/v1/experiences/d-exp/enter", t).await;
    assert_eq!(
        (status, body["kind"].as_str(), body["drawId"].as_str()),
        (200, Some("draw"), Some("d"))
    );
}

#[tokio::test]
async fn the_leader_runs_a_draw_at_closing_and_backfills_after_expiry() {
    let node = TestNode::start(Backend::Memory).await;
    let closes = velvet::domain::clock::rfc3339(velvet::domain::clock::now_ms() + 1_500);
    define_draw(
        &node,
        "auto",
        1,
        json!({ "closesAt": closes, "tokenTtlSeconds": 10 }),
    )
    .await;
    let people: Vec<Session> =
        futures_util::future::join_all((0..2).map(|_| node.session())).await;
    for p in &people {
        assert_eq!(post(&node, "/v1/draws/auto/enter", &p.token).await.0, 200);
    }
    let mut sockets = Vec::new();
    for p in &people {
        sockets.push(node.ws(p).await);
    }
    let mut results = Vec::new();
    for ws in sockets.iter_mut() {
        results.push(
            ws.next_of("draw:completed")
                .await
                .expect("drawn at closing"),
        );
    }
    let winner = results
        .iter()
        .position(|r| r["isWinner"] == true)
        .expect("one winner");
    let other = 1 - winner;
    assert_eq!(results[other]["isWinner"], false);
    // The winner never checks out: after 10 s the slot passes on.
    let promoted = tokio::time::timeout(
        Duration::from_secs(20),
        sockets[other].next_of("draw:completed"),
    )
    .await
    .expect("promoted in time")
    .expect("a message");
    assert_eq!(promoted["isWinner"], true);
    let token = promoted["handoffToken"].as_str().unwrap();
    assert_eq!(node.merchant("redeem", token).await.0, 200);
}

#[tokio::test]
async fn a_shop_can_sign_assertions_with_keys_from_a_jwks_file() {
    use base64::Engine;
    use ed25519_dalek::pkcs8::EncodePrivateKey;
    let shop = ed25519_dalek::SigningKey::from_bytes(&rand::random());
    let x = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(shop.verifying_key().to_bytes());
    let jwks = json!({ "keys": [{ "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA",
        "kid": "shop-1", "x": x }] });
    let file = std::env::temp_dir().join(format!("velvet-shop-{}.json", Uuid::new_v4()));
    std::fs::write(&file, jwks.to_string()).unwrap();
    let mut settings = test_settings();
    settings.auth.shop_jwks_file = file.to_string_lossy().into_owned();
    let node = TestNode::with_settings(settings, None).await;

    let sign = |key: &ed25519_dalek::SigningKey, kid: &str| {
        let mut header = Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = Some(kid.into());
        let der = key.to_pkcs8_der().unwrap();
        let claims = json!({ "sub": "acct-9", "exp": 4_000_000_000u64 });
        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ed_der(der.as_bytes()))
            .unwrap()
    };
    let (status, body) = bound_session(&node, &sign(&shop, "shop-1")).await;
    assert_eq!((status, body["externalId"].as_str()), (201, Some("acct-9")));

    let stranger = ed25519_dalek::SigningKey::from_bytes(&rand::random());
    let (status, _) = bound_session(&node, &sign(&stranger, "shop-1")).await;
    assert_eq!(status, 401, "signed by a key the shop did not publish");
    let (status, _) = bound_session(&node, &sign(&shop, "unknown-kid")).await;
    assert_eq!(status, 401, "a kid the JWKS does not hold");
    // HS256 keyed with the published public key is not accepted as EdDSA.
    let mut hs = Header::new(jsonwebtoken::Algorithm::HS256);
    hs.kid = Some("shop-1".into());
    let public = shop.verifying_key().to_bytes();
    let confused = jsonwebtoken::encode(
        &hs,
        &json!({ "sub": "acct-9", "exp": 4_000_000_000u64 }),
        &EncodingKey::from_secret(&public),
    )
    .unwrap();
    assert_eq!(bound_session(&node, &confused).await.0, 401);
    let _ = std::fs::remove_file(file);
}
