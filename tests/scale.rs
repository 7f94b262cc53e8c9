//! Several node processes on one Redis, and on a 3-master Redis Cluster:
//! one consistent line whichever node a consumer lands on, leader failover
//! without double or skipped admission, fencing of a frozen leader, and
//! survival of a Redis restart or outage.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::process::NodeProcess;
use common::{RedisCluster, RedisServer};
use ed25519_dalek::pkcs8::EncodePrivateKey;
use futures_util::{SinkExt, StreamExt, stream};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const ADMIN: &str = "scale-admin";
const SECRET: &str = "scale-session-secret";
const TICK_MS: u64 = 100;
const LEASE_MS: u64 = 1_000;

enum Backing {
    Single(RedisServer),
    Cluster(RedisCluster),
}

struct Fleet {
    nodes: Vec<NodeProcess>,
    http: reqwest::Client,
    key_file: std::path::PathBuf,
    _backing: Backing,
}

fn key_file() -> std::path::PathBuf {
    let key = ed25519_dalek::SigningKey::from_bytes(&rand::random());
    let file =
        std::env::temp_dir().join(format!("velvet-fleet-{}.pem", uuid::Uuid::new_v4()));
    std::fs::write(
        &file,
        key.to_pkcs8_pem(Default::default()).unwrap().as_bytes(),
    )
    .unwrap();
    file
}

impl Fleet {
    fn start(cluster: bool, nodes: usize) -> Self {
        let backing = if cluster {
            Backing::Cluster(RedisCluster::start())
        } else {
            Backing::Single(RedisServer::start())
        };
        Self::on(backing, nodes)
    }

    fn on(backing: Backing, count: usize) -> Self {
        let key_file = key_file();
        let mut fleet = Self {
            nodes: Vec::new(),
            http: reqwest::Client::new(),
            key_file,
            _backing: backing,
        };
        for _ in 0..count {
            fleet.add_node();
        }
        fleet
    }

    fn add_node(&mut self) {
        let store = match &self._backing {
            Backing::Single(r) => ("VELVET__REDIS__URL", r.url()),
            Backing::Cluster(c) => ("VELVET__REDIS__CLUSTER_NODES", c.seeds()),
        };
        self.nodes.push(NodeProcess::spawn(&[
            store,
            ("VELVET__AUTH__ADMIN_KEY", ADMIN.into()),
            ("VELVET__AUTH__MERCHANT_KEY", "scale-merchant".into()),
            ("VELVET__AUTH__SESSION_SECRET", SECRET.into()),
            (
                "VELVET__TOKENS__SIGNING_KEY_FILE",
                self.key_file.to_string_lossy().into(),
            ),
            ("VELVET__ADMISSION__TICK_MS", TICK_MS.to_string()),
            ("VELVET__ADMISSION__LEASE_TTL_MS", LEASE_MS.to_string()),
            ("VELVET__SERVER__CLIENT_RATE_PER_SECOND", "1000000".into()),
            ("VELVET__SERVER__CLIENT_BURST", "1000000".into()),
            ("VELVET__LOG__FORMAT", "json".into()),
            ("VELVET__LOG__FILTER", "info,velvet=debug".into()),
        ]));
    }

    fn url(&self, node: usize, path: &str) -> String {
        self.nodes[node % self.nodes.len()].url(path)
    }

