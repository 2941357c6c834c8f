//! `state_changed` over HA's WebSocket API, kept alive by a task of our own:
//! auth, subscribe, ping when quiet (a dead TCP connection is noticed within a
//! minute), reconnect with capped backoff, subscribe again. A rejected token is
//! permanent: the task stops and says so instead of hammering HA.

use super::EntityState;
use crate::secret::Secret;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_util::sync::CancellationToken;

const STEP_TIMEOUT: Duration = Duration::from_secs(10);
const QUIET_BEFORE_PING: Duration = Duration::from_secs(30);
const FIRST_RETRY_DELAY: Duration = Duration::from_millis(250);
/// HA back after a restart is noticed within this (plus the jitter).
const MAX_RETRY_DELAY: Duration = Duration::from_secs(5);
const SUBSCRIPTION_ID: u64 = 1;

/// One `state_changed` event.
#[derive(Clone, Debug)]
pub struct StateChange {
    pub entity_id: String,
    pub old_state: Option<EntityState>,
    pub new_state: Option<EntityState>,
}

/// The receiving end of [`super::HomeAssistant::subscribe_state_changes`].
pub struct Subscription {
    changes: mpsc::Receiver<StateChange>,
    subscribed: watch::Receiver<u64>,
    last_error: watch::Receiver<Option<String>>,
}

impl Subscription {
    /// The next change; `None` once the subscription has stopped (shutdown, or a rejected token).
    pub async fn next(&mut self) -> Option<StateChange> {
        self.changes.recv().await
    }

    /// A change already received, without waiting (to take a burst in one go).
    pub fn try_next(&mut self) -> Option<StateChange> {
        self.changes.try_recv().ok()
    }

    /// How many times the subscription was (re-)established: 1 + reconnects.
    pub fn times_subscribed(&self) -> u64 {
        *self.subscribed.borrow()
    }

    /// The last connection or auth error, if any.
    pub fn last_error(&self) -> Option<String> {
        self.last_error.borrow().clone()
    }

    /// Waits until subscribed at least `count` times; the last error when `timeout` passes.
    pub async fn wait_subscribed(&mut self, count: u64, timeout: Duration) -> Result<(), String> {
        let reached = tokio::time::timeout(timeout, self.subscribed.wait_for(|n| *n >= count))
            .await
            .is_ok_and(|result| result.is_ok());
        if reached {
            return Ok(());
        }
        Err(self
            .last_error()
            .unwrap_or_else(|| "no answer from the WebSocket".into()))
    }
}

enum SessionEnd {
    /// The token was refused: do not try again.
    AuthInvalid(String),
    /// Anything else: reconnect.
    Lost(String),
}

