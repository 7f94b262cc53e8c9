//! One simulated consumer, start to end: a session, an enter, a WebSocket
//! held until the grant arrives, and the redemption a checkout would make.
//! Every step is bounded by a timeout and the run's stop signal, so each
//! consumer ends by itself.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::http::Method;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use super::net::{Failure, Http, IO_TIMEOUT, Reply, Socket, Sources, Target, websocket};
use super::stats::{PushKind, Pushed};

/// What every consumer of a run shares.
pub struct Shared {
    pub http: Http,
    pub target: Target,
    pub sources: Arc<Sources>,
    pub queue: String,
    pub merchant_key: Option<String>,
    pub started: Instant,
    pub stop: watch::Receiver<bool>,
    pub live: Live,
}

impl Shared {
    fn since_start(&self) -> u64 {
        self.started.elapsed().as_micros() as u64
    }
}

/// Running counts for the progress line.
#[derive(Default)]
pub struct Live {
    pub arrived: AtomicU64,
    pub entered: AtomicU64,
    pub sockets: AtomicU64,
    pub granted: AtomicU64,
    pub errors: AtomicU64,
}

/// Which step of a consumer's life an error came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Step {
    Session,
    Enter,
    Socket,
    Redeem,
}

impl Step {
    pub fn as_str(self) -> &'static str {
        match self {
            Step::Session => "session",
            Step::Enter => "enter",
            Step::Socket => "socket",
            Step::Redeem => "redeem",
        }
    }
}

/// How a grant reached the consumer.
#[derive(Clone, Copy, Debug)]
pub struct GrantSeen {
    pub at_us: u64,
    /// Sent as the socket's current state right after connecting (admitted
    /// before the socket was up), not pushed by a batch.
    pub on_connect: bool,
}

/// Everything one consumer saw.
#[derive(Debug, Default)]
pub struct Outcome {
    pub phase: usize,
    pub session: bool,
    /// Latency of a successful enter, and when it finished (µs of the run).
    pub enter: Option<(u64, u64)>,
    pub enter_started_us: u64,
    /// Time spent waiting for a pooled connection before requests.
    pub waited_us: Vec<u64>,
    pub socket: bool,
    pub grant: Option<GrantSeen>,
    pub redeemed: Option<bool>,
    /// The step and contract code that ended this consumer early.
    pub error: Option<(Step, String)>,
    /// `error` messages on the socket that did not close it.
    pub notices: Vec<String>,
    pub pushed: Vec<Pushed>,
}

impl Outcome {
    fn fail(&mut self, step: Step, code: impl Into<String>, live: &Live) {
        live.errors.fetch_add(1, Ordering::Relaxed);
        self.error = Some((step, code.into()));
    }
}

/// A pushed message kept per consumer at most: bounds memory on long runs.
const MAX_PUSHED: usize = 10_000;

pub async fn live(shared: Arc<Shared>, phase: usize) -> Outcome {
    let mut out = Outcome {
        phase,
        ..Outcome::default()
    };
    shared.live.arrived.fetch_add(1, Ordering::Relaxed);
    let Some(token) = session(&shared, &mut out).await else {
        return out;
    };
    if !enter(&shared, &token, &mut out).await {
        return out;
    }
    let Some(mut socket) = connect(&shared, &token, &mut out).await else {
        return out;
    };
    shared.live.sockets.fetch_add(1, Ordering::Relaxed);
    let handoff = watch_socket(&shared, &mut socket, &mut out).await;
    // A polite close; a peer that does not answer in a second is left.
    let _ = tokio::time::timeout(Duration::from_secs(1), socket.close(None)).await;
    shared.live.sockets.fetch_sub(1, Ordering::Relaxed);
    if let (Some(token), Some(key)) = (handoff, &shared.merchant_key) {
        redeem(&shared, key, &token, &mut out).await;
    }
    out
}

async fn call(
    shared: &Shared,
    method: Method,
    path: &str,
    bearer: Option<&str>,
    body: Option<&Value>,
    out: &mut Outcome,
) -> Result<Reply, Failure> {
    let reply = shared.http.request(method, path, bearer, body).await?;
    out.waited_us.push(reply.waited.as_micros() as u64);
    Ok(reply)
}

async fn session(shared: &Shared, out: &mut Outcome) -> Option<String> {
    match call(shared, Method::POST, "/v1/sessions", None, None, out).await {
        Ok(reply) if reply.status == 201 => {
            let token = reply.json()["sessionToken"].as_str().map(str::to_owned);
            if token.is_none() {
                out.fail(Step::Session, "BAD_REPLY", &shared.live);
            }
            out.session = token.is_some();
            token
        }
        Ok(reply) => {
            out.fail(Step::Session, reply.error_code(), &shared.live);
            None
        }
        Err(e) => {
            out.fail(Step::Session, e.code(), &shared.live);
            None
        }
    }
}

