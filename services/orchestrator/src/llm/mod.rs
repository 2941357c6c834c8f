//! The language model: one conversation shape ([`Turn`], [`ToolSpec`], [`Reply`])
//! spoken to four providers' native chat, tool-calling and embedding APIs. Each
//! provider module only translates (pure functions, tested against the documented
//! bodies); the HTTP call, its timeout and its retries live here, once.
//!
//! Written here rather than with `genai`: its API has changed with every minor release
//! (0.5 → 0.6 → 0.7 within months, mostly betas), and each provider here is a request
//! builder and a response reader of some 80 lines that the tests pin to the
//! provider's documented shapes.

mod anthropic;
mod gemini;
mod ollama;
mod openai;

use homelab::retry::{retry, RetryPolicy};
use homelab::secret::Secret;
use homelab::transport::TransportError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ProviderKind {
    Gemini,
    OpenAi,
    Anthropic,
    Ollama,
}

impl ProviderKind {
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "gemini" => Ok(Self::Gemini),
            "openai" => Ok(Self::OpenAi),
            "anthropic" => Ok(Self::Anthropic),
            "ollama" => Ok(Self::Ollama),
            other => Err(format!(
                "LLM_PROVIDER must be gemini, openai, anthropic or ollama, got '{other}'"
            )),
        }
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Gemini => "gemini",
            Self::OpenAi => "openai",
            Self::Anthropic => "anthropic",
            Self::Ollama => "ollama",
        }
    }

    pub(crate) fn url_variable(self) -> &'static str {
        match self {
            Self::Gemini => "GEMINI_BASE_URL",
            Self::OpenAi => "OPENAI_BASE_URL",
            Self::Anthropic => "ANTHROPIC_BASE_URL",
            Self::Ollama => "OLLAMA_URL",
        }
    }

    pub(crate) fn default_model(self) -> &'static str {
        match self {
            Self::Gemini => "gemini-2.0-flash",
            Self::OpenAi => "gpt-4o",
            Self::Anthropic => "claude-sonnet-4-20250514",
            Self::Ollama => "llama3",
        }
    }

    /// Anthropic has no embeddings API: recall then ranks by keywords (BM25).
    pub(crate) fn default_embedding_model(self) -> Option<&'static str> {
        match self {
            Self::Gemini => Some("gemini-embedding-001"),
            Self::OpenAi => Some("text-embedding-3-small"),
            Self::Anthropic => None,
            Self::Ollama => Some("nomic-embed-text"),
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct ProviderConfig {
    pub(crate) kind: ProviderKind,
    pub(crate) model: String,
    pub(crate) embedding_model: Option<String>,
    pub(crate) base_url: String,
    pub(crate) api_key: Secret,
    pub(crate) timeout: Duration,
}

/// One step of a conversation, in no provider's shape.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub(crate) enum Turn {
    User {
        text: String,
    },
    Assistant {
        text: String,
        #[serde(default)]
        calls: Vec<ToolCall>,
    },
    Tool {
        call_id: String,
        name: String,
        content: Value,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct ToolCall {
    pub(crate) id: String,
    pub(crate) name: String,
    /// What the model sent; a string when it was not JSON (then the tool refuses it).
    pub(crate) arguments: Value,
}

/// A tool the model may call: a name, what it does, and a JSON schema of its arguments.
#[derive(Clone, Debug)]
pub(crate) struct ToolSpec {
    pub(crate) name: &'static str,
    pub(crate) description: &'static str,
    pub(crate) parameters: Value,
}

/// The model's answer: words, tool calls, or both.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Reply {
    pub(crate) text: String,
    pub(crate) calls: Vec<ToolCall>,
}

/// An HTTP request for a provider: path after the base URL, body, extra headers.
pub(crate) struct Request {
    pub(crate) path: String,
    pub(crate) body: Value,
    pub(crate) headers: Vec<(&'static str, String)>,
}

const PEER: &str = "llm";

#[derive(Clone, Debug)]
pub(crate) struct Llm {
    config: ProviderConfig,
    http: reqwest::Client,
    retries: RetryPolicy,
}

impl Llm {
    pub(crate) fn new(config: ProviderConfig, shutdown: CancellationToken) -> Self {
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(Duration::from_secs(5))
            .build()
            .expect("a reqwest client with these options always builds");
        let retries = RetryPolicy {
            max_attempts: 3,
            initial_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(5),
            jitter: true,
            cancel: None,
        }
        .cancelled_by(shutdown);
        Self {
            config,
            http,
            retries,
        }
    }

    pub(crate) fn config(&self) -> &ProviderConfig {
        &self.config
    }

    /// One answer of the model to `turns`, offering `tools`. Timeouts, 5xx and 429 are
    /// tried again (3 attempts in all); the last error names the provider and the status.
    pub(crate) async fn chat(
        &self,
        system: &str,
        turns: &[Turn],
        tools: &[ToolSpec],
    ) -> Result<Reply, TransportError> {
        let request = match self.config.kind {
            ProviderKind::OpenAi => openai::chat_request(&self.config, system, turns, tools),
            ProviderKind::Anthropic => anthropic::chat_request(&self.config, system, turns, tools),
            ProviderKind::Gemini => gemini::chat_request(&self.config, system, turns, tools),
            ProviderKind::Ollama => ollama::chat_request(&self.config, system, turns, tools),
        };
        let answer = self.post("chat", &request).await?;
        let parsed = match self.config.kind {
            ProviderKind::OpenAi => openai::parse_reply(&answer),
            ProviderKind::Anthropic => anthropic::parse_reply(&answer),
            ProviderKind::Gemini => gemini::parse_reply(&answer),
            ProviderKind::Ollama => ollama::parse_reply(&answer),
        };
        parsed.map_err(|error| TransportError::permanent(PEER, "chat", error))
    }

    /// The text's embedding; `None` when this provider (or configuration) has none.
    pub(crate) async fn embed(&self, text: &str) -> Result<Option<Vec<f32>>, TransportError> {
        let Some(model) = &self.config.embedding_model else {
            return Ok(None);
        };
        let request = match self.config.kind {
            ProviderKind::OpenAi => openai::embed_request(model, text),
            ProviderKind::Gemini => gemini::embed_request(model, text),
            ProviderKind::Ollama => ollama::embed_request(model, text),
            ProviderKind::Anthropic => return Ok(None),
        };
        let answer = self.post("embed", &request).await?;
        let vector = match self.config.kind {
            ProviderKind::OpenAi => openai::parse_embedding(&answer),
            ProviderKind::Gemini => gemini::parse_embedding(&answer),
            _ => ollama::parse_embedding(&answer),
        };
        vector
            .map(Some)
            .ok_or_else(|| TransportError::permanent(PEER, "embed", "no embedding in the answer"))
    }

    /// The provider's model list: proves address and key (diagnose), costs no tokens.
    pub(crate) async fn list_models(&self) -> Result<usize, TransportError> {
        let path = match self.config.kind {
            ProviderKind::OpenAi => "/models",
            ProviderKind::Anthropic => "/v1/models",
            ProviderKind::Gemini => "/v1beta/models",
            ProviderKind::Ollama => "/api/tags",
        };
        let request = Request {
            path: path.into(),
            body: Value::Null,
            headers: Vec::new(),
        };
        let answer = self.send("models", &request).await?;
        let list = ["data", "models"]
            .iter()
            .find_map(|key| answer[key].as_array())
            .map_or(0, Vec::len);
        Ok(list)
    }

    async fn post(&self, operation: &str, request: &Request) -> Result<Value, TransportError> {
        retry(
            &format!("llm_{operation}"),
            &self.retries,
            || self.send(operation, request),
            TransportError::is_transient,
        )
        .await
    }

    async fn send(&self, operation: &str, request: &Request) -> Result<Value, TransportError> {
        let url = format!("{}{}", self.config.base_url, request.path);
        let builder = if request.body.is_null() {
            self.http.get(url)
        } else {
            self.http.post(url).json(&request.body)
        };
        let mut builder = self.authorize(builder);
        for (name, value) in &request.headers {
            builder = builder.header(*name, value);
        }
        let variable = self.config.kind.url_variable();
        let failed = |error: reqwest::Error| {
            TransportError::from_reqwest(
                PEER,
                format!("{} {operation}", self.config.kind.as_str()),
                &error.without_url(),
                self.config.timeout,
                &format!("is {variable} right, is the server up?"),
            )
        };
        let response = builder.send().await.map_err(failed)?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(failed)?;
        if !(200..300).contains(&status) {
            let hint = match status {
                401 | 403 => " (the API key is wrong or lacks access)",
                404 => " (the model or address is wrong)",
                429 => " (rate limited)",
                _ => "",
            };
            let detail = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|body| {
                    body["error"]["message"]
                        .as_str()
                        .or(body["error"].as_str())
                        .map(str::to_string)
                })
                .unwrap_or(text);
            return Err(TransportError::from_status(
                PEER,
                format!("{} {operation}", self.config.kind.as_str()),
                status,
                &detail,
                hint,
            ));
        }
        serde_json::from_str(&text).map_err(|error| {
            TransportError::permanent(
                PEER,
                format!("{} {operation}", self.config.kind.as_str()),
                format!("the answer is not JSON: {error}"),
            )
        })
    }

    fn authorize(&self, builder: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        let key = self.config.api_key.expose();
        if key.is_empty() {
            return builder;
        }
        match self.config.kind {
            ProviderKind::OpenAi => builder.bearer_auth(key),
            ProviderKind::Anthropic => builder
                .header("x-api-key", key)
                .header("anthropic-version", "2023-06-01"),
            ProviderKind::Gemini => builder.header("x-goog-api-key", key),
            ProviderKind::Ollama => builder,
        }
    }
}

/// Appends `items` to the last message when it has the same `role` (Anthropic and
/// Gemini want alternating roles: several tool results form one message), else
/// starts a new message `{role, <list_key>: items}`.
pub(crate) fn push_merged(
    messages: &mut Vec<Value>,
    role: &str,
    list_key: &str,
    items: Vec<Value>,
) {
    match messages.last_mut() {
        Some(last) if last["role"] == role => {
            if let Some(list) = last[list_key].as_array_mut() {
                list.extend(items);
            }
        }
        _ => messages.push(serde_json::json!({"role": role, list_key: items})),
    }
}

/// Tool results go to the model as text.
pub(crate) fn content_text(content: &Value) -> String {
    match content {
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Arguments that arrived as a JSON string are parsed; what does not parse is kept as
/// the raw string, so the tool can tell the model what was wrong.
pub(crate) fn arguments_from_text(text: &str) -> Value {
    if text.trim().is_empty() {
        return Value::Object(serde_json::Map::new());
    }
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
}

#[cfg(test)]
pub(crate) mod test_support {
    use super::*;
    use serde_json::json;

    pub(crate) fn config() -> ProviderConfig {
        ProviderConfig {
            kind: ProviderKind::OpenAi,
            model: "test-model".into(),
            embedding_model: None,
            base_url: "http://127.0.0.1:9".into(),
            api_key: Secret::default(),
            timeout: Duration::from_secs(1),
        }
    }

    pub(crate) fn tools() -> Vec<ToolSpec> {
        vec![ToolSpec {
            name: "set_charging_mode",
            description: "Sets the mode",
            parameters: json!({"type": "object", "properties": {"mode": {"type": "string"}}, "required": ["mode"]}),
        }]
    }

    /// User asks, the model calls a tool, the tool answers.
    pub(crate) fn turns_with_a_tool_round() -> Vec<Turn> {
        vec![
            Turn::User {
                text: "charge fast".into(),
            },
            Turn::Assistant {
                text: String::new(),
                calls: vec![ToolCall {
                    id: "c1".into(),
                    name: "set_charging_mode".into(),
                    arguments: json!({"mode": "fast"}),
                }],
            },
            Turn::Tool {
                call_id: "c1".into(),
                name: "set_charging_mode".into(),
                content: json!({"ok": true}),
            },
        ]
    }
}