pub(super) fn subscribe(
    base: &str,
    token: Secret,
    entity_ids: Vec<String>,
    stop: CancellationToken,
) -> Subscription {
    let (changes_tx, changes) = mpsc::channel(1024);
    let (subscribed_tx, subscribed) = watch::channel(0);
    let (error_tx, last_error) = watch::channel(None);
    let url = format!(
        "{}/api/websocket",
        base.replacen("https://", "wss://", 1)
            .replacen("http://", "ws://", 1)
    );
    let filter: HashSet<String> = entity_ids.into_iter().collect();
    tokio::spawn(async move {
        let mut delays = crate::retry::reconnect_delays(FIRST_RETRY_DELAY, MAX_RETRY_DELAY);
        loop {
            let before = *subscribed_tx.borrow();
            let ended = tokio::select! {
                () = stop.cancelled() => return,
                ended = session(&url, &token, &filter, &changes_tx, &subscribed_tx) => ended,
            };
            if *subscribed_tx.borrow() > before {
                // It worked for a while: the next loss starts from the first delay again.
                delays = crate::retry::reconnect_delays(FIRST_RETRY_DELAY, MAX_RETRY_DELAY);
            }
            let delay = delays.next().unwrap_or(MAX_RETRY_DELAY);
            match ended {
                SessionEnd::AuthInvalid(reason) => {
                    tracing::error!(url = %crate::secret::redact_url(&url), reason = %reason, "ha_websocket_auth_failed");
                    error_tx.send_replace(Some(format!(
                        "authentication failed: {reason} (check HA_TOKEN)"
                    )));
                    return;
                }
                SessionEnd::Lost(reason) => {
                    tracing::warn!(url = %crate::secret::redact_url(&url), reason = %reason, retry_in_ms = delay.as_millis() as u64, "ha_websocket_lost");
                    error_tx.send_replace(Some(reason));
                }
            }
            if changes_tx.is_closed() {
                return;
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(delay) => {}
            }
        }
    });
    Subscription {
        changes,
        subscribed,
        last_error,
    }
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn receive_json(socket: &mut Socket) -> Result<Value, SessionEnd> {
    loop {
        let message = tokio::time::timeout(STEP_TIMEOUT, socket.next())
            .await
            .map_err(|_| SessionEnd::Lost("no answer within 10 s".into()))?
            .ok_or_else(|| SessionEnd::Lost("connection closed".into()))?
            .map_err(|e| SessionEnd::Lost(e.to_string()))?;
        if let WsMessage::Text(text) = message {
            return serde_json::from_str(&text)
                .map_err(|e| SessionEnd::Lost(format!("unreadable message: {e}")));
        }
    }
}

async fn send_json(socket: &mut Socket, value: &Value) -> Result<(), SessionEnd> {
    socket
        .send(WsMessage::text(value.to_string()))
        .await
        .map_err(|e| SessionEnd::Lost(e.to_string()))
}

async fn session(
    url: &str,
    token: &Secret,
    filter: &HashSet<String>,
    changes: &mpsc::Sender<StateChange>,
    subscribed: &watch::Sender<u64>,
) -> SessionEnd {
    let connected = tokio::time::timeout(STEP_TIMEOUT, tokio_tungstenite::connect_async(url)).await;
    let mut socket = match connected {
        Ok(Ok((socket, _))) => socket,
        Ok(Err(error)) => return SessionEnd::Lost(format!("cannot connect: {error}")),
        Err(_) => return SessionEnd::Lost("connect timed out".into()),
    };
    match authenticate_and_subscribe(&mut socket, token).await {
        Ok(()) => {}
        Err(end) => return end,
    }
    subscribed.send_modify(|count| *count += 1);
    tracing::info!(
        url = %crate::secret::redact_url(url),
        entities = filter.len(),
        "ha_websocket_subscribed"
    );

    let mut next_id = SUBSCRIPTION_ID + 1;
    let mut ping_outstanding = false;
    loop {
        let message = match tokio::time::timeout(QUIET_BEFORE_PING, socket.next()).await {
            Err(_) if ping_outstanding => return SessionEnd::Lost("no answer to ping".into()),
            Err(_) => {
                ping_outstanding = true;
                next_id += 1;
                if let Err(end) =
                    send_json(&mut socket, &json!({"id": next_id, "type": "ping"})).await
                {
                    return end;
                }
                continue;
            }
            Ok(None) => return SessionEnd::Lost("connection closed by Home Assistant".into()),
            Ok(Some(Err(error))) => return SessionEnd::Lost(error.to_string()),
            Ok(Some(Ok(message))) => message,
        };
        ping_outstanding = false;
        let WsMessage::Text(text) = message else {
            continue;
        };
        let Ok(value) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        if value["type"] != "event" || value["id"] != SUBSCRIPTION_ID {
            continue;
        }
        let data = &value["event"]["data"];
        let Some(entity_id) = data["entity_id"].as_str() else {
            continue;
        };
        if !filter.is_empty() && !filter.contains(entity_id) {
            continue;
        }
        let change = StateChange {
            entity_id: entity_id.to_string(),
            old_state: serde_json::from_value(data["old_state"].clone()).ok(),
            new_state: serde_json::from_value(data["new_state"].clone()).ok(),
        };
        if changes.send(change).await.is_err() {
            return SessionEnd::Lost("nobody listens any more".into());
        }
    }
}

async fn authenticate_and_subscribe(socket: &mut Socket, token: &Secret) -> Result<(), SessionEnd> {
    let hello = receive_json(socket).await?;
    if hello["type"] != "auth_required" {
        return Err(SessionEnd::Lost(format!("unexpected greeting {hello}")));
    }
    send_json(
        socket,
        &json!({"type": "auth", "access_token": token.expose()}),
    )
    .await?;
    let answer = receive_json(socket).await?;
    match answer["type"].as_str() {
        Some("auth_ok") => {}
        Some("auth_invalid") => {
            return Err(SessionEnd::AuthInvalid(
                answer["message"]
                    .as_str()
                    .unwrap_or("invalid token")
                    .to_string(),
            ))
        }
        _ => return Err(SessionEnd::Lost(format!("unexpected auth answer {answer}"))),
    }
    send_json(
        socket,
        &json!({"id": SUBSCRIPTION_ID, "type": "subscribe_events", "event_type": "state_changed"}),
    )
    .await?;
    loop {
        let reply = receive_json(socket).await?;
        if reply["id"] == SUBSCRIPTION_ID && reply["type"] == "result" {
            if reply["success"] == true {
                return Ok(());
            }
            return Err(SessionEnd::Lost(format!(
                "subscription refused: {}",
                reply["error"]
            )));
        }
    }
}
