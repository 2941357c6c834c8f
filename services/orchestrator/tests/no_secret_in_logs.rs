//! No secret reaches a log line or `diagnose` (see `homelab::testkit::assert_no_secret_in_logs`):
//! not the bot token (part of every Telegram URL) nor the provider's API key, also when
//! both are used against addresses that do not answer.

#[tokio::test]
async fn no_secret_at_trace_level_in_either_format_or_in_diagnose() {
    homelab::testkit::assert_no_secret_in_logs(
        env!("CARGO_BIN_EXE_orchestrator"),
        &[
            ("TELEGRAM_BOT_TOKEN", "123456:bot-token-9f8e"),
            ("TELEGRAM_API_URL", "http://127.0.0.1:9"),
            ("TELEGRAM_ALLOWED_CHAT_IDS", "42"),
            ("LLM_PROVIDER", "openai"),
            ("OPENAI_API_KEY", "sk-llm-key-4d3c"),
            ("OPENAI_BASE_URL", "http://127.0.0.1:9/v1"),
        ],
        &[
            ("the bot token", "bot-token-9f8e"),
            ("the provider's key", "sk-llm-key-4d3c"),
        ],
        "telegram_poll_failed",
    )
    .await;
}
