//! MQTT for services: one background connection per process with a last will,
//! capped reconnect backoff, subscriptions restored after every reconnect, typed
//! handlers that run off the event loop, and a dead-letter topic for failures.

mod dead_letter;
mod event_loop;
mod metrics;

pub use dead_letter::{DeadLetter, DEAD_LETTER_PAYLOAD_LIMIT};
pub use metrics::MqttMetrics;
pub use rumqttc::QoS;

use crate::envelope::{self, EnvelopeError};
use crate::secret::Secret;
use crate::settings::CommonSettings;
use bytes::Bytes;
use event_loop::EventLoopTask;
use rumqttc::{AsyncClient, LastWill, MqttOptions};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// `homelab/{service}/{event}`.
pub fn service_topic(service: &str, event: &str) -> String {
    format!("homelab/{service}/{event}")
}

/// Where a service's failed messages go.
pub fn dead_letter_topic(service: &str) -> String {
    format!("homelab/errors/{service}")
}

/// How to reach the broker, and who we are there.
#[derive(Clone, Debug)]
pub struct MqttConfig {
    pub service: String,
    pub host: String,
    pub port: u16,
    pub username: String,
    pub password: Secret,
    pub client_id: String,
    /// `false` keeps a persistent session: the broker queues QoS 1 messages while we are away.
    pub clean_session: bool,
    /// Set for a running service; a diagnose probe must not mark the service offline.
    pub last_will: Option<(String, Vec<u8>)>,
    pub keep_alive: Duration,
    pub max_reconnect_delay: Duration,
}

impl MqttConfig {
    /// The connection of a running service: persistent session, last will on its heartbeat topic.
    pub fn for_service(service: &str, version: &str, settings: &CommonSettings) -> Self {
        let will = serde_json::json!({
            "status": "offline",
            "service": service,
            "version": version,
            "reason": crate::messages::heartbeat::CONNECTION_LOST,
        });
        Self {
            service: service.to_string(),
            host: settings.mqtt_host.clone(),
            port: settings.mqtt_port,
            username: settings.mqtt_username.clone(),
            password: settings.mqtt_password.clone(),
            client_id: if settings.mqtt_client_id.is_empty() {
                service.to_string()
            } else {
                settings.mqtt_client_id.clone()
            },
            clean_session: false,
            last_will: Some((
                service_topic(service, "heartbeat"),
                will.to_string().into_bytes(),
            )),
            keep_alive: Duration::from_secs(30),
            // With jitter at most 5 s between attempts: back within seconds of the broker.
            max_reconnect_delay: Duration::from_millis(2500),
        }
    }

    /// A throw-away connection (diagnose, tools): random client id, clean session, no will.
    pub fn probe(service: &str, settings: &CommonSettings) -> Self {
        let mut config = Self::for_service(service, "", settings);
        config.client_id = format!("{service}-probe-{}", &envelope::new_trace_id()[..8]);
        config.clean_session = true;
        config.last_will = None;
        config
    }

