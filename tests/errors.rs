//! Client mistakes get the contract's error bodies and statuses, never a
//! 500; sockets that do not authenticate are closed with a policy code.

mod common;

use std::time::Duration;

use common::{ADMIN_KEY, Backend, MERCHANT_KEY, TestNode};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

async fn call(
    node: &TestNode,
    method: reqwest::Method,
    path: &str,
    bearer: Option<&str>,
    body: Option<String>,
) -> (u16, Value, Option<String>) {
    let mut req = node.http.request(method, node.url(path));
    if let Some(token) = bearer {
        req = req.bearer_auth(token);
    }
    if let Some(body) = body {
        req = req.header("content-type", "application/json").body(body);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let retry = res
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let body = res.json().await.unwrap_or(Value::Null);
    (status, body, retry)
}

fn code(body: &Value) -> &str {
    assert!(
        body["error"]["message"].is_string(),
        "error body has a message: {body}"
    );
    body["error"]["code"].as_str().unwrap_or("")
}

#[tokio::test]
async fn bad_requests_get_the_contract_errors() {
    use reqwest::Method as M;
    let node = TestNode::start(Backend::Memory).await;
    node.define_queue("err", json!({})).await;
    node.define(
        "over",
        json!({ "name": "Over", "sequences": [{ "id": "over-q", "name": "Q", "kind": "queue",
            "opensAt": "2020-01-01T00:00:00Z", "closesAt": "2020-01-02T00:00:00Z" }] }),
    )
    .await;
    node.define(
        "gone",
        json!({ "name": "Gone", "inventory": 0,
            "sequences": [{ "id": "gone-q", "name": "Q", "kind": "queue" }] }),
    )
    .await;
    let me = node.session().await;
    let token = Some(me.token.as_str());
    let big = format!("{{\"token\":\"{}\"}}", "a".repeat(64 * 1024));

    type Case<'a> = (M, &'a str, Option<&'a str>, Option<String>, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            M::POST,
            "/v1/queues/Not_An_Id/enter",
            token,
            None,
            400,
            "INVALID_REQUEST",
        ),
        (
            M::POST,
            "/v1/queues/nope/enter",
            token,
            None,
            404,
            "NOT_FOUND",
        ),
        (
            M::POST,
            "/v1/queues/err-q/enter",
            None,
            None,
            401,
            "UNAUTHORIZED",
        ),
        (
            M::POST,
            "/v1/queues/err-q/enter",
            Some("forged"),
            None,
            401,
            "INVALID_TOKEN",
        ),
        (
            M::GET,
            "/v1/queues/err-q/position",
            token,
            None,
            404,
            "NOT_FOUND",
        ),
        (
            M::DELETE,
            "/v1/queues/err-q/entry",
            token,
            None,
            404,
            "NOT_FOUND",
        ),
        (
            M::POST,
            "/v1/queues/over-q/enter",
            token,
            None,
            409,
            "CLOSED",
        ),
        (
            M::POST,
            "/v1/queues/gone-q/enter",
            token,
            None,
            410,
            "SOLD_OUT",
        ),
        (M::GET, "/v1/experiences/nope", None, None, 404, "NOT_FOUND"),
        (
            M::GET,
            "/v1/experiences/nope/status",
            None,
            None,
            404,
            "NOT_FOUND",
        ),
        (
            M::POST,
            "/v1/experiences/over/enter",
            token,
            None,
            409,
            "CLOSED",
        ),
        (
            M::GET,
            "/v1/admin/experiences/err",
            None,
            None,
            401,
            "UNAUTHORIZED",
        ),
        (
            M::GET,
            "/v1/admin/experiences/err",
            Some(MERCHANT_KEY),
            None,
            403,
            "FORBIDDEN",
        ),
        (
            M::POST,
            "/v1/handoff/verify",
            Some(ADMIN_KEY),
            Some("{}".into()),
            403,
            "FORBIDDEN",
        ),
        (
            M::POST,
            "/v1/handoff/redeem",
            None,
            Some("{}".into()),
            401,
            "UNAUTHORIZED",
        ),
        (
            M::POST,
            "/v1/handoff/verify",
            Some(MERCHANT_KEY),
            Some("{".into()),
            400,
            "INVALID_REQUEST",
        ),
        (
            M::POST,
            "/v1/handoff/verify",
            Some(MERCHANT_KEY),
            Some("{}".into()),
            400,
            "INVALID_REQUEST",
        ),
        (
            M::POST,
            "/v1/handoff/verify",
            Some(MERCHANT_KEY),
            Some(big),
            413,
            "PAYLOAD_TOO_LARGE",
        ),
        (
            M::POST,
            "/v1/sessions",
            None,
            Some("[1,2]".into()),
            400,
            "INVALID_REQUEST",
        ),
        (M::GET, "/v1/ws", None, None, 400, "INVALID_REQUEST"),
        (
            M::PUT,
            "/v1/admin/experiences/err/inventory",
            Some(ADMIN_KEY),
            Some("{}".into()),
            400,
            "INVALID_REQUEST",
        ),
        (M::GET, "/v1/nothing-here", None, None, 404, "NOT_FOUND"),
        (M::PUT, "/v1/sessions", None, None, 405, "INVALID_REQUEST"),
        (
            M::POST,
            "/v1/admin/sequences/nope/pause",
            Some(ADMIN_KEY),
            None,
            404,
            "NOT_FOUND",
        ),
    ];
    for (method, path, bearer, body, status, expected) in cases {
        let what = format!("{method} {path}");
        let (got, body, _) = call(&node, method, path, bearer, body).await;
        assert_eq!((got, code(&body)), (status, expected), "{what}: {body}");
    }
}

