//! What a browser gets from a node, checked over HTTP without a browser:
//! the SDK's and pages' headers, escaping, the demo checkout's rules, and
//! CORS for listed shop origins only. (`tests/browser.rs` runs the pages.)

mod common;

use common::{Backend, TestNode, test_settings};
use reqwest::Response;
use reqwest::header::{HeaderMap, ORIGIN};
use serde_json::json;

async fn get(node: &TestNode, path: &str) -> Response {
    node.http.get(node.url(path)).send().await.expect("GET")
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers.get(name).map_or("", |v| v.to_str().unwrap_or(""))
}

/// A token minted for a person admitted to a fresh queue of experience `id`.
async fn admitted_token(node: &TestNode, id: &str, checkout_url: &str) -> String {
    let queue = format!("{id}-q");
    let seq = json!({ "id": queue, "name": "General", "kind": "queue" });
    let body = json!({ "name": id, "checkoutUrl": checkout_url, "sequences": [seq] });
    node.define(id, body).await;
    let session = node.session().await;
    assert_eq!(node.enter(&session, &queue).await.0, 200);
    node.wait_admitted(&session, &queue).await
}

#[tokio::test]
async fn the_sdk_is_served_as_a_long_cached_module_any_origin_may_import() {
    let node = TestNode::start(Backend::Memory).await;

    for (path, kind) in [
        ("/sdk/v1/velvet.js", "text/javascript"),
        ("/sdk/v1/velvet.d.ts", "application/typescript"),
    ] {
        let res = get(&node, path).await;
        let h = res.headers().clone();

        assert_eq!(res.status(), 200, "{path}");
        assert!(header(&h, "content-type").starts_with(kind), "{path}");
        assert_eq!(
            header(&h, "cache-control"),
            "public, max-age=31536000, immutable"
        );
        assert_eq!(header(&h, "access-control-allow-origin"), "*");
        assert!(res.text().await.unwrap().contains("createClient"));
    }
}

#[tokio::test]
async fn page_assets_are_cached_for_good_only_under_their_current_hash() {
    let node = TestNode::start(Backend::Memory).await;
    let url = velvet::web::assets::ROOM_JS.url();

    let pinned = get(&node, &url).await;
    let stale = get(&node, "/web/v1/room.js?v=0").await;
    let unknown = get(&node, "/web/v1/nope.js").await;

    assert_eq!(
        header(pinned.headers(), "cache-control"),
        "public, max-age=31536000, immutable"
    );
    assert_eq!(header(stale.headers(), "cache-control"), "no-cache");
    assert_eq!(unknown.status(), 404);
}

#[tokio::test]
async fn a_waiting_room_page_escapes_what_operators_typed() {
    let node = TestNode::start(Backend::Memory).await;
    let name = "</script><script>alert(1)</script>";
    let seq = json!({ "id": "esc-q", "name": "<b>General</b>", "kind": "queue" });
    node.define("esc", json!({ "name": name, "sequences": [seq] }))
        .await;

    let res = get(&node, "/e/esc").await;
    let h = res.headers().clone();
    let html = res.text().await.unwrap();

    assert_eq!(header(&h, "cache-control"), "no-store");
    assert!(header(&h, "content-security-policy").contains("script-src 'self'"));
    assert!(!html.contains("<script>alert"), "{html}");
    assert!(!html.contains("<b>General"), "{html}");
    assert!(html.contains("&lt;b&gt;General&lt;/b&gt;"));
}

#[tokio::test]
async fn unknown_or_malformed_experiences_get_an_html_404() {
    let node = TestNode::start(Backend::Memory).await;

    for path in ["/e/no-such-drop", "/e/Not_An_Id", "/status/no-such-drop"] {
        let res = get(&node, path).await;
        assert_eq!(res.status(), 404, "{path}");
        assert!(header(res.headers(), "content-type").starts_with("text/html"));
    }
}

#[tokio::test]
async fn the_demo_checkout_redeems_a_token_once_and_shows_its_claims() {
    let node = TestNode::start(Backend::Memory).await;
    let token = admitted_token(&node, "demo-co", "/demo/checkout").await;
    let path = format!("/demo/checkout?token={token}");

    let first = get(&node, &path).await;
    let referrer = header(first.headers(), "referrer-policy").to_owned();
    let first = (first.status(), first.text().await.unwrap());
    let second = get(&node, &path).await.status();

    assert_eq!(first.0, 200);
    assert_eq!(referrer, "no-referrer");
    assert!(first.1.contains("data-outcome=\"redeemed\""));
    assert!(first.1.contains(">demo-co-q</dd>"));
    assert_eq!(second, 409);
    let (status, body) = node.merchant("redeem", &token).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("ALREADY_REDEEMED"))
    );
}

#[tokio::test]
async fn the_demo_checkout_refuses_tokens_of_launches_with_their_own_checkout() {
    let node = TestNode::start(Backend::Memory).await;
    let token = admitted_token(&node, "real", "https://shop.example/checkout").await;

    let foreign = get(&node, &format!("/demo/checkout?token={token}")).await;
    let forged = get(&node, "/demo/checkout?token=not.a.jwt").await;
    let missing = get(&node, "/demo/checkout").await;

    assert_eq!(foreign.status(), 403);
    assert_eq!(forged.status(), 401);
    assert_eq!(missing.status(), 400);
    // The refused token is still good at its own checkout.
    assert_eq!(node.merchant("redeem", &token).await.0, 200);
}

async fn preflight(node: &TestNode, origin: &str) -> HeaderMap {
    let res = node
        .http
        .request(reqwest::Method::OPTIONS, node.url("/v1/queues/q/enter"))
        .header(ORIGIN, origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization")
        .send()
        .await
        .expect("preflight");
    res.headers().clone()
}

#[tokio::test]
async fn only_listed_shop_origins_may_call_the_api_from_a_browser() {
    let mut settings = test_settings();
    settings.server.cors_origins = vec!["https://shop.example".into()];
    let node = TestNode::with_settings(settings, None).await;

    let shop = preflight(&node, "https://shop.example").await;
    let other = preflight(&node, "https://evil.example").await;
    let answer = node
        .http
        .post(node.url("/v1/sessions"))
        .header(ORIGIN, "https://shop.example")
        .send()
        .await
        .unwrap();

    assert_eq!(
        header(&shop, "access-control-allow-origin"),
        "https://shop.example"
    );
    assert!(header(&shop, "access-control-allow-headers").contains("authorization"));
    assert!(other.get("access-control-allow-origin").is_none());
    let exposed = header(answer.headers(), "access-control-expose-headers");
    assert!(exposed.contains("retry-after"), "{exposed}");
}

#[tokio::test]
async fn with_no_origins_listed_the_api_sends_no_cors_headers() {
    let node = TestNode::start(Backend::Memory).await;

    let headers = preflight(&node, "https://shop.example").await;

    assert!(headers.get("access-control-allow-origin").is_none());
}
