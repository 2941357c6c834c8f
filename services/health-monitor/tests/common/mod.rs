//! health-monitor as a process against a real mosquitto, and a loopback server that
//! speaks the Telegram Bot API's `sendMessage` and `getMe` (the real API cannot be
//! reached from the test machine; this one answers with the documented shapes).

#![allow(dead_code)] // each test file uses its own part

use axum::extract::{Path, State};
use axum::routing::post;
use axum::{Json, Router};
use homelab::testkit::{Broker, ServiceProcess};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub const TOKEN: &str = "123456:test-token-7f3e";
pub const CHATS: [&str; 2] = ["111", "222"];

#[derive(Clone, Debug)]
pub struct Sent {
    pub chat: String,
    pub text: String,
    pub at: Instant,
}

#[derive(Default)]
pub struct Bot {
    pub sent: Mutex<Vec<Sent>>,
    /// Chats whose sends fail with 502, as a Bot API behind a broken proxy would.
    pub failing: Mutex<BTreeSet<String>>,
}

pub struct FakeTelegram {
    pub url: String,
    pub bot: Arc<Bot>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeTelegram {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn method(
    State(bot): State<Arc<Bot>>,
    Path((bot_token, method)): Path<(String, String)>,
    Json(body): Json<Value>,
) -> (axum::http::StatusCode, Json<Value>) {
    use axum::http::StatusCode;
    if bot_token != format!("bot{TOKEN}") {
        let answer = json!({"ok": false, "error_code": 401, "description": "Unauthorized"});
        return (StatusCode::UNAUTHORIZED, Json(answer));
    }
    match method.as_str() {
        "getMe" => (
            StatusCode::OK,
            Json(
                json!({"ok": true, "result": {"id": 123456, "is_bot": true, "username": "house_bot"}}),
            ),
        ),
        "sendMessage" => {
            let chat = match &body["chat_id"] {
                Value::String(chat) => chat.clone(),
                other => other.to_string(),
            };
            if bot.failing.lock().unwrap().contains(&chat) {
                let answer = json!({"ok": false, "error_code": 502, "description": "Bad Gateway"});
                return (StatusCode::BAD_GATEWAY, Json(answer));
            }
            let text = body["text"].as_str().unwrap_or_default().to_string();
            bot.sent.lock().unwrap().push(Sent {
                chat,
                text,
                at: Instant::now(),
            });
            (
                StatusCode::OK,
                Json(
                    json!({"ok": true, "result": {"message_id": 1, "date": 0, "chat": {"id": 1}}}),
                ),
            )
        }
        _ => (
            StatusCode::NOT_FOUND,
            Json(json!({"ok": false, "error_code": 404, "description": "Not Found"})),
        ),
    }
}

impl FakeTelegram {
    pub async fn start() -> Self {
        let bot = Arc::new(Bot::default());
        let app = Router::new()
            .route("/{bot}/{method}", post(method))
            .with_state(bot.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Self { url, bot, task }
    }

    pub fn messages_about(&self, needle: &str) -> Vec<Sent> {
        self.bot
            .sent
            .lock()
            .unwrap()
            .iter()
            .filter(|sent| sent.text.contains(needle))
            .cloned()
            .collect()
    }

    /// Waits until `count` messages contain `needle`; all of them.
    pub async fn wait_for(&self, needle: &str, count: usize, timeout: Duration) -> Vec<Sent> {
        let deadline = Instant::now() + timeout;
        loop {
            let found = self.messages_about(needle);
            if found.len() >= count || Instant::now() > deadline {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// A zone in which it is now between 00:00 and 11:59: UTC in the morning, UTC−12 in
/// the afternoon and evening. (With UTC alone, a summary due at 23:00 fired at start
/// in every test run between 23:00 and 24:00.)
pub fn test_zone() -> &'static str {
    if utc_hour() < 12 {
        "UTC"
    } else {
        "Etc/GMT+12"
    }
}

fn utc_hour() -> u32 {
    chrono::Utc::now().format("%H").to_string().parse().unwrap()
}

/// The hour on the clock of [`test_zone`].
pub fn local_hour() -> u32 {
    utc_hour() % 12
}

pub fn monitor(broker: &Broker, telegram_url: &str, data: &std::path::Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_health-monitor"));
    command
        .current_dir(data)
        .env_clear()
        .env("MQTT_HOST", "127.0.0.1")
        .env("MQTT_PORT", broker.port().to_string())
        .env("DATA_DIR", data)
        .env("HEARTBEAT_INTERVAL_SECONDS", "1")
        .env("HA_URL", "http://127.0.0.1:9")
        .env("TIMEZONE", test_zone())
        .env("LOG_FORMAT", "json")
        .env("TELEGRAM_BOT_TOKEN", TOKEN)
        .env("TELEGRAM_CHAT_IDS", CHATS.join(","))
        .env("TELEGRAM_API_URL", telegram_url)
        // The layers these tests do not exercise are off: no Docker, no HA here.
        .env("HEALTH_MONITOR_CONTAINER_INTERVAL_SECONDS", "0")
        .env("HEALTH_MONITOR_INFRA_INTERVAL_SECONDS", "0")
        .env("HEALTH_MONITOR_DIAGNOSE_INTERVAL_SECONDS", "0")
        // Never due (the local hour is at most 11, see test_zone), so no summary mixes
        // in unless a test asks for one.
        .env("DAILY_SUMMARY_HOUR", "23")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

pub fn spawn(command: &mut Command) -> ServiceProcess {
    ServiceProcess::spawn(command)
}

/// The service's own start-up message has reached every chat: subscribed and sending.
/// Until the start message reached every chat: a test that then makes a chat fail
/// must not catch the start message half-sent (it would wait in the outbox first).
pub async fn until_started(telegram: &FakeTelegram) {
    let started = telegram
        .wait_for(
            "health-monitor 0.1.0 started",
            CHATS.len(),
            Duration::from_secs(20),
        )
        .await;
    assert_eq!(
        started.len(),
        CHATS.len(),
        "health-monitor never announced its start to every chat"
    );
}

pub fn heartbeat(service: &str, status: &str, reason: Option<&str>) -> String {
    let mut payload = json!({"status": status, "service": service, "version": "1.0.0"});
    if status != "offline" {
        payload["interval_seconds"] = json!(1);
    }
    if let Some(reason) = reason {
        payload["reason"] = json!(reason);
    }
    payload.to_string()
}

pub fn events(data: &std::path::Path) -> Vec<Value> {
    let mut all = Vec::new();
    let root = data.join("events");
    let Ok(days) = std::fs::read_dir(&root) else {
        return all;
    };
    for day in days.flatten() {
        let file = day.path().join("main/events.jsonl");
        if let Ok(text) = std::fs::read_to_string(file) {
            all.extend(text.lines().map(|line| {
                serde_json::from_str::<Value>(line)
                    .unwrap_or_else(|error| panic!("a torn event line {line:?}: {error}"))
            }));
        }
    }
    all
}

/// Publishes a heartbeat of `service` as the service itself would.
pub async fn beat(
    probe: &homelab::testkit::Probe,
    service: &str,
    status: &str,
    reason: Option<&str>,
    retain: bool,
) {
    probe
        .publish(
            &format!("homelab/{service}/heartbeat"),
            heartbeat(service, status, reason),
            homelab::mqtt::QoS::AtLeastOnce,
            retain,
        )
        .await;
}
