//! A slow or dead client never holds up the others: its bounded queue
//! overflows and it alone is dropped; a socket that stops answering pings
//! is closed.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{TestNode, test_settings};
use velvet::catalog::Catalog;
use velvet::store::memory::MemoryStore;
use velvet::store::{Event, Store};
use velvet::ws::hub::Hub;

#[tokio::test]
async fn a_client_that_stops_reading_is_dropped_and_the_others_keep_receiving() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let catalog = Arc::new(Catalog::new(store.clone()));
    let hub = Arc::new(Hub::new(store, catalog, 8));
    let (slow, fast) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
    let (_, slow_rx) = hub.register(slow);
    let (_, mut fast_rx) = hub.register(fast);

    let mut delivered = 0;
    for _ in 0..100 {
        hub.on_event(Event::FeedLost);
        while fast_rx.try_recv().is_ok() {
            delivered += 1;
        }
    }
    assert_eq!(delivered, 100, "the reading client got every message");
    assert_eq!(hub.connections(), 1, "only the slow client was dropped");
    drop(slow_rx);
}

#[tokio::test]
async fn a_socket_that_stops_answering_pings_is_closed() {
    let mut settings = test_settings();
    settings.ws.ping_interval_ms = 100;
    let node = TestNode::with_settings(settings, None).await;
    let me = node.session().await;
    // Authenticated, then silent: the client never reads again, so it never
    // answers the server's pings.
    let ws = node.ws(&me).await;
    let hub = node.node.as_ref().unwrap().state.hub.clone();
    assert_eq!(hub.connections(), 1);
    let mut closed = false;
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        if hub.connections() == 0 {
            closed = true;
            break;
        }
    }
    assert!(closed, "the silent socket was dropped");
    drop(ws);
}

#[tokio::test]
async fn connecting_to_a_node_with_many_experiences_sends_only_ones_own() {
    let node = TestNode::with_settings(test_settings(), None).await;
    for i in 0..45 {
        node.define_queue(&format!("many{i}"), serde_json::json!({ "paused": true }))
            .await;
    }
    let me = node.session().await;
    node.enter(&me, "many7-q").await;
    let mut ws = node.ws(&me).await;
    let mut seen = Vec::new();
    while let Ok(Some(message)) =
        tokio::time::timeout(Duration::from_millis(500), ws.next_json()).await
    {
        seen.push(message);
    }
    let experiences: Vec<_> = seen
        .iter()
        .filter(|m| m["type"] == "experience:updated")
        .collect();
    assert_eq!(experiences.len(), 1, "{seen:?}");
    assert_eq!(experiences[0]["experienceId"], "many7");
    assert!(seen.iter().any(|m| m["type"] == "queue:position-updated"));
    // Still connected: it answers a ping.
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    ws.socket.send(Message::Ping(vec![1].into())).await.unwrap();
    let pong = tokio::time::timeout(Duration::from_secs(5), ws.socket.next()).await;
    assert!(matches!(pong, Ok(Some(Ok(Message::Pong(_))))), "{pong:?}");
}
