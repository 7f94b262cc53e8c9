//! What the process-level benches share: a private `redis-server` and
//! `velvet` node processes on free loopback ports, sessions minted with the
//! nodes' shared secret, and whether this is a real run (`--bench`) or
//! `cargo test`'s quick pass.
//!
//! Every process started here is killed when its handle drops; the
//! machine's own Redis (6379) is never touched.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use velvet::domain::clock::now_ms;
use velvet::tokens::SessionSigner;

pub const ADMIN_KEY: &str = "bench-admin-key";
pub const MERCHANT_KEY: &str = "bench-merchant-key";
pub const SESSION_SECRET: &str = "bench-session-secret-of-enough-length";

/// `cargo bench` passes `--bench`; `cargo test --all-targets` does not, and
/// then a bench does only a tiny version of itself.
pub fn measuring() -> bool {
    std::env::args().any(|a| a == "--bench")
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
        .port()
}

/// A `redis-server` of this bench alone, without persistence.
pub struct RedisServer {
    child: Child,
    pub port: u16,
    dir: PathBuf,
}

impl RedisServer {
    pub fn start() -> Self {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("velvet-bench-redis-{port}"));
        std::fs::create_dir_all(&dir).expect("temp dir for redis-server");
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server on PATH (tests/run.sh installs it)");
        let server = Self { child, port, dir };
        server.wait_ready();
        server
    }

    fn wait_ready(&self) {
        use std::io::{Read, Write};
        for _ in 0..200 {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", self.port)) {
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
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A server process that prints `listening on ADDR` once it serves: a
/// `velvet` node, or this bench binary re-run as a helper server.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
}

impl Server {
    pub fn spawn(mut command: Command) -> Self {
        command.stdout(Stdio::piped()).stderr(Stdio::null());
        let mut child = command.spawn().expect("the server starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let (found, addr) = mpsc::channel();
        // Keeps reading to the end: a full pipe would stall the server.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(Ok(addr)) =
                    line.strip_prefix("listening on ").map(|a| a.trim().parse())
                {
                    let _ = found.send(addr);
                }
            }
        });
        let addr = addr
            .recv_timeout(Duration::from_secs(30))
            .expect("the server printed `listening on ADDR`");
        Self { child, addr }
    }

    /// A `velvet` node on `redis`, sharing the bench's keys and secret;
    /// client rate limits out of the way, since all load comes from one
    /// machine.
    pub fn node(redis: &str, extra: &[(&str, &str)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_velvet"));
        command
            .env_remove("RUST_LOG")
            .env("VELVET__SERVER__LISTEN", "127.0.0.1:0")
            .env("VELVET__EXPERIENCES__FILE", "")
            .env("VELVET__REDIS__URL", redis)
            .env("VELVET__AUTH__ADMIN_KEY", ADMIN_KEY)
            .env("VELVET__AUTH__MERCHANT_KEY", MERCHANT_KEY)
            .env("VELVET__AUTH__SESSION_SECRET", SESSION_SECRET)
            .env("VELVET__SERVER__CLIENT_RATE_PER_SECOND", "1000000")
            .env("VELVET__SERVER__CLIENT_BURST", "1000000")
            .env("VELVET__SERVER__MAX_CONCURRENT_REQUESTS", "100000")
            .env("VELVET__LOG__FILTER", "warn");
        for (k, v) in extra {
            command.env(k, v);
        }
        Self::spawn(command)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `n` session tokens of new consumers, as `POST /v1/sessions` would make
/// them: signed here with the nodes' secret, so that minting them costs
/// the measured nodes nothing.
pub fn sessions(n: usize) -> Vec<String> {
    let signer = SessionSigner::new(SESSION_SECRET.as_bytes(), 86_400, None);
    (0..n)
        .map(|_| signer.issue(now_ms() / 1000, None).expect("session").1)
        .collect()
}

/// A queue open now with no limits but its admission rate; its id.
pub async fn define_queue(
    http: &velvet::loadtest::net::Http,
    id: &str,
    admit_per_minute: u64,
) -> String {
    let queue = format!("{id}-q");
    let body = serde_json::json!({
        "name": id,
        "sequences": [{ "id": queue, "name": "Bench", "kind": "queue",
                        "admitPerMinute": admit_per_minute, "tokenTtlSeconds": 600 }],
    });
    let path = format!("/v1/admin/experiences/{id}");
    let method = axum::http::Method::PUT;
    let reply = http
        .request(method, &path, Some(ADMIN_KEY), Some(&body))
        .await
        .expect("admin API answers");
    assert_eq!(reply.status, 200, "define {id}: {:?}", reply.body);
    queue
}
