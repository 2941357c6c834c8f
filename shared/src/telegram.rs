//! The parts of the Telegram Bot API the home lab uses, at `TELEGRAM_API_URL` (the
//! public API by default, or a self-hosted Bot API server): `sendMessage` (with inline
//! buttons), `getUpdates` (long polling), `answerCallbackQuery`, `editMessageText` and
//! `getMe`. The token is part of every URL, so no URL is ever put into an error or a
//! log line.
//!
//! Written here rather than taken from `teloxide`: we need five methods, and teloxide's
//! dispatcher, macros and dependency tree would double the orchestrator's build time on
//! the 2-core CI for them.

use crate::secret::Secret;
use crate::transport::TransportError;
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::Duration;

const PEER: &str = "telegram";
const TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Clone, Debug)]
pub struct Telegram {
    http: reqwest::Client,
    api_url: String,
    token: Secret,
}

/// One entry of `getUpdates`: a message or a tap on an inline button.
#[derive(Clone, Debug, Deserialize)]
pub struct Update {
    pub update_id: i64,
    #[serde(default)]
    pub message: Option<IncomingMessage>,
    #[serde(default)]
    pub callback_query: Option<CallbackQuery>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct IncomingMessage {
    pub message_id: i64,
    pub chat: Chat,
    #[serde(default)]
    pub from: Option<User>,
    #[serde(default)]
    pub text: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct Chat {
    pub id: i64,
}

#[derive(Clone, Debug, Deserialize)]
pub struct User {
    pub id: i64,
    #[serde(default)]
    pub first_name: String,
    #[serde(default)]
    pub username: Option<String>,
}

impl User {
    /// How a decision names the person: `@username`, else the first name and id.
    pub fn display_name(&self) -> String {
        match &self.username {
            Some(username) => format!("telegram:@{username}"),
            None => format!("telegram:{} ({})", self.first_name, self.id),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
pub struct CallbackQuery {
    pub id: String,
    pub from: User,
    /// The message the buttons hang under.
    #[serde(default)]
    pub message: Option<IncomingMessage>,
    #[serde(default)]
    pub data: Option<String>,
}

/// An inline button: its label and the `callback_data` (at most 64 bytes) a tap sends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Button {
    pub label: String,
    pub data: String,
}

impl Telegram {
    pub fn new(api_url: &str, token: Secret) -> Self {
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

    async fn call(
        &self,
        method: &str,
        body: &Value,
        timeout: Duration,
    ) -> Result<Value, TransportError> {
        let url = format!("{}/bot{}/{method}", self.api_url, self.token.expose());
        let failed = |error: reqwest::Error| {
            TransportError::from_reqwest(
                PEER,
                method,
                &error.without_url(),
                timeout,
                "is TELEGRAM_API_URL right, is the network up?",
            )
        };
        let response = self
            .http
            .post(url)
            .timeout(timeout)
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
            400 if description.contains("chat not found") => " (a chat id is wrong)",
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
    pub async fn send_message(&self, chat_id: &str, text: &str) -> Result<(), TransportError> {
        self.send(chat_id, text, &[]).await.map(|_| ())
    }

    /// A message with inline buttons in one row; returns its `message_id`.
    pub async fn send(
        &self,
        chat_id: &str,
        text: &str,
        buttons: &[Button],
    ) -> Result<i64, TransportError> {
        let mut body = json!({"chat_id": chat_id, "text": text, "disable_web_page_preview": true});
        if !buttons.is_empty() {
            let row: Vec<Value> = buttons
                .iter()
                .map(|button| json!({"text": button.label, "callback_data": button.data}))
                .collect();
            body["reply_markup"] = json!({"inline_keyboard": [row]});
        }
        let sent = self.call("sendMessage", &body, TIMEOUT).await?;
        Ok(sent["message_id"].as_i64().unwrap_or_default())
    }

    /// Replaces a message's text and removes its buttons (after a decision).
    pub async fn edit_text(
        &self,
        chat_id: &str,
        message_id: i64,
        text: &str,
    ) -> Result<(), TransportError> {
        self.call(
            "editMessageText",
            &json!({"chat_id": chat_id, "message_id": message_id, "text": text}),
            TIMEOUT,
        )
        .await
        .map(|_| ())
    }

    /// Ends the spinner on the tapped button, with a short notice.
    pub async fn answer_callback(&self, query_id: &str, text: &str) -> Result<(), TransportError> {
        self.call(
            "answerCallbackQuery",
            &json!({"callback_query_id": query_id, "text": text}),
            TIMEOUT,
        )
        .await
        .map(|_| ())
    }

    /// Long polling: waits up to `wait` for updates after `offset`. Entries that do not
    /// parse are skipped (and their id still counts, so they are not fetched again).
    pub async fn get_updates(
        &self,
        offset: i64,
        wait: Duration,
    ) -> Result<(Vec<Update>, i64), TransportError> {
        let result = self
            .call(
                "getUpdates",
                &json!({
                    "offset": offset,
                    "timeout": wait.as_secs(),
                    "allowed_updates": ["message", "callback_query"],
                }),
                wait + TIMEOUT,
            )
            .await?;
        let mut next = offset;
        let mut updates = Vec::new();
        for entry in result.as_array().into_iter().flatten() {
            if let Some(id) = entry["update_id"].as_i64() {
                next = next.max(id + 1);
            }
            match serde_json::from_value::<Update>(entry.clone()) {
                Ok(update) => updates.push(update),
                Err(error) => tracing::warn!(error = %error, "telegram_update_unreadable_skipped"),
            }
        }
        Ok((updates, next))
    }

    /// The bot's name: proves the token works (diagnose).
    pub async fn get_me(&self) -> Result<String, TransportError> {
        let me = self.call("getMe", &json!({}), TIMEOUT).await?;
        Ok(me["username"].as_str().unwrap_or("?").to_string())
    }
}
