//! Stand-ins for the two systems the orchestrator talks to that cannot run here:
//! Telegram's Bot API and the language models' HTTP APIs. Both speak the documented
//! request and response bodies (Bot API: getUpdates, sendMessage, answerCallbackQuery,
//! editMessageText; OpenAI chat completions + embeddings, Anthropic messages, Gemini
//! generateContent + embedContent, Ollama /api/chat + /api/embed). The model stand-in
//! is scripted: it decides from the user's words which tool to call, and answers with
//! what the tool returned, so the test sees what the orchestrator really fed it.

#![allow(dead_code)] // each test file uses its own part

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

pub const BOT_TOKEN: &str = "4242:test-bot-token";

async fn serve(app: Router) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    port
}

/// The Bot API, for one bot.
#[derive(Default)]
pub struct TelegramState {
    updates: Mutex<Vec<Value>>,
    next_update: Mutex<i64>,
    next_message: Mutex<i64>,
    /// Every call but getUpdates: (method, body).
    pub calls: Mutex<Vec<(String, Value)>>,
    arrived: Notify,
    pub polls: Mutex<u64>,
}

#[derive(Clone)]
pub struct TelegramStandIn {
    pub state: Arc<TelegramState>,
    pub port: u16,
}

async fn bot_api(
    State(state): State<Arc<TelegramState>>,
    Path((bot, method)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    if bot != format!("bot{BOT_TOKEN}") {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({"ok": false, "error_code": 401, "description": "Unauthorized"})),
        );
    }
    match method.as_str() {
        "getUpdates" => {
            *state.polls.lock().unwrap() += 1;
            let offset = body["offset"].as_i64().unwrap_or(0);
            let pending = |state: &TelegramState| -> Vec<Value> {
                state
                    .updates
                    .lock()
                    .unwrap()
                    .iter()
                    .filter(|update| update["update_id"].as_i64().unwrap() >= offset)
                    .cloned()
                    .collect()
            };
            let mut found = pending(&state);
            if found.is_empty() {
                // Long polling, shortened: at most 1 s here.
                let _ =
                    tokio::time::timeout(Duration::from_secs(1), state.arrived.notified()).await;
                found = pending(&state);
            }
            (StatusCode::OK, Json(json!({"ok": true, "result": found})))
        }
        "getMe" => (
            StatusCode::OK,
            Json(
                json!({"ok": true, "result": {"id": 4242, "is_bot": true, "first_name": "House", "username": "house_bot"}}),
            ),
        ),
        "sendMessage" | "editMessageText" | "answerCallbackQuery" => {
            let message_id = {
                let mut next = state.next_message.lock().unwrap();
                *next += 1;
                *next
            };
            state
                .calls
                .lock()
                .unwrap()
                .push((method.clone(), body.clone()));
            let result = if method == "answerCallbackQuery" {
                json!(true)
            } else {
                json!({"message_id": message_id, "chat": {"id": body["chat_id"]}, "date": 0, "text": body["text"]})
            };
            (StatusCode::OK, Json(json!({"ok": true, "result": result})))
        }
        _ => (
            StatusCode::NOT_FOUND,
            Json(
                json!({"ok": false, "error_code": 404, "description": "Not Found: method not found"}),
            ),
        ),
    }
}

