//! Each contract metric moves when its event happens, and promtool accepts
//! the live output. Alone in its test binary: the recorder is process-wide,
//! so no other test may move these numbers meanwhile.

mod common;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::{MERCHANT_KEY, SESSION_SECRET, TestNode};
use serde_json::{Value, json};

/// Sum of the samples of `name` whose labels include all of `labels`.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            let series = l.split_whitespace().next().unwrap_or("");
            let bare = series.split('{').next().unwrap_or("");
            bare == name
                && labels
                    .iter()
                    .all(|(k, v)| series.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .sum()
}

async fn scrape(node: &TestNode) -> String {
    node.http
        .get(node.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn call(
    node: &TestNode,
    method: reqwest::Method,
    path: &str,
    bearer: Option<&str>,
    body: Option<Value>,
) -> u16 {
    let mut req = node.http.request(method, node.url(path));
    if let Some(b) = bearer {
        req = req.bearer_auth(b);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    req.send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn each_metric_moves_when_its_event_happens() {
    use reqwest::Method as M;
    let mut settings = common::test_settings();
    settings.auth.shop_secret = velvet::config::Secret::new("shop");
    let redis = common::RedisServer::start();
    settings.redis.url = velvet::config::Secret::new(redis.url());
    let mut node = TestNode::with_settings(settings, Some(redis)).await;
    let before = scrape(&node).await;

    node.define_queue(
        "m",
        json!({ "admitPerMinute": 6000, "maxParticipants": 50 }),
    )
    .await;
    node.define(
        "full",
        json!({ "name": "F", "sequences": [{ "id": "full-q", "name": "Q",
        "kind": "queue", "maxParticipants": 1, "paused": true }] }),
    )
    .await;
    node.define(
        "gone",
        json!({ "name": "G", "inventory": 1, "sequences": [{ "id": "gone-q",
        "name": "Q", "kind": "queue", "admitPerMinute": 6000 }] }),
    )
    .await;
    node.define(
        "soon",
        json!({ "name": "S", "sequences": [{ "id": "soon-d", "name": "D",
        "kind": "draw", "winners": 1, "opensAt": "2099-01-01T00:00:00Z" }] }),
    )
    .await;
    node.define("past", json!({ "name": "P", "sequences": [{ "id": "past-q", "name": "Q",
        "kind": "queue", "opensAt": "2020-01-01T00:00:00Z", "closesAt": "2020-01-02T00:00:00Z" }] })).await;
    node.define(
        "acct",
        json!({ "name": "A", "sequences": [{ "id": "acct-d", "name": "D",
        "kind": "draw", "winners": 1, "requireAccount": true }] }),
    )
    .await;

    // A WebSocket connects (and is told it is ready).
    let me = node.session().await;
    let mut ws = node.ws(&me).await;
    let connected = scrape(&node).await;
    assert_eq!(
        sample(&connected, "velvet_ws_connections", &[])
            - sample(&before, "velvet_ws_connections", &[]),
        1.0
    );

    // An enter, an admission, a redeem.
    assert_eq!(node.enter(&me, "m-q").await.0, 200);
    let token = node.wait_admitted(&me, "m-q").await;
    ws.next_of("queue:access-granted")
        .await
        .expect("grant pushed");
    assert_eq!(node.merchant("redeem", &token).await.0, 200);

    // One error of each code.
    let other = node.session().await;
    node.enter(&other, "full-q").await;
    let gone_buyer = node.session().await;
    node.enter(&gone_buyer, "gone-q").await;
    let gone_token = node.wait_admitted(&gone_buyer, "gone-q").await;
    node.merchant("redeem", &gone_token).await; // takes the last unit
    let expired_session = jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &json!({ "sub": uuid::Uuid::new_v4(), "aud": "velvet-session", "iat": 1, "exp": 2 }),
        &jsonwebtoken::EncodingKey::from_secret(SESSION_SECRET.as_bytes()),
    )
    .unwrap();
    let shop = |sub: &str| {
        jsonwebtoken::encode(
            &jsonwebtoken::Header::default(),
            &json!({ "sub": sub, "exp": 4_000_000_000u64 }),
            &jsonwebtoken::EncodingKey::from_secret(b"shop"),
        )
        .unwrap()
    };
    let mut bound = Vec::new();
    for _ in 0..2 {
        let res = node
            .http
            .post(node.url("/v1/sessions"))
            .json(&json!({ "assertion": shop("u1") }));
        let body: Value = res.send().await.unwrap().json().await.unwrap();
        bound.push(body["sessionToken"].as_str().unwrap().to_owned());
    }
    let t = Some(me.token.as_str());
    let big = json!({ "token": "x".repeat(40_000) });
    let errors = [
        (
            call(&node, M::POST, "/v1/queues/BAD/enter", t, None).await,
            "INVALID_REQUEST",
        ),
        (
            call(&node, M::POST, "/v1/queues/m-q/enter", None, None).await,
            "UNAUTHORIZED",
        ),
        (
            call(&node, M::POST, "/v1/queues/m-q/enter", Some("x.y.z"), None).await,
            "INVALID_TOKEN",
        ),
        (
            call(
                &node,
                M::POST,
                "/v1/queues/m-q/enter",
                Some(&expired_session),
                None,
            )
            .await,
            "TOKEN_EXPIRED",
        ),
        (
            call(
                &node,
                M::GET,
                "/v1/admin/experiences/m",
                Some(MERCHANT_KEY),
                None,
            )
            .await,
            "FORBIDDEN",
        ),
        (
            call(&node, M::GET, "/v1/experiences/none", None, None).await,
            "NOT_FOUND",
        ),
        (
            call(&node, M::POST, "/v1/draws/soon-d/enter", t, None).await,
            "NOT_OPEN",
        ),
        (
            call(&node, M::POST, "/v1/queues/past-q/enter", t, None).await,
            "CLOSED",
        ),
        (
            call(&node, M::POST, "/v1/queues/full-q/enter", t, None).await,
            "CAPACITY_REACHED",
        ),
        (
            call(&node, M::POST, "/v1/queues/gone-q/enter", t, None).await,
            "SOLD_OUT",
        ),
        (node.merchant("redeem", &token).await.0, "ALREADY_REDEEMED"),
        (
            call(
                &node,
                M::POST,
                "/v1/draws/acct-d/enter",
                Some(&bound[0]),
                None,
            )
            .await,
            "NONE",
        ),
        (
            call(
                &node,
                M::POST,
                "/v1/draws/acct-d/enter",
                Some(&bound[1]),
                None,
            )
            .await,
            "ALREADY_ENTERED",
        ),
        (
            call(
                &node,
                M::POST,
                "/v1/handoff/verify",
                Some(MERCHANT_KEY),
                Some(big),
            )
            .await,
            "PAYLOAD_TOO_LARGE",
        ),
    ];
    let after = scrape(&node).await;
    for (status, code) in errors.iter().filter(|(_, c)| *c != "NONE") {
        let moved = sample(&after, "velvet_errors_total", &[("code", code)])
            - sample(&before, "velvet_errors_total", &[("code", code)]);
        assert!(moved >= 1.0, "{code} (status {status}) counted");
    }

    let delta = |name: &str, labels: &[(&str, &str)]| {
        sample(&after, name, labels) - sample(&before, name, labels)
    };
    let enter_route = [("route", "/v1/queues/{id}/enter"), ("status", "200")];
    assert!(delta("velvet_http_requests_total", &enter_route) >= 3.0);
    assert!(
        delta(
            "velvet_http_request_duration_seconds_count",
            &[("route", "/v1/queues/{id}/enter")]
        ) >= 3.0
    );
    assert!(
        !after.contains("route=\"/v1/queues/m-q/enter\""),
        "labels are route templates"
    );
    assert_eq!(
        delta("velvet_queue_admitted_total", &[("queue", "m-q")]),
        1.0
    );
    assert_eq!(
        delta("velvet_handoff_issued_total", &[("sequence", "m-q")]),
        1.0
    );
    assert_eq!(
        delta("velvet_handoff_redeemed_total", &[("sequence", "m-q")]),
        1.0
    );
    assert_eq!(sample(&after, "velvet_leader", &[("sequence", "m-q")]), 1.0);
    assert!(delta("velvet_ws_messages_sent_total", &[("type", "ready")]) >= 1.0);
    assert!(
        delta(
            "velvet_ws_messages_sent_total",
            &[("type", "queue:access-granted")]
        ) >= 1.0
    );
    assert!(delta("velvet_store_request_duration_seconds_count", &[]) >= 10.0);

    // Depth follows the line within the refresh interval.
    let waiting = node.session().await;
    assert_eq!(node.admin_post("/v1/admin/sequences/m-q/pause").await, 200);
    node.enter(&waiting, "m-q").await;
    let (mut depth, mut capacity) = (0.0, 0.0);
    for _ in 0..40 {
        let now = scrape(&node).await;
        depth = sample(&now, "velvet_queue_waiting", &[("queue", "m-q")]);
        capacity = sample(&now, "velvet_queue_capacity", &[("queue", "m-q")]);
        if (depth, capacity) == (1.0, 50.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!((depth, capacity), (1.0, 50.0));

    // Disconnecting brings the gauge back.
    drop(ws);
    let mut open = 1.0;
    for _ in 0..40 {
        let now = scrape(&node).await;
        open = sample(&now, "velvet_ws_connections", &[])
            - sample(&before, "velvet_ws_connections", &[]);
        if open == 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(open, 0.0);

    // promtool accepts the exposition.
    let text = scrape(&node).await;
    promtool_accepts(&text);

    // A store failure is counted, and requests get 503 meanwhile.
    node.redis.as_mut().unwrap().stop();
    assert_eq!(node.enter(&node.session().await, "m-q").await.0, 503);
    let broken = scrape(&node).await;
    assert!(
        sample(&broken, "velvet_store_errors_total", &[])
            > sample(&before, "velvet_store_errors_total", &[])
    );
    assert!(
        sample(
            &broken,
            "velvet_errors_total",
            &[("code", "SERVICE_UNAVAILABLE")]
        ) >= 1.0
    );
    node.stop().await;
}

fn promtool_accepts(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool on PATH (tests/run.sh installs Debian's prometheus package)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool check metrics: {report}");
}