async fn enter(shared: &Shared, token: &str, out: &mut Outcome) -> bool {
    let path = format!("/v1/queues/{}/enter", shared.queue);
    out.enter_started_us = shared.since_start();
    match call(shared, Method::POST, &path, Some(token), None, out).await {
        Ok(reply) if reply.status == 200 => {
            let latency = reply.latency.as_micros() as u64;
            out.enter = Some((latency, shared.since_start()));
            shared.live.entered.fetch_add(1, Ordering::Relaxed);
            true
        }
        Ok(reply) => {
            out.fail(Step::Enter, reply.error_code(), &shared.live);
            false
        }
        Err(e) => {
            out.fail(Step::Enter, e.code(), &shared.live);
            false
        }
    }
}

/// Opens the socket, authenticates, and waits for `ready`.
async fn connect(shared: &Shared, token: &str, out: &mut Outcome) -> Option<Socket> {
    let mut socket = match websocket(&shared.target, &shared.sources, "/v1/ws").await {
        Ok(socket) => socket,
        Err(e) => {
            out.fail(Step::Socket, e.code(), &shared.live);
            return None;
        }
    };
    let auth = json!({ "type": "auth", "sessionToken": token }).to_string();
    let ready = async {
        socket.send(Message::Text(auth.into())).await.ok()?;
        loop {
            match socket.next().await? {
                Ok(Message::Text(text)) => {
                    let message: Value = serde_json::from_str(&text).ok()?;
                    return Some(message);
                }
                Ok(Message::Close(_)) | Err(_) => return None,
                Ok(_) => continue,
            }
        }
    };
    match tokio::time::timeout(IO_TIMEOUT, ready).await {
        Ok(Some(m)) if m["type"] == "ready" => {
            out.socket = true;
            Some(socket)
        }
        Ok(Some(m)) => {
            let code = m["code"].as_str().unwrap_or("NOT_READY").to_owned();
            out.fail(Step::Socket, code, &shared.live);
            None
        }
        Ok(None) => {
            out.fail(Step::Socket, "SOCKET_CLOSED", &shared.live);
            None
        }
        Err(_) => {
            out.fail(Step::Socket, "TIMEOUT", &shared.live);
            None
        }
    }
}

/// Reads pushed messages until the grant arrives (its token returned) or
/// the run stops.
async fn watch_socket(
    shared: &Shared,
    socket: &mut Socket,
    out: &mut Outcome,
) -> Option<String> {
    let mut stop = shared.stop.clone();
    // The first state message is where the consumer stood when the socket
    // came up; only those after it were pushed by a change.
    let mut seen_state = false;
    loop {
        let frame = tokio::select! {
            frame = socket.next() => frame,
            _ = stop.wait_for(|stop| *stop) => return None,
        };
        let text = match frame {
            Some(Ok(Message::Text(text))) => text,
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                out.fail(Step::Socket, "SOCKET_CLOSED", &shared.live);
                return None;
            }
            Some(Ok(_)) => continue,
        };
        let at_us = shared.since_start();
        let message: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        match message["type"].as_str() {
            Some("queue:position-updated") => {
                if seen_state && out.pushed.len() < MAX_PUSHED {
                    let kind = PushKind::Position;
                    out.pushed.push(Pushed { at_us, kind });
                }
                seen_state = true;
            }
            Some("queue:access-granted") => {
                let on_connect = !seen_state;
                if !on_connect {
                    let kind = PushKind::Grant;
                    out.pushed.push(Pushed { at_us, kind });
                }
                out.grant = Some(GrantSeen { at_us, on_connect });
                shared.live.granted.fetch_add(1, Ordering::Relaxed);
                return message["handoffToken"].as_str().map(str::to_owned);
            }
            // The server keeps the socket open after these (a store outage,
            // for one): noted, and the consumer keeps waiting.
            Some("error") => {
                let code = message["code"].as_str().unwrap_or("ERROR");
                out.notices.push(code.to_owned());
            }
            _ => {}
        }
    }
}

async fn redeem(shared: &Shared, key: &str, token: &str, out: &mut Outcome) {
    let body = json!({ "token": token });
    let path = "/v1/handoff/redeem";
    let reply = call(shared, Method::POST, path, Some(key), Some(&body), out).await;
    let ok = matches!(&reply, Ok(r) if r.status == 200);
    out.redeemed = Some(ok);
    match reply {
        Ok(r) if r.status == 200 => {}
        Ok(r) => out.fail(Step::Redeem, r.error_code(), &shared.live),
        Err(e) => out.fail(Step::Redeem, e.code(), &shared.live),
    }
}