    fn options(&self) -> MqttOptions {
        let mut options = MqttOptions::new(&self.client_id, &self.host, self.port);
        options
            .set_keep_alive(self.keep_alive)
            .set_clean_session(self.clean_session)
            // A command is acknowledged after its handler finished, not on arrival.
            .set_manual_acks(true)
            .set_max_packet_size(MAX_INCOMING_PACKET_BYTES, MAX_MESSAGE_BYTES);
        if !self.username.is_empty() {
            options.set_credentials(&self.username, self.password.expose());
        }
        if let Some((topic, payload)) = &self.last_will {
            options.set_last_will(LastWill::new(
                topic,
                payload.clone(),
                QoS::AtLeastOnce,
                true,
            ));
        }
        options
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MqttError {
    #[error("invalid topic filter {0:?}")]
    InvalidFilter(String),
    #[error("invalid topic {0:?} (no wildcards in a publish topic)")]
    InvalidTopic(String),
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
    #[error("mqtt client stopped: {0}")]
    Client(#[from] rumqttc::ClientError),
}

/// A message as a handler sees it.
#[derive(Clone, Debug)]
pub struct Message<T> {
    pub topic: String,
    pub payload: T,
    /// The sender's `trace_id`, also current while the handler runs.
    pub trace_id: Option<String>,
}

/// The largest message a handler is given. A larger one is acknowledged and recorded
/// on `homelab/errors/{service}` with its topic and size only; our broker refuses it
/// before that (`max_packet_size` in infrastructure/mosquitto/mosquitto.conf).
pub const MAX_MESSAGE_BYTES: usize = 1024 * 1024;

/// What the client reads off the wire: well over [`MAX_MESSAGE_BYTES`], so that an
/// oversized message from a broker without a limit (HA's add-on, say) is read, acked and
/// dead-lettered. Refusing it instead drops the connection, and the persistent session
/// hands it back on every reconnect. Kept small enough for a 32 MiB container.
const MAX_INCOMING_PACKET_BYTES: usize = 8 * 1024 * 1024;

/// Messages one subscription holds waiting for its handler. QoS 1 deliveries never fill
/// it (the broker sends at most its window of unacknowledged messages, 20 for
/// mosquitto); a flood of QoS 0 ones does, and the rest is dropped instead of growing
/// memory without bound.
pub const SUBSCRIPTION_BACKLOG: usize = 1000;

/// Hands `message` to a subscription's queue; when the queue is full the message is
/// dropped unacknowledged (a QoS 1 one comes again after the next reconnect).
pub(crate) fn queue(
    metrics: &MqttMetrics,
    sender: &mpsc::Sender<Incoming>,
    filter: &str,
    message: Incoming,
) -> bool {
    match sender.try_send(message) {
        Ok(()) => {
            metrics.queued();
            true
        }
        Err(mpsc::error::TrySendError::Full(message)) => {
            metrics.count_backlog_overflow();
            tracing::warn!(
                topic = %message.topic,
                filter,
                backlog = SUBSCRIPTION_BACKLOG,
                "mqtt_subscription_backlog_full"
            );
            false
        }
        Err(mpsc::error::TrySendError::Closed(_)) => false,
    }
}

/// Acknowledges a received QoS 1 publish when the last copy of it is dropped, if it was
/// handled: after every subscription it matched has handled it (or dead-lettered it). A
/// copy dropped unhandled (a shutdown with messages still queued, a crash) sends no
/// acknowledgement, and the persistent session delivers the message again.
pub(crate) struct AckOnDrop {
    client: AsyncClient,
    publish: rumqttc::Publish,
    handled: std::sync::atomic::AtomicBool,
}

impl AckOnDrop {
    pub(crate) fn new(client: AsyncClient, publish: &rumqttc::Publish) -> Self {
        let mut publish = publish.clone();
        publish.payload = Bytes::new(); // only its packet id and QoS are needed
        Self {
            client,
            publish,
            handled: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

impl Drop for AckOnDrop {
    fn drop(&mut self) {
        if !self.handled.load(Ordering::Acquire) {
            return;
        }
        if let Err(error) = self.client.try_ack(&self.publish) {
            // The broker sends it again after the next reconnect: at least once still holds.
            tracing::warn!(topic = %self.publish.topic, error = %error, "mqtt_ack_failed");
        }
    }
}

impl std::fmt::Debug for AckOnDrop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AckOnDrop")
            .field("pkid", &self.publish.pkid)
            .finish()
    }
}

/// A received publish on its way to a subscription's worker.
#[derive(Clone, Debug)]
pub(crate) struct Incoming {
    pub(crate) topic: String,
    /// Empty when the message was over [`MAX_MESSAGE_BYTES`]: it is never decoded.
    pub(crate) payload: Bytes,
    /// The payload's size as received.
    pub(crate) size: usize,
    pub(crate) received: Instant,
    /// Sends the PUBACK once every copy is handled.
    pub(crate) ack: Option<Arc<AckOnDrop>>,
}

impl Incoming {
    pub(crate) fn new(topic: String, payload: Bytes) -> Self {
        let size = payload.len();
        Self {
            topic,
            payload: if size > MAX_MESSAGE_BYTES {
                Bytes::new()
            } else {
                payload
            },
            size,
            received: Instant::now(),
            ack: None,
        }
    }

    /// Done with: the acknowledgement goes out once every copy is dropped.
    pub(crate) fn mark_handled(&self) {
        if let Some(ack) = &self.ack {
            ack.handled.store(true, Ordering::Release);
        }
    }

    pub(crate) fn is_oversized(&self) -> bool {
        self.size > MAX_MESSAGE_BYTES
    }
}

pub(crate) struct Route {
    pub(crate) filter: String,
    pub(crate) qos: QoS,
    pub(crate) sender: mpsc::Sender<Incoming>,
}

/// State shared between the handle and the event loop task.
pub(crate) struct Shared {
    /// PUBLISH packets written to the socket (counted against `metrics.messages_out`,
    /// the ones handed to the client) and QoS 1 publishes not yet acknowledged: what
    /// `disconnect` waits for.
    pub(crate) publishes_written: AtomicU64,
    pub(crate) unacknowledged: AtomicU16,
    pub(crate) routes: Mutex<Vec<Route>>,
    /// Messages that arrived before a matching subscription was registered (a persistent
    /// session delivers its queue right after CONNACK); handed over on `subscribe`.
    pub(crate) unrouted: Mutex<Vec<Incoming>>,
    pub(crate) metrics: MqttMetrics,
    pub(crate) last_error: Mutex<Option<String>>,
    /// The subscription workers, awaited at shutdown.
    pub(crate) workers: tokio_util::task::TaskTracker,
    /// Tells the workers to take no further message.
    pub(crate) stop_taking: tokio_util::sync::CancellationToken,
}

impl Shared {
    /// Every publish handed to the client is written, and every QoS 1 one acknowledged.
    fn is_settled(&self) -> bool {
        self.publishes_written.load(Ordering::Acquire) >= self.metrics.messages_out()
            && self.unacknowledged.load(Ordering::Acquire) == 0
    }
}

/// The event loop task and the token that tells it we are closing.
struct Connection {
    task: JoinHandle<()>,
    closing: tokio_util::sync::CancellationToken,
}

/// The handle services use. Cheap to clone; all clones share one connection.
#[derive(Clone)]
pub struct Mqtt {
    service: Arc<str>,
    client: AsyncClient,
    shared: Arc<Shared>,
    connected: watch::Receiver<bool>,
    /// Taken by the first `disconnect`.
    connection: Arc<Mutex<Option<Connection>>>,
}

impl std::fmt::Debug for Mqtt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mqtt")
            .field("service", &self.service)
            .field("connected", &*self.connected.borrow())
            .finish()
    }
}

impl Mqtt {
    /// Starts connecting in the background and returns at once; publishes and
    /// subscriptions made before the broker answers are sent when it does.
    pub fn connect(config: &MqttConfig) -> Self {
        let (client, event_loop) = AsyncClient::new(config.options(), 1024);
        let shared = Arc::new(Shared {
            publishes_written: AtomicU64::new(0),
            unacknowledged: AtomicU16::new(0),
            routes: Mutex::new(Vec::new()),
            unrouted: Mutex::new(Vec::new()),
            metrics: MqttMetrics::default(),
            last_error: Mutex::new(None),
            workers: tokio_util::task::TaskTracker::new(),
            stop_taking: tokio_util::sync::CancellationToken::new(),
        });
        let (connected_tx, connected) = watch::channel(false);
        let closing = tokio_util::sync::CancellationToken::new();
        let task = EventLoopTask {
            event_loop,
            client: client.clone(),
            shared: shared.clone(),
            connected: connected_tx,
            closing: closing.clone(),
            endpoint: format!("{}:{}", config.host, config.port),
            max_delay: config.max_reconnect_delay,
        };
        let handle = tokio::spawn(task.run());
        Self {
            service: config.service.as_str().into(),
            client,
            shared,
            connected,
            connection: Arc::new(Mutex::new(Some(Connection {
                task: handle,
                closing,
            }))),
        }
    }

    pub fn service(&self) -> &str {
        &self.service
    }

    /// `homelab/{this service}/{event}`.
    pub fn topic(&self, event: &str) -> String {
        service_topic(&self.service, event)
    }

    pub fn is_connected(&self) -> bool {
        *self.connected.borrow()
    }

    /// Waits until connected; `false` when `timeout` passes first.
    pub async fn wait_connected(&self, timeout: Duration) -> bool {
        let mut connected = self.connected.clone();
        tokio::time::timeout(timeout, connected.wait_for(|up| *up))
            .await
            .is_ok_and(|result| result.is_ok())
    }

    /// The last connection error, for diagnose.
    pub fn last_error(&self) -> Option<String> {
        self.shared.last_error.lock().expect("poisoned").clone()
    }

    pub fn metrics(&self) -> &MqttMetrics {
        &self.shared.metrics
    }

    /// Publishes `payload` in the envelope to `homelab/{service}/{event}` (QoS 1, not retained).
    pub async fn publish<T: Serialize + ?Sized>(
        &self,
        event: &str,
        payload: &T,
    ) -> Result<(), MqttError> {
        self.publish_json(&self.topic(event), payload, QoS::AtLeastOnce, false)
            .await
    }

    /// Publishes `payload` in the envelope to any topic.
    pub async fn publish_json<T: Serialize + ?Sized>(
        &self,
        topic: &str,
        payload: &T,
        qos: QoS,
        retain: bool,
    ) -> Result<(), MqttError> {
        let value = serde_json::to_value(payload).map_err(EnvelopeError::from)?;
        let wrapped = envelope::wrap(&self.service, value)?;
        let bytes = serde_json::to_vec(&wrapped).map_err(EnvelopeError::from)?;
        self.publish_raw(topic, bytes, qos, retain).await
    }

    /// Publishes bytes as they are.
    pub async fn publish_raw(
        &self,
        topic: &str,
        payload: impl Into<Vec<u8>>,
        qos: QoS,
        retain: bool,
    ) -> Result<(), MqttError> {
        if !rumqttc::valid_topic(topic) {
            return Err(MqttError::InvalidTopic(topic.to_string()));
        }
        self.client.publish(topic, qos, retain, payload).await?;
        self.shared.metrics.count_out();
        Ok(())
    }

    /// Subscribes `handler` to `filter` (`+` and `#` allowed) at QoS 1.
    ///
    /// Each subscription has its own worker: messages reach the handler in order, a
    /// slow handler delays only its own subscription, never the connection. A payload
    /// that does not parse as `T`, a handler error and a handler panic each go to
    /// `homelab/errors/{service}`; the next message is handled as usual.
    pub async fn subscribe<T, F, Fut>(&self, filter: &str, handler: F) -> Result<(), MqttError>
    where
        T: DeserializeOwned + Send + 'static,
        F: Fn(Message<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        self.subscribe_with_qos(filter, QoS::AtLeastOnce, handler)
            .await
    }

    pub async fn subscribe_with_qos<T, F, Fut>(
        &self,
        filter: &str,
        qos: QoS,
        handler: F,
    ) -> Result<(), MqttError>
    where
        T: DeserializeOwned + Send + 'static,
        F: Fn(Message<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        self.subscribe_decoded(filter, qos, dead_letter::decode_json::<T>, handler)
            .await
    }

    /// Like [`Mqtt::subscribe`], for plain-text payloads (commands from Home Assistant).
    pub async fn subscribe_text<F, Fut>(&self, filter: &str, handler: F) -> Result<(), MqttError>
    where
        F: Fn(Message<String>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        self.subscribe_decoded(filter, QoS::AtLeastOnce, dead_letter::decode_text, handler)
            .await
    }

    async fn subscribe_decoded<T, F, Fut>(
        &self,
        filter: &str,
        qos: QoS,
        decode: dead_letter::Decode<T>,
        handler: F,
    ) -> Result<(), MqttError>
    where
        T: Send + 'static,
        F: Fn(Message<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        if !rumqttc::valid_filter(filter) {
            return Err(MqttError::InvalidFilter(filter.to_string()));
        }
        let (sender, receiver) = mpsc::channel(SUBSCRIPTION_BACKLOG);
        {
            let mut unrouted = self.shared.unrouted.lock().expect("poisoned");
            let (matching, rest): (Vec<_>, Vec<_>) = unrouted
                .drain(..)
                .partition(|message| rumqttc::matches(&message.topic, filter));
            *unrouted = rest;
            for message in matching {
                queue(&self.shared.metrics, &sender, filter, message);
            }
            self.shared.routes.lock().expect("poisoned").push(Route {
                filter: filter.to_string(),
                qos,
                sender,
            });
        }
        let worker = dead_letter::Worker {
            service: self.service.clone(),
            client: self.client.clone(),
            shared: self.shared.clone(),
        };
        self.shared
            .workers
            .spawn(worker.run(receiver, decode, handler));
        self.client.subscribe(filter, qos).await?;
        Ok(())
    }

    /// At shutdown: the subscription workers take no further message and the ones in a
    /// handler finish it, for at most `timeout`. What is still queued is not
    /// acknowledged, so the broker delivers it again at the next start.
    pub async fn finish_handlers(&self, timeout: Duration) {
        self.shared.stop_taking.cancel();
        self.shared.workers.close();
        if tokio::time::timeout(timeout, self.shared.workers.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                timeout_ms = timeout.as_millis() as u64,
                "mqtt_handlers_still_running_at_shutdown"
            );
        }
    }

    /// Waits until everything published so far has been written and acknowledged by
    /// the broker, at most `timeout`; whether it was. A handler that records a command
    /// as done calls this first, so that a crash cannot lose the reply it sent.
    pub async fn flush(&self, timeout: Duration) -> bool {
        let target = self.shared.metrics.messages_out();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let written = self.shared.publishes_written.load(Ordering::Acquire) >= target;
            if written && self.shared.unacknowledged.load(Ordering::Acquire) == 0 {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }

    /// Sends DISCONNECT (so the broker does not publish the last will) and waits for
    /// the connection to close, at most `timeout`. Messages queued before it go first,
    /// and are acknowledged first: mosquitto takes a DISCONNECT that arrives before it
    /// could PUBACK for a lost connection and publishes the will after all.
    pub async fn disconnect(&self, timeout: Duration) {
        let connection = self.connection.lock().expect("poisoned").take();
        let Some(Connection {
            task: mut handle,
            closing,
        }) = connection
        else {
            return;
        };
        let settle_by = tokio::time::Instant::now() + timeout / 2;
        while self.is_connected() && !self.shared.is_settled() {
            if tokio::time::Instant::now() >= settle_by {
                tracing::warn!("mqtt_disconnect_with_unacknowledged_messages");
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let _ = self.client.try_disconnect();
        closing.cancel();
        if tokio::time::timeout(timeout, &mut handle).await.is_err() {
            tracing::warn!(
                timeout_ms = timeout.as_millis() as u64,
                "mqtt_disconnect_timed_out"
            );
            handle.abort();
        }
    }
}

/// Just the trace fields of an incoming envelope.
#[derive(Default, Deserialize)]
pub(crate) struct TraceFields {
    pub(crate) trace_id: Option<String>,
    pub(crate) traceparent: Option<String>,
}

/// Reads `trace_id` and `traceparent` without a second full parse when there are none.
pub(crate) fn trace_fields_of(payload: &[u8]) -> TraceFields {
    const NEEDLE: &[u8] = b"\"trace";
    if !payload.windows(NEEDLE.len()).any(|window| window == NEEDLE) {
        return TraceFields::default();
    }
    serde_json::from_slice(payload).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_fields_are_found_only_when_present() {
        let both = trace_fields_of(br#"{"a":1,"trace_id":"t1","traceparent":"00-x"}"#);
        assert_eq!(both.trace_id.as_deref(), Some("t1"));
        assert_eq!(both.traceparent.as_deref(), Some("00-x"));
        assert!(trace_fields_of(br#"{"a":1}"#).trace_id.is_none());
        assert!(trace_fields_of(br#"{"trace_id":null}"#).trace_id.is_none());
    }

    #[test]
    fn topics_follow_the_convention() {
        assert_eq!(
            service_topic("pv-forecast", "updated"),
            "homelab/pv-forecast/updated"
        );
        assert_eq!(
            dead_letter_topic("pv-forecast"),
            "homelab/errors/pv-forecast"
        );
    }

    #[test]
    fn the_service_connection_has_a_retained_offline_will_and_a_persistent_session() {
        let settings = CommonSettings::default();
        let config = MqttConfig::for_service("svc", "1.2.3", &settings);
        assert!(!config.clean_session);
        assert_eq!(config.client_id, "svc");
        let (topic, payload) = config.last_will.clone().unwrap();
        assert_eq!(topic, "homelab/svc/heartbeat");
        let will: serde_json::Value = serde_json::from_slice(&payload).unwrap();
        assert_eq!(will["status"], "offline");
        let probe = MqttConfig::probe("svc", &settings);
        assert!(probe.last_will.is_none() && probe.clean_session && probe.client_id != "svc");
    }
}
