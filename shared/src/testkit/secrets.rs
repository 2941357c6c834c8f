//! The same secret check for every service: the binary at `LOG_LEVEL=trace`, in both
//! log formats, against the real Home Assistant core (REST, and the WebSocket whose
//! auth frame carries the token) and the real mosquitto with a password; then with
//! passwords in the URLs; then `diagnose --json`. No secret may appear anywhere.

use super::{Broker, HomeAssistantCore, ServiceProcess};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

const MQTT_PASSWORD: &str = "mqtt-pw-5f2b9c";
const INFLUX_TOKEN: &str = "influx-token-3c4d";
const HA_URL_PASSWORD: &str = "url-pw-7e3a";
const INFLUX_URL_PASSWORD: &str = "influx-url-pw-91ab";

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs `binary` as described above with `settings` (the service's own, which may
/// carry more secrets: name them in `more_secrets`) and fails on any secret in its
/// output. `proof` is a log event that shows the run got far enough to use the
/// secrets (e.g. `ha_websocket_subscribed`).
pub async fn assert_no_secret_in_logs(
    binary: &str,
    settings: &[(&str, &str)],
    more_secrets: &[(&str, &str)],
    proof: &str,
) {
    let broker = Broker::start();
    let core = HomeAssistantCore::start().await;
    let token = core.token().to_string();
    // A URL with a password in it, as people write them for reverse proxies.
    let url_with_userinfo =
        core.url()
            .replacen("://", &format!("://ha-user:{HA_URL_PASSWORD}@"), 1);
    let data = tempfile::tempdir().unwrap();
    let command = |ha_url: &str, format: &str| {
        let mut command = Command::new(binary);
        command
            .current_dir(data.path())
            .env_clear()
            .env("MQTT_HOST", "127.0.0.1")
            .env("MQTT_PORT", broker.port().to_string())
            .env("MQTT_USERNAME", "someone")
            .env("MQTT_PASSWORD", MQTT_PASSWORD)
            .env("DATA_DIR", data.path())
            .env("HA_URL", ha_url)
            .env("HA_TOKEN", &token)
            .env(
                "INFLUXDB_URL",
                format!("http://influx-user:{INFLUX_URL_PASSWORD}@127.0.0.1:9"),
            )
            .env("INFLUXDB_TOKEN", INFLUX_TOKEN)
            .env("LOG_LEVEL", "trace")
            .env("LOG_FORMAT", format)
            .envs(settings.iter().copied());
        command
    };
    let mut shown = String::new();
    for format in ["pretty", "json"] {
        let child = ServiceProcess::spawn(
            command(&core.url(), format)
                .arg("run")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped()),
        );
        // Long enough for the WebSocket to authenticate and a few cycles to run.
        tokio::time::sleep(Duration::from_secs(6)).await;
        let logs = text(&child.terminate());
        assert!(
            logs.contains(proof),
            "the run never got to {proof} ({format}):\n{}",
            &logs[..logs.len().min(3000)]
        );
        shown.push_str(&logs);

        let child = ServiceProcess::spawn(
            command(&url_with_userinfo, format)
                .arg("run")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped()),
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
        shown.push_str(&text(&child.terminate()));

        let diagnose = command(&url_with_userinfo, format)
            .args(["diagnose", "--json"])
            .output()
            .unwrap();
        shown.push_str(&text(&diagnose));
    }
    let secrets = [
        ("HA_TOKEN", token.as_str()),
        ("MQTT_PASSWORD", MQTT_PASSWORD),
        ("INFLUXDB_TOKEN", INFLUX_TOKEN),
        ("HA_URL's password", HA_URL_PASSWORD),
        ("INFLUXDB_URL's password", INFLUX_URL_PASSWORD),
    ];
    for (name, value) in secrets.iter().chain(more_secrets) {
        if let Some(at) = shown.find(value) {
            let start = shown[..at].rfind('\n').map_or(0, |i| i + 1);
            let end = shown[at..].find('\n').map_or(shown.len(), |i| at + i);
            panic!(
                "{} leaked {name} in: {}",
                Path::new(binary).display(),
                &shown[start..end.min(start + 400)]
            );
        }
    }
}
