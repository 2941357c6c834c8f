//! The JSON envelope of every message we publish: `timestamp`, `service`, and
//! `trace_id` when the work at hand has one.

use chrono::{SecondsFormat, Utc};
use serde_json::{Map, Value};
use std::future::Future;

tokio::task_local! {
    static TRACE_ID: String;
}

/// The trace id of the message being handled (or set by [`with_trace_id`]), if any.
pub fn current_trace_id() -> Option<String> {
    TRACE_ID.try_with(Clone::clone).ok()
}

/// Runs `work` with `trace_id` as the current trace: everything it publishes carries it.
pub async fn with_trace_id<F: Future>(trace_id: String, work: F) -> F::Output {
    TRACE_ID.scope(trace_id, work).await
}

/// A fresh trace id for work that starts here (a timer, a user command).
pub fn new_trace_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// ISO 8601 UTC with milliseconds, e.g. `2026-11-23T00:48:57.123Z`.
pub fn now_iso() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error("payload must serialize to a JSON object, got {0}")]
    NotAnObject(&'static str),
    #[error("payload cannot be serialized: {0}")]
    Serialize(#[from] serde_json::Error),
}

/// Adds the envelope fields to `payload`. Fields the payload already has are kept
/// (a message may carry its own `timestamp` or a `trace_id` it continues).
pub fn wrap(service: &str, payload: Value) -> Result<Map<String, Value>, EnvelopeError> {
    let mut object = match payload {
        Value::Object(object) => object,
        other => return Err(EnvelopeError::NotAnObject(kind(&other))),
    };
    object
        .entry("timestamp")
        .or_insert_with(|| Value::String(now_iso()));
    object.insert("service".into(), Value::String(service.to_string()));
    let exported = crate::telemetry::traceparent_of_current_span();
    if let Some((traceparent, _)) = &exported {
        object
            .entry("traceparent")
            .or_insert_with(|| Value::String(traceparent.clone()));
    }
    if !object.contains_key("trace_id") {
        // A trace id handed in by the message being handled wins; else the exported span's.
        if let Some(trace_id) = current_trace_id().or(exported.map(|(_, trace_id)| trace_id)) {
            object.insert("trace_id".into(), Value::String(trace_id));
        }
    }
    Ok(object)
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn wrap_adds_service_timestamp_and_the_current_trace() {
        let plain = wrap("svc", json!({"value": 1})).unwrap();
        assert_eq!(plain["service"], "svc");
        assert!(chrono::DateTime::parse_from_rfc3339(plain["timestamp"].as_str().unwrap()).is_ok());
        assert!(!plain.contains_key("trace_id"));

        let traced = with_trace_id("abc".into(), async { wrap("svc", json!({})).unwrap() }).await;
        assert_eq!(traced["trace_id"], "abc");
    }

    #[test]
    fn wrap_refuses_non_objects() {
        let error = wrap("svc", json!([1, 2])).unwrap_err().to_string();
        assert!(error.contains("an array"), "{error}");
    }
}
