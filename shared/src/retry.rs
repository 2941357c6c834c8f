//! Retry with exponential backoff and jitter, for errors the caller calls transient.
//!
//! A small wrapper over `backon`: the caller's `is_transient` decides what is worth
//! another try (a timeout, a 503) and what is not (a 401, a bad payload), every retry
//! is logged at WARN with its attempt and delay, and the last error is returned.

use backon::{ExponentialBuilder, Retryable};
use std::fmt::Display;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Debug)]
pub struct RetryPolicy {
    /// Attempts in all, the first one included.
    pub max_attempts: usize,
    pub initial_delay: Duration,
    pub max_delay: Duration,
    pub jitter: bool,
    /// The service's shutdown: it ends the attempt in flight and every later one, so a
    /// call never outlives the shutdown grace.
    pub cancel: Option<CancellationToken>,
}

/// Delays between reconnection attempts (MQTT, HA's WebSocket): doubling from `first`
/// up to `max`, with a random jitter of up to as much again so that the services do
/// not all knock at the same instant when the other side comes back. Endless.
pub fn reconnect_delays(first: Duration, max: Duration) -> impl Iterator<Item = Duration> {
    use backon::BackoffBuilder;
    ExponentialBuilder::default()
        .with_min_delay(first)
        .with_max_delay(max)
        .with_jitter()
        .without_max_times()
        .build()
}

/// What a retried operation returns once shutdown cancelled it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cancelled {
    pub operation: String,
}

impl Display for Cancelled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: cancelled by shutdown", self.operation)
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            initial_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            jitter: true,
            cancel: None,
        }
    }
}

impl RetryPolicy {
    /// The same policy, ended by `token` (the service's shutdown).
    pub fn cancelled_by(mut self, token: CancellationToken) -> Self {
        self.cancel = Some(token);
        self
    }

    fn backoff(&self) -> ExponentialBuilder {
        let builder = ExponentialBuilder::default()
            .with_min_delay(self.initial_delay)
            .with_max_delay(self.max_delay)
            .with_factor(2.0)
            .with_max_times(self.max_attempts.saturating_sub(1));
        if self.jitter {
            builder.with_jitter()
        } else {
            builder
        }
    }
}

/// Runs `operation` until it succeeds, fails with a permanent error, runs out of
/// attempts, or `policy.cancel` fires (then the attempt in flight is dropped and the
/// error is `Cancelled`). `what` names the operation in the WARN lines (e.g. `"ha_get_state"`).
pub async fn retry<T, E, F, Fut>(
    what: &str,
    policy: &RetryPolicy,
    operation: F,
    is_transient: impl Fn(&E) -> bool,
) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: Display + From<Cancelled>,
{
    let attempt = AtomicUsize::new(1);
    let retried = operation
        .retry(policy.backoff())
        .sleep(tokio::time::sleep)
        .when(|error| is_transient(error))
        .notify(|error, delay| {
            let failed = attempt.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                operation = what,
                attempt = failed,
                max_attempts = policy.max_attempts,
                delay_ms = delay.as_millis() as u64,
                error = %error,
                "retrying_after_transient_error"
            );
        });
    match &policy.cancel {
        Some(cancel) => tokio::select! {
            biased;
            () = cancel.cancelled() => Err(E::from(Cancelled { operation: what.to_string() })),
            result = retried => result,
        },
        None => retried.await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU32;

    #[derive(Debug, PartialEq)]
    enum Failure {
        Transient,
        Permanent,
        Cancelled,
    }

    impl From<Cancelled> for Failure {
        fn from(_: Cancelled) -> Self {
            Self::Cancelled
        }
    }

    impl Display for Failure {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "{self:?}")
        }
    }

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 4,
            initial_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(300),
            jitter: false,
            cancel: None,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn transient_errors_are_retried_until_success() {
        let calls = AtomicU32::new(0);
        let started = tokio::time::Instant::now();
        let result = retry(
            "test",
            &policy(),
            || async {
                if calls.fetch_add(1, Ordering::SeqCst) < 2 {
                    Err(Failure::Transient)
                } else {
                    Ok(7)
                }
            },
            |error| *error == Failure::Transient,
        )
        .await;
        assert_eq!(result, Ok(7));
        assert_eq!(calls.load(Ordering::SeqCst), 3);
        // 100 ms then 200 ms of (paused, auto-advanced) backoff; tokio rounds each sleep up by 1 ms.
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(300) && waited < Duration::from_millis(310),
            "{waited:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn permanent_errors_are_not_retried() {
        let calls = AtomicU32::new(0);
        let result: Result<(), _> = retry(
            "test",
            &policy(),
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(Failure::Permanent)
            },
            |error| *error == Failure::Transient,
        )
        .await;
        assert_eq!(result, Err(Failure::Permanent));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn attempts_and_delay_are_capped() {
        let calls = AtomicU32::new(0);
        let started = tokio::time::Instant::now();
        let result: Result<(), _> = retry(
            "test",
            &policy(),
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                Err(Failure::Transient)
            },
            |_| true,
        )
        .await;
        assert_eq!(result, Err(Failure::Transient));
        assert_eq!(calls.load(Ordering::SeqCst), 4);
        // 100 + 200 + 300 (capped, not 400).
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(600) && waited < Duration::from_millis(610),
            "{waited:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_ends_the_attempt_in_flight_and_every_later_one() {
        let token = CancellationToken::new();
        let calls = AtomicU32::new(0);
        let policy = RetryPolicy {
            max_attempts: 10,
            initial_delay: Duration::from_secs(5),
            ..policy()
        }
        .cancelled_by(token.clone());
        let canceller = token.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(7)).await;
            canceller.cancel();
        });
        let started = tokio::time::Instant::now();
        let result: Result<(), _> = retry(
            "test",
            &policy,
            || async {
                calls.fetch_add(1, Ordering::SeqCst);
                // An attempt that would hang for a minute.
                tokio::time::sleep(Duration::from_secs(60)).await;
                Err(Failure::Transient)
            },
            |error| *error == Failure::Transient,
        )
        .await;
        assert_eq!(result, Err(Failure::Cancelled));
        assert_eq!(started.elapsed(), Duration::from_secs(7), "not a minute");
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        let after: Result<(), _> =
            retry("test", &policy, || async { Ok(()) }, |_: &Failure| true).await;
        assert_eq!(
            after,
            Err(Failure::Cancelled),
            "nothing starts after shutdown"
        );
    }
}
