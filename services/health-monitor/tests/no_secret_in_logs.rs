//! No secret reaches a log line or `diagnose` (see `homelab::testkit::assert_no_secret_in_logs`),
//! also the Telegram token, which is part of every Bot API address, when the Bot API
//! cannot be reached.

#[tokio::test]
async fn no_secret_at_trace_level_in_either_format_or_in_diagnose() {
    homelab::testkit::assert_no_secret_in_logs(
        env!("CARGO_BIN_EXE_health-monitor"),
        &[
            ("TELEGRAM_BOT_TOKEN", "424242:telegram-secret-9d8c"),
            ("TELEGRAM_CHAT_IDS", "111"),
            ("TELEGRAM_API_URL", "http://127.0.0.1:9"),
            ("DOCKER_HOST", "unix:///nonexistent/docker.sock"),
            ("HEALTH_MONITOR_ENTITIES", "input_number.pv_power"),
            ("HEALTH_MONITOR_ENTITY_INTERVAL_SECONDS", "2"),
        ],
        &[("TELEGRAM_BOT_TOKEN", "telegram-secret-9d8c")],
        "telegram_unreachable_alerts_kept",
    )
    .await;
}
