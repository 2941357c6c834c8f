//! Counts and time of requests to one backend (Home Assistant, InfluxDB), for `/metrics`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

#[derive(Debug, Default)]
pub struct RequestMetrics {
    requests: AtomicU64,
    failures: AtomicU64,
    latency_micros: AtomicU64,
    last_failed: AtomicBool,
}

impl RequestMetrics {
    /// Counts one request that began at `started`.
    pub(crate) fn record(&self, started: Instant, succeeded: bool) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        self.latency_micros
            .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
        if !succeeded {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        self.last_failed.store(!succeeded, Ordering::Relaxed);
    }

    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Whether the latest request failed (false before the first one).
    pub fn last_failed(&self) -> bool {
        self.last_failed.load(Ordering::Relaxed)
    }

    pub fn latency_seconds_total(&self) -> f64 {
        self.latency_micros.load(Ordering::Relaxed) as f64 / 1e6
    }
}
