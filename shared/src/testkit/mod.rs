//! Test fixtures: a real mosquitto on a free loopback port, and a raw MQTT probe.
//!
//! Only built with the `testkit` feature (dev-dependencies). Nothing here mocks
//! the broker: tests talk to the same mosquitto that runs in production.

mod ha;
mod process;
mod secrets;

pub use ha::{ha_venv, HomeAssistantCore};
pub use nix::sys::signal::Signal;
pub use process::{assert_settings_documented, ServiceProcess};
pub use secrets::assert_no_secret_in_logs;

use crate::settings::CommonSettings;
use bytes::Bytes;
use nix::sys::signal::kill;
use nix::unistd::Pid;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("no free loopback port")
}

/// The mosquitto binary: on PATH, or where Debian puts it.
pub fn mosquitto_binary() -> PathBuf {
    if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let candidate = dir.join("mosquitto");
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    let debian = PathBuf::from("/usr/sbin/mosquitto");
    assert!(
        debian.is_file(),
        "mosquitto is not installed (scripts/test.sh installs it: apt-get install -y mosquitto)"
    );
    debian
}

/// A mosquitto for one test, stopped on drop. Persistence is on, so a broker
/// stopped with [`Broker::stop`] and started again keeps sessions and queued messages.
pub struct Broker {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
    /// Appended to the generated configuration (e.g. a bridge).
    extra: String,
}

impl Broker {
    pub fn start() -> Self {
        Self::start_with("")
    }

    /// A broker whose configuration ends with `extra` (mosquitto.conf lines).
    pub fn start_with(extra: &str) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut broker = Self {
            port: free_port(),
            dir,
            child: None,
            extra: extra.to_string(),
        };
        broker.launch();
        broker
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Common settings pointing at this broker, with a temp `DATA_DIR`.
    pub fn settings(&self, data_dir: &Path) -> CommonSettings {
        CommonSettings {
            mqtt_host: "127.0.0.1".into(),
            mqtt_port: self.port,
            data_dir: data_dir.to_path_buf(),
            ..CommonSettings::default()
        }
    }

    /// The broker's own log, for a failing test's message.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mosquitto.log")).unwrap_or_default()
    }

    fn launch(&mut self) {
        let config = self.dir.path().join("mosquitto.conf");
        let data = self.dir.path().join("data");
        std::fs::create_dir_all(&data).expect("broker data dir");
        // As root, mosquitto would switch to the `mosquitto` user and then fail to
        // write its persistence file in our temp dir.
        let user = if nix::unistd::geteuid().is_root() {
            "user root\n"
        } else {
            ""
        };
        let text = format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {data}/\nautosave_interval 1\nmax_queued_messages 100000\nlog_dest file {log}\nlog_type all\n{user}{extra}",
            port = self.port,
            data = data.display(),
            log = self.dir.path().join("mosquitto.log").display(),
            extra = self.extra,
        );
        std::fs::write(&config, text).expect("broker config");
        let child = Command::new(mosquitto_binary())
            .arg("-c")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start mosquitto");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "mosquitto did not listen on {}: {}",
                self.port,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM and wait: mosquitto saves its sessions and queued messages on the way out.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
            let _ = child.wait();
        }
    }

    /// SIGKILL and forget every session: a broker that comes back with no memory of us.
    pub fn crash_and_lose_sessions(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(self.dir.path().join("data"));
        self.launch();
    }

    /// Starts again on the same port with the same persistence.
    pub fn restart(&mut self) {
        self.stop();
        self.launch();
    }

    /// Starts a stopped broker again (same port, same persistence).
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "the broker is still running");
        self.launch();
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A message the probe received.
#[derive(Clone, Debug)]
pub struct Received {
    pub topic: String,
    pub payload: Bytes,
    pub retain: bool,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.payload).unwrap_or_else(|error| {
            panic!("{} is not JSON ({error}): {:?}", self.topic, self.payload)
        })
    }
}

/// A plain rumqttc client, independent of `homelab::mqtt`, that plays "another
/// client" in tests: it publishes and records what arrives on its filters.
pub struct Probe {
    client: AsyncClient,
    received: mpsc::UnboundedReceiver<Received>,
    task: tokio::task::JoinHandle<()>,
}

impl Probe {
    /// Connects (clean session) and returns once every filter is acknowledged.
    pub async fn connect(port: u16, filters: &[&str]) -> Self {
        let id = format!("probe-{}", uuid::Uuid::new_v4().simple());
        let mut options = MqttOptions::new(id, "127.0.0.1", port);
        options.set_keep_alive(Duration::from_secs(30));
        // Generous both ways: tests send oversized messages on purpose.
        options.set_max_packet_size(16 * 1024 * 1024, 16 * 1024 * 1024);
        let (client, mut event_loop) = AsyncClient::new(options, 4096);
        let (sender, received) = mpsc::unbounded_channel();
        let (subacks_tx, mut subacks) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                match event_loop.poll().await {
                    Ok(Event::Incoming(Packet::Publish(publish))) => {
                        let _ = sender.send(Received {
                            topic: publish.topic,
                            payload: publish.payload,
                            retain: publish.retain,
                        });
                    }
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        let _ = subacks_tx.send(());
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        });
        for filter in filters {
            client
                .subscribe(*filter, QoS::AtLeastOnce)
                .await
                .expect("probe subscribe");
        }
        for _ in filters {
            tokio::time::timeout(Duration::from_secs(10), subacks.recv())
                .await
                .expect("probe subscription not acknowledged");
        }
        Self {
            client,
            received,
            task,
        }
    }

    pub async fn publish(&self, topic: &str, payload: impl Into<Vec<u8>>, qos: QoS, retain: bool) {
        self.client
            .publish(topic, qos, retain, payload)
            .await
            .expect("probe publish");
    }

    pub async fn publish_json(&self, topic: &str, payload: &serde_json::Value) {
        self.publish(topic, payload.to_string(), QoS::AtLeastOnce, false)
            .await;
    }

    /// The next message on any filter, or `None` after `timeout`.
    pub async fn next(&mut self, timeout: Duration) -> Option<Received> {
        tokio::time::timeout(timeout, self.received.recv())
            .await
            .ok()
            .flatten()
    }

    /// Skips messages until one on `topic` satisfies `accept`.
    pub async fn wait_for(
        &mut self,
        topic: &str,
        timeout: Duration,
        accept: impl Fn(&serde_json::Value) -> bool,
    ) -> Option<serde_json::Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let message = self.next(left).await?;
            if message.topic == topic {
                let value = message.json();
                if accept(&value) {
                    return Some(value);
                }
            }
        }
    }

    /// Everything that arrives within `window`.
    pub async fn drain(&mut self, window: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + window;
        let mut all = Vec::new();
        while let Some(message) = self
            .next(deadline.saturating_duration_since(tokio::time::Instant::now()))
            .await
        {
            all.push(message);
        }
        all
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.task.abort();
    }
}
