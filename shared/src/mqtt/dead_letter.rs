//! Per-subscription workers, and the dead-letter record of a message they could not handle.

use super::{dead_letter_topic, trace_fields_of, Incoming, Message, Shared};
use crate::envelope;
use rumqttc::{AsyncClient, QoS};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::mpsc;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// How much of the original payload a dead letter carries.
pub const DEAD_LETTER_PAYLOAD_LIMIT: usize = 64 * 1024;

/// What lands on `homelab/errors/{service}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    pub original_topic: String,
    /// The payload as text (lossy UTF-8), cut at 64 KiB.
    pub payload: String,
    /// The payload's full size in bytes, so a cut is visible.
    pub payload_bytes: usize,
    pub error: String,
    /// `parse_error`, `handler_error`, `handler_panic` or `too_large` (no payload then).
    pub error_type: String,
    pub timestamp: String,
    pub service: String,
}

impl DeadLetter {
    fn new(service: &str, incoming: &Incoming, error_type: &str, error: String) -> Self {
        let text = String::from_utf8_lossy(&incoming.payload);
        Self {
            original_topic: incoming.topic.clone(),
            payload: truncate_at_char_boundary(&text, DEAD_LETTER_PAYLOAD_LIMIT).to_string(),
            payload_bytes: incoming.size,
            error,
            error_type: error_type.to_string(),
            timestamp: envelope::now_iso(),
            service: service.to_string(),
        }
    }
}

fn truncate_at_char_boundary(text: &str, limit: usize) -> &str {
    if text.len() <= limit {
        return text;
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

type BoxedHandling = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send>>;

pub(super) struct Worker {
    pub(super) service: Arc<str>,
    pub(super) client: AsyncClient,
    pub(super) shared: Arc<Shared>,
}

impl Worker {
    pub(super) async fn run<T, F, Fut>(
        self,
        mut receiver: mpsc::Receiver<Incoming>,
        decode: Decode<T>,
        handler: F,
    ) where
        T: Send + 'static,
        F: Fn(Message<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let handler = Arc::new(handler);
        loop {
            let incoming = tokio::select! {
                biased;
                () = self.shared.stop_taking.cancelled() => return,
                incoming = receiver.recv() => match incoming {
                    Some(incoming) => incoming,
                    None => return,
                },
            };
            self.shared.metrics.dequeued();
            self.handle(&incoming, decode, &handler).await;
            incoming.mark_handled();
        }
    }

    async fn handle<T, F, Fut>(&self, incoming: &Incoming, decode: Decode<T>, handler: &Arc<F>)
    where
        T: Send + 'static,
        F: Fn(Message<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        if incoming.is_oversized() {
            let error = format!(
                "{} bytes, over the {}-byte limit",
                incoming.size,
                super::MAX_MESSAGE_BYTES
            );
            self.dead_letter(incoming, "too_large", error).await;
            return;
        }
        let payload: T = match decode(&incoming.payload) {
            Ok(payload) => payload,
            Err(reason) => {
                self.dead_letter(incoming, "parse_error", reason).await;
                return;
            }
        };
        let trace = trace_fields_of(&incoming.payload);
        let message = Message {
            topic: incoming.topic.clone(),
            payload,
            trace_id: trace.trace_id.clone(),
        };
        let handler = handler.clone();
        // The handler's span continues the sender's trace (a no-op without an exporter).
        let span = tracing::info_span!("mqtt_message", topic = %incoming.topic);
        if let Some(parent) = trace
            .traceparent
            .as_deref()
            .and_then(crate::telemetry::remote_parent)
        {
            let _ = span.set_parent(parent);
        }
        // Spawned so that a panic is caught here as a JoinError instead of ending the worker.
        let handling: BoxedHandling = match trace.trace_id {
            Some(trace_id) => Box::pin(
                envelope::with_trace_id(trace_id, async move { handler(message).await })
                    .instrument(span),
            ),
            None => Box::pin(async move { handler(message).await }.instrument(span)),
        };
        match tokio::spawn(handling).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                self.shared.metrics.count_handler_error();
                self.dead_letter(incoming, "handler_error", format!("{error:#}"))
                    .await;
            }
            Err(join_error) if join_error.is_panic() => {
                self.shared.metrics.count_handler_error();
                let reason = panic_message(&*join_error.into_panic());
                self.dead_letter(incoming, "handler_panic", reason).await;
            }
            Err(_) => {} // cancelled: the runtime is shutting down
        }
    }

    async fn dead_letter(&self, incoming: &Incoming, error_type: &str, error: String) {
        tracing::warn!(
            topic = %incoming.topic,
            error_type,
            error = %error,
            "message_dead_lettered"
        );
        let letter = DeadLetter::new(&self.service, incoming, error_type, error);
        let bytes = match serde_json::to_vec(&letter) {
            Ok(bytes) => bytes,
            Err(error) => {
                tracing::error!(error = %error, "dead_letter_serialize_failed");
                return;
            }
        };
        match self
            .client
            .publish(
                dead_letter_topic(&self.service),
                QoS::AtLeastOnce,
                false,
                bytes,
            )
            .await
        {
            Ok(()) => {
                self.shared.metrics.count_dead_letter();
                self.shared.metrics.count_out();
            }
            Err(error) => tracing::error!(error = %error, "dead_letter_publish_failed"),
        }
    }
}

/// Turns a payload into what a handler takes, or says why it cannot.
pub(super) type Decode<T> = fn(&[u8]) -> Result<T, String>;

/// JSON into `T`.
pub(super) fn decode_json<T: DeserializeOwned>(payload: &[u8]) -> Result<T, String> {
    serde_json::from_slice(payload)
        .map_err(|error| format!("payload is not a valid {}: {error}", short_type_name::<T>()))
}

/// Plain text, as Home Assistant sends commands (`pv`, `16`, `ON`).
pub(super) fn decode_text(payload: &[u8]) -> Result<String, String> {
    String::from_utf8(payload.to_vec()).map_err(|_| "payload is not UTF-8 text".to_string())
}

fn short_type_name<T>() -> &'static str {
    let full = std::any::type_name::<T>();
    full.rsplit("::").next().unwrap_or(full)
}

fn panic_message(payload: &(dyn Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        format!("handler panicked: {text}")
    } else if let Some(text) = payload.downcast_ref::<String>() {
        format!("handler panicked: {text}")
    } else {
        "handler panicked".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_keeps_whole_characters() {
        let text = "ä".repeat(40_000); // 80,000 bytes
        let cut = truncate_at_char_boundary(&text, DEAD_LETTER_PAYLOAD_LIMIT);
        assert!(cut.len() <= DEAD_LETTER_PAYLOAD_LIMIT);
        assert!(cut.len() > DEAD_LETTER_PAYLOAD_LIMIT - 2);
        assert_eq!(truncate_at_char_boundary("short", 10), "short");
    }
}
