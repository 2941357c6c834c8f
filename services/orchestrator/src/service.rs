//! Wiring: the other services' messages into the house view, Telegram's updates into
//! the assistant, health-monitor's proposals and ev-forecast's questions to the chats,
//! and the nightly consolidation.

use crate::assistant::Assistant;
use crate::house::{House, Seen};
use crate::llm::Llm;
use crate::settings::{Config, OrchestratorSettings};
use chrono::{Timelike, Utc};
use homelab::diagnose::{Check, Step};
use homelab::messages::{ev_forecast, health_monitor, pv_forecast, sim_home, smart_ev_charging};
use homelab::telegram::Telegram;
use homelab::{Context, Health, Message, Service, Settings, StateStore};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long one `getUpdates` waits for a message.
const POLL_WAIT: Duration = Duration::from_secs(25);
const POLL_RETRY: Duration = Duration::from_secs(5);

pub(crate) struct OrchestratorService {
    config: Config,
    house: Arc<Mutex<House>>,
    assistant: Arc<Assistant>,
    store: StateStore<PollState>,
    poll: Mutex<PollState>,
    telegram_error: Mutex<Option<String>>,
}

/// Telegram's next update id: an update is fetched again until it was handled.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct PollState {
    offset: i64,
}

impl Service for OrchestratorService {
    const NAME: &'static str = "orchestrator";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const ABOUT: &'static str =
        "The household's Telegram assistant: a language model with the house's tools, memory, and a tap to confirm every change.";
    type Settings = OrchestratorSettings;

    fn new(ctx: &Context<OrchestratorSettings>) -> anyhow::Result<Self> {
        let config = Config::from_settings(ctx.settings()).map_err(anyhow::Error::msg)?;
        let time_zone = ctx.common().time_zone()?;
        let house = Arc::new(Mutex::new(House::default()));
        let telegram = config
            .telegram
            .as_ref()
            .map(|telegram| Telegram::new(&telegram.api_url, telegram.token.clone()));
        let allowed = config
            .telegram
            .as_ref()
            .map(|telegram| telegram.allowed_chats.clone())
            .unwrap_or_default();
        let llm = Llm::new(config.provider.clone(), ctx.shutdown().clone());
        let assistant = Arc::new(Assistant::new(
            llm,
            telegram,
            allowed,
            ctx.mqtt().clone(),
            house.clone(),
            config.limits,
            time_zone,
            &ctx.common().data_dir,
        ));
        let store = ctx.state_store::<PollState>();
        let poll = store.load().state;
        tracing::info!(
            provider = config.provider.kind.as_str(),
            model = %config.provider.model,
            embeddings = ?config.provider.embedding_model,
            telegram = config.telegram.is_some(),
            "assistant_configured"
        );
        Ok(Self {
            config,
            house,
            assistant,
            store,
            poll: Mutex::new(poll),
            telegram_error: Mutex::new(None),
        })
    }

    async fn run(self: Arc<Self>, ctx: Context<OrchestratorSettings>) -> anyhow::Result<()> {
        self.follow_the_house(&ctx).await?;
        self.follow_requests(&ctx).await?;
        let nightly = tokio::spawn(self.clone().consolidate_nightly(ctx.clone()));
        tracing::info!("service_started");
        match self.config.telegram.clone() {
            Some(telegram) => {
                self.poll_telegram(&ctx, &Telegram::new(&telegram.api_url, telegram.token))
                    .await;
            }
            None => {
                tracing::warn!("telegram_not_configured_set_TELEGRAM_BOT_TOKEN");
                while ctx.sleep(Duration::from_secs(30)).await {
                    ctx.touch_health();
                }
            }
        }
        nightly.await?;
        Ok(())
    }

