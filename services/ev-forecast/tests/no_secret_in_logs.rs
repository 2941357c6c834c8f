//! No secret reaches a log line or `diagnose` (see `homelab::testkit::assert_no_secret_in_logs`),
//! also when a calendar's address carries a password and a key and cannot be reached.

#[tokio::test]
async fn no_secret_at_trace_level_in_either_format_or_in_diagnose() {
    homelab::testkit::assert_no_secret_in_logs(
        env!("CARGO_BIN_EXE_ev-forecast"),
        &[
            ("HOME_LATITUDE", "52.0"),
            ("HOME_LONGITUDE", "7.6"),
            (
                "EV_FORECAST_ICAL_URLS",
                "http://cal-user:ical-pw-77aa@127.0.0.1:9/private.ics?token=ical-key-88bb",
            ),
            ("EV_FORECAST_SOC_ENTITY", "input_number.battery_soc"),
        ],
        &[
            ("the calendar URL's password", "ical-pw-77aa"),
            ("the calendar URL's key", "ical-key-88bb"),
        ],
        "calendar_fetch_failed_keeping_last",
    )
    .await;
}
