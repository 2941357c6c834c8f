//! No secret reaches a log line or `diagnose` (see `homelab::testkit::assert_no_secret_in_logs`),
//! the dashboard's password included.

#[tokio::test]
async fn no_secret_at_trace_level_in_either_format_or_in_diagnose() {
    let port = homelab::testkit::free_port().to_string();
    homelab::testkit::assert_no_secret_in_logs(
        env!("CARGO_BIN_EXE_dashboard"),
        &[
            ("DASHBOARD_BIND", "127.0.0.1"),
            ("DASHBOARD_PORT", port.as_str()),
            ("DASHBOARD_PASSWORD", "dash-secret-5e1f"),
        ],
        &[("DASHBOARD_PASSWORD", "dash-secret-5e1f")],
        "dashboard_listening",
    )
    .await;
}