    fn health(&self) -> Health {
        let counters = self.assistant.counters.lock().expect("poisoned").clone();
        let health = if self.config.telegram.is_none() {
            Health::degraded("TELEGRAM_BOT_TOKEN is empty: nobody can talk to the assistant")
        } else if let Some(error) = self.telegram_error.lock().expect("poisoned").clone() {
            Health::degraded(format!("telegram: {error}"))
        } else {
            Health::online()
        };
        health
            .with("provider", self.config.provider.kind.as_str())
            .with("model", &self.config.provider.model)
            .with("messages_answered", counters.messages_answered)
            .with("provider_failures", counters.provider_failures)
            .with("last_provider_error", counters.last_provider_error)
            .with("memory", self.assistant.memory_counts())
    }

    fn diagnose_steps(settings: &Settings<OrchestratorSettings>) -> Vec<Step> {
        let config = Config::from_settings(&settings.service);
        let data_dir = settings.common.data_dir.clone();
        let mut steps = vec![Step::new("memory", check_memory(data_dir))];
        let Ok(config) = config else {
            return steps;
        };
        let telegram = config.telegram.clone();
        steps.push(Step::new("telegram", async move {
            let Some(telegram) = telegram else {
                return Check::warn(
                    "TELEGRAM_BOT_TOKEN is empty: nobody can talk to the assistant",
                );
            };
            let chats = telegram.allowed_chats.len();
            match Telegram::new(&telegram.api_url, telegram.token)
                .get_me()
                .await
            {
                Ok(name) => Check::pass(format!("bot @{name}, {chats} allowed chat(s)")),
                Err(error) => Check::fail(error.to_string()),
            }
        }));
        let provider = config.provider;
        steps.push(Step::new("llm", async move {
            let llm = Llm::new(provider.clone(), tokio_util::sync::CancellationToken::new());
            match llm.list_models().await {
                Ok(models) => Check::pass(format!(
                    "{} answers ({models} models listed); using {}",
                    provider.kind.as_str(),
                    provider.model
                )),
                Err(error) => Check::fail(error.to_string()),
            }
        }));
        steps
    }
}

impl OrchestratorService {
    /// Keeps the latest of each message the tools read.
    async fn follow_the_house(&self, ctx: &Context<OrchestratorSettings>) -> anyhow::Result<()> {
        self.follow(ctx, smart_ev_charging::STATUS_TOPIC, |house, seen| {
            house.charging = Some(seen)
        })
        .await?;
        self.follow(ctx, pv_forecast::UPDATED_TOPIC, |house, seen| {
            house.pv = Some(seen)
        })
        .await?;
        self.follow(ctx, ev_forecast::PLAN_TOPIC, |house, seen| {
            house.plan = Some(seen)
        })
        .await?;
        self.follow(ctx, sim_home::STATUS_TOPIC, |house, seen| {
            house.simulated = Some(seen)
        })
        .await?;
        let house = self.house.clone();
        ctx.mqtt()
            .subscribe_text(
                &homelab::discovery::state_topic("smart-ev-charging", "mode"),
                move |message: Message<String>| {
                    let house = house.clone();
                    async move {
                        house.lock().expect("poisoned").mode = Some(Seen {
                            at: Utc::now(),
                            value: message.payload.trim().to_string(),
                        });
                        Ok(())
                    }
                },
            )
            .await?;
        Ok(())
    }

    async fn follow<T>(
        &self,
        ctx: &Context<OrchestratorSettings>,
        topic: &str,
        keep: fn(&mut House, Seen<T>),
    ) -> anyhow::Result<()>
    where
        T: DeserializeOwned + Send + 'static,
    {
        let house = self.house.clone();
        let topic_name = topic.to_string();
        ctx.subscribe(topic, move |message: Message<T>| {
            let house = house.clone();
            let topic_name = topic_name.clone();
            async move {
                tracing::debug!(topic = %topic_name, "house_message_received");
                let seen = Seen {
                    at: Utc::now(),
                    value: message.payload,
                };
                keep(&mut house.lock().expect("poisoned"), seen);
                Ok(())
            }
        })
        .await?;
        Ok(())
    }

