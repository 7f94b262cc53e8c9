//! A node protects itself: per-client rate limits answer 429 with
//! `Retry-After` without affecting other clients, and a node past its
//! bound on requests in flight sheds the excess with 503 at once.

mod common;

use std::net::IpAddr;
use std::time::Duration;

use common::{TestNode, test_settings};
use futures_util::{StreamExt, stream};
use serde_json::Value;
use tokio::io::AsyncWriteExt;

fn client_from(ip: &str) -> reqwest::Client {
    let ip: IpAddr = ip.parse().unwrap();
    reqwest::Client::builder()
        .local_address(ip)
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_burst_from_one_address_is_limited_while_another_address_is_served() {
    let mut settings = test_settings();
    settings.server.client_rate_per_second = 5;
    settings.server.client_burst = 20;
    let node = TestNode::with_settings(settings, None).await;
    let url = node.url("/v1/sessions");

    let noisy = client_from("127.0.0.1");
    let replies: Vec<(u16, Option<String>, Value)> = stream::iter(0..500)
        .map(|_| {
            let (client, url) = (noisy.clone(), url.clone());
            async move {
                let res = client.post(url).send().await.unwrap();
                let retry = res
                    .headers()
                    .get("retry-after")
                    .map(|v| v.to_str().unwrap().into());
                (
                    res.status().as_u16(),
                    retry,
                    res.json().await.unwrap_or(Value::Null),
                )
            }
        })
        .buffer_unordered(50)
        .collect()
        .await;
    let created = replies.iter().filter(|r| r.0 == 201).count();
    let limited: Vec<_> = replies.iter().filter(|r| r.0 == 429).collect();
    assert!(created >= 20, "the burst allowance is served: {created}");
    assert!(created < 100, "the rest is limited: {created} created");
    assert_eq!(created + limited.len(), 500);
    for (_, retry, body) in &limited {
        assert_eq!(body["error"]["code"], "RATE_LIMITED");
        let secs: u64 = retry.as_deref().expect("Retry-After").parse().unwrap();
        assert!(secs >= 1);
        assert_eq!(body["error"]["retryAfterSeconds"].as_u64(), Some(secs));
    }

    let quiet = client_from("127.0.0.2");
    let res = quiet.post(&url).send().await.unwrap();
    assert_eq!(res.status(), 201, "another address is still served");
    // Reads are not rate limited: the noisy client can still poll status.
    let health = noisy.get(node.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn a_node_past_its_bound_sheds_requests_with_503() {
    let mut settings = test_settings();
    settings.server.max_concurrent_requests = 1;
    let node = TestNode::with_settings(settings, None).await;

    // A request whose body never finishes holds the only slot.
    let mut slow = tokio::net::TcpStream::connect(node.addr).await.unwrap();
    let head = "POST /v1/sessions HTTP/1.1\r\nHost: velvet\r\n\
                Content-Type: application/json\r\nContent-Length: 20\r\n\r\n{";
    slow.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let res = node
        .http
        .get(node.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers().get("retry-after").unwrap(), "1");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"]["code"], "SERVICE_UNAVAILABLE");
    // A busy node is not a dead one: liveness and readiness still answer.
    for probe in ["/healthz", "/readyz", "/metrics"] {
        let res = node.http.get(node.url(probe)).send().await.unwrap();
        assert_eq!(res.status(), 200, "{probe} under load");
    }

    drop(slow);
    let mut served = false;
    for _ in 0..50 {
        let res = node
            .http
            .get(node.url("/openapi.json"))
            .send()
            .await
            .unwrap();
        if res.status() == 200 {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(served, "the node recovers once the slot is free");
}

#[tokio::test]
async fn a_body_declared_too_large_is_refused_at_once() {
    use tokio::io::AsyncReadExt;
    let node = TestNode::with_settings(test_settings(), None).await;
    let mut socket = tokio::net::TcpStream::connect(node.addr).await.unwrap();
    let head = "POST /v1/sessions HTTP/1.1\r\nHost: velvet\r\n\
                Content-Type: application/json\r\nContent-Length: 99999999\r\n\r\n{";
    socket.write_all(head.as_bytes()).await.unwrap();
    let mut reply = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(2), socket.read(&mut reply))
        .await
        .expect("an answer without waiting for the body")
        .unwrap();
    let text = String::from_utf8_lossy(&reply[..n]);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains("PAYLOAD_TOO_LARGE"), "{text}");
}

#[tokio::test]
async fn an_overlong_request_id_is_replaced_and_a_short_one_kept() {
    let node = TestNode::with_settings(test_settings(), None).await;
    let long = "x".repeat(5_000);
    let res = node
        .http
        .get(node.url("/healthz"))
        .header("x-request-id", &long);
    let echoed = res.send().await.unwrap().headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(echoed.len() <= 128 && echoed != long, "{}", echoed.len());
    let res = node
        .http
        .get(node.url("/healthz"))
        .header("x-request-id", "abc-123");
    assert_eq!(
        res.send().await.unwrap().headers()["x-request-id"],
        "abc-123"
    );
}
