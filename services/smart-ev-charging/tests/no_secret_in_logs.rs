//! No secret reaches a log line or `diagnose` (see `homelab::testkit::assert_no_secret_in_logs`).

#[tokio::test]
async fn no_secret_at_trace_level_in_either_format_or_in_diagnose() {
    homelab::testkit::assert_no_secret_in_logs(
        env!("CARGO_BIN_EXE_smart-ev-charging"),
        &[
            ("SMART_EV_GRID_POWER_ENTITY", "input_number.grid_power"),
            ("SMART_EV_EV_POWER_ENTITY", "input_number.wallbox_power"),
            (
                "SMART_EV_WALLBOX_CURRENT_ENTITY",
                "input_number.ev_charge_current",
            ),
            ("SMART_EV_CYCLE_SECONDS", "1"),
        ],
        &[],
        "ha_websocket_subscribed",
    )
    .await;
}