impl TelegramStandIn {
    pub async fn start() -> Self {
        let state = Arc::new(TelegramState::default());
        let app = Router::new()
            .route("/{bot}/{method}", post(bot_api))
            .with_state(state.clone());
        let port = serve(app).await;
        Self { state, port }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn push(&self, mut update: Value) {
        let id = {
            let mut next = self.state.next_update.lock().unwrap();
            *next += 1;
            *next
        };
        update["update_id"] = json!(id);
        self.state.updates.lock().unwrap().push(update);
        self.state.arrived.notify_waiters();
    }

    /// A person writes in `chat_id`.
    pub fn says(&self, chat_id: i64, text: &str) {
        self.push(json!({"message": {
            "message_id": 1, "date": 0, "text": text,
            "chat": {"id": chat_id, "type": "private"},
            "from": {"id": chat_id, "is_bot": false, "first_name": "Ada", "username": "ada"},
        }}));
    }

    /// A person in `chat_id` taps a button under `message_id`.
    pub fn taps(&self, chat_id: i64, message_id: i64, data: &str) {
        self.push(json!({"callback_query": {
            "id": format!("tap-{message_id}-{data}"),
            "from": {"id": chat_id, "is_bot": false, "first_name": "Ada", "username": "ada"},
            "chat_instance": "x",
            "data": data,
            "message": {"message_id": message_id, "date": 0, "chat": {"id": chat_id, "type": "private"}},
        }}));
    }

    pub fn sent(&self, method: &str) -> Vec<Value> {
        self.state
            .calls
            .lock()
            .unwrap()
            .iter()
            .filter(|(name, _)| name == method)
            .map(|(_, body)| body.clone())
            .collect()
    }

    /// Waits for the `index`-th (from 0) sendMessage to `chat_id` whose text passes `test`.
    pub async fn wait_for_message(
        &self,
        chat_id: i64,
        timeout: Duration,
        test: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(found) = self
                .sent("sendMessage")
                .into_iter()
                .find(|body| chat_of(body) == Some(chat_id) && test(body))
            {
                return found;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no such message to {chat_id} within {timeout:?}; sent: {:#?}",
                self.state.calls.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The message id the stand-in gave a sent message (its position among the calls).
    pub fn message_id_of(&self, sent: &Value) -> i64 {
        let calls = self.state.calls.lock().unwrap();
        let position = calls.iter().position(|(_, body)| body == sent).unwrap();
        // Every call but getUpdates took a number, in order, starting at 1.
        position as i64 + 1
    }
}

/// The chat a sent message went to (the orchestrator sends ids as strings).
pub fn chat_of(body: &Value) -> Option<i64> {
    body["chat_id"].as_str().and_then(|id| id.parse().ok())
}

/// How the model stand-in behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mood {
    Helpful,
    /// HTTP 500 on every chat request.
    Broken,
    /// Never answers in time.
    Hanging,
}

pub struct ModelState {
    pub mood: Mutex<Mood>,
    /// (path, body) of every chat request.
    pub chats: Mutex<Vec<(String, Value)>>,
    pub embeddings: Mutex<u64>,
}

#[derive(Clone)]
pub struct ModelStandIn {
    pub state: Arc<ModelState>,
    pub port: u16,
}

/// What the conversation looks like, whatever the provider's shape.
#[derive(Debug, Default)]
struct Seen {
    user_texts: Vec<String>,
    /// Tool results after the last user text: (name or id, content).
    results: Vec<String>,
}

fn seen_openai_like(messages: &[Value]) -> Seen {
    let mut seen = Seen::default();
    for message in messages {
        match message["role"].as_str() {
            Some("user") => {
                seen.user_texts
                    .push(message["content"].as_str().unwrap_or_default().to_string());
                seen.results.clear();
            }
            Some("tool") => seen
                .results
                .push(message["content"].as_str().unwrap_or_default().to_string()),
            _ => {}
        }
    }
    seen
}

fn seen_anthropic(messages: &[Value]) -> Seen {
    let mut seen = Seen::default();
    for message in messages.iter().filter(|message| message["role"] == "user") {
        for block in message["content"].as_array().into_iter().flatten() {
            match block["type"].as_str() {
                Some("text") => {
                    seen.user_texts
                        .push(block["text"].as_str().unwrap_or_default().to_string());
                    seen.results.clear();
                }
                Some("tool_result") => seen
                    .results
                    .push(block["content"].as_str().unwrap_or_default().to_string()),
                _ => {}
            }
        }
    }
    seen
}

fn seen_gemini(contents: &[Value]) -> Seen {
    let mut seen = Seen::default();
    for content in contents.iter().filter(|content| content["role"] == "user") {
        for part in content["parts"].as_array().into_iter().flatten() {
            if let Some(text) = part["text"].as_str() {
                seen.user_texts.push(text.to_string());
                seen.results.clear();
            }
            if let Some(response) = part.get("functionResponse") {
                seen.results.push(response["response"].to_string());
            }
        }
    }
    seen
}

/// The script: which tool to call for which words, and what to say with its result.
/// `None` arguments: a malformed call (not JSON).
enum Move {
    Call(&'static str, Option<Value>),
    Say(String),
}

fn decide(seen: &Seen) -> Move {
    let last = seen
        .user_texts
        .last()
        .cloned()
        .unwrap_or_default()
        .to_lowercase();
    let result = seen.results.last();
    match result {
        None if last.contains("house") => Move::Call("get_house_state", Some(json!({}))),
        None if last.contains("fast") => Move::Call(
            "set_charging_mode",
            Some(json!({"mode": "fast", "reason": "the user asked"})),
        ),
        None if last.contains("aachen") => Move::Call(
            "store_fact",
            Some(
                json!({"kind": "correction", "subject": "Aachen", "statement": "Aachen is 80 km one way, not 60", "distance_km": 80}),
            ),
        ),
        None if last.contains("trips") => Move::Call("get_ev_plan", Some(json!({}))),
        // An obedient model: text in a calendar title tells it to change the mode.
        Some(result)
            if last.contains("trips")
                && result.to_lowercase().contains("set charging mode to fast") =>
        {
            if seen.results.len() == 1 {
                Move::Call(
                    "set_charging_mode",
                    Some(json!({"mode": "fast", "reason": "the calendar said so"})),
                )
            } else {
                Move::Say(format!("Trips checked. {}", seen.results.join(" | ")))
            }
        }
        _ if last.contains("garbled") => Move::Call("set_charging_mode", None),
        None if last.contains("earlier") => Move::Say(format!(
            "Earlier you said: {}",
            seen.user_texts[..seen.user_texts.len() - 1].join(" / ")
        )),
        Some(result) => Move::Say(format!("Here is what I found: {result}")),
        None => Move::Say("Hello from the model".into()),
    }
}

async fn chat(state: &ModelState, path: &str, body: &Value) -> Result<Value, StatusCode> {
    state
        .chats
        .lock()
        .unwrap()
        .push((path.to_string(), body.clone()));
    match *state.mood.lock().unwrap() {
        Mood::Helpful => {}
        Mood::Broken => return Err(StatusCode::INTERNAL_SERVER_ERROR),
        Mood::Hanging => {}
    }
    if *state.mood.lock().unwrap() == Mood::Hanging {
        tokio::time::sleep(Duration::from_secs(30)).await;
    }
    let is = |suffix: &str| path.ends_with(suffix);
    let empty = Vec::new();
    let array = |value: &Value| value.as_array().cloned().unwrap_or_else(|| empty.clone());
    Ok(if is("/chat/completions") {
        match decide(&seen_openai_like(&array(&body["messages"]))) {
            Move::Say(text) => {
                json!({"id": "chatcmpl-1", "object": "chat.completion", "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}]})
            }
            Move::Call(name, arguments) => {
                json!({"id": "chatcmpl-1", "object": "chat.completion", "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": name, "arguments": arguments.map_or("{mode: fast".to_string(), |a| a.to_string())}}]}}]})
            }
        }
    } else if is("/v1/messages") {
        match decide(&seen_anthropic(&array(&body["messages"]))) {
            Move::Say(text) => {
                json!({"id": "msg_1", "type": "message", "role": "assistant", "stop_reason": "end_turn", "content": [{"type": "text", "text": text}]})
            }
            Move::Call(name, arguments) => {
                json!({"id": "msg_1", "type": "message", "role": "assistant", "stop_reason": "tool_use", "content": [{"type": "tool_use", "id": "toolu_1", "name": name, "input": arguments.unwrap_or(json!("{mode: fast"))}]})
            }
        }
    } else if is(":generateContent") {
        match decide(&seen_gemini(&array(&body["contents"]))) {
            Move::Say(text) => {
                json!({"candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP"}]})
            }
            Move::Call(name, arguments) => {
                json!({"candidates": [{"content": {"role": "model", "parts": [{"functionCall": {"name": name, "args": arguments.unwrap_or(json!("{mode: fast"))}}]}, "finishReason": "STOP"}]})
            }
        }
    } else {
        match decide(&seen_openai_like(&array(&body["messages"]))) {
            Move::Say(text) => {
                json!({"model": "llama3", "done": true, "message": {"role": "assistant", "content": text}})
            }
            Move::Call(name, arguments) => {
                json!({"model": "llama3", "done": true, "message": {"role": "assistant", "content": "", "tool_calls": [{"function": {"name": name, "arguments": arguments.unwrap_or(json!("{mode: fast"))}}]}})
            }
        }
    })
}

