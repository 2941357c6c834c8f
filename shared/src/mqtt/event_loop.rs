//! Drives rumqttc's event loop for the life of the connection.
//!
//! rumqttc reconnects only while `poll()` is called, and does not wait between
//! failed attempts: the capped backoff here is what keeps a dead broker from
//! being hammered, and the loop never stops on an error.

use super::{Incoming, Shared};
use rumqttc::{AsyncClient, Event, EventLoop, Outgoing, Packet, Publish};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

const FIRST_RETRY_DELAY: Duration = Duration::from_millis(250);

fn reconnect_delays(max: Duration) -> impl Iterator<Item = Duration> {
    crate::retry::reconnect_delays(FIRST_RETRY_DELAY, max)
}
/// Messages nobody subscribed to yet are kept this long, at most this many.
const UNROUTED_TTL: Duration = Duration::from_secs(60);
const UNROUTED_LIMIT: usize = 1000;
/// After DISCONNECT, how long to read on for the broker to close the connection
/// (it does within milliseconds; `Mqtt::disconnect` waits 2 s in all).
const DISCONNECT_DRAIN: Duration = Duration::from_secs(1);

pub(super) struct EventLoopTask {
    pub(super) event_loop: EventLoop,
    pub(super) client: AsyncClient,
    pub(super) shared: Arc<Shared>,
    pub(super) connected: watch::Sender<bool>,
    pub(super) closing: CancellationToken,
    pub(super) endpoint: String,
    pub(super) max_delay: Duration,
}

impl EventLoopTask {
    pub(super) async fn run(mut self) {
        let mut delays = reconnect_delays(self.max_delay);
        let mut has_connected = false;
        loop {
            if self.closing.is_cancelled() && !*self.connected.borrow() {
                break;
            }
            let polled = self.event_loop.poll().await;
            self.shared
                .unacknowledged
                .store(self.event_loop.state.inflight(), Ordering::Release);
            match polled {
                Ok(Event::Outgoing(Outgoing::Publish(_))) => {
                    self.shared
                        .publishes_written
                        .fetch_add(1, Ordering::Release);
                }
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                    delays = reconnect_delays(self.max_delay);
                    self.connected.send_replace(true);
                    *self.shared.last_error.lock().expect("poisoned") = None;
                    tracing::info!(
                        endpoint = %self.endpoint,
                        session_present = ack.session_present,
                        "mqtt_connected"
                    );
                    if has_connected {
                        self.shared.metrics.count_reconnect();
                        // A broker that kept our session kept our subscriptions too;
                        // subscribing again would replay every retained message.
                        if !ack.session_present {
                            self.resubscribe();
                        }
                    }
                    has_connected = true;
                }
                Ok(Event::Incoming(Packet::Publish(publish))) => self.route(publish),
                Ok(Event::Outgoing(Outgoing::Disconnect)) => {
                    // rumqttc has written and flushed DISCONNECT before yielding this.
                    self.connected.send_replace(false);
                    // Read on until the broker closes the connection: a socket closed
                    // with messages still unread is reset, and a broker that had not
                    // read our DISCONNECT yet would then publish our last will.
                    let closed_by_broker = tokio::time::timeout(DISCONNECT_DRAIN, async {
                        while self.event_loop.poll().await.is_ok() {}
                    })
                    .await
                    .is_ok();
                    tracing::debug!(endpoint = %self.endpoint, closed_by_broker, "mqtt_disconnected");
                    break;
                }
                Ok(_) => {}
                Err(error) => {
                    let was_connected = self.connected.send_replace(false);
                    if self.closing.is_cancelled() {
                        break;
                    }
                    *self.shared.last_error.lock().expect("poisoned") = Some(error.to_string());
                    let delay = delays.next().unwrap_or(self.max_delay);
                    tracing::warn!(
                        endpoint = %self.endpoint,
                        error = %error,
                        retry_in_ms = delay.as_millis() as u64,
                        "{}",
                        if was_connected { "mqtt_connection_lost" } else { "mqtt_connect_failed" }
                    );
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = self.closing.cancelled() => break,
                    }
                }
            }
        }
    }

    fn resubscribe(&self) {
        let routes = self.shared.routes.lock().expect("poisoned");
        for route in routes.iter() {
            // try_: the event loop itself drains this channel, so it must never wait on it.
            if let Err(error) = self.client.try_subscribe(route.filter.clone(), route.qos) {
                tracing::error!(filter = %route.filter, error = %error, "mqtt_resubscribe_failed");
            }
        }
        tracing::info!(subscriptions = routes.len(), "mqtt_resubscribed");
    }

    fn route(&self, publish: Publish) {
        self.shared.metrics.count_in();
        let ack = std::sync::Arc::new(super::AckOnDrop::new(self.client.clone(), &publish));
        let mut incoming = Incoming::new(publish.topic, publish.payload);
        incoming.ack = Some(ack);
        let mut delivered = false;
        for route in self.shared.routes.lock().expect("poisoned").iter() {
            if rumqttc::matches(&incoming.topic, &route.filter) {
                // A full queue counts as delivered: the message is not kept as unrouted.
                super::queue(
                    &self.shared.metrics,
                    &route.sender,
                    &route.filter,
                    incoming.clone(),
                );
                delivered = true;
            }
        }
        if delivered {
            return;
        }
        let mut unrouted = self.shared.unrouted.lock().expect("poisoned");
        unrouted.retain(|message| {
            let fresh = message.received.elapsed() < UNROUTED_TTL;
            if !fresh {
                // Nobody subscribes to it: acknowledged, or it would come back forever.
                message.mark_handled();
            }
            fresh
        });
        if unrouted.len() < UNROUTED_LIMIT {
            unrouted.push(incoming);
        } else {
            tracing::warn!(topic = %incoming.topic, "mqtt_unrouted_message_dropped");
        }
    }
}
