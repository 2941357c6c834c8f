//! No secret reaches a log line or `diagnose` (see `homelab::testkit::assert_no_secret_in_logs`):
//! the simulator holds HA_TOKEN to check its callers, and the broker password.

#[tokio::test]
async fn no_secret_at_trace_level_in_either_format_or_in_diagnose() {
    let port = homelab::testkit::free_port().to_string();
    homelab::testkit::assert_no_secret_in_logs(
        env!("CARGO_BIN_EXE_sim-home"),
        &[("SIM_PORT", port.as_str()), ("SIM_BIND", "127.0.0.1")],
        &[],
        "mqtt_connected",
    )
    .await;
}
