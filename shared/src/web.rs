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
const POST: &str = "POST";

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

    async fn send_once(
        &self,
        peer: &'static str,
        url: &str,
        request: reqwest::RequestBuilder,
    ) -> Result<String, WebError> {
        let failed = |error: &reqwest::Error| {
            WebError::from_reqwest(
                peer,
                without_query(url),
                error,
                REQUEST_TIMEOUT,
                "is the address right, is the network up?",
            )
        };
        let response = request.send().await.map_err(|e| failed(&e))?;
        let status = response.status().as_u16();
        let body = response.text().await.map_err(|e| failed(&e))?;
        if !(200..300).contains(&status) {
            return Err(WebError::from_status(
                peer,
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
            || self.send_once(PEER, url, self.http.get(url)),
            WebError::is_transient,
        )
        .await
    }

    /// Like [`WebClient::get_text`], with `Authorization: Bearer` (an OAuth access token).
    pub async fn get_text_authorized(
        &self,
        url: &str,
        token: &crate::Secret,
    ) -> Result<String, WebError> {
        retry(
            "web_get",
            &self.retry,
            || self.send_once(PEER, url, self.http.get(url).bearer_auth(token.expose())),
            WebError::is_transient,
        )
        .await
    }

    /// POSTs `application/x-www-form-urlencoded` fields (an OAuth token exchange);
    /// retried on transient errors, so only for requests that are safe to repeat.
    pub async fn post_form(&self, url: &str, fields: &[(&str, &str)]) -> Result<String, WebError> {
        let body = fields
            .iter()
            .map(|(key, value)| {
                format!(
                    "{}={}",
                    urlencoding::encode(key),
                    urlencoding::encode(value)
                )
            })
            .collect::<Vec<_>>()
            .join("&");
        retry(
            "web_post",
            &self.retry,
            || {
                let request = self
                    .http
                    .post(url)
                    .header(
                        reqwest::header::CONTENT_TYPE,
                        "application/x-www-form-urlencoded",
                    )
                    .body(body.clone());
                self.send_once(POST, url, request)
            },
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