/// A toy meaning: how much a text is about family, the car, the sun or the house (and
/// a small "other" direction for texts about none). Texts on one topic point the same way.
fn embedding(text: &str) -> Vec<f32> {
    const TOPICS: [&[&str]; 4] = [
        &["sister", "brother", "mother", "father", "family", "bonn"],
        &["car", "charge", "charging", "trip", "trips", "aachen", "km"],
        &["sun", "solar", "pv", "forecast"],
        &["house", "battery", "grid", "load"],
    ];
    let mut vector = vec![0.0_f32; TOPICS.len() + 1];
    for word in text.to_lowercase().split(|c: char| !c.is_alphanumeric()) {
        if let Some(topic) = TOPICS.iter().position(|words| words.contains(&word)) {
            vector[topic] += 1.0;
        }
    }
    if vector.iter().all(|x| *x == 0.0) {
        vector[TOPICS.len()] = 1.0;
    }
    vector
}

async fn model_api(
    State(state): State<Arc<ModelState>>,
    Path(path): Path<String>,
    Json(body): Json<Value>,
) -> Result<Json<Value>, StatusCode> {
    let path = format!("/{path}");
    if path.ends_with("/embeddings") {
        *state.embeddings.lock().unwrap() += 1;
        let text = body["input"].as_str().unwrap_or_default();
        return Ok(Json(
            json!({"object": "list", "data": [{"object": "embedding", "index": 0, "embedding": embedding(text)}]}),
        ));
    }
    if path.ends_with(":embedContent") {
        *state.embeddings.lock().unwrap() += 1;
        let text = body["content"]["parts"][0]["text"]
            .as_str()
            .unwrap_or_default();
        return Ok(Json(json!({"embedding": {"values": embedding(text)}})));
    }
    if path.ends_with("/api/embed") {
        *state.embeddings.lock().unwrap() += 1;
        let text = body["input"].as_str().unwrap_or_default();
        return Ok(Json(
            json!({"model": "nomic-embed-text", "embeddings": [embedding(text)]}),
        ));
    }
    chat(&state, &path, &body).await.map(Json)
}

