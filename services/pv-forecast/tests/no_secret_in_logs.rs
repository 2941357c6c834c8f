//! No secret reaches a log line or `diagnose` (see `homelab::testkit::assert_no_secret_in_logs`),
//! also when Open-Meteo's address carries a password and cannot be reached.

#[tokio::test]
async fn no_secret_at_trace_level_in_either_format_or_in_diagnose() {
    homelab::testkit::assert_no_secret_in_logs(
        env!("CARGO_BIN_EXE_pv-forecast"),
        &[
            ("HOME_LATITUDE", "52.0"),
            ("HOME_LONGITUDE", "7.6"),
            ("PV_FORECAST_ARRAYS", "8/30/180"),
            (
                "PV_FORECAST_OPEN_METEO_URL",
                "http://om-user:om-pw-4411@127.0.0.1:9",
            ),
            ("PV_FORECAST_POWER_ENTITY", "input_number.pv_power"),
        ],
        &[("PV_FORECAST_OPEN_METEO_URL's password", "om-pw-4411")],
        "weather_fetch_failed",
    )
    .await;
}
