//! The service itself: wiring the commands and the periodic cycle to `homelab`.

use crate::commands::{self, Command, RecentRequests, Reply};
use homelab::diagnose::{Check, Step};
use homelab::{Context, Health, Message, Service, Settings, StateStore};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::num::NonZeroU64;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::Instrument;

/// This service's own settings; the common ones come from `homelab`.
#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub(crate) struct ExampleSettings {
    /// `EXAMPLE_INTERVAL_SECONDS`: how often the periodic cycle runs.
    pub(crate) example_interval_seconds: NonZeroU64,
}

impl Default for ExampleSettings {
    fn default() -> Self {
        Self {
            example_interval_seconds: NonZeroU64::new(30).expect("30 is not zero"),
        }
    }
}

/// What survives a restart.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct ExampleState {
    cycles: u64,
    pings_answered: u64,
    recent_requests: RecentRequests,
}

pub(crate) struct ExampleService {
    interval: Duration,
    started: Instant,
    store: StateStore<ExampleState>,
    state: Mutex<ExampleState>,
    last_cycle: Mutex<Option<Instant>>,
}

impl Service for ExampleService {
    const NAME: &'static str = "example-service";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const ABOUT: &'static str = "Answers pings, publishes a tick every interval, keeps its state.";
    type Settings = ExampleSettings;

    fn new(ctx: &Context<ExampleSettings>) -> anyhow::Result<Self> {
        let store = ctx.state_store::<ExampleState>();
        let loaded = store.load();
        tracing::info!(
            cycles = loaded.state.cycles,
            saved_at = ?loaded.saved_at,
            "state_loaded"
        );
        Ok(Self {
            interval: Duration::from_secs(ctx.settings().example_interval_seconds.get()),
            started: Instant::now(),
            store,
            state: Mutex::new(loaded.state),
            last_cycle: Mutex::new(None),
        })
    }

    async fn run(self: Arc<Self>, ctx: Context<ExampleSettings>) -> anyhow::Result<()> {
        let commands = homelab::messages::command::topic(Self::NAME);
        let service = self.clone();
        let replies = ctx.clone();
        ctx.subscribe(&commands, move |message: Message<Command>| {
            let service = service.clone();
            let replies = replies.clone();
            async move { service.on_command(&replies, &message.payload).await }
        })
        .await?;
        tracing::info!(topic = %commands, interval_seconds = self.interval.as_secs(), "service_started");

        loop {
            let cycle = tracing::info_span!("cycle");
            if let Err(error) = self.cycle(&ctx).instrument(cycle).await {
                tracing::error!(error = format!("{error:#}"), "cycle_failed");
            }
            if !ctx.sleep(self.interval).await {
                return Ok(());
            }
        }
    }

    fn health(&self) -> Health {
        let state = self.state.lock().expect("poisoned");
        let last_cycle = *self.last_cycle.lock().expect("poisoned");
        let since_cycle = last_cycle.unwrap_or(self.started).elapsed();
        let health = if since_cycle > self.interval * 3 {
            Health::degraded(format!("no cycle for {}s", since_cycle.as_secs()))
        } else {
            Health::online()
        };
        health
            .with("cycles", state.cycles)
            .with("pings_answered", state.pings_answered)
            .with(
                "last_cycle_age_seconds",
                last_cycle.map(|at| at.elapsed().as_secs()),
            )
    }

    fn diagnose_steps(settings: &Settings<ExampleSettings>) -> Vec<Step> {
        let data_dir = settings.common.data_dir.clone();
        vec![Step::new("data_dir", check_data_dir(data_dir))]
    }
}

impl ExampleService {
    /// One periodic cycle: count, publish, save, and tell the healthcheck we are alive.
    async fn cycle(&self, ctx: &Context<ExampleSettings>) -> anyhow::Result<()> {
        let (cycle, pings) = {
            let mut state = self.state.lock().expect("poisoned");
            state.cycles += 1;
            (state.cycles, state.pings_answered)
        };
        ctx.publish("tick", &json!({"cycle": cycle, "pings_answered": pings}))
            .await?;
        self.save().await;
        *self.last_cycle.lock().expect("poisoned") = Some(Instant::now());
        ctx.touch_health();
        tracing::debug!(cycle, "cycle_completed");
        Ok(())
    }

    async fn on_command(
        &self,
        ctx: &Context<ExampleSettings>,
        command: &Command,
    ) -> anyhow::Result<()> {
        let reply = commands::decide(
            command,
            &self.state.lock().expect("poisoned").recent_requests,
        )?;
        match reply {
            Reply::Pong { request_id } => {
                ctx.publish(
                    "pong",
                    &homelab::messages::command::Pong {
                        request_id: request_id.clone(),
                    },
                )
                .await?;
                // Recorded as answered only once the broker has the pong: a crash in
                // between answers the redelivered ping again instead of never.
                while !ctx.mqtt().flush(Duration::from_secs(5)).await {
                    if ctx.shutdown().is_cancelled() {
                        anyhow::bail!("shutting down before the pong was delivered");
                    }
                }
                {
                    let mut state = self.state.lock().expect("poisoned");
                    state.pings_answered += 1;
                    if let Some(id) = &request_id {
                        state.recent_requests.record(id);
                    }
                }
                tracing::info!(request_id = ?request_id, "ping_answered");
            }
            Reply::AlreadyAnswered => {
                tracing::info!(request_id = ?command.request_id, "duplicate_command_ignored");
            }
        }
        // Saved after every command so that a redelivery after a restart is still recognised.
        self.save().await;
        Ok(())
    }

    /// Snapshot under the lock, written off the async workers.
    async fn save(&self) {
        let snapshot = self.store.snapshot(&self.state.lock().expect("poisoned"));
        if let Err(error) = async { snapshot?.write().await }.await {
            tracing::warn!(error = %error, "state_save_failed");
        }
    }
}

/// `DATA_DIR` must be writable (state, health file) and its state file readable.
async fn check_data_dir(data_dir: PathBuf) -> Check {
    let probe = data_dir.join(".diagnose-write-probe");
    let writable = std::fs::create_dir_all(&data_dir)
        .and_then(|()| std::fs::write(&probe, b"probe"))
        .and_then(|()| std::fs::remove_file(&probe));
    if let Err(error) = writable {
        return Check::fail(format!("{} is not writable: {error}", data_dir.display()));
    }
    let state_file = data_dir.join("state.json");
    match std::fs::read(&state_file) {
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            Check::pass(format!("{} writable, no state yet", data_dir.display()))
        }
        Err(error) => Check::fail(format!("cannot read {}: {error}", state_file.display())),
        Ok(bytes) => match serde_json::from_slice::<serde_json::Value>(&bytes) {
            Ok(value) => Check::pass(format!(
                "{} writable, state saved at {}",
                data_dir.display(),
                value["saved_at"].as_str().unwrap_or("?")
            )),
            Err(error) => Check::warn(format!(
                "{} is corrupt ({error}); the service will set it aside and start fresh",
                state_file.display()
            )),
        },
    }
}
