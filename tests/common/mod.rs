//! Test helpers: a private `redis-server` per test on a free loopback port,
//! real nodes on port 0, and HTTP and WebSocket clients that speak the
//! contract.

#![allow(dead_code)]

pub mod process;

use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use velvet::app::App;
use velvet::store::Store;
use velvet::store::memory::MemoryStore;
use velvet::store::redis::RedisStore;
use velvet::{RunningNode, Settings};

pub const ADMIN_KEY: &str = "test-admin-key";
pub const MERCHANT_KEY: &str = "test-merchant-key";
pub const SESSION_SECRET: &str = "test-session-secret-of-enough-length";

/// A `redis-server` of this test alone, stopped when dropped.
pub struct RedisServer {
    child: Child,
    pub port: u16,
    dir: PathBuf,
    aof: bool,
}

pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free loopback port");
    listener.local_addr().expect("bound").port()
}

impl RedisServer {
    pub fn start() -> Self {
        Self::start_on(free_port(), false)
    }

    /// With `aof`, data survives a restart on the same port and directory.
    pub fn start_on(port: u16, aof: bool) -> Self {
        let dir = std::env::temp_dir().join(format!("velvet-redis-{port}"));
        std::fs::create_dir_all(&dir).expect("temp dir");
        Self::spawn(port, dir, aof)
    }

    fn spawn(port: u16, dir: PathBuf, aof: bool) -> Self {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--appendonly", if aof { "yes" } else { "no" }])
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server on PATH (tests/run.sh installs it)");
        let server = Self {
            child,
            port,
            dir,
            aof,
        };
        server.wait_ready();
        server
    }

