//! infrastructure/mosquitto (entrypoint + config) run with the real mosquitto: the same
//! script the container runs, with the paths moved into a temp dir and a loopback port.

use homelab::testkit::{free_port, mosquitto_binary};
use repo_checks::repo_root;
use rumqttc::{AsyncClient, ConnectionError, Event, MqttOptions, Packet, QoS};
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

/// The shipped entrypoint and config on a free port, with user `homelab`/`secret`.
fn shipped_broker() -> (tempfile::TempDir, u16, Started) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    write_config(dir.path(), port);
    let broker = start(
        dir.path(),
        port,
        &[("MQTT_USERNAME", "homelab"), ("MQTT_PASSWORD", "secret")],
    );
    (dir, port, broker)
}

/// A client with room to send and receive large packets; its publishes go to the channel,
/// and the channel closes when the broker drops the connection.
async fn big_client(
    port: u16,
    name: &str,
    subscribe: Option<&str>,
) -> (AsyncClient, tokio::sync::mpsc::UnboundedReceiver<usize>) {
    let mut options = MqttOptions::new(name, "127.0.0.1", port);
    options.set_credentials("homelab", "secret");
    options.set_max_packet_size(16 * 1024 * 1024, 16 * 1024 * 1024);
    let (client, mut event_loop) = AsyncClient::new(options, 10);
    if let Some(filter) = subscribe {
        client.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
    }
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    let (ready_tx, ready) = tokio::sync::oneshot::channel();
    let mut ready_tx = Some(ready_tx);
    let wants_suback = subscribe.is_some();
    tokio::spawn(async move {
        loop {
            match event_loop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) if !wants_suback => {
                    ready_tx.take().map(|tx| tx.send(()));
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    ready_tx.take().map(|tx| tx.send(()));
                }
                Ok(Event::Incoming(Packet::Publish(publish))) => {
                    let _ = sender.send(publish.payload.len());
                }
                Ok(_) => {}
                Err(_) => return, // dropping `sender` closes the channel
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(5), ready)
        .await
        .expect("client not ready")
        .unwrap();
    (client, receiver)
}

#[tokio::test]
async fn the_broker_refuses_a_message_larger_than_services_handle() {
    // Without this limit a 1 MiB + 1 KiB command came back on every reconnect of the
    // service's persistent session: 239 disconnects a minute.
    let (_dir, port, _broker) = shipped_broker();
    let (_subscriber, mut received) =
        big_client(port, "subscriber", Some("homelab/worker/in")).await;
    let (publisher, mut publisher_link) = big_client(port, "publisher", None).await;

    let too_big = vec![b'x'; homelab::mqtt::MAX_MESSAGE_BYTES + 128 * 1024];
    publisher
        .publish("homelab/worker/in", QoS::AtLeastOnce, false, too_big)
        .await
        .unwrap();
    let dropped = tokio::time::timeout(Duration::from_secs(5), publisher_link.recv()).await;
    assert!(
        matches!(dropped, Ok(None)),
        "the broker kept the sender of an oversized message connected"
    );
    assert!(
        tokio::time::timeout(Duration::from_secs(1), received.recv())
            .await
            .is_err(),
        "the oversized message reached a subscriber"
    );

    // What a service does handle still passes.
    let (publisher, _link) = big_client(port, "publisher-2", None).await;
    let fits = vec![b'y'; homelab::mqtt::MAX_MESSAGE_BYTES];
    publisher
        .publish("homelab/worker/in", QoS::AtLeastOnce, false, fits)
        .await
        .unwrap();
    let size = tokio::time::timeout(Duration::from_secs(5), received.recv())
        .await
        .expect("a message at the limit did not arrive")
        .expect("the subscriber was disconnected");
    assert_eq!(size, homelab::mqtt::MAX_MESSAGE_BYTES);
}

/// Connects `id` with a persistent session, subscribed to `filter`; counts what arrives.
async fn persistent_subscriber(
    port: u16,
    id: &str,
    filter: &str,
) -> (AsyncClient, tokio::sync::mpsc::UnboundedReceiver<usize>) {
    let mut options = MqttOptions::new(id, "127.0.0.1", port);
    options
        .set_credentials("homelab", "secret")
        .set_clean_session(false);
    let (client, mut event_loop) = AsyncClient::new(options, 100);
    client.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(event) = event_loop.poll().await {
            match event {
                Event::Incoming(Packet::Publish(publish)) => {
                    let _ = sender.send(publish.payload.len());
                }
                Event::Outgoing(rumqttc::Outgoing::Disconnect) => return,
                _ => {}
            }
        }
    });
    (client, receiver)
}

