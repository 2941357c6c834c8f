//! `orchestrator diagnose`: the bot's token and the provider are proven without a
//! conversation (Telegram's getMe, the provider's model list), against the stand-ins
//! of tests/common; a wrong token is named, and bad settings stop it with the variable.

mod common;

use common::{ModelStandIn, TelegramStandIn, BOT_TOKEN};
use std::process::Command;

fn diagnose(
    telegram: &TelegramStandIn,
    model: &ModelStandIn,
    token: &str,
    data: &std::path::Path,
) -> (i32, serde_json::Value) {
    let output = Command::new(env!("CARGO_BIN_EXE_orchestrator"))
        .args(["diagnose", "--json"])
        .current_dir(data)
        .env_clear()
        .env("MQTT_HOST", "127.0.0.1")
        .env("MQTT_PORT", "9")
        .env("DATA_DIR", data)
        .env("TELEGRAM_BOT_TOKEN", token)
        .env("TELEGRAM_API_URL", telegram.url())
        .env("TELEGRAM_ALLOWED_CHAT_IDS", "42")
        .envs(model.env("openai"))
        .output()
        .unwrap();
    let report = serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
        panic!(
            "not JSON ({error}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    });
    (output.status.code().unwrap(), report)
}

fn step(report: &serde_json::Value, name: &str) -> serde_json::Value {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|step| step["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {report}"))
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diagnose_proves_the_bot_and_the_model_and_names_a_wrong_token() {
    let telegram = TelegramStandIn::start().await;
    let model = ModelStandIn::start().await;
    let data = tempfile::tempdir().unwrap();
    let (data_path, telegram_, model_) =
        (data.path().to_path_buf(), telegram.clone(), model.clone());
    let (_, report) =
        tokio::task::spawn_blocking(move || diagnose(&telegram_, &model_, BOT_TOKEN, &data_path))
            .await
            .unwrap();
    let bot = step(&report, "telegram");
    assert_eq!(bot["status"], "pass", "{bot}");
    assert!(
        bot["detail"]
            .as_str()
            .unwrap()
            .contains("@house_bot, 1 allowed chat"),
        "{bot}"
    );
    let llm = step(&report, "llm");
    assert_eq!(llm["status"], "pass", "{llm}");
    assert!(
        llm["detail"].as_str().unwrap().contains("using gpt-4o"),
        "{llm}"
    );
    assert_eq!(step(&report, "memory")["status"], "pass");

    let data_path = data.path().to_path_buf();
    let (code, report) =
        tokio::task::spawn_blocking(move || diagnose(&telegram, &model, "4242:wrong", &data_path))
            .await
            .unwrap();
    assert_ne!(code, 0);
    let bot = step(&report, "telegram");
    assert_eq!(bot["status"], "fail");
    assert!(
        bot["detail"]
            .as_str()
            .unwrap()
            .contains("TELEGRAM_BOT_TOKEN is wrong"),
        "{bot}"
    );
    assert!(
        !report.to_string().contains("4242:wrong"),
        "the token itself is not shown"
    );
}

#[test]
fn bad_settings_stop_the_start_naming_the_variable() {
    let data = tempfile::tempdir().unwrap();
    for (variable, value, expected) in [
        (
            "LLM_PROVIDER",
            "mistral",
            "LLM_PROVIDER must be gemini, openai, anthropic or ollama, got 'mistral'",
        ),
        (
            "TELEGRAM_ALLOWED_CHAT_IDS",
            "42,family",
            "'family' is not a chat id",
        ),
        (
            "MEMORY_CONSOLIDATION_HOUR",
            "25",
            "MEMORY_CONSOLIDATION_HOUR must be 0-23",
        ),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_orchestrator"))
            .arg("run")
            .current_dir(data.path())
            .env_clear()
            .env("MQTT_PORT", "9")
            .env("DATA_DIR", data.path())
            .env("TELEGRAM_BOT_TOKEN", "1:x")
            .env("TELEGRAM_ALLOWED_CHAT_IDS", "42")
            .env("GEMINI_API_KEY", "k")
            .env(variable, value)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{variable}={value} started");
        assert!(stderr.contains(expected), "{variable}: {stderr}");
    }
}
