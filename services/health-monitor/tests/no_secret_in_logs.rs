//! No secret reaches a log line or `diagnose` (see `homelab::testkit::assert_no_secret_in_logs`).
//! The template's check, so a service scaffolded from it starts with one.

#[tokio::test]
async fn no_secret_at_trace_level_in_either_format_or_in_diagnose() {
    homelab::testkit::assert_no_secret_in_logs(
        env!("CARGO_BIN_EXE_health-monitor"),
        &[("HEALTH_MONITOR_INTERVAL_SECONDS", "1")],
        &[],
        "mqtt_connected",
    )
    .await;
}