#[tokio::test]
async fn invalid_definitions_are_refused_naming_the_field() {
    let node = TestNode::start(Backend::Memory).await;
    let put = |body: Value| {
        let node = &node;
        async move {
            let res = node
                .http
                .put(node.url("/v1/admin/experiences/bad"))
                .bearer_auth(ADMIN_KEY)
                .json(&body)
                .send()
                .await
                .unwrap();
            (res.status().as_u16(), res.json::<Value>().await.unwrap())
        }
    };
    let queue = |extra: Value| {
        let mut seq = json!({ "id": "bad-q", "name": "Q", "kind": "queue" });
        for (k, v) in extra.as_object().unwrap() {
            seq[k] = v.clone();
        }
        json!({ "name": "Bad", "sequences": [seq] })
    };
    let cases = [
        (
            queue(json!({ "admitPerMinute": 0 })),
            "sequences[0].admitPerMinute",
        ),
        (queue(json!({ "maxActive": 0 })), "sequences[0].maxActive"),
        (
            queue(json!({ "tokenTtlSeconds": 1 })),
            "sequences[0].tokenTtlSeconds",
        ),
        (queue(json!({ "opensAt": "yesterday" })), "opensAt"),
        (queue(json!({ "kind": "lottery" })), "kind"),
        (queue(json!({ "winners": 3 })), "sequences[0].winners"),
        (queue(json!({ "surprise": true })), "surprise"),
        (json!({ "name": "", "sequences": [] }), "name"),
        (
            json!({ "name": "No sequences", "sequences": [] }),
            "sequences",
        ),
        (json!({ "id": "other", "name": "X", "sequences": [] }), "id"),
    ];
    for (body, field) in cases {
        let (status, reply) = put(body.clone()).await;
        let message = reply["error"]["message"].as_str().unwrap_or("");
        assert_eq!((status, code(&reply)), (400, "INVALID_REQUEST"), "{body}");
        assert!(message.contains(field), "`{message}` names `{field}`");
    }
}

