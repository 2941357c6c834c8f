//! One error for every HTTP call to another system (Home Assistant, InfluxDB, the web),
//! so "can a retry help?" is answered in one place: timeouts, refused connections, 5xx
//! and 429 are transient; a bad token, a missing entity, a body we cannot read are not.

use crate::retry::Cancelled;
use std::fmt;
use std::time::Duration;

#[derive(Debug)]
pub struct TransportError {
    /// Which system: `"home assistant"`, `"influxdb"`, `"GET"` (a web address).
    pub peer: &'static str,
    /// What was asked (`get_state light.x`, `write`), or the address without its
    /// query and userinfo.
    pub operation: String,
    /// The HTTP status, when there was a response.
    pub status: Option<u16>,
    pub message: String,
    transient: bool,
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.peer.is_empty() {
            write!(f, "{}: {}", self.operation, self.message)
        } else {
            write!(f, "{} {}: {}", self.peer, self.operation, self.message)
        }
    }
}

impl std::error::Error for TransportError {}

impl From<Cancelled> for TransportError {
    fn from(cancelled: Cancelled) -> Self {
        Self::permanent("", cancelled.operation, "cancelled by shutdown")
    }
}

impl TransportError {
    /// Whether a later try may work.
    pub fn is_transient(&self) -> bool {
        self.transient
    }

    /// A failure no retry can fix: bad input, an unreadable answer, a shutdown.
    pub fn permanent(
        peer: &'static str,
        operation: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            peer,
            operation: operation.into(),
            status: None,
            message: message.into(),
            transient: false,
        }
    }

    /// The request did not get an answer (or its body could not be read). `timeout` is
    /// the client's, named in the message; `cannot_connect` says what to check.
    pub fn from_reqwest(
        peer: &'static str,
        operation: impl Into<String>,
        error: &reqwest::Error,
        timeout: Duration,
        cannot_connect: &str,
    ) -> Self {
        let message = if error.is_timeout() {
            format!("no answer within {}s", timeout.as_secs())
        } else if error.is_connect() {
            format!("cannot connect ({cannot_connect})")
        } else {
            crate::secret::reqwest_error_text(error)
        };
        Self {
            peer,
            operation: operation.into(),
            status: error.status().map(|status| status.as_u16()),
            message,
            transient: !(error.is_decode() || error.is_builder()),
        }
    }

    /// An answer with a status outside 2xx. `detail` is what the body says (cut to 200
    /// characters), `hint` what the status usually means here.
    pub fn from_status(
        peer: &'static str,
        operation: impl Into<String>,
        status: u16,
        detail: &str,
        hint: &str,
    ) -> Self {
        let detail: String = detail.chars().take(200).collect();
        Self {
            peer,
            operation: operation.into(),
            status: Some(status),
            message: format!("HTTP {status}{hint}: {detail}"),
            transient: status >= 500 || status == 429,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_status_is_transient_only_when_the_server_may_recover() {
        for (status, transient) in [
            (500, true),
            (502, true),
            (503, true),
            (429, true),
            (400, false),
            (401, false),
            (403, false),
            (404, false),
        ] {
            let error = TransportError::from_status("influxdb", "write", status, "x", "");
            assert_eq!(error.is_transient(), transient, "HTTP {status}");
            assert_eq!(error.status, Some(status));
        }
    }

    #[test]
    fn the_message_names_the_peer_the_operation_and_the_status() {
        let error = TransportError::from_status(
            "home assistant",
            "get_state sensor.x",
            401,
            &"y".repeat(500),
            " (HA_TOKEN is wrong or expired)",
        );
        let text = error.to_string();
        assert!(text.starts_with(
            "home assistant get_state sensor.x: HTTP 401 (HA_TOKEN is wrong or expired): yyy"
        ));
        assert!(text.len() < 300, "the body is cut: {text}");
        let cancelled = TransportError::from(Cancelled {
            operation: "web_get".into(),
        });
        assert_eq!(cancelled.to_string(), "web_get: cancelled by shutdown");
        assert!(!cancelled.is_transient());
    }
}