    async fn define_queue(&self, id: &str, queue: Value) {
        let mut seq = json!({ "id": id, "name": "Q", "kind": "queue", "paused": true });
        for (k, v) in queue.as_object().unwrap() {
            seq[k] = v.clone();
        }
        let body = json!({ "name": id, "sequences": [seq] });
        let res = self
            .http
            .put(self.url(0, &format!("/v1/admin/experiences/{id}-exp")));
        assert_eq!(
            res.bearer_auth(ADMIN)
                .json(&body)
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
        // Every node sees the definition within its catalog refresh.
        tokio::time::sleep(Duration::from_millis(1_200)).await;
    }

    async fn admin(&self, node: usize, path: &str) {
        let res = self
            .http
            .post(self.url(node, path))
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{path}");
    }

    async fn live(&self, node: usize, queue: &str) -> Value {
        let res = self
            .http
            .get(self.url(node, &format!("/v1/admin/experiences/{queue}-exp")));
        let body: Value = res
            .bearer_auth(ADMIN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["live"][queue].clone()
    }

    /// `n` sessions, each entering through a different node; with positions.
    async fn enter_many(&self, queue: &str, n: usize) -> Vec<(String, u64)> {
        stream::iter(0..n)
            .map(|i| async move {
                let res = self
                    .http
                    .post(self.url(i, "/v1/sessions"))
                    .send()
                    .await
                    .unwrap();
                let session: Value = res.json().await.unwrap();
                let token = session["sessionToken"].as_str().unwrap().to_owned();
                let res = self
                    .http
                    .post(self.url(i + 1, &format!("/v1/queues/{queue}/enter")));
                let entry: Value = res
                    .bearer_auth(&token)
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                (token, entry["position"].as_u64().expect("a position"))
            })
            .buffer_unordered(64)
            .collect()
            .await
    }

    async fn entry(&self, node: usize, queue: &str, token: &str) -> Value {
        let res = self
            .http
            .get(self.url(node, &format!("/v1/queues/{queue}/position")));
        res.bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// Which node leads `seq`, read from each node's `velvet_leader` gauge.
    async fn leader(&self, seq: &str) -> Option<usize> {
        for (i, node) in self.nodes.iter().enumerate() {
            let Ok(res) = self.http.get(node.url("/metrics")).send().await else {
                continue;
            };
            let text = res.text().await.unwrap_or_default();
            let line = format!("velvet_leader{{sequence=\"{seq}\"}} 1");
            if text.lines().any(|l| l == line) {
                return Some(i);
            }
        }
        None
    }

    async fn wait_admitted_total(&self, node: usize, queue: &str, total: u64) {
        for _ in 0..600 {
            if self.live(node, queue).await["admittedTotal"].as_u64() >= Some(total) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{queue} did not reach {total} admitted");
    }

    /// Every consumer admitted exactly once, in line order, one token each.
    async fn check_line_order(&self, queue: &str, people: &[(String, u64)]) {
        let mut by_position: Vec<&(String, u64)> = people.iter().collect();
        by_position.sort_by_key(|p| p.1);
        let positions: Vec<u64> = by_position.iter().map(|p| p.1).collect();
        assert_eq!(
            positions,
            (1..=people.len() as u64).collect::<Vec<_>>(),
            "distinct places"
        );
        let entries: Vec<Value> = stream::iter(by_position.iter().enumerate())
            .map(|(i, (token, _))| self.entry(i, queue, token))
            .buffered(64)
            .collect()
            .await;
        let mut tokens = HashSet::new();
        let mut last_expiry = String::new();
        for (i, entry) in entries.iter().enumerate() {
            assert_eq!(entry["state"], "admitted", "place {} was admitted", i + 1);
            tokens.insert(entry["handoffToken"].as_str().unwrap().to_owned());
            // Grants of later batches expire later: admission in line order.
            let expiry = entry["expiresAt"].as_str().unwrap().to_owned();
            assert!(
                expiry >= last_expiry,
                "place {} admitted before the one ahead",
                i + 1
            );
            last_expiry = expiry;
        }
        assert_eq!(
            tokens.len(),
            people.len(),
            "one distinct token per admission"
        );
        let live = self.live(0, queue).await;
        assert_eq!(
            live["admittedTotal"].as_u64(),
            Some(people.len() as u64),
            "no double admission"
        );
        assert_eq!(live["waiting"].as_u64(), Some(0));
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.key_file);
    }
}

async fn every_consumer_on_every_node_is_told_its_place_and_its_grant(cluster: bool) {
    let fleet = Fleet::start(cluster, 3);
    fleet
        .define_queue("spread", json!({ "admitPerMinute": 600 }))
        .await;
    let people = fleet.enter_many("spread", 30).await;
    let mut sockets = Vec::new();
    for (i, (token, _)) in people.iter().enumerate() {
        let url = format!("ws://{}/v1/ws", fleet.nodes[(i + 2) % 3].addr);
        let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
        let auth = json!({ "type": "auth", "sessionToken": token });
        ws.send(Message::Text(auth.to_string().into()))
            .await
            .unwrap();
        sockets.push(ws);
    }
    fleet.admin(1, "/v1/admin/sequences/spread/resume").await;

    let waits = sockets
        .into_iter()
        .zip(&people)
        .map(|(mut ws, (token, position))| {
            let fleet = &fleet;
            async move {
                let mut positions = Vec::new();
                let granted = loop {
                    let frame = tokio::time::timeout(Duration::from_secs(30), ws.next())
                        .await
                        .expect("a message in time")
                        .expect("socket open")
                        .unwrap();
                    let Message::Text(text) = frame else { continue };
                    let message: Value = serde_json::from_str(&text).unwrap();
                    match message["type"].as_str() {
                        Some("queue:position-updated") => {
                            positions.push(message["position"].as_u64().unwrap())
                        }
                        Some("queue:access-granted") => break message,
                        _ => {}
                    }
                };
                assert!(!positions.is_empty() || *position == 1, "told its place");
                assert!(positions.windows(2).all(|w| w[1] <= w[0]), "{positions:?}");
                let entry = fleet.entry(0, "spread", token).await;
                assert_eq!(granted["handoffToken"], entry["handoffToken"]);
            }
        });
    futures_util::future::join_all(waits).await;
}

#[tokio::test]
async fn every_consumer_on_every_node_is_told_its_place_and_grant_on_one_redis() {
    every_consumer_on_every_node_is_told_its_place_and_its_grant(false).await;
}

#[tokio::test]
async fn every_consumer_on_every_node_is_told_its_place_and_grant_on_a_cluster() {
    every_consumer_on_every_node_is_told_its_place_and_its_grant(true).await;
}

async fn killing_the_leader_hands_over_without_double_or_skipped_admission(
    cluster: bool,
) {
    let mut fleet = Fleet::start(cluster, 3);
    fleet
        .define_queue("kill", json!({ "admitPerMinute": 1200 }))
        .await;
    let people = fleet.enter_many("kill", 200).await;
    fleet.admin(0, "/v1/admin/sequences/kill/resume").await;
    fleet.wait_admitted_total(0, "kill", 30).await;

    let leader = fleet.leader("kill").await.expect("a leader");
    fleet.nodes[leader].signal("KILL");
    let killed_at = Instant::now();
    let survivor = (leader + 1) % 3;
    let before = fleet.live(survivor, "kill").await["admittedTotal"]
        .as_u64()
        .unwrap();
    fleet
        .wait_admitted_total(survivor, "kill", before + 1)
        .await;
    let takeover = killed_at.elapsed();
    eprintln!(
        "takeover after SIGKILL: {} ms (lease {LEASE_MS} ms, tick {TICK_MS} ms)",
        takeover.as_millis()
    );
    assert!(
        takeover < Duration::from_millis(LEASE_MS + TICK_MS + 3_000),
        "{takeover:?}"
    );

    fleet.wait_admitted_total(survivor, "kill", 200).await;
    fleet.nodes.remove(leader);
    fleet.check_line_order("kill", &people).await;
}

#[tokio::test]
async fn killing_the_leader_hands_over_cleanly_on_one_redis() {
    killing_the_leader_hands_over_without_double_or_skipped_admission(false).await;
}

#[tokio::test]
async fn killing_the_leader_hands_over_cleanly_on_a_cluster() {
    killing_the_leader_hands_over_without_double_or_skipped_admission(true).await;
}

/// Timestamps of the node's `batch admitted` log lines.
fn batch_times(logs: &str) -> Vec<time::OffsetDateTime> {
    logs.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["message"] == "batch admitted")
        .filter_map(|v| {
            let ts = v["timestamp"].as_str()?.to_owned();
            time::OffsetDateTime::parse(
                &ts,
                &time::format_description::well_known::Rfc3339,
            )
            .ok()
        })
        .collect()
}

async fn a_frozen_leader_writes_nothing_after_it_resumes(cluster: bool) {
    let fleet = Fleet::start(cluster, 3);
    fleet
        .define_queue("freeze", json!({ "admitPerMinute": 1200 }))
        .await;
    let people = fleet.enter_many("freeze", 150).await;
    fleet.admin(0, "/v1/admin/sequences/freeze/resume").await;
    fleet.wait_admitted_total(0, "freeze", 20).await;

    let leader = fleet.leader("freeze").await.expect("a leader");
    assert!(
        !batch_times(&fleet.nodes[leader].logs()).is_empty(),
        "the leader logs its batches"
    );
    fleet.nodes[leader].signal("STOP");
    tokio::time::sleep(Duration::from_millis(LEASE_MS * 3)).await;
    let resumed_at = time::OffsetDateTime::now_utc();
    fleet.nodes[leader].signal("CONT");
    tokio::time::sleep(Duration::from_millis(1_500)).await;

    let late: Vec<_> = batch_times(&fleet.nodes[leader].logs())
        .into_iter()
        .filter(|t| *t > resumed_at)
        .collect();
    assert!(late.is_empty(), "the resumed leader admitted at {late:?}");
    let other = (leader + 1) % 3;
    fleet.wait_admitted_total(other, "freeze", 150).await;
    fleet.check_line_order("freeze", &people).await;
}

#[tokio::test]
async fn a_frozen_leader_writes_nothing_after_it_resumes_on_one_redis() {
    a_frozen_leader_writes_nothing_after_it_resumes(false).await;
}

#[tokio::test]
async fn a_frozen_leader_writes_nothing_after_it_resumes_on_a_cluster() {
    a_frozen_leader_writes_nothing_after_it_resumes(true).await;
}

async fn ten_thousand_consumers_are_admitted_in_line_order(cluster: bool) {
    let fleet = Fleet::start(cluster, 3);
    fleet
        .define_queue("big", json!({ "admitPerMinute": 300_000 }))
        .await;
    let people = fleet.enter_many("big", 10_000).await;
    fleet.admin(2, "/v1/admin/sequences/big/resume").await;
    fleet.wait_admitted_total(1, "big", 10_000).await;
    fleet.check_line_order("big", &people).await;
}

#[tokio::test]
async fn ten_thousand_consumers_over_three_nodes_are_admitted_in_line_order_on_one_redis()
{
    ten_thousand_consumers_are_admitted_in_line_order(false).await;
}

#[tokio::test]
async fn ten_thousand_consumers_over_three_nodes_are_admitted_in_line_order_on_a_cluster()
{
    ten_thousand_consumers_are_admitted_in_line_order(true).await;
}

#[tokio::test]
async fn a_redis_restarted_with_aof_keeps_every_entry() {
    let redis = RedisServer::start_on(common::free_port(), true);
    let mut fleet = Fleet::on(Backing::Single(redis), 1);
    fleet.define_queue("aof", json!({})).await;
    let people = fleet.enter_many("aof", 100).await;

    let Backing::Single(redis) = &mut fleet._backing else {
        unreachable!()
    };
    redis.restart_after(Duration::ZERO);
    for (i, (token, position)) in people.iter().enumerate() {
        let mut entry = Value::Null;
        for _ in 0..100 {
            entry = fleet.entry(i, "aof", token).await;
            if entry["position"].is_u64() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(entry["position"].as_u64(), Some(*position), "{entry}");
    }
}

#[tokio::test]
async fn while_redis_is_unreachable_enters_get_503_and_sockets_stay_up() {
    let redis = RedisServer::start_on(common::free_port(), true);
    let mut fleet = Fleet::on(Backing::Single(redis), 2);
    fleet
        .define_queue("outage", json!({ "admitPerMinute": 6000 }))
        .await;
    let people = fleet.enter_many("outage", 3).await;
    let url = format!("ws://{}/v1/ws", fleet.nodes[1].addr);
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let auth = json!({ "type": "auth", "sessionToken": people[0].0 });
    ws.send(Message::Text(auth.to_string().into()))
        .await
        .unwrap();

    // Redis goes away for 5 s; meanwhile a newcomer is turned away politely.
    let Backing::Single(redis) = &mut fleet._backing else {
        unreachable!()
    };
    let port = redis.port;
    let outage = std::thread::spawn({
        let mut server = std::mem::replace(redis, RedisServer::start());
        move || {
            server.restart_after(Duration::from_secs(5));
            server
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let session: Value = fleet
        .http
        .post(fleet.url(0, "/v1/sessions"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let res = fleet
        .http
        .post(fleet.url(0, "/v1/queues/outage/enter"))
        .bearer_auth(session["sessionToken"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    let retry: u64 = res
        .headers()
        .get("retry-after")
        .expect("Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);

    // The socket is still up: it answers a ping.
    ws.send(Message::Ping(vec![7].into())).await.unwrap();
    let pong = loop {
        let frame = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("socket alive");
        match frame {
            Some(Ok(Message::Pong(p))) => break p,
            Some(Ok(Message::Close(_))) | None => {
                panic!("the socket was closed during the outage")
            }
            _ => continue,
        }
    };
    assert_eq!(&pong[..], &[7]);

    let server = tokio::task::spawn_blocking(move || outage.join().unwrap())
        .await
        .unwrap();
    assert_eq!(server.port, port);
    let Backing::Single(slot) = &mut fleet._backing else {
        unreachable!()
    };
    let placeholder = std::mem::replace(slot, server);
    drop(placeholder);

    // Admission resumes and the waiting socket gets its grant.
    let mut resumed = false;
    for _ in 0..100 {
        let res = fleet
            .http
            .post(fleet.url(0, "/v1/admin/sequences/outage/resume"))
            .bearer_auth(ADMIN)
            .send()
            .await;
        if res.is_ok_and(|r| r.status() == 200) {
            resumed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(resumed, "the admin API works again");
    let granted = loop {
        let frame = tokio::time::timeout(Duration::from_secs(15), ws.next())
            .await
            .expect("a grant after the outage");
        let Some(Ok(Message::Text(text))) = frame else {
            continue;
        };
        let message: Value = serde_json::from_str(&text).unwrap();
        if message["type"] == "queue:access-granted" {
            break message;
        }
    };
    assert!(granted["handoffToken"].is_string());
}
