//! The Telegram Bot API's `sendMessage` and `getMe`, at `TELEGRAM_API_URL` (the public
//! API by default, or a self-hosted Bot API server). The token is part of every URL, so
//! no URL is ever put into an error or a log line.

use homelab::secret::Secret;
use homelab::transport::TransportError;
use serde_json::{json, Value};
use std::time::Duration;

const PEER: &str = "telegram";
const TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Clone, Debug)]
pub(crate) struct Telegram {
    http: reqwest::Client,
    api_url: String,
    token: Secret,
}

impl Telegram {
    pub(crate) fn new(api_url: &str, token: Secret) -> Self {
        let http = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .build()
            .expect("a reqwest client with these options always builds");
        Self {
            http,
            api_url: api_url.trim_end_matches('/').to_string(),
            token,
        }
    }

    async fn call(&self, method: &str, body: &Value) -> Result<Value, TransportError> {
        let url = format!("{}/bot{}/{method}", self.api_url, self.token.expose());
        let failed = |error: reqwest::Error| {
            TransportError::from_reqwest(
                PEER,
                method,
                &error.without_url(),
                TIMEOUT,
                "is TELEGRAM_API_URL right, is the network up?",
            )
        };
        let response = self
            .http
            .post(url)
            .json(body)
            .send()
            .await
            .map_err(failed)?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(failed)?;
        let answer: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if (200..300).contains(&status) && answer["ok"] == json!(true) {
            return Ok(answer["result"].clone());
        }
        let description = answer["description"]
            .as_str()
            .map(str::to_string)
            .unwrap_or_else(|| text.chars().take(200).collect());
        let hint = match status {
            401 | 404 => " (TELEGRAM_BOT_TOKEN is wrong)",
            400 if description.contains("chat not found") => {
                " (a TELEGRAM_CHAT_IDS entry is wrong)"
            }
            _ => "",
        };
        Err(TransportError::from_status(
            PEER,
            method,
            status,
            &description,
            hint,
        ))
    }

    /// One message to one chat.
    pub(crate) async fn send_message(
        &self,
        chat_id: &str,
        text: &str,
    ) -> Result<(), TransportError> {
        self.call(
            "sendMessage",
            &json!({"chat_id": chat_id, "text": text, "disable_web_page_preview": true}),
        )
        .await
        .map(|_| ())
    }

    /// The bot's name: proves the token works (diagnose).
    pub(crate) async fn get_me(&self) -> Result<String, TransportError> {
        let me = self.call("getMe", &json!({})).await?;
        Ok(me["username"].as_str().unwrap_or("?").to_string())
    }
}