    /// health-monitor's proposed repairs and ev-forecast's questions go to the people.
    async fn follow_requests(&self, ctx: &Context<OrchestratorSettings>) -> anyhow::Result<()> {
        let house = self.house.clone();
        let assistant = self.assistant.clone();
        ctx.subscribe(
            health_monitor::STATUS_TOPIC,
            move |message: Message<health_monitor::Status>| {
                let house = house.clone();
                let assistant = assistant.clone();
                async move {
                    let actions = message.payload.pending_actions.clone();
                    house.lock().expect("poisoned").health = Some(Seen {
                        at: Utc::now(),
                        value: message.payload,
                    });
                    assistant.offer_actions(&actions, Utc::now()).await;
                    Ok(())
                }
            },
        )
        .await?;
        let assistant = self.assistant.clone();
        ctx.subscribe(
            ev_forecast::CLARIFICATION_TOPIC,
            move |message: Message<ev_forecast::Clarification>| {
                let assistant = assistant.clone();
                async move {
                    tracing::info!(place = %message.payload.place, "clarification_received");
                    assistant.ask(&message.payload, Utc::now()).await;
                    Ok(())
                }
            },
        )
        .await?;
        Ok(())
    }

    /// Long polling: one update at a time, the offset saved after each, so an update is
    /// handled once even across a restart (a crash mid-answer answers it again).
    async fn poll_telegram(&self, ctx: &Context<OrchestratorSettings>, telegram: &Telegram) {
        loop {
            let offset = self.poll.lock().expect("poisoned").offset;
            let polled = tokio::select! {
                () = ctx.shutdown().cancelled() => return,
                polled = telegram.get_updates(offset, POLL_WAIT) => polled,
            };
            match polled {
                Ok((updates, next)) => {
                    *self.telegram_error.lock().expect("poisoned") = None;
                    ctx.touch_health();
                    for update in updates {
                        let id = update.update_id;
                        tokio::select! {
                            () = ctx.shutdown().cancelled() => return,
                            () = self.assistant.handle(update, Utc::now()) => {}
                        }
                        self.save_offset(id + 1).await;
                    }
                    self.save_offset(next).await;
                }
                Err(error) => {
                    tracing::warn!(error = %error, "telegram_poll_failed");
                    *self.telegram_error.lock().expect("poisoned") = Some(error.to_string());
                    if !ctx.sleep(POLL_RETRY).await {
                        return;
                    }
                }
            }
        }
    }

    async fn save_offset(&self, offset: i64) {
        let snapshot = {
            let mut poll = self.poll.lock().expect("poisoned");
            if offset <= poll.offset {
                return;
            }
            poll.offset = offset;
            self.store.snapshot(&poll)
        };
        if let Err(error) = async { snapshot?.write().await }.await {
            tracing::warn!(error = %error, "state_save_failed");
        }
    }

    /// Once a day at `MEMORY_CONSOLIDATION_HOUR` (UTC).
    async fn consolidate_nightly(self: Arc<Self>, ctx: Context<OrchestratorSettings>) {
        let mut done_on = None;
        while ctx.sleep(Duration::from_secs(60)).await {
            let now = Utc::now();
            let today = now.date_naive();
            if now.hour() == self.config.consolidation_hour && done_on != Some(today) {
                done_on = Some(today);
                self.assistant.consolidate(now).await;
            }
        }
    }
}

/// `DATA_DIR/memory` must be writable; says how big the notebook is.
async fn check_memory(data_dir: std::path::PathBuf) -> Check {
    let dir = data_dir.join("memory");
    let probe = dir.join(".diagnose-write-probe");
    let writable = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(&probe, b"probe"))
        .and_then(|()| std::fs::remove_file(&probe));
    if let Err(error) = writable {
        return Check::fail(format!("{} is not writable: {error}", dir.display()));
    }
    match std::fs::read_to_string(dir.join("memory.md")) {
        Ok(notes) => Check::pass(format!(
            "{} writable, memory.md {} characters",
            dir.display(),
            notes.chars().count()
        )),
        Err(_) => Check::pass(format!("{} writable, no memory yet", dir.display())),
    }
}
