//! The load generator's side of the wire: the target, the loopback source
//! addresses sockets are spread over, a pool of keep-alive HTTP/1.1
//! connections, and WebSocket connections of their own.
//!
//! One source address can hold only as many connections to one server as
//! it has ephemeral ports (about 28,000 on Linux by default), so sockets
//! are bound to 127.0.0.1, 127.0.0.2, … in turn before they connect: all
//! of 127.0.0.0/8 is loopback.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{Method, Request, header};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::Value;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Semaphore;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

/// Longest a request, a connect or a handshake may take before it counts
/// as failed; keeps every consumer's life bounded.
pub const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// Replies larger than this are cut off: the contract's are well under.
const REPLY_LIMIT: usize = 256 * 1024;

/// The deployment under test: where to connect, and its `Host`.
#[derive(Clone, Debug)]
pub struct Target {
    pub addr: SocketAddr,
    /// `host:port` as given, for the `Host` header and the report.
    pub authority: String,
}

impl Target {
    /// Parses `http://host[:port][/]` and resolves it.
    pub async fn resolve(url: &str) -> Result<Self, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("`{url}`: only http:// targets are supported"))?;
        let authority = rest.trim_end_matches('/');
        if authority.is_empty() || authority.contains('/') {
            return Err(format!("`{url}`: give the node's root, without a path"));
        }
        let with_port = if authority.ends_with(']') || !authority.contains(':') {
            format!("{authority}:80")
        } else {
            authority.to_owned()
        };
        let addr = tokio::net::lookup_host(&with_port)
            .await
            .map_err(|e| format!("`{authority}`: {e}"))?
            .next()
            .ok_or_else(|| format!("`{authority}`: no address"))?;
        Ok(Self {
            addr,
            authority: authority.to_owned(),
        })
    }
}

/// Source addresses, handed out in turn.
pub struct Sources {
    addrs: Vec<IpAddr>,
    next: AtomicUsize,
}

impl Sources {
    /// `127.0.0.1` … `127.0.0.n`; or none (the system's choice) when `n` is 0.
    pub fn loopback(n: u8) -> Self {
        let addrs = (1..=n)
            .map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, i)))
            .collect();
        Self {
            addrs,
            next: AtomicUsize::new(0),
        }
    }

    pub fn len(&self) -> usize {
        self.addrs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.addrs.is_empty()
    }

    fn pick(&self) -> Option<IpAddr> {
        if self.addrs.is_empty() {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        Some(self.addrs[i % self.addrs.len()])
    }

    /// A TCP connection to `to` from the next source address.
    pub async fn connect(&self, to: SocketAddr) -> std::io::Result<TcpStream> {
        let socket = match to {
            SocketAddr::V4(_) => TcpSocket::new_v4()?,
            SocketAddr::V6(_) => TcpSocket::new_v6()?,
        };
        if let Some(ip) = self.pick() {
            socket.bind(SocketAddr::new(ip, 0))?;
        }
        let stream = tokio::time::timeout(IO_TIMEOUT, socket.connect(to))
            .await
            .map_err(|_| std::io::ErrorKind::TimedOut)??;
        stream.set_nodelay(true)?;
        Ok(stream)
    }
}

/// Why a request got no HTTP answer, as the report names it (beside the
/// contract's own codes, which come from error bodies).
#[derive(Debug)]
pub enum Failure {
    Connect(std::io::Error),
    Timeout,
    Transport(String),
}

impl Failure {
    pub fn code(&self) -> &'static str {
        match self {
            Failure::Connect(_) => "CONNECT_FAILED",
            Failure::Timeout => "TIMEOUT",
            Failure::Transport(_) => "TRANSPORT_ERROR",
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Connect(e) => write!(f, "connect: {e}"),
            Failure::Timeout => write!(f, "no answer within {IO_TIMEOUT:?}"),
            Failure::Transport(e) => write!(f, "{e}"),
        }
    }
}