#[tokio::test]
async fn the_broker_keeps_ten_thousand_messages_for_a_service_that_is_away() {
    // mosquitto's default keeps 1,000 and drops the rest without a word.
    let (_dir, port, _broker) = shipped_broker();
    let (away, mut received) = persistent_subscriber(port, "away", "homelab/away/in").await;
    let (publisher, _link) = big_client(port, "publisher", None).await;
    publisher
        .publish("homelab/away/in", QoS::AtLeastOnce, false, "hello")
        .await
        .unwrap();
    tokio::time::timeout(Duration::from_secs(5), received.recv())
        .await
        .expect("the subscription is not active")
        .unwrap();
    away.disconnect().await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let sent = 10_500;
    for n in 0..sent {
        publisher
            .publish("homelab/away/in", QoS::AtLeastOnce, false, n.to_string())
            .await
            .unwrap();
    }
    // Let the broker take them all before the subscriber comes back.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_back, mut received) = persistent_subscriber(port, "away", "homelab/away/in").await;
    let mut count = 0;
    while tokio::time::timeout(Duration::from_secs(2), received.recv())
        .await
        .is_ok_and(|message| message.is_some())
    {
        count += 1;
    }
    eprintln!("queued for an absent client: {count} of {sent}");
    assert!(
        (10_000..sent).contains(&count),
        "{count} of {sent} delivered: the queue should keep 10,000 and drop the newest beyond"
    );
}