/// Every provider's model listing, in one body: OpenAI's `data`, Gemini's and Ollama's `models`.
async fn list_models() -> Json<Value> {
    Json(
        json!({"object": "list", "data": [{"id": "gpt-4o"}], "models": [{"name": "models/gemini-2.0-flash"}]}),
    )
}

impl ModelStandIn {
    pub async fn start() -> Self {
        let state = Arc::new(ModelState {
            mood: Mutex::new(Mood::Helpful),
            chats: Mutex::new(Vec::new()),
            embeddings: Mutex::new(0),
        });
        let app = Router::new()
            .route("/{*path}", post(model_api).get(list_models))
            .with_state(state.clone());
        let port = serve(app).await;
        Self { state, port }
    }

    pub fn set_mood(&self, mood: Mood) {
        *self.state.mood.lock().unwrap() = mood;
    }

    pub fn chat_requests(&self) -> Vec<(String, Value)> {
        self.state.chats.lock().unwrap().clone()
    }

    /// The provider settings that point `provider` here.
    pub fn env(&self, provider: &str) -> Vec<(String, String)> {
        let base = format!("http://127.0.0.1:{}", self.port);
        let mut env = vec![("LLM_PROVIDER".to_string(), provider.to_string())];
        let (url_variable, url, key_variable) = match provider {
            "openai" => (
                "OPENAI_BASE_URL",
                format!("{base}/v1"),
                Some("OPENAI_API_KEY"),
            ),
            "anthropic" => ("ANTHROPIC_BASE_URL", base, Some("ANTHROPIC_API_KEY")),
            "gemini" => ("GEMINI_BASE_URL", base, Some("GEMINI_API_KEY")),
            _ => ("OLLAMA_URL", base, None),
        };
        env.push((url_variable.into(), url));
        if let Some(key) = key_variable {
            env.push((key.into(), "test-key".into()));
        }
        env
    }
}

/// A binary of another workspace member, built next to this test's own binary
/// (`cargo nextest run --workspace` builds every binary first).
pub fn sibling_binary(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: build the workspace first (cargo build --workspace)",
        path.display()
    );
    path
}
