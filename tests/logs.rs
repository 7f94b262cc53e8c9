//! Logs of a whole consumer and merchant flow, from the real binary at
//! debug level, contain no token, key or secret.

mod common;

use std::time::Duration;

use common::process::NodeProcess;
use futures_util::SinkExt;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const ADMIN: &str = "admin-key-that-must-not-leak";
const MERCHANT: &str = "merchant-key-that-must-not-leak";
const SECRET: &str = "session-secret-that-must-not-leak";

#[tokio::test]
async fn a_full_flow_logs_no_token_key_or_secret() {
    let node = NodeProcess::spawn(&[
        ("VELVET__AUTH__ADMIN_KEY", ADMIN.into()),
        ("VELVET__AUTH__MERCHANT_KEY", MERCHANT.into()),
        ("VELVET__AUTH__SESSION_SECRET", SECRET.into()),
        ("VELVET__ADMISSION__TICK_MS", "100".into()),
        ("VELVET__ADMISSION__LEASE_TTL_MS", "1000".into()),
        ("VELVET__LOG__FILTER", "debug".into()),
        ("VELVET__LOG__FORMAT", "json".into()),
    ]);
    let http = reqwest::Client::new();
    let define = json!({ "name": "L", "sequences": [{ "id": "logq", "name": "Q",
        "kind": "queue", "admitPerMinute": 6000 }] });
    let res = http
        .put(node.url("/v1/admin/experiences/logs"))
        .bearer_auth(ADMIN)
        .json(&define);
    assert_eq!(res.send().await.unwrap().status(), 200);

    let session: Value = http
        .post(node.url("/v1/sessions"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let session_token = session["sessionToken"].as_str().unwrap().to_owned();
    let res = http
        .post(node.url("/v1/queues/logq/enter"))
        .bearer_auth(&session_token)
        .header("x-request-id", "trace-me-123")
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers().get("x-request-id").unwrap(),
        "trace-me-123",
        "echoed"
    );

    let mut handoff = String::new();
    for _ in 0..100 {
        let res = http
            .get(node.url("/v1/queues/logq/position"))
            .bearer_auth(&session_token);
        let body: Value = res.send().await.unwrap().json().await.unwrap();
        if let Some(token) = body["handoffToken"].as_str() {
            handoff = token.to_owned();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!handoff.is_empty(), "admitted");

    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/v1/ws", node.addr))
            .await
            .unwrap();
    let auth = json!({ "type": "auth", "sessionToken": session_token });
    ws.send(Message::Text(auth.to_string().into()))
        .await
        .unwrap();
    ws.send(Message::Text("{\"type\":\"bogus\"}".into()))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    for action in ["verify", "redeem", "redeem"] {
        let res = http.post(node.url(&format!("/v1/handoff/{action}")));
        res.bearer_auth(MERCHANT)
            .json(&json!({ "token": handoff }))
            .send()
            .await
            .unwrap();
    }
    // Wrong keys and a forged session, which must not be echoed either.
    let res = http
        .get(node.url("/v1/admin/experiences/logs"))
        .bearer_auth(MERCHANT);
    assert_eq!(res.send().await.unwrap().status(), 403);
    let res = http
        .post(node.url("/v1/queues/logq/enter"))
        .bearer_auth(format!("{SECRET}x"));
    assert_eq!(res.send().await.unwrap().status(), 401);

    node.signal("TERM");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let logs = node.logs();
    assert!(logs.contains("listening"), "the log is not empty");
    assert!(logs.contains("trace-me-123"), "request ids are logged");
    assert!(logs.contains("\"route\""), "spans carry the route");
    for (what, secret) in [
        ("session token", session_token.as_str()),
        ("handoff token", handoff.as_str()),
        ("admin key", ADMIN),
        ("merchant key", MERCHANT),
        ("session secret", SECRET),
    ] {
        assert!(!logs.contains(secret), "the {what} appears in the logs");
        // Nor its signature part alone (tokens are JWTs).
        if let Some(signature) = secret.rsplit('.').next().filter(|s| s.len() > 20) {
            assert!(
                !logs.contains(signature),
                "part of the {what} appears in the logs"
            );
        }
    }
}
