//! `GET /v1/ws`: one socket per consumer tab. The first frame must
//! authenticate; then the server pushes the consumer's state and every
//! change. Frames are small and few, so buffers are sized down explicitly:
//! the library defaults cost over 100 KiB per idle connection.

pub mod hub;
pub mod message;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};

use crate::http::error::ApiError;
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::time::{Instant, timeout};

use crate::app::AppState;
use message::ServerMessage;

/// Close codes of RFC 6455.
const GOING_AWAY: u16 = 1001;
const POLICY: u16 = 1008;
const TRY_AGAIN: u16 = 1013;
const TOO_BIG: u16 = 1009;

/// A client has nothing to say after authenticating; a burst of frames is
/// misuse. At most this many per window, then the socket is closed.
const CLIENT_FRAMES_PER_WINDOW: u32 = 20;
const CLIENT_FRAME_WINDOW: Duration = Duration::from_secs(10);

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
enum ClientFrame {
    #[serde(rename_all = "camelCase")]
    Auth { session_token: String },
}

pub async fn upgrade(
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    State(app): State<AppState>,
) -> Response {
    // A plain GET (no upgrade) gets the contract's error body, not text.
    let ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => {
            return ApiError::InvalidRequest(rejection.body_text()).into_response();
        }
    };
    let limit = app.settings.ws.max_message_bytes;
    // A client sends one auth frame and pongs; a small read buffer (which
    // still grows for a larger frame, up to the limit) saves ~3 KiB a socket.
    ws.read_buffer_size(1024)
        .write_buffer_size(0)
        .max_write_buffer_size(64 * 1024)
        .max_message_size(limit)
        .max_frame_size(limit)
        .on_upgrade(move |socket| serve(socket, app))
}

async fn serve(mut socket: WebSocket, app: AppState) {
    let Some(consumer) = authenticate(&mut socket, &app).await else {
        return;
    };
    let (id, mut outgoing) = app.hub.register(consumer);
    metrics::gauge!("velvet_ws_connections").increment(1.0);

    let ready = ServerMessage::Ready {
        consumer_id: consumer.to_string(),
    };
    let (mut sink, mut stream) = socket.split();
    let mut open = sink.send(counted(&ready)).await.is_ok();
    if open {
        for message in app.hub.sync_consumer(consumer).await {
            if sink.send(counted(&message)).await.is_err() {
                open = false;
                break;
            }
        }
    }

    let ping_every = Duration::from_millis(app.settings.ws.ping_interval_ms);
    let mut pings = tokio::time::interval_at(Instant::now() + ping_every, ping_every);
    let mut last_heard = Instant::now();
    let mut shutdown = app.shutdown.clone();
    let mut close: Option<(u16, &str)> = None;
    let (mut frames, mut window_start) = (0u32, Instant::now());
    while open {
        tokio::select! {
            queued = outgoing.recv() => match queued {
                Some(text) => {
                    let frame = Message::Text(Utf8Bytes::from(&*text));
                    // A client that cannot take a frame in time is gone.
                    open = matches!(timeout(ping_every, sink.send(frame)).await, Ok(Ok(())));
                }
                None => {
                    close = Some((TRY_AGAIN, "too slow; reconnect"));
                    open = false;
                }
            },
            incoming = stream.next() => match incoming {
                // Flushing sends the close reply the library has queued.
                Some(Ok(Message::Close(_))) => {
                    let _ = sink.flush().await;
                    open = false;
                }
                Some(Err(e)) if too_big(&e) => {
                    let note = ServerMessage::error("PAYLOAD_TOO_LARGE", "frame too large");
                    let _ = sink.send(counted(&note)).await;
                    close = Some((TOO_BIG, "frame too large"));
                    open = false;
                }
                None | Some(Err(_)) => open = false,
                Some(Ok(Message::Text(_) | Message::Binary(_))) => {
                    last_heard = Instant::now();
                    if window_start.elapsed() > CLIENT_FRAME_WINDOW {
                        (frames, window_start) = (0, Instant::now());
                    }
                    frames += 1;
                    if frames > CLIENT_FRAMES_PER_WINDOW {
                        close = Some((POLICY, "too many messages"));
                        open = false;
                        continue;
                    }
                    let reply = ServerMessage::error(
                        "INVALID_REQUEST",
                        "only an auth frame is expected from the client",
                    );
                    open = sink.send(counted(&reply)).await.is_ok();
                }
                Some(Ok(_)) => last_heard = Instant::now(),
            },
            _ = pings.tick() => {
                if last_heard.elapsed() > ping_every * 2 {
                    open = false;
                } else {
                    open = sink.send(Message::Ping(Default::default())).await.is_ok();
                }
            }
            _ = shutdown.changed() => {
                close = Some((GOING_AWAY, "node shutting down"));
                open = false;
            }
        }
    }
    if let Some((code, reason)) = close {
        let frame = CloseFrame {
            code,
            reason: reason.into(),
        };
        let _ = timeout(
            Duration::from_secs(1),
            sink.send(Message::Close(Some(frame))),
        )
        .await;
    }
    app.hub.unregister(id);
    metrics::gauge!("velvet_ws_connections").decrement(1.0);
}

