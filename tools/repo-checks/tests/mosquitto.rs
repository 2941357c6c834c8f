//! infrastructure/mosquitto (entrypoint + config) run with the real mosquitto: the same
//! script the container runs, with the paths moved into a temp dir and a loopback port.

use homelab::testkit::{free_port, mosquitto_binary};
use repo_checks::repo_root;
use rumqttc::{AsyncClient, ConnectionError, Event, MqttOptions, Packet};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

struct Started {
    child: Child,
}

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn entrypoint(dir: &Path, credentials: &[(&str, &str)]) -> Command {
    let sbin = mosquitto_binary().parent().unwrap().display().to_string();
    let mut command = Command::new("sh");
    command
        .arg(repo_root().join("infrastructure/mosquitto/entrypoint.sh"))
        .env_clear()
        .env("PATH", format!("{sbin}:/usr/bin:/bin:/usr/sbin"))
        .env("MOSQUITTO_DIR", dir);
    for (key, value) in credentials {
        command.env(key, value);
    }
    command
}

/// The repository's mosquitto.conf with its paths and port moved for the test.
fn write_config(dir: &Path, port: u16) {
    let conf = std::fs::read_to_string(repo_root().join("infrastructure/mosquitto/mosquitto.conf"))
        .unwrap();
    assert!(conf.contains("listener 1883\n"));
    let mut conf = conf
        .replace("listener 1883\n", &format!("listener {port} 127.0.0.1\n"))
        .replace("/mosquitto/", &format!("{}/", dir.display()));
    if Command::new("id").arg("-u").output().unwrap().stdout == b"0\n" {
        conf.push_str("user root\n"); // else mosquitto drops to `mosquitto`, who cannot write the temp dir
    }
    std::fs::create_dir_all(dir.join("config")).unwrap();
    std::fs::write(dir.join("config/mosquitto.conf"), conf).unwrap();
}

fn start(dir: &Path, port: u16, credentials: &[(&str, &str)]) -> Started {
    let child = entrypoint(dir, credentials)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "broker did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Started { child }
}

/// `Ok` when the broker accepts the CONNECT, else the refusal.
async fn connect(port: u16, credentials: Option<(&str, &str)>) -> Result<(), String> {
    let mut options = MqttOptions::new(format!("t-{}", free_port()), "127.0.0.1", port);
    if let Some((user, password)) = credentials {
        options.set_credentials(user, password);
    }
    let (_client, mut event_loop) = AsyncClient::new(options, 10);
    match tokio::time::timeout(Duration::from_secs(5), event_loop.poll()).await {
        Ok(Ok(Event::Incoming(Packet::ConnAck(_)))) => Ok(()),
        Ok(Err(ConnectionError::ConnectionRefused(code))) => Err(format!("{code:?}")),
        other => Err(format!("unexpected: {other:?}")),
    }
}

#[tokio::test]
async fn the_broker_refuses_anonymous_clients_and_accepts_the_env_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    write_config(dir.path(), port);
    let credentials = [
        ("MQTT_USERNAME", "homelab"),
        ("MQTT_PASSWORD", "first-secret"),
    ];

    let broker = start(dir.path(), port, &credentials);
    assert!(
        connect(port, None).await.is_err(),
        "anonymous access must be refused"
    );
    assert!(connect(port, Some(("homelab", "wrong"))).await.is_err());
    connect(port, Some(("homelab", "first-secret")))
        .await
        .unwrap();
    drop(broker);

    let passwd = dir.path().join("data/passwd");
    let text = std::fs::read_to_string(&passwd).unwrap();
    assert!(
        text.starts_with("homelab:") && !text.contains("first-secret"),
        "hashed, not plain"
    );
    assert_eq!(
        std::fs::metadata(&passwd).unwrap().permissions().mode() & 0o777,
        0o600
    );

    // .env is the truth at every start: a changed password reaches the broker and the
    // services together, and the old one stops working.
    let _broker = start(
        dir.path(),
        port,
        &[("MQTT_USERNAME", "homelab"), ("MQTT_PASSWORD", "changed")],
    );
    connect(port, Some(("homelab", "changed"))).await.unwrap();
    assert!(connect(port, Some(("homelab", "first-secret")))
        .await
        .is_err());
}

#[test]
fn without_credentials_the_broker_stops_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    write_config(dir.path(), free_port());
    let output: Output = entrypoint(dir.path(), &[]).output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("MQTT_USERNAME and MQTT_PASSWORD must be set"),
        "{stderr}"
    );
    assert!(!dir.path().join("data/passwd").exists());

    // Also when an earlier start left a password file: never a broker .env can't open.
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    std::fs::write(dir.path().join("data/passwd"), "homelab:$7$old\n").unwrap();
    let output: Output = entrypoint(dir.path(), &[("MQTT_USERNAME", "homelab")])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
}
