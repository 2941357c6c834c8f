//! Counters of the MQTT path, for the heartbeat and (later) `/metrics`.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct MqttMetrics {
    messages_in: AtomicU64,
    messages_out: AtomicU64,
    handler_errors: AtomicU64,
    dead_letters: AtomicU64,
    reconnects: AtomicU64,
    backlog: AtomicI64,
    backlog_overflows: AtomicU64,
}

impl MqttMetrics {
    pub fn messages_in(&self) -> u64 {
        self.messages_in.load(Ordering::Relaxed)
    }
    pub fn messages_out(&self) -> u64 {
        self.messages_out.load(Ordering::Relaxed)
    }
    pub fn handler_errors(&self) -> u64 {
        self.handler_errors.load(Ordering::Relaxed)
    }
    pub fn dead_letters(&self) -> u64 {
        self.dead_letters.load(Ordering::Relaxed)
    }
    pub fn reconnects(&self) -> u64 {
        self.reconnects.load(Ordering::Relaxed)
    }
    /// Messages received and waiting for their subscription's handler. QoS 1 ones are
    /// bounded by the broker's window of unacknowledged messages (mosquitto: 20).
    pub fn backlog(&self) -> u64 {
        self.backlog.load(Ordering::Relaxed).max(0) as u64
    }

    /// Messages that found their subscription's queue full (QoS 0: lost; QoS 1: not
    /// acknowledged, so the broker delivers them again after the next reconnect).
    pub fn backlog_overflows(&self) -> u64 {
        self.backlog_overflows.load(Ordering::Relaxed)
    }

    pub(crate) fn count_in(&self) {
        self.messages_in.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn count_out(&self) {
        self.messages_out.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn count_handler_error(&self) {
        self.handler_errors.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn count_dead_letter(&self) {
        self.dead_letters.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn queued(&self) {
        self.backlog.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn dequeued(&self) {
        self.backlog.fetch_sub(1, Ordering::Relaxed);
    }
    pub(crate) fn count_backlog_overflow(&self) {
        self.backlog_overflows.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn count_reconnect(&self) {
        self.reconnects.fetch_add(1, Ordering::Relaxed);
    }
}