/// A frame for a message sent straight from the socket task, counted like
/// the hub's.
fn counted(message: &ServerMessage) -> Message {
    metrics::counter!("velvet_ws_messages_sent_total", "type" => message.kind())
        .increment(1);
    Message::Text(message.to_json().into())
}

/// Whether a read failed because the client's frame was over the limit.
fn too_big(error: &axum::Error) -> bool {
    use std::error::Error as _;
    use tokio_tungstenite::tungstenite::Error;
    let inner = error.source().and_then(|e| e.downcast_ref::<Error>());
    matches!(inner, Some(Error::Capacity(_)))
}

/// Waits for the auth frame; closes with a policy code on anything else.
async fn authenticate(socket: &mut WebSocket, app: &AppState) -> Option<uuid::Uuid> {
    let wait = Duration::from_millis(app.settings.ws.auth_timeout_ms);
    let refusal = match timeout(wait, socket.recv()).await {
        Ok(Some(Ok(Message::Text(text)))) => match serde_json::from_str(&text) {
            Ok(ClientFrame::Auth { session_token }) => {
                match app.sessions.verify(&session_token) {
                    Ok(claims) => return Some(claims.sub),
                    Err(crate::tokens::TokenError::Expired) => {
                        ServerMessage::error("TOKEN_EXPIRED", "session token expired")
                    }
                    Err(_) => {
                        ServerMessage::error("INVALID_TOKEN", "session token invalid")
                    }
                }
            }
            Err(_) => ServerMessage::error(
                "INVALID_REQUEST",
                "the first frame must be {\"type\":\"auth\",\"sessionToken\":\"…\"}",
            ),
        },
        Ok(Some(Err(e))) if too_big(&e) => {
            ServerMessage::error("PAYLOAD_TOO_LARGE", "the auth frame is too large")
        }
        Ok(_) => ServerMessage::error("UNAUTHORIZED", "expected an auth frame"),
        Err(_) => ServerMessage::error("UNAUTHORIZED", "no auth frame in time"),
    };
    let _ = socket.send(counted(&refusal)).await;
    let code = if matches!(
        refusal,
        ServerMessage::Error {
            code: "PAYLOAD_TOO_LARGE",
            ..
        }
    ) {
        TOO_BIG
    } else {
        POLICY
    };
    let frame = CloseFrame {
        code,
        reason: "authentication required".into(),
    };
    let _ = socket.send(Message::Close(Some(frame))).await;
    // Wait briefly for the client's reply before the TCP close: closing over
    // unread bytes makes the kernel reset the connection, and the client
    // would lose the close frame with its code.
    let _ = timeout(Duration::from_secs(1), async {
        while let Some(Ok(_)) = socket.recv().await {}
    })
    .await;
    None
}

/// Re-reads positions that need it, once a second, until shutdown.
pub async fn maintain(
    hub: Arc<hub::Hub>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let mut every = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = every.tick() => {
                for (seq, consumers) in hub.due_for_reread() {
                    hub.reread(seq, consumers).await;
                }
            }
            _ = shutdown.changed() => return,
        }
    }
}
