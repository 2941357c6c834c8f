//! A string that must never reach a log line, `Debug` output or a diagnose report.

use serde::Deserialize;
use std::fmt;

/// Holds a credential (token, password). `Debug` and `Display` print `<redacted>`;
/// the value is only reachable through [`Secret::expose`], so every use is greppable.
///
/// We keep our own small type rather than `secrecy` because settings arrive as
/// plain strings from `config` and we need `is_empty` for "not configured" checks;
/// zeroizing memory buys nothing against the threat here (leaking into logs).
#[derive(Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The plain value, for the one place that sends it (an auth header, a CONNECT packet).
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// What diagnose and logs may say about it.
    pub fn describe(&self) -> &'static str {
        if self.0.is_empty() {
            "not set"
        } else {
            "set"
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            f.write_str("Secret(<empty>)")
        } else {
            f.write_str("Secret(<redacted>)")
        }
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_show_the_value() {
        let secret = Secret::new("hunter2-token");
        assert!(!format!("{secret:?}").contains("hunter2"));
        assert!(!format!("{secret}").contains("hunter2"));
        assert_eq!(secret.expose(), "hunter2-token");
        assert_eq!(secret.describe(), "set");
        assert_eq!(Secret::default().describe(), "not set");
    }
}

/// `url` with any `user:password@` replaced by `***@`: what logs and reports may show
/// of a URL (people put credentials in the URL of a reverse proxy or of InfluxDB).
/// A reqwest error's text without what its URL may carry: reqwest prints the whole
/// URL ("error sending request for url (…?token=…)"), query and userinfo included.
pub fn reqwest_error_text(error: &reqwest::Error) -> String {
    let text = error.to_string();
    match error.url() {
        Some(url) => {
            let mut safe = url.clone();
            safe.set_query(None);
            let _ = safe.set_password(None);
            let _ = safe.set_username("");
            text.replace(url.as_str(), safe.as_str())
        }
        None => text,
    }
}

pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_string();
    };
    let authority_start = scheme_end + 3;
    let authority_end = url[authority_start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |end| authority_start + end);
    match url[authority_start..authority_end].rfind('@') {
        Some(at) => format!(
            "{}***@{}",
            &url[..authority_start],
            &url[authority_start + at + 1..]
        ),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod url_tests {
    use super::redact_url;

    #[test]
    fn userinfo_is_hidden_and_the_rest_kept() {
        for (url, shown) in [
            ("http://ha.local:8123", "http://ha.local:8123"),
            (
                "https://user:pw@ha.example:443/api",
                "https://***@ha.example:443/api",
            ),
            (
                "http://token@influx:8086?org=a@b",
                "http://***@influx:8086?org=a@b",
            ),
            ("http://u:p@ss@host/x", "http://***@host/x"),
            ("ws://host/api/websocket", "ws://host/api/websocket"),
            ("not a url", "not a url"),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
        }
    }
}