#[tokio::test]
async fn a_socket_that_does_not_authenticate_is_closed_with_a_policy_code() {
    let node = TestNode::start(Backend::Memory).await;
    let url = format!("ws://{}/v1/ws", node.addr);
    for first in [
        json!({ "type": "hello" }).to_string(),
        json!({ "type": "auth", "sessionToken": "x" }).to_string(),
        "not json".into(),
    ] {
        let (mut socket, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
        socket
            .send(Message::Text(first.clone().into()))
            .await
            .unwrap();
        let mut saw_error = false;
        let mut close = None;
        while let Ok(Some(Ok(frame))) =
            tokio::time::timeout(Duration::from_secs(5), socket.next()).await
        {
            match frame {
                Message::Text(text) => {
                    let body: Value = serde_json::from_str(&text).unwrap();
                    saw_error |= body["type"] == "error";
                }
                Message::Close(frame) => {
                    close = frame.map(|f| f.code);
                    break;
                }
                _ => {}
            }
        }
        assert!(saw_error, "an error message for {first}");
        assert_eq!(close, Some(CloseCode::Policy), "closed for {first}");
    }
}

#[tokio::test]
async fn an_authenticated_socket_that_sends_junk_gets_an_error_and_stays_open() {
    let node = TestNode::start(Backend::Memory).await;
    let me = node.session().await;
    let mut ws = node.ws(&me).await;
    ws.socket
        .send(Message::Text("{\"type\":\"dance\"}".into()))
        .await
        .unwrap();
    let reply = ws.next_of("error").await.expect("an error message");
    assert_eq!(reply["code"], "INVALID_REQUEST");
    ws.socket.send(Message::Ping(vec![1].into())).await.unwrap();
    let pong = tokio::time::timeout(Duration::from_secs(5), ws.socket.next()).await;
    assert!(
        matches!(pong, Ok(Some(Ok(Message::Pong(_))))),
        "still open: {pong:?}"
    );
}

#[tokio::test]
async fn a_node_that_shuts_down_closes_sockets_with_going_away() {
    let mut node = TestNode::start(Backend::Memory).await;
    let me = node.session().await;
    let mut ws = node.ws(&me).await;
    node.stop().await;
    let mut close = None;
    while let Ok(Some(Ok(frame))) =
        tokio::time::timeout(Duration::from_secs(5), ws.socket.next()).await
    {
        if let Message::Close(frame) = frame {
            close = frame.map(|f| f.code);
            break;
        }
    }
    assert_eq!(close, Some(CloseCode::Away));
}

#[tokio::test]
async fn an_oversized_frame_gets_an_error_and_the_socket_is_closed() {
    let node = TestNode::start(Backend::Memory).await;
    let url = format!("ws://{}/v1/ws", node.addr);
    // Before authenticating, and after.
    let (mut early, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    early
        .send(Message::Text("x".repeat(10_000).into()))
        .await
        .unwrap();
    let me = node.session().await;
    let mut late = node.ws(&me).await;
    late.socket
        .send(Message::Text("y".repeat(10_000).into()))
        .await
        .unwrap();
    for socket in [&mut early, &mut late.socket] {
        let mut told = false;
        // The close frame (1009) may be lost to a reset: the kernel resets a
        // connection closed over the unread rest of the oversized frame.
        while let Ok(Some(Ok(frame))) =
            tokio::time::timeout(Duration::from_secs(5), socket.next()).await
        {
            match frame {
                Message::Text(text) => {
                    let body: Value = serde_json::from_str(&text).unwrap();
                    told |= body["code"] == "PAYLOAD_TOO_LARGE";
                }
                Message::Close(frame) => {
                    assert_eq!(frame.map(|f| f.code), Some(CloseCode::Size));
                    break;
                }
                _ => {}
            }
        }
        assert!(told, "the client is told why");
        let after = tokio::time::timeout(Duration::from_secs(5), socket.next()).await;
        assert!(
            !matches!(after, Ok(Some(Ok(Message::Text(_))))),
            "closed: {after:?}"
        );
    }
}
