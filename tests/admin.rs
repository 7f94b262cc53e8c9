//! The operator's controls during a launch: keys, pause and resume, live
//! limits, announcements, selling out and restocking.

mod common;

use std::time::Duration;

use common::{ADMIN_KEY, Backend, MERCHANT_KEY, TestNode, on_both};
use futures_util::future::join_all;
use serde_json::{Value, json};

async fn admin(
    node: &TestNode,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = node
        .http
        .request(method, node.url(path))
        .bearer_auth(ADMIN_KEY);
    if let Some(body) = body {
        req = req.json(&body);
    }
    let res = req.send().await.unwrap();
    (
        res.status().as_u16(),
        res.json().await.unwrap_or(Value::Null),
    )
}

async fn admitted_total(node: &TestNode, exp: &str, queue: &str) -> u64 {
    let (_, body) = admin(
        node,
        reqwest::Method::GET,
        &format!("/v1/admin/experiences/{exp}"),
        None,
    )
    .await;
    body["live"][queue]["admittedTotal"].as_u64().unwrap()
}

#[tokio::test]
async fn every_admin_route_refuses_a_missing_or_wrong_key() {
    use reqwest::Method as M;
    let node = TestNode::start(Backend::Memory).await;
    node.define_queue("keys", json!({})).await;
    let routes = [
        (M::PUT, "/v1/admin/experiences/keys"),
        (M::GET, "/v1/admin/experiences/keys"),
        (M::POST, "/v1/admin/sequences/keys-q/pause"),
        (M::POST, "/v1/admin/sequences/keys-q/resume"),
        (M::PATCH, "/v1/admin/sequences/keys-q"),
        (M::PUT, "/v1/admin/experiences/keys/inventory"),
        (M::PUT, "/v1/admin/experiences/keys/announcement"),
        (M::POST, "/v1/admin/draws/keys-q/run"),
    ];
    for (method, path) in routes {
        let missing = node
            .http
            .request(method.clone(), node.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(missing.status(), 401, "{method} {path} without a key");
        let wrong = node
            .http
            .request(method.clone(), node.url(path))
            .bearer_auth(MERCHANT_KEY);
        let wrong = wrong.send().await.unwrap();
        assert_eq!(wrong.status(), 403, "{method} {path} with the merchant key");
        let body: Value = wrong.json().await.unwrap();
        assert_eq!(body["error"]["code"], "FORBIDDEN");
    }
}

#[tokio::test]
async fn pause_stops_admission_within_a_tick_and_resume_restarts_it() {
    on_both(|backend| async move {
        let node = TestNode::start(backend).await;
        node.define_queue("hold", json!({ "admitPerMinute": 600 }))
            .await;
        let people = join_all((0..40).map(|_| node.session())).await;
        for p in &people {
            node.enter(p, "hold-q").await;
        }
        node.wait_admitted(&people[1], "hold-q").await;
        assert_eq!(
            node.admin_post("/v1/admin/sequences/hold-q/pause").await,
            200
        );
        // One tick (100 ms) may still be in flight; after that, nothing.
        tokio::time::sleep(Duration::from_millis(600)).await;
        let paused_at = admitted_total(&node, "hold", "hold-q").await;
        tokio::time::sleep(Duration::from_millis(1_000)).await;
        assert_eq!(
            admitted_total(&node, "hold", "hold-q").await,
            paused_at,
            "{backend:?}"
        );
        let (_, status) = admin(
            &node,
            reqwest::Method::GET,
            "/v1/admin/experiences/hold",
            None,
        )
        .await;
        assert_eq!(status["state"], "paused");
        let (_, waiting) = node.position(&people[39], "hold-q").await;
        assert!(
            waiting["estimatedWaitSeconds"].is_null(),
            "no estimate while paused"
        );

        assert_eq!(
            node.admin_post("/v1/admin/sequences/hold-q/resume").await,
            200
        );
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert!(
            admitted_total(&node, "hold", "hold-q").await > paused_at,
            "{backend:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn limits_change_live_and_bad_changes_name_the_field() {
    use reqwest::Method as M;
    let node = TestNode::start(Backend::Memory).await;
    node.define_queue("live", json!({ "admitPerMinute": 60, "maxActive": 5 }))
        .await;
    let (status, changed) = admin(
        &node,
        M::PATCH,
        "/v1/admin/sequences/live-q",
        Some(json!({ "admitPerMinute": 1200, "maxActive": null, "maxParticipants": 7 })),
    )
    .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(
        (
            changed["admitPerMinute"].as_u64(),
            changed["maxParticipants"].as_u64()
        ),
        (Some(1200), Some(7))
    );
    assert!(changed["maxActive"].is_null());
    let (_, public) = admin(&node, M::GET, "/v1/experiences/live", None).await;
    assert_eq!(public["sequences"][0]["admitPerMinute"], 1200);

    for (body, field) in [
        (json!({ "admitPerMinute": 0 }), "admitPerMinute"),
        (json!({ "maxActive": 0 }), "maxActive"),
        (json!({ "closesAt": "soon" }), "closesAt"),
        (json!({ "winners": 3 }), "winners"),
    ] {
        let (status, reply) = admin(
            &node,
            M::PATCH,
            "/v1/admin/sequences/live-q",
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, 400, "{body}");
        let message = reply["error"]["message"].as_str().unwrap();
        assert!(message.contains(field), "`{message}` names {field}");
    }
    // What GET returns can be put back as it is.
    let (_, current) = admin(&node, M::GET, "/v1/admin/experiences/live", None).await;
    let (status, reply) =
        admin(&node, M::PUT, "/v1/admin/experiences/live", Some(current)).await;
    assert_eq!(status, 200, "{reply}");
}

#[tokio::test]
async fn an_announcement_reaches_every_connected_consumer() {
    let node = TestNode::start(Backend::Redis).await;
    node.define_queue("news", json!({ "paused": true })).await;
    let people = join_all((0..5).map(|_| node.session())).await;
    let mut sockets = Vec::new();
    for p in &people {
        node.enter(p, "news-q").await;
        sockets.push(node.ws(p).await);
    }
    let (status, _) = admin(
        &node,
        reqwest::Method::PUT,
        "/v1/admin/experiences/news/announcement",
        Some(json!({ "message": "Restock at noon" })),
    )
    .await;
    assert_eq!(status, 200);
    for ws in sockets.iter_mut() {
        loop {
            let m = ws.next_of("experience:updated").await.expect("pushed");
            if m["announcement"] == "Restock at noon" {
                assert_eq!(m["experienceId"], "news");
                break;
            }
        }
    }
    let status: Value = node
        .http
        .get(node.url("/v1/experiences/news/status"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["announcement"], "Restock at noon");
}

#[tokio::test]
async fn selling_out_keeps_the_line_and_a_restock_admits_it_in_order() {
    on_both(|backend| async move {
        use reqwest::Method as M;
        let node = TestNode::start(backend).await;
        node.define(
            "stock",
            json!({ "name": "Stock", "inventory": 0, "sequences": [{
            "id": "stock-q", "name": "Q", "kind": "queue", "admitPerMinute": 600 }] }),
        )
        .await;
        let newcomer = node.session().await;
        let (status, body) = node.enter(&newcomer, "stock-q").await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (410, Some("SOLD_OUT"))
        );

        // Restock a little, let people in line, then sell out with them waiting.
        admin(
            &node,
            M::PUT,
            "/v1/admin/experiences/stock/inventory",
            Some(json!({ "remaining": 100 })),
        )
        .await;
        admin(&node, M::POST, "/v1/admin/sequences/stock-q/pause", None).await;
        let people = join_all((0..4).map(|_| node.session())).await;
        for p in &people {
            assert_eq!(node.enter(p, "stock-q").await.0, 200);
        }
        let mut ws = node.ws(&people[3]).await;
        admin(
            &node,
            M::PUT,
            "/v1/admin/experiences/stock/inventory",
            Some(json!({ "remaining": 0 })),
        )
        .await;
        loop {
            let m = ws.next_of("experience:updated").await.expect("told");
            if m["state"] == "sold_out" {
                break;
            }
        }
        admin(&node, M::POST, "/v1/admin/sequences/stock-q/resume", None).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        for (i, p) in people.iter().enumerate() {
            let (_, entry) = node.position(p, "stock-q").await;
            assert_eq!(
                (entry["state"].as_str(), entry["position"].as_u64()),
                (Some("waiting"), Some(i as u64 + 1)),
                "kept as a waitlist"
            );
        }

        admin(
            &node,
            M::PUT,
            "/v1/admin/experiences/stock/inventory",
            Some(json!({ "remaining": 10 })),
        )
        .await;
        let mut expiries = Vec::new();
        for p in &people {
            node.wait_admitted(p, "stock-q").await;
            let (_, entry) = node.position(p, "stock-q").await;
            expiries.push(entry["expiresAt"].as_str().unwrap().to_owned());
        }
        assert!(
            expiries.windows(2).all(|w| w[0] <= w[1]),
            "admitted in line order: {expiries:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn never_more_tokens_out_than_stock_and_no_redeem_once_sold_out() {
    use reqwest::Method as M;
    let node = TestNode::start(Backend::Memory).await;
    node.define("few", json!({ "name": "Few", "inventory": 2, "sequences": [{
        "id": "few-q", "name": "Q", "kind": "queue", "admitPerMinute": 6000, "maxActive": 10 }] })).await;
    let people = join_all((0..5).map(|_| node.session())).await;
    for p in &people {
        node.enter(p, "few-q").await;
    }
    let first = node.wait_admitted(&people[0], "few-q").await;
    let second = node.wait_admitted(&people[1], "few-q").await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        admitted_total(&node, "few", "few-q").await,
        2,
        "only as many out as stock"
    );

    assert_eq!(node.merchant("redeem", &first).await.0, 200);
    admin(
        &node,
        M::PUT,
        "/v1/admin/experiences/few/inventory",
        Some(json!({ "remaining": 0 })),
    )
    .await;
    let (status, body) = node.merchant("redeem", &second).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (410, Some("SOLD_OUT"))
    );
    admin(
        &node,
        M::PUT,
        "/v1/admin/experiences/few/inventory",
        Some(json!({ "remaining": 1 })),
    )
    .await;
    assert_eq!(
        node.merchant("redeem", &second).await.0,
        200,
        "the token survived the sell-out"
    );
}
