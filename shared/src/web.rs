//! Plain HTTP GETs to outside services (weather, geocoding, calendars), written once:
//! a timeout on every call, an honest User-Agent (Nominatim's policy asks for one),
//! retries only where they can help, and an error that names the address.

use crate::retry::{retry, RetryPolicy};
use std::time::Duration;

const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// Every web call fails with the shared transport error; its operation is the address
/// without the query (which may carry a key) and without user:password@.
pub type WebError = crate::transport::TransportError;

const PEER: &str = "GET";

#[derive(Clone, Debug)]
pub struct WebClient {
    http: reqwest::Client,
    retry: RetryPolicy,
}

fn without_query(url: &str) -> String {
    crate::secret::redact_url(url.split('?').next().unwrap_or(url))
}

impl WebClient {
    /// `user_agent` is e.g. `"homelab-pv-forecast/0.1"`.
    pub fn new(user_agent: &str) -> Self {
        Self::with_retry(user_agent, RetryPolicy::default())
    }

    pub fn with_retry(user_agent: &str, retry: RetryPolicy) -> Self {
        let http = reqwest::Client::builder()
            .user_agent(user_agent)
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .build()
            .expect("a reqwest client with these options always builds");
        Self { http, retry }
    }

    /// The same client, its calls ended by `shutdown` (the service's token).
    pub fn until(mut self, shutdown: tokio_util::sync::CancellationToken) -> Self {
        self.retry = self.retry.cancelled_by(shutdown);
        self
    }

    async fn get_once(&self, url: &str) -> Result<String, WebError> {
        let failed = |error: &reqwest::Error| {
            WebError::from_reqwest(
                PEER,
                without_query(url),
                error,
                REQUEST_TIMEOUT,
                "is the address right, is the network up?",
            )
        };
        let response = self.http.get(url).send().await.map_err(|e| failed(&e))?;
        let status = response.status().as_u16();
        let body = response.text().await.map_err(|e| failed(&e))?;
        if !(200..300).contains(&status) {
            return Err(WebError::from_status(
                PEER,
                without_query(url),
                status,
                &body,
                "",
            ));
        }
        Ok(body)
    }

    /// The body as text, retried on transient errors.
    pub async fn get_text(&self, url: &str) -> Result<String, WebError> {
        retry(
            "web_get",
            &self.retry,
            || self.get_once(url),
            WebError::is_transient,
        )
        .await
    }

    /// The body parsed as `T`; a body that does not parse is a permanent error.
    pub async fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<T, WebError> {
        let body = self.get_text(url).await?;
        serde_json::from_str(&body).map_err(|error| {
            WebError::permanent(
                PEER,
                without_query(url),
                format!("unreadable answer: {error}"),
            )
        })
    }
}
