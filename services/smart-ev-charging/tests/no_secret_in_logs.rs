//! No secret reaches a log line or `diagnose`, at LOG_LEVEL=trace, in both formats,
//! while the service talks to the real Home Assistant core (REST and the WebSocket
//! whose auth frame carries the token) and the real mosquitto with a password.

use homelab::testkit::{Broker, HomeAssistantCore, ServiceProcess};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn service(
    broker: &Broker,
    ha_url: &str,
    token: &str,
    format: &str,
    data: &std::path::Path,
) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_smart-ev-charging"));
    command
        .current_dir(data)
        .env_clear()
        .env("MQTT_HOST", "127.0.0.1")
        .env("MQTT_PORT", broker.port().to_string())
        .env("MQTT_USERNAME", "someone")
        .env("MQTT_PASSWORD", "mqtt-pw-5f2b9c")
        .env("DATA_DIR", data)
        .env("HA_URL", ha_url)
        .env("HA_TOKEN", token)
        .env(
            "INFLUXDB_URL",
            "http://influx-user:influx-url-pw-91ab@127.0.0.1:9",
        )
        .env("INFLUXDB_TOKEN", "influx-token-3c4d")
        .env("LOG_LEVEL", "trace")
        .env("LOG_FORMAT", format)
        .env("SMART_EV_GRID_POWER_ENTITY", "input_number.grid_power")
        .env("SMART_EV_EV_POWER_ENTITY", "input_number.wallbox_power")
        .env(
            "SMART_EV_WALLBOX_CURRENT_ENTITY",
            "input_number.ev_charge_current",
        )
        .env("SMART_EV_CYCLE_SECONDS", "1");
    command
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test]
async fn no_secret_at_trace_level_in_either_format_or_in_diagnose() {
    // The broker accepts anyone: the password is sent in CONNECT all the same.
    let broker = Broker::start();
    let core = HomeAssistantCore::start().await;
    let token = core.token().to_string();
    // A URL with a password in it, as people write them for reverse proxies.
    let url_with_userinfo = core.url().replacen("://", "://ha-user:url-pw-7e3a@", 1);
    let secrets = [
        ("HA_TOKEN", token.as_str()),
        ("MQTT_PASSWORD", "mqtt-pw-5f2b9c"),
        ("INFLUXDB_TOKEN", "influx-token-3c4d"),
        ("HA_URL's password", "url-pw-7e3a"),
        ("INFLUXDB_URL's password", "influx-url-pw-91ab"),
    ];
    let data = tempfile::tempdir().unwrap();
    let mut shown = String::new();
    for format in ["pretty", "json"] {
        let child = ServiceProcess::spawn(
            service(&broker, &core.url(), &token, format, data.path())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped()),
        );
        // Long enough for the WebSocket to authenticate and a few cycles to run.
        let until = Instant::now() + Duration::from_secs(6);
        while Instant::now() < until {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let output = child.terminate();
        let logs = text(&output);
        assert!(
            logs.contains("ha_websocket_subscribed"),
            "the run never authenticated its WebSocket ({format}):\n{}",
            &logs[..logs.len().min(3000)]
        );
        shown.push_str(&logs);

        let child = ServiceProcess::spawn(
            service(&broker, &url_with_userinfo, &token, format, data.path())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped()),
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
        shown.push_str(&text(&child.terminate()));

        let diagnose = service(&broker, &url_with_userinfo, &token, format, data.path())
            .args(["diagnose", "--json"])
            .output()
            .unwrap();
        shown.push_str(&text(&diagnose));
    }
    for (name, value) in secrets {
        if let Some(at) = shown.find(value) {
            let start = shown[..at].rfind('\n').map_or(0, |i| i + 1);
            let end = shown[at..].find('\n').map_or(shown.len(), |i| at + i);
            panic!("{name} leaked in: {}", &shown[start..end.min(start + 400)]);
        }
    }
}
