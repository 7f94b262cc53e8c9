//! A node's life as a process: start-up checks (configuration, keyspace
//! version, migrations once across nodes) and a graceful SIGTERM.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::RedisServer;
use common::process::NodeProcess;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

const ADMIN: &str = "life-admin";

fn node_env(redis: &RedisServer, lease_ms: u64) -> Vec<(&'static str, String)> {
    vec![
        ("VELVET__REDIS__URL", redis.url()),
        ("VELVET__AUTH__ADMIN_KEY", ADMIN.into()),
        ("VELVET__AUTH__SESSION_SECRET", "life-secret".into()),
        ("VELVET__ADMISSION__TICK_MS", "100".into()),
        ("VELVET__ADMISSION__LEASE_TTL_MS", lease_ms.to_string()),
    ]
}

/// Runs the binary to completion; its exit code and stderr.
fn run_to_exit(env: &[(&str, String)]) -> (Option<i32>, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_velvet"));
    command
        .env("VELVET__SERVER__LISTEN", "127.0.0.1:0")
        .env("VELVET__EXPERIENCES__FILE", "");
    for (k, v) in env {
        command.env(k, v);
    }
    let out = command.output().expect("the binary runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn leader_of(node: &NodeProcess, seq: &str) -> bool {
    let Ok(res) = reqwest::get(node.url("/metrics")).await else {
        return false;
    };
    let text = res.text().await.unwrap_or_default();
    text.lines()
        .any(|l| l == format!("velvet_leader{{sequence=\"{seq}\"}} 1"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_sockets_with_going_away_hands_over_the_lease_and_exits() {
    let redis = RedisServer::start();
    // A long lease: a takeover well before it ends shows the lease was
    // handed back, not left to expire.
    let lease_ms = 4_000;
    let mut nodes = vec![
        NodeProcess::spawn(&node_env(&redis, lease_ms)),
        NodeProcess::spawn(&node_env(&redis, lease_ms)),
    ];
    let http = reqwest::Client::new();
    let body = json!({ "name": "T", "sequences": [{ "id": "term", "name": "Q", "kind": "queue" }] });
    let res = http
        .put(nodes[0].url("/v1/admin/experiences/term-exp"))
        .bearer_auth(ADMIN);
    assert_eq!(res.json(&body).send().await.unwrap().status(), 200);

    let mut leader = None;
    for _ in 0..100 {
        for (i, node) in nodes.iter().enumerate() {
            if leader_of(node, "term").await {
                leader = Some(i);
            }
        }
        if leader.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let leader = leader.expect("one node leads");
    let other = 1 - leader;

    let session: Value = http
        .post(nodes[leader].url("/v1/sessions"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (mut ws, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/v1/ws", nodes[leader].addr))
            .await
            .unwrap();
    let auth = json!({ "type": "auth", "sessionToken": session["sessionToken"] });
    ws.send(Message::Text(auth.to_string().into()))
        .await
        .unwrap();

    let started = Instant::now();
    nodes[leader].signal("TERM");
    let mut close = None;
    while let Ok(Some(Ok(frame))) =
        tokio::time::timeout(Duration::from_secs(5), ws.next()).await
    {
        if let Message::Close(frame) = frame {
            close = frame.map(|f| f.code);
            break;
        }
    }
    assert_eq!(close, Some(CloseCode::Away), "sockets are closed with 1001");
    let code =
        tokio::task::block_in_place(|| nodes[leader].wait(Duration::from_secs(10)));
    assert_eq!(code, Some(0), "a clean exit");

    let mut took_over = None;
    while started.elapsed() < Duration::from_millis(lease_ms) {
        if leader_of(&nodes[other], "term").await {
            took_over = Some(started.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took_over =
        took_over.expect("the other node leads before the lease could expire");
    eprintln!(
        "exit and hand-over after SIGTERM: {} ms",
        took_over.as_millis()
    );
    nodes.clear();
}

#[tokio::test]
async fn nodes_starting_together_apply_each_migration_once() {
    let redis = RedisServer::start();
    let env = node_env(&redis, 1_000);
    let nodes: Vec<NodeProcess> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..3)
            .map(|_| scope.spawn(|| NodeProcess::spawn(&env)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for name in ["0001_keyspace_v1", "0002_sequence_owners"] {
        let applied: usize = nodes
            .iter()
            .map(|n| {
                let logs = n.logs();
                logs.lines()
                    .filter(|l| l.contains("migration applied") && l.contains(name))
                    .count()
            })
            .sum();
        assert_eq!(applied, 1, "{name} ran once across three nodes");
    }
    for node in &nodes {
        let ready = reqwest::get(node.url("/readyz")).await.unwrap();
        assert_eq!(ready.status(), 200);
    }
}

#[tokio::test]
async fn a_node_refuses_a_keyspace_newer_than_it_knows() {
    let redis = RedisServer::start();
    let status = Command::new("redis-cli")
        .args([
            "-p",
            &redis.port.to_string(),
            "SET",
            "velvet:{_catalog}:schema",
            "99",
        ])
        .output()
        .unwrap();
    assert!(status.status.success());
    let (code, stderr) = run_to_exit(&node_env(&redis, 1_000));
    assert_eq!(code, Some(69), "{stderr}");
    assert!(stderr.contains("newer"), "{stderr}");
}

#[tokio::test]
async fn bad_configuration_exits_78_naming_the_key() {
    for (key, value, named) in [
        ("VELVET__SERVER__LISTEN", "not-an-address", "listen"),
        ("VELVET__ADMISSION__TICK_MS", "0", "admission.tick_ms"),
        ("VELVET__REDIS__URL", "http://nope", "redis.url"),
        ("VELVET__LOG__FORMAT", "xml", "log.format"),
    ] {
        let (code, stderr) = run_to_exit(&[(key, value.into())]);
        assert_eq!(code, Some(78), "{key}: {stderr}");
        assert!(stderr.contains(named), "{key}: `{stderr}` names {named}");
    }
    let (code, stderr) = run_to_exit(&[("VELVET__SERVER__LISTEN", "0.0.0.0:0".into())]);
    assert_eq!(
        code,
        Some(78),
        "keys are required beyond loopback: {stderr}"
    );
    assert!(stderr.contains("auth.admin_key"), "{stderr}");
}

#[tokio::test]
async fn an_older_keyspace_is_migrated_and_keeps_its_sequences_owned() {
    let redis = RedisServer::start();
    let cli = |args: &[&str]| {
        let out = Command::new("redis-cli")
            .arg("-p")
            .arg(redis.port.to_string())
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success());
    };
    // A keyspace as version 1 left it: a definition, no owners.
    let old = r#"{"id":"old","name":"Old","sequences":[{"id":"old-q","name":"Q","kind":"queue"}]}"#;
    cli(&["SET", "velvet:{_catalog}:schema", "1"]);
    cli(&["HSET", "velvet:{_catalog}:definitions", "old", old]);
    let node = NodeProcess::spawn(&node_env(&redis, 1_000));
    let ready: Value = reqwest::get(node.url("/readyz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["schemaVersion"], 2);
    let thief = json!({ "name": "New", "sequences": [{ "id": "old-q", "name": "Q", "kind": "queue" }] });
    let res = reqwest::Client::new()
        .put(node.url("/v1/admin/experiences/new"))
        .bearer_auth(ADMIN)
        .json(&thief)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: Value = res.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("belongs to experience `old`")
    );
}