    /// A clean shutdown (SIGTERM, so the AOF is written out) and a start
    /// again on the same port and directory after `down`.
    pub fn restart_after(&mut self, down: Duration) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        std::thread::sleep(down);
        let again = Self::spawn(self.port, self.dir.clone(), self.aof);
        let old = std::mem::replace(self, again);
        // The old handle owns nothing any more: skip its drop cleanup.
        std::mem::forget(old);
    }

    fn wait_ready(&self) {
        for _ in 0..200 {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
                use std::io::{Read, Write};
                let _ = s.write_all(b"PING\r\n");
                let mut buf = [0u8; 16];
                if matches!(s.read(&mut buf), Ok(n) if buf[..n].starts_with(b"+PONG")) {
                    return;
                }
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!("redis-server on port {} did not start", self.port);
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub async fn store(&self) -> Arc<dyn Store> {
        Arc::new(
            RedisStore::connect(&self.url())
                .await
                .expect("connect to test redis"),
        )
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Three `redis-server` masters joined into a Redis Cluster, on loopback
/// ports of this test alone (each with its cluster bus at port + 10000).
pub struct RedisCluster {
    pub servers: Vec<RedisServer>,
}

fn free_cluster_port() -> u16 {
    loop {
        let port = free_port();
        let bus_free =
            port < 55_000 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok();
        if bus_free {
            return port;
        }
    }
}

impl RedisCluster {
    pub fn start() -> Self {
        let mut servers = Vec::new();
        for _ in 0..3 {
            let port = free_cluster_port();
            let dir = std::env::temp_dir().join(format!("velvet-cluster-{port}"));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("temp dir");
            let child = Command::new("redis-server")
                .args([
                    "--port",
                    &port.to_string(),
                    "--bind",
                    "127.0.0.1",
                    "--save",
                    "",
                ])
                .args(["--appendonly", "no", "--cluster-enabled", "yes"])
                .args(["--cluster-node-timeout", "3000"])
                .arg("--dir")
                .arg(&dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server on PATH");
            let server = RedisServer {
                child,
                port,
                dir,
                aof: false,
            };
            server.wait_ready();
            servers.push(server);
        }
        let nodes: Vec<String> = servers
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect();
        let status = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&nodes)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("redis-cli on PATH");
        assert!(status.success(), "redis-cli --cluster create");
        let cluster = Self { servers };
        cluster.wait_ok();
        cluster
    }

    fn wait_ok(&self) {
        for _ in 0..200 {
            let ok = self.servers.iter().all(|s| {
                let out = Command::new("redis-cli")
                    .args(["-p", &s.port.to_string(), "cluster", "info"])
                    .output()
                    .ok();
                out.is_some_and(|o| {
                    String::from_utf8_lossy(&o.stdout).contains("cluster_state:ok")
                })
            });
            if ok {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the test cluster did not become ready");
    }

    /// Seeds as `VELVET__REDIS__CLUSTER_NODES` takes them.
    pub fn seeds(&self) -> String {
        let urls: Vec<String> = self.servers.iter().map(RedisServer::url).collect();
        urls.join(",")
    }

    pub async fn store(&self) -> Arc<dyn Store> {
        let seeds = self.seeds();
        let seeds: Vec<&str> = seeds.split(',').collect();
        Arc::new(
            RedisStore::connect_cluster(&seeds)
                .await
                .expect("connect to test cluster"),
        )
    }
}

/// Which store a test node runs on.
#[derive(Clone, Copy, Debug)]
pub enum Backend {
    Memory,
    Redis,
}

/// Settings for fast tests: ticks of 100 ms, known keys.
pub fn test_settings() -> Settings {
    let mut s = Settings::for_tests();
    s.admission.tick_ms = 100;
    s.admission.lease_ttl_ms = 1_000;
    s.auth.admin_key = velvet::config::Secret::new(ADMIN_KEY);
    s.auth.merchant_key = velvet::config::Secret::new(MERCHANT_KEY);
    s.auth.session_secret = velvet::config::Secret::new(SESSION_SECRET);
    s.server.shutdown_grace_ms = 2_000;
    // Tests send bursts from one address; the limits get their own tests.
    s.server.client_rate_per_second = 1_000_000;
    s.server.client_burst = 1_000_000;
    s
}

/// A node serving on a loopback port, with the Redis it uses if any.
pub struct TestNode {
    pub node: Option<RunningNode>,
    pub addr: SocketAddr,
    pub http: reqwest::Client,
    pub redis: Option<RedisServer>,
}

impl TestNode {
    pub async fn start(backend: Backend) -> Self {
        match backend {
            Backend::Memory => Self::with_settings(test_settings(), None).await,
            Backend::Redis => {
                let redis = RedisServer::start();
                let mut settings = test_settings();
                settings.redis.url = velvet::config::Secret::new(redis.url());
                Self::with_settings(settings, Some(redis)).await
            }
        }
    }

    pub async fn with_settings(settings: Settings, redis: Option<RedisServer>) -> Self {
        let app = if settings.redis.url.is_empty() {
            App::with_store(settings, Arc::new(MemoryStore::new())).await
        } else {
            App::build(settings).await
        };
        let node = app.expect("node builds").spawn().await.expect("node binds");
        let addr = node.addr;
        Self {
            node: Some(node),
            addr,
            http: reqwest::Client::new(),
            redis,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    pub async fn stop(&mut self) {
        if let Some(node) = self.node.take() {
            node.shutdown().await;
        }
    }

    /// Defines an experience through the admin API; panics unless 200.
    pub async fn define(&self, id: &str, body: Value) {
        let res = self
            .http
            .put(self.url(&format!("/v1/admin/experiences/{id}")))
            .bearer_auth(ADMIN_KEY)
            .json(&body)
            .send()
            .await
            .expect("admin put");
        let status = res.status();
        assert_eq!(
            status,
            200,
            "define {id}: {}",
            res.text().await.unwrap_or_default()
        );
    }

    /// A one-queue experience `{id}` with queue `{id}-q`, open now.
    pub async fn define_queue(&self, id: &str, queue: Value) {
        let mut seq =
            json!({ "id": format!("{id}-q"), "name": "General", "kind": "queue" });
        for (k, v) in queue.as_object().expect("object").iter() {
            seq[k] = v.clone();
        }
        self.define(id, json!({ "name": id, "sequences": [seq] }))
            .await;
    }

    pub async fn session(&self) -> Session {
        let res = self
            .http
            .post(self.url("/v1/sessions"))
            .send()
            .await
            .expect("session");
        assert_eq!(res.status(), 201);
        let body: Value = res.json().await.expect("json");
        Session {
            consumer_id: body["consumerId"].as_str().expect("id").to_owned(),
            token: body["sessionToken"].as_str().expect("token").to_owned(),
        }
    }

    pub async fn enter(&self, session: &Session, queue: &str) -> (u16, Value) {
        let res = self
            .http
            .post(self.url(&format!("/v1/queues/{queue}/enter")))
            .bearer_auth(&session.token)
            .send()
            .await
            .expect("enter");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    pub async fn position(&self, session: &Session, queue: &str) -> (u16, Value) {
        let res = self
            .http
            .get(self.url(&format!("/v1/queues/{queue}/position")))
            .bearer_auth(&session.token)
            .send()
            .await
            .expect("position");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    pub async fn admin_post(&self, path: &str) -> u16 {
        let res = self
            .http
            .post(self.url(path))
            .bearer_auth(ADMIN_KEY)
            .send()
            .await;
        res.expect("admin post").status().as_u16()
    }

    pub async fn merchant(&self, action: &str, token: &str) -> (u16, Value) {
        let res = self
            .http
            .post(self.url(&format!("/v1/handoff/{action}")))
            .bearer_auth(MERCHANT_KEY)
            .json(&json!({ "token": token }))
            .send()
            .await
            .expect("merchant call");
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    /// Polls the position route until the entry is admitted; its token.
    pub async fn wait_admitted(&self, session: &Session, queue: &str) -> String {
        for _ in 0..300 {
            let (_, body) = self.position(session, queue).await;
            if body["state"] == "admitted" {
                return body["handoffToken"].as_str().expect("token").to_owned();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{} was not admitted in time", session.consumer_id);
    }

    pub async fn ws(&self, session: &Session) -> Ws {
        let url = format!("ws://{}/v1/ws", self.addr);
        let (mut socket, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("ws connect");
        let auth = json!({ "type": "auth", "sessionToken": session.token });
        socket
            .send(Message::Text(auth.to_string().into()))
            .await
            .expect("auth frame");
        let mut ws = Ws { socket };
        let ready = ws.next_json().await.expect("ready");
        assert_eq!(ready["type"], "ready");
        assert_eq!(ready["consumerId"], session.consumer_id.as_str());
        ws
    }
}

impl Drop for TestNode {
    fn drop(&mut self) {
        if let Some(node) = self.node.take() {
            // Best effort: stop background tasks of a node a test forgot.
            tokio::spawn(node.shutdown());
        }
    }
}

#[derive(Clone, Debug)]
pub struct Session {
    pub consumer_id: String,
    pub token: String,
}

pub struct Ws {
    pub socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

impl Ws {
    /// The next JSON message, or `None` after 10 s or when the socket closes.
    pub async fn next_json(&mut self) -> Option<Value> {
        loop {
            let frame = tokio::time::timeout(Duration::from_secs(10), self.socket.next())
                .await
                .ok()??
                .ok()?;
            match frame {
                Message::Text(text) => return serde_json::from_str(&text).ok(),
                Message::Close(_) => return None,
                _ => continue,
            }
        }
    }

    /// Skips messages until one of `kind` arrives.
    pub async fn next_of(&mut self, kind: &str) -> Option<Value> {
        loop {
            let message = self.next_json().await?;
            if message["type"] == kind {
                return Some(message);
            }
        }
    }
}

/// Runs `f` for both stores.
pub async fn on_both<F, Fut>(f: F)
where
    F: Fn(Backend) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    f(Backend::Memory).await;
    f(Backend::Redis).await;
}