/// Connects as `user`, publishes each topic at QoS 1 and returns once the broker
/// acknowledged them all (a refused publish is acknowledged too, then dropped).
async fn publish_as(port: u16, user: &str, password: &str, topics: &[&str]) {
    let mut options = MqttOptions::new(format!("{user}-{}", free_port()), "127.0.0.1", port);
    options.set_credentials(user, password);
    let (client, mut event_loop) = AsyncClient::new(options, 100);
    for topic in topics {
        client
            .publish(*topic, QoS::AtLeastOnce, false, format!("from {user}"))
            .await
            .unwrap();
    }
    let mut acked = 0;
    let deadline = Instant::now() + Duration::from_secs(5);
    while acked < topics.len() {
        assert!(
            Instant::now() < deadline,
            "{user}: the broker did not acknowledge"
        );
        match tokio::time::timeout(Duration::from_secs(5), event_loop.poll()).await {
            Ok(Ok(Event::Incoming(Packet::PubAck(_)))) => acked += 1,
            Ok(Ok(_)) => {}
            other => panic!("{user}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn each_identity_publishes_only_as_itself_and_only_command_givers_send_commands() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    write_config(dir.path(), port);
    let _broker = start(
        dir.path(),
        port,
        &[
            ("MQTT_USERNAME", "homelab"),
            ("MQTT_PASSWORD", "admin-secret"),
            ("MQTT_PASSWORD_SMART_EV_CHARGING", "charging-secret"),
            ("MQTT_PASSWORD_PV_FORECAST", "pv-secret"),
            ("MQTT_PASSWORD_HOMEASSISTANT", "ha-secret"),
            ("MQTT_PASSWORD_UNUSED", ""),
        ],
    );
    let acl = std::fs::read_to_string(dir.path().join("data/acl")).unwrap();
    assert!(
        !acl.contains("user unused"),
        "an empty password makes no identity:\n{acl}"
    );
    assert!(connect(port, Some(("smart-ev-charging", "pv-secret")))
        .await
        .is_err());

    // What the admin account sees is what the broker let through.
    let (_watcher, mut seen) = topic_watcher(port, "#").await;
    // pv-forecast reads every service's topics.
    let (_reader, mut read_by_pv) =
        topic_watcher_as(port, "pv-forecast", "pv-secret", "homelab/#").await;

    let allowed_charging = [
        "homelab/smart-ev-charging/heartbeat",
        "homelab/smart-ev-charging/entity/mode/state",
        "homelab/errors/smart-ev-charging",
        "homeassistant/sensor/homelab_smart_ev_charging/target_current/config",
    ];
    let refused_charging = [
        "homelab/pv-forecast/heartbeat",        // a fake heartbeat
        "homelab/pv-forecast/entity/model/set", // a command to another service
        "homelab/errors/pv-forecast",
        "homeassistant/sensor/homelab_pv_forecast/today_total/config",
        "homeassistant/status",
        // Only a person's channel (HA, dashboard, orchestrator) approves a restart.
        "homelab/health-monitor/actions/restart-x/approve",
    ];
    let allowed_ha = [
        "homelab/smart-ev-charging/entity/mode/set",
        "homeassistant/status",
        "homelab/health-monitor/actions/restart-x/approve",
    ];
    let refused_ha = [
        "homelab/smart-ev-charging/heartbeat",
        "homelab/smart-ev-charging/status",
    ];
    let mut all = allowed_charging.to_vec();
    all.extend(refused_charging);
    publish_as(port, "smart-ev-charging", "charging-secret", &all).await;
    let mut all = allowed_ha.to_vec();
    all.extend(refused_ha);
    publish_as(port, "homeassistant", "ha-secret", &all).await;
    publish_as(port, "homelab", "admin-secret", &["homelab/admin/marker"]).await;

    let mut got = Vec::new();
    while let Ok(Some(topic)) = tokio::time::timeout(Duration::from_secs(3), seen.recv()).await {
        if topic == "homelab/admin/marker" {
            break;
        }
        got.push(topic);
    }
    let mut expected: Vec<String> = allowed_charging
        .iter()
        .chain(&allowed_ha)
        .map(|t| t.to_string())
        .collect();
    expected.sort();
    got.sort();
    assert_eq!(
        got, expected,
        "exactly the allowed publishes get through:\n{acl}"
    );
    let read = read_by_pv.recv().await.unwrap();
    assert_eq!(
        read, "homelab/smart-ev-charging/heartbeat",
        "services read each other"
    );
}

async fn topic_watcher(
    port: u16,
    filter: &str,
) -> (AsyncClient, tokio::sync::mpsc::UnboundedReceiver<String>) {
    topic_watcher_as(port, "homelab", "admin-secret", filter).await
}

/// Subscribes as `user` and hands over the topic of every publish, in order.
async fn topic_watcher_as(
    port: u16,
    user: &str,
    password: &str,
    filter: &str,
) -> (AsyncClient, tokio::sync::mpsc::UnboundedReceiver<String>) {
    let mut options = MqttOptions::new(format!("watch-{}", free_port()), "127.0.0.1", port);
    options.set_credentials(user, password);
    let (client, mut event_loop) = AsyncClient::new(options, 10);
    client.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
    let (sender, receiver) = tokio::sync::mpsc::unbounded_channel();
    let (ready_tx, ready) = tokio::sync::oneshot::channel();
    let mut ready_tx = Some(ready_tx);
    tokio::spawn(async move {
        loop {
            match event_loop.poll().await {
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    ready_tx.take().map(|tx| tx.send(()));
                }
                Ok(Event::Incoming(Packet::Publish(publish))) => {
                    let _ = sender.send(publish.topic);
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(5), ready)
        .await
        .expect("no SUBACK")
        .unwrap();
    (client, receiver)
}