/// An HTTP answer, and how long it took.
pub struct Reply {
    pub status: u16,
    pub body: Bytes,
    /// From sending the request to the end of the reply.
    pub latency: Duration,
    /// Spent waiting for a free pooled connection before sending: the
    /// generator's own queue, kept out of `latency`.
    pub waited: Duration,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The contract's error code, or `HTTP_<status>` for a body without one.
    pub fn error_code(&self) -> String {
        match self.json()["error"]["code"].as_str() {
            Some(code) => code.to_owned(),
            None => format!("HTTP_{}", self.status),
        }
    }
}

/// A fixed number of keep-alive HTTP/1.1 connections shared by all
/// consumers, as a browser fleet behind a few proxies would look: opening
/// a connection per request would spend ports on TIME_WAIT, not load the
/// server. The pool's size bounds the requests in flight.
pub struct Http {
    target: Target,
    sources: std::sync::Arc<Sources>,
    idle: Mutex<Vec<SendRequest<Body>>>,
    permits: Semaphore,
}

impl Http {
    pub fn new(target: Target, sources: std::sync::Arc<Sources>, size: usize) -> Self {
        Self {
            target,
            sources,
            idle: Mutex::new(Vec::with_capacity(size)),
            permits: Semaphore::new(size.max(1)),
        }
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        json: Option<&Value>,
    ) -> Result<Reply, Failure> {
        let asked = Instant::now();
        // The semaphore is never closed, so acquiring cannot fail.
        let _permit = self.permits.acquire().await.ok();
        let waited = asked.elapsed();

        let pooled = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut sender = match pooled {
            Some(sender) if !sender.is_closed() => sender,
            _ => self.open().await?,
        };
        let request = self.build(method, path, bearer, json)?;
        let sent = Instant::now();
        let answer = tokio::time::timeout(IO_TIMEOUT, async {
            sender.ready().await?;
            let response = sender.send_request(request).await?;
            let status = response.status().as_u16();
            let body = axum::body::to_bytes(Body::new(response.into_body()), REPLY_LIMIT)
                .await
                .map_err(|e| Failure::Transport(e.to_string()))?;
            Ok::<_, Failure>((status, body))
        })
        .await
        .map_err(|_| Failure::Timeout)??;
        let latency = sent.elapsed();

        // A connection that timed out or failed is dropped, not reused.
        self.idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(sender);
        Ok(Reply {
            status: answer.0,
            body: answer.1,
            latency,
            waited,
        })
    }

    fn build(
        &self,
        method: Method,
        path: &str,
        bearer: Option<&str>,
        json: Option<&Value>,
    ) -> Result<Request<Body>, Failure> {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(header::HOST, &self.target.authority);
        if let Some(token) = bearer {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let body = match json {
            Some(value) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(value.to_string())
            }
            None => Body::empty(),
        };
        request
            .body(body)
            .map_err(|e| Failure::Transport(e.to_string()))
    }

    async fn open(&self) -> Result<SendRequest<Body>, Failure> {
        let stream = self
            .sources
            .connect(self.target.addr)
            .await
            .map_err(Failure::Connect)?;
        let (sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        // Drives the connection until either side closes it.
        tokio::spawn(connection);
        Ok(sender)
    }
}

impl From<hyper::Error> for Failure {
    fn from(e: hyper::Error) -> Self {
        Failure::Transport(e.to_string())
    }
}

pub type Socket = WebSocketStream<TcpStream>;

/// A WebSocket to `path` on its own TCP connection. Buffers are kept small,
/// as the server's are: thousands of these live in one process.
pub async fn websocket(
    target: &Target,
    sources: &Sources,
    path: &str,
) -> Result<Socket, Failure> {
    let stream = sources
        .connect(target.addr)
        .await
        .map_err(Failure::Connect)?;
    let url = format!("ws://{}{path}", target.authority);
    let config = WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(0)
        .max_message_size(Some(64 * 1024))
        .max_frame_size(Some(64 * 1024));
    let handshake =
        tokio_tungstenite::client_async_with_config(url, stream, Some(config));
    match tokio::time::timeout(IO_TIMEOUT, handshake).await {
        Ok(Ok((socket, _))) => Ok(socket),
        Ok(Err(e)) => Err(Failure::Transport(e.to_string())),
        Err(_) => Err(Failure::Timeout),
    }
}
