//! The service: layers feed findings into the issue book; its changes become events,
//! alerts in the outbox and proposed actions; approved actions are executed.

use crate::actions::{self, Action, ActionStore, Stage};
use crate::checks;
use crate::docker::{self, Container, Docker};
use crate::events::EventLog;
use crate::findings::{Finding, Kind, Layer, Severity};
use crate::heartbeats::Heartbeats;
use crate::issues::{self, Change, IssueBook, Transition};
use crate::outbox::{Outbox, Queued};
use crate::settings::{Config, MonitorSettings};
use chrono::{DateTime, NaiveDate, Utc};
use homelab::diagnose::{Check, Step};
use homelab::discovery::{self, Entity};
use homelab::messages::health_monitor as msg;
use homelab::messages::heartbeat::{self as heartbeat_msg, Heartbeat};
use homelab::telegram::Telegram;
use homelab::{Context, Health, Message, Service, Settings, StateStore};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// What survives a restart: the open issues (so nothing is alerted twice) and the day
/// of the last summary.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub(crate) struct MonitorState {
    book: IssueBook,
    last_summary_on: Option<NaiveDate>,
}

#[derive(Default)]
struct Live {
    state: MonitorState,
    layers: BTreeMap<Layer, (Option<DateTime<Utc>>, Option<String>)>,
    containers: Vec<Container>,
    diagnose: BTreeMap<String, msg::DiagnoseStatus>,
    recent_events: std::collections::VecDeque<msg::RecentEvent>,
    announced: BTreeSet<String>,
    alerts_waiting: usize,
    oldest_waiting: Option<DateTime<Utc>>,
}

pub(crate) struct HealthMonitorService {
    config: Config,
    events: EventLog,
    outbox: Arc<Outbox>,
    actions: ActionStore,
    telegram: Option<Telegram>,
    store: StateStore<MonitorState>,
    heartbeats: Mutex<Heartbeats>,
    live: Mutex<Live>,
    docker: tokio::sync::Mutex<Option<Docker>>,
    /// Wakes the main loop: an alert queued, an action approved.
    wake: Notify,
    /// Wakes the container layer: after a restart, look again at once.
    recheck_containers: Notify,
    started: std::time::Instant,
    /// How long after start a service may still be unheard of (retained heartbeats).
    settle: Duration,
}

fn now() -> DateTime<Utc> {
    Utc::now()
}

/// How many finished actions and events the status carries.
const RECENT: usize = 10;

/// One line of text for an event: what it is about, and what happened.
fn recent_event(
    ts: &DateTime<Utc>,
    kind: &str,
    fields: &serde_json::Map<String, Value>,
) -> msg::RecentEvent {
    let text = ["summary", "outcome", "reason"]
        .iter()
        .find_map(|key| fields.get(*key).and_then(Value::as_str))
        .map(str::to_string)
        .or_else(|| {
            ["target", "action_id"]
                .iter()
                .find_map(|key| fields.get(*key).and_then(Value::as_str))
                .map(str::to_string)
        })
        .unwrap_or_default();
    msg::RecentEvent {
        ts: ts.to_rfc3339(),
        kind: kind.to_string(),
        text,
    }
}

/// Blocking file work, off the async workers.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(work)
        .await
        .expect("blocking file work panicked")
}

fn problem_entity(service: &str) -> Entity {
    Entity::binary_sensor(
        &format!("{}_problem", service.replace('-', "_")),
        &format!("{service} problem"),
    )
    .device_class("problem")
}

impl Service for HealthMonitorService {
    const NAME: &'static str = "health-monitor";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const ABOUT: &'static str =
        "Watches heartbeats, containers, Home Assistant and entities; alerts on Telegram; restarts only what a person approved.";
    type Settings = MonitorSettings;

    /// The infrastructure layer asks HA (and Influx, when set); the entity layer
    /// reads the listed entities.
    fn uses_home_assistant(settings: &Settings<MonitorSettings>) -> bool {
        let own = &settings.service;
        own.health_monitor_infra_interval_seconds > 0
            || (own.health_monitor_entity_interval_seconds > 0
                && !own.health_monitor_entities.trim().is_empty())
    }

    fn uses_influx(settings: &Settings<MonitorSettings>) -> bool {
        settings.service.health_monitor_infra_interval_seconds > 0
            && !settings.common.influxdb_url.trim().is_empty()
    }

    fn new(ctx: &Context<MonitorSettings>) -> anyhow::Result<Self> {
        let config = ctx.settings().config(ctx.common().time_zone()?)?;
        let data_dir = &ctx.common().data_dir;
        let store = ctx.state_store::<MonitorState>();
        let loaded = store.load();
        let interval = match ctx.common().heartbeat_interval_seconds {
            0 => 60,
            seconds => seconds,
        };
        Ok(Self {
            events: EventLog::new(data_dir, &config.node).keeping(config.events_kept),
            outbox: Arc::new(Outbox::new(data_dir)),
            actions: ActionStore::new(data_dir),
            telegram: config
                .telegram
                .as_ref()
                .map(|(url, token, _)| Telegram::new(url, token.clone())),
            heartbeats: Mutex::new(Heartbeats::new(
                chrono::Duration::seconds(interval as i64),
                config.missed_heartbeats,
                Self::NAME,
            )),
            live: Mutex::new(Live {
                state: loaded.state,
                ..Live::default()
            }),
            store,
            docker: tokio::sync::Mutex::new(None),
            wake: Notify::new(),
            recheck_containers: Notify::new(),
            started: std::time::Instant::now(),
            settle: Duration::from_secs(interval.clamp(5, 60) * 2),
            config,
        })
    }

    async fn run(self: Arc<Self>, ctx: Context<MonitorSettings>) -> anyhow::Result<()> {
        self.recover_files().await;
        let service = self.clone();
        ctx.subscribe(heartbeat_msg::FILTER, move |message: Message<Heartbeat>| {
            let service = service.clone();
            async move {
                service
                    .heartbeats
                    .lock()
                    .expect("poisoned")
                    .record(&message.payload, now());
                service.wake.notify_one();
                Ok(())
            }
        })
        .await?;
        let service = self.clone();
        let replies = ctx.clone();
        ctx.subscribe(
            msg::DECISIONS_FILTER,
            move |message: Message<msg::Decision>| {
                let service = service.clone();
                let replies = replies.clone();
                async move { service.on_decision(&replies, &message).await }
            },
        )
        .await?;
        self.announce("health-monitor", &ctx).await;
        tracing::info!(
            telegram = self.telegram.is_some(),
            docker_host = %self.config.docker_host,
            entities = self.config.entities.len(),
            "service_started"
        );
        self.queue_alert(
            now(),
            "startup",
            Severity::Info,
            format!(
                "ℹ️ health-monitor {} started on {}",
                Self::VERSION,
                self.config.node
            ),
            None,
        )
        .await;

        let tasks = tokio_util::task::TaskTracker::new();
        if let Some(every) = self.config.container_interval {
            tasks.spawn(self.clone().containers_loop(ctx.clone(), every));
        }
        if let Some(every) = self.config.infra_interval {
            tasks.spawn(self.clone().infrastructure_loop(ctx.clone(), every));
        }
        if let (Some(every), false) = (self.config.entity_interval, self.config.entities.is_empty())
        {
            tasks.spawn(self.clone().entities_loop(ctx.clone(), every));
        }
        if let Some(every) = self.config.diagnose_interval {
            tasks.spawn(self.clone().diagnose_loop(ctx.clone(), every));
        }
        tasks.close();

        let mut last_status: Option<(Value, tokio::time::Instant)> = None;
        loop {
            self.check_heartbeats(&ctx).await;
            self.execute_approved(&ctx).await;
            self.send_outbox().await;
            self.daily_summary().await;
            let store = self.actions.clone();
            let (pending, finished) = blocking(move || {
                let mut finished: Vec<(Stage, Action)> =
                    [Stage::Completed, Stage::Failed, Stage::Rejected]
                        .into_iter()
                        .flat_map(|stage| {
                            store
                                .list(stage)
                                .into_iter()
                                .map(move |action| (stage, action))
                        })
                        .collect();
                finished.sort_by_key(|(_, action)| std::cmp::Reverse(action.finished_at));
                finished.truncate(RECENT);
                (store.list(Stage::Pending), finished)
            })
            .await;
            let status = self.status(pending, finished);
            let stale = last_status
                .as_ref()
                .is_none_or(|(sent, at)| *sent != status || at.elapsed() > Duration::from_secs(60));
            if stale {
                match ctx
                    .mqtt()
                    .publish_json(
                        msg::STATUS_TOPIC,
                        &status,
                        homelab::mqtt::QoS::AtLeastOnce,
                        true,
                    )
                    .await
                {
                    Ok(()) => last_status = Some((status, tokio::time::Instant::now())),
                    Err(error) => tracing::warn!(error = %error, "status_publish_failed"),
                }
            }
            ctx.touch_health();
            let next = self.next_wake();
            tokio::select! {
                () = ctx.shutdown().cancelled() => break,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(next) => {}
            }
        }
        tasks.wait().await;
        Ok(())
    }

    fn health(&self) -> Health {
        let live = self.live.lock().expect("poisoned");
        let failed: Vec<String> = live
            .layers
            .iter()
            .filter_map(|(layer, (_, error))| {
                error.as_ref().map(|e| format!("{}: {e}", layer.as_str()))
            })
            .collect();
        let waiting_long = live
            .oldest_waiting
            .is_some_and(|at| now() - at > chrono::Duration::minutes(10));
        let health = if !failed.is_empty() {
            Health::degraded(failed.join("; "))
        } else if waiting_long {
            Health::degraded(format!(
                "{} alert(s) not delivered for over 10 min",
                live.alerts_waiting
            ))
        } else {
            Health::online()
        };
        health
            .with("open_issues", live.state.book.open_issues().count())
            .with("alerts_waiting", live.alerts_waiting)
    }

    fn diagnose_steps(settings: &Settings<MonitorSettings>) -> Vec<Step> {
        let zone = settings.common.time_zone().unwrap_or(chrono_tz::UTC);
        let Ok(config) = settings.service.config(zone) else {
            return Vec::new(); // the config step already failed with the reason
        };
        let docker = {
            let config = config.clone();
            async move {
                match Docker::connect(&config.docker_host, &config.docker_project).await {
                    Err(error) => Check::warn(format!("{error}; the other layers still work")),
                    Ok(docker) => match docker.containers().await {
                        Ok(containers) => Check::pass(format!(
                            "{} container(s) watched at {}",
                            containers.len(),
                            config.docker_host
                        )),
                        Err(error) => Check::warn(error),
                    },
                }
            }
        };
        let telegram = async move {
            match config.telegram {
                None => Check::warn("TELEGRAM_BOT_TOKEN is not set: alerts go to the log only"),
                Some((url, token, chats)) => match Telegram::new(&url, token).get_me().await {
                    Ok(name) => Check::pass(format!("bot @{name}, {} chat(s)", chats.len())),
                    Err(error) => Check::fail(error.to_string()),
                },
            }
        };
        vec![Step::new("docker", docker), Step::new("telegram", telegram)]
    }
}

impl HealthMonitorService {
    /// At start: no half-written outbox file, no action left running by a crash.
    async fn recover_files(&self) {
        let outbox = self.outbox.clone();
        blocking(move || outbox.remove_stale_temp_files()).await;
        let events = self.events.clone();
        let today = blocking(move || events.read_day(now())).await;
        {
            let mut live = self.live.lock().expect("poisoned");
            for event in today.iter().filter(|event| event["type"] != "alert_sent") {
                let (Some(ts), Some(kind), Some(fields)) = (
                    event["ts"]
                        .as_str()
                        .and_then(|ts| DateTime::parse_from_rfc3339(ts).ok()),
                    event["type"].as_str(),
                    event.as_object(),
                ) else {
                    continue;
                };
                live.recent_events
                    .push_front(recent_event(&ts.to_utc(), kind, fields));
                live.recent_events.truncate(RECENT);
            }
        }
        let store = self.actions.clone();
        let interrupted = blocking(move || store.fail_interrupted(now())).await;
        for action in interrupted {
            self.record_event(
                "remediation_failed",
                json!({"action_id": action.id, "target": action.target, "outcome": action.outcome}),
            )
            .await;
        }
    }

    async fn record_event(&self, kind: &str, fields: Value) {
        let events = self.events.clone();
        let event = events.event(now(), kind, fields);
        if kind != "alert_sent" {
            let mut live = self.live.lock().expect("poisoned");
            live.recent_events
                .push_front(recent_event(&event.ts, kind, &event.fields));
            live.recent_events.truncate(RECENT);
        }
        let kind = kind.to_string();
        let written = blocking(move || events.append(&event)).await;
        if let Err(error) = written {
            tracing::error!(event = %kind, error = %error, "event_write_failed");
        }
    }

    async fn queue_alert(
        &self,
        at: DateTime<Utc>,
        issue_id: &str,
        severity: Severity,
        text: String,
        hold_until: Option<DateTime<Utc>>,
    ) {
        let message = Queued {
            issue_id: issue_id.to_string(),
            severity,
            text,
            created_at: at,
            hold_until: hold_until.or_else(|| self.config.policy.hold_until(severity, at)),
            sent_to: Vec::new(),
        };
        let outbox = self.outbox.clone();
        if let Err(error) = blocking(move || outbox.push(&message)).await {
            tracing::error!(issue_id, error = %error, "alert_queue_failed");
        }
        self.wake.notify_one();
    }

    fn next_wake(&self) -> Duration {
        let deadline = self.heartbeats.lock().expect("poisoned").next_deadline();
        let until = deadline
            .map(|at| (at - now()).to_std().unwrap_or(Duration::ZERO) + Duration::from_millis(50))
            .unwrap_or(Duration::from_secs(5));
        until.clamp(Duration::from_millis(100), Duration::from_secs(5))
    }

    async fn check_heartbeats(&self, ctx: &Context<MonitorSettings>) {
        let (mut findings, services): (Vec<Finding>, Vec<String>) = {
            let heartbeats = self.heartbeats.lock().expect("poisoned");
            (
                heartbeats.findings(now()),
                heartbeats
                    .services()
                    .map(|(name, _)| name.clone())
                    .collect(),
            )
        };
        // Just started: the retained heartbeats are still arriving. An issue about a
        // service not heard from yet stays open rather than "recovering" for a moment.
        if self.started.elapsed() < self.settle {
            let live = self.live.lock().expect("poisoned");
            findings.extend(
                live.state
                    .book
                    .open_issues()
                    .filter(|issue| issue.finding.layer == Layer::Heartbeats)
                    .filter(|issue| !services.contains(&issue.finding.target))
                    .map(|issue| issue.finding.clone()),
            );
        }
        for service in services {
            self.announce(&service, ctx).await;
        }
        self.apply(ctx, Layer::Heartbeats, Ok(findings)).await;
    }

    /// The problem sensor of a service, announced once.
    async fn announce(&self, service: &str, ctx: &Context<MonitorSettings>) {
        if service == Self::NAME {
            return;
        }
        let first = self
            .live
            .lock()
            .expect("poisoned")
            .announced
            .insert(service.to_string());
        if first {
            if let Err(error) =
                discovery::announce(ctx.mqtt(), Self::VERSION, &[problem_entity(service)]).await
            {
                tracing::warn!(service, error = %error, "discovery_announce_failed");
            }
        }
    }

    /// A layer's outcome into the book, and every change out as events, alerts, actions.
    async fn apply(
        &self,
        ctx: &Context<MonitorSettings>,
        layer: Layer,
        outcome: Result<Vec<Finding>, String>,
    ) {
        let at = now();
        let changes: Vec<Change> = {
            let mut live = self.live.lock().expect("poisoned");
            let findings = match &outcome {
                Ok(findings) => findings.clone(),
                Err(error) => {
                    // Its issues stay as they were; the failure is an issue of its own.
                    let mut kept: Vec<Finding> = live
                        .state
                        .book
                        .open_issues()
                        .filter(|issue| {
                            issue.finding.layer == layer && issue.finding.kind != Kind::LayerFailed
                        })
                        .map(|issue| issue.finding.clone())
                        .collect();
                    kept.push(Finding::new(
                        layer,
                        Kind::LayerFailed,
                        Severity::Warning,
                        layer.as_str(),
                        format!("health-monitor cannot check {}: {error}", layer.as_str()),
                    ));
                    kept
                }
            };
            live.layers.insert(layer, (Some(at), outcome.err()));
            live.state
                .book
                .update(layer, findings, at, &self.config.policy)
        };
        if changes.is_empty() {
            return;
        }
        for change in &changes {
            self.publish_change(ctx, change, at).await;
        }
        self.save().await;
    }

    async fn publish_change(
        &self,
        ctx: &Context<MonitorSettings>,
        change: &Change,
        at: DateTime<Utc>,
    ) {
        let finding = &change.issue.finding;
        let (opened, resolved) = finding.kind.event_types();
        let kind = if change.transition == Transition::Opened {
            opened
        } else {
            resolved
        };
        tracing::info!(
            issue_id = %finding.id,
            severity = ?finding.severity,
            transition = ?change.transition,
            summary = %finding.summary,
            "issue_changed"
        );
        self.record_event(
            kind,
            json!({
                "issue_id": finding.id,
                "check": finding.kind.as_str(),
                "severity": finding.severity,
                "target": finding.target,
                "summary": finding.summary,
            }),
        )
        .await;
        if let Some(alert) = &change.alert {
            self.queue_alert(
                at,
                &alert.issue_id,
                alert.severity,
                alert.text.clone(),
                alert.hold_until,
            )
            .await;
        }
        if matches!(finding.layer, Layer::Heartbeats)
            && matches!(finding.kind, Kind::ServiceDown | Kind::ServiceDegraded)
        {
            self.publish_problem(ctx, &finding.target).await;
        }
        if change.transition == Transition::Opened {
            self.propose(change, at).await;
        }
    }

    async fn publish_problem(&self, ctx: &Context<MonitorSettings>, service: &str) {
        let problem = self
            .live
            .lock()
            .expect("poisoned")
            .state
            .book
            .open_issues()
            .any(|issue| {
                issue.finding.target == service && issue.finding.layer == Layer::Heartbeats
            });
        let entity = problem_entity(service);
        let topic = discovery::state_topic(Self::NAME, &entity.object_id);
        let value = if problem { "ON" } else { "OFF" };
        if let Err(error) = ctx
            .mqtt()
            .publish_raw(&topic, value, homelab::mqtt::QoS::AtLeastOnce, true)
            .await
        {
            tracing::warn!(service, error = %error, "problem_state_publish_failed");
        }
    }

    /// The routing table's action for a newly opened issue, as a pending file.
    async fn propose(&self, change: &Change, at: DateTime<Utc>) {
        let finding = &change.issue.finding;
        let container = {
            let live = self.live.lock().expect("poisoned");
            live.containers
                .iter()
                .find(|c| {
                    c.name == finding.target
                        || c.service.as_deref() == Some(finding.target.as_str())
                })
                .map(|c| c.name.clone())
        };
        let Some(kind) = actions::route(finding, container.as_deref()) else {
            return;
        };
        let target = container.expect("routed only with a container");
        let action = Action {
            id: actions::action_id(kind, &target, change.issue.opened_at),
            kind,
            target: target.clone(),
            issue_id: finding.id.clone(),
            reason: finding.summary.clone(),
            created_at: at,
            decided_by: None,
            decided_at: None,
            finished_at: None,
            outcome: None,
        };
        let store = self.actions.clone();
        let cooldown = self.config.action_cooldown;
        let proposed = action.clone();
        match blocking(move || store.propose(&proposed, cooldown, at)).await {
            Ok(false) => {}
            Err(error) => {
                tracing::error!(action_id = %action.id, error = %error, "action_propose_failed")
            }
            Ok(true) => {
                self.record_event(
                    "remediation_proposed",
                    json!({"action_id": action.id, "kind": "container_restart", "target": target, "issue_id": action.issue_id}),
                )
                .await;
                self.queue_alert(
                    at,
                    &action.id,
                    finding.severity,
                    format!(
                        "🛠 Proposed: restart container {target}.\nApprove: publish {{\"by\":\"<name>\"}} to {}\nor run: health-monitor actions approve {}",
                        msg::decision_topic(&action.id, true),
                        action.id
                    ),
                    None,
                )
                .await;
            }
        }
    }

    async fn on_decision(
        &self,
        ctx: &Context<MonitorSettings>,
        message: &Message<msg::Decision>,
    ) -> anyhow::Result<()> {
        let parts: Vec<&str> = message.topic.split('/').collect();
        let (id, verb) = match parts.as_slice() {
            ["homelab", "health-monitor", "actions", id, verb] => (id.to_string(), *verb),
            _ => return Ok(()),
        };
        let by = message
            .payload
            .by
            .clone()
            .filter(|by| !by.trim().is_empty())
            .unwrap_or_else(|| "mqtt".into());
        let by: String = by.chars().take(64).collect();
        let outcome = match verb {
            "approve" | "reject" => {
                let store = self.actions.clone();
                let (id, by) = (id.clone(), by.clone());
                let approve = verb == "approve";
                blocking(move || store.decide(&id, approve, &by, now())).await
            }
            other => Err(format!("{other:?} is not approve or reject")),
        };
        let result = match &outcome {
            Ok(action) => {
                let kind = if verb == "approve" {
                    "action_approved"
                } else {
                    "action_rejected"
                };
                self.record_event(
                    kind,
                    json!({"action_id": action.id, "target": action.target, "by": by}),
                )
                .await;
                tracing::info!(action_id = %action.id, verb, by = %by, "action_decided");
                self.wake.notify_one();
                msg::ActionResult {
                    action_id: id.clone(),
                    accepted: true,
                    detail: format!("{verb}d by {by}"),
                }
            }
            Err(reason) => {
                self.record_event(
                    "decision_refused",
                    json!({"action_id": id, "verb": verb, "by": by, "reason": reason}),
                )
                .await;
                tracing::warn!(action_id = %id, verb, reason = %reason, "decision_refused");
                msg::ActionResult {
                    action_id: id.clone(),
                    accepted: false,
                    detail: reason.clone(),
                }
            }
        };
        ctx.mqtt()
            .publish_json(
                msg::ACTION_RESULT_TOPIC,
                &result,
                homelab::mqtt::QoS::AtLeastOnce,
                false,
            )
            .await?;
        Ok(())
    }

    async fn docker(&self) -> Result<Docker, String> {
        let mut docker = self.docker.lock().await;
        if let Some(docker) = docker.as_ref() {
            return Ok(docker.clone());
        }
        let connected =
            Docker::connect(&self.config.docker_host, &self.config.docker_project).await?;
        *docker = Some(connected.clone());
        Ok(connected)
    }

    /// Approved actions, one at a time: restart, wait until it runs, record the outcome.
    async fn execute_approved(&self, ctx: &Context<MonitorSettings>) {
        let store = self.actions.clone();
        let approved = blocking(move || store.list(Stage::Approved)).await;
        for action in approved {
            if ctx.shutdown().is_cancelled() {
                return;
            }
            let store = self.actions.clone();
            let id = action.id.clone();
            if blocking(move || store.advance(&id, Stage::Approved, Stage::Running, |_| {}))
                .await
                .is_err()
            {
                continue;
            }
            self.record_event(
                "remediation_started",
                json!({"action_id": action.id, "target": action.target, "approved_by": action.decided_by}),
            )
            .await;
            let result = match self.docker().await {
                Ok(docker) => self.restart_and_wait(&docker, &action.target).await,
                Err(error) => Err(error),
            };
            let (stage, kind, outcome) = match &result {
                Ok(detail) => (Stage::Completed, "remediation_completed", detail.clone()),
                Err(error) => (Stage::Failed, "remediation_failed", error.clone()),
            };
            let store = self.actions.clone();
            let id = action.id.clone();
            let recorded = outcome.clone();
            let finished = now();
            let _ = blocking(move || {
                store.advance(&id, Stage::Running, stage, |action| {
                    action.finished_at = Some(finished);
                    action.outcome = Some(recorded);
                })
            })
            .await;
            self.record_event(
                kind,
                json!({"action_id": action.id, "target": action.target, "outcome": outcome}),
            )
            .await;
            let icon = if result.is_ok() { "🔧" } else { "❌" };
            self.queue_alert(
                finished,
                &action.id,
                Severity::Warning,
                format!(
                    "{icon} restart of {} (approved by {}): {outcome}",
                    action.target,
                    action.decided_by.as_deref().unwrap_or("?")
                ),
                None,
            )
            .await;
            self.recheck_containers.notify_one();
        }
    }

    async fn restart_and_wait(&self, docker: &Docker, container: &str) -> Result<String, String> {
        docker.restart(container).await?;
        for _ in 0..60 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let containers = docker.containers().await?;
            if let Some(found) = containers.iter().find(|c| c.name == container) {
                if found.state == "running" && found.health != "unhealthy" {
                    return Ok(format!("running again (health: {})", found.health));
                }
            }
        }
        Err(format!(
            "{container} was restarted but is not running 60 s later"
        ))
    }

    async fn containers_loop(self: Arc<Self>, ctx: Context<MonitorSettings>, every: Duration) {
        loop {
            let outcome = match self.docker().await {
                Err(error) => Err(error),
                Ok(docker) => docker.containers().await,
            };
            let outcome = outcome.map(|containers| {
                let findings = docker::container_findings(&containers);
                self.live.lock().expect("poisoned").containers = containers;
                findings
            });
            if outcome.is_err() {
                // Reconnect next time: the engine may have restarted.
                *self.docker.lock().await = None;
            }
            self.apply(&ctx, Layer::Containers, outcome).await;
            tokio::select! {
                () = ctx.shutdown().cancelled() => return,
                () = self.recheck_containers.notified() => {}
                () = tokio::time::sleep(every) => {}
            }
        }
    }

    async fn infrastructure_loop(self: Arc<Self>, ctx: Context<MonitorSettings>, every: Duration) {
        loop {
            let findings = checks::infrastructure(
                ctx.home_assistant(),
                ctx.mqtt().is_connected(),
                ctx.influx(),
            )
            .await;
            self.apply(&ctx, Layer::Infrastructure, Ok(findings)).await;
            if !ctx.sleep(every).await {
                return;
            }
        }
    }

    async fn entities_loop(self: Arc<Self>, ctx: Context<MonitorSettings>, every: Duration) {
        loop {
            let outcome = checks::entities(
                ctx.home_assistant(),
                &self.config.entities,
                self.config.entity_stale,
            )
            .await;
            self.apply(&ctx, Layer::Entities, outcome).await;
            if !ctx.sleep(every).await {
                return;
            }
        }
    }

    async fn diagnose_loop(self: Arc<Self>, ctx: Context<MonitorSettings>, every: Duration) {
        // The services need a moment after a common start before their checks mean much.
        if !ctx.sleep(Duration::from_secs(60).min(every)).await {
            return;
        }
        loop {
            let outcome = match self.docker().await {
                Err(error) => Err(error),
                Ok(docker) => {
                    let containers = self.live.lock().expect("poisoned").containers.clone();
                    let (findings, reports) = checks::diagnose_sweep(&docker, &containers).await;
                    let checked_at = now().to_rfc3339();
                    let mut live = self.live.lock().expect("poisoned");
                    for (service, report) in reports {
                        let failing = checks::diagnose_findings(&service, &report)
                            .into_iter()
                            .map(|finding| finding.summary)
                            .collect::<Vec<_>>();
                        let status = msg::DiagnoseStatus {
                            checked_at: checked_at.clone(),
                            ok: failing.is_empty(),
                            failing,
                        };
                        live.diagnose.insert(service, status);
                    }
                    Ok(findings)
                }
            };
            self.apply(&ctx, Layer::Diagnose, outcome).await;
            if !ctx.sleep(every).await {
                return;
            }
        }
    }

    /// Delivers what is due: to Telegram when configured, else to the log.
    async fn send_outbox(&self) {
        let outbox = self.outbox.clone();
        let queued = blocking(move || outbox.queued()).await;
        let at = now();
        let mut waiting = 0;
        let mut oldest: Option<DateTime<Utc>> = None;
        let mut reachable = true;
        for (path, mut message) in queued {
            let due = message.hold_until.is_none_or(|until| until <= at);
            if !due || !reachable {
                waiting += 1;
                oldest = Some(oldest.map_or(message.created_at, |o| o.min(message.created_at)));
                continue;
            }
            let delivered = match (&self.telegram, &self.config.telegram) {
                (Some(telegram), Some((_, _, chats))) => {
                    let mut delivered = true;
                    let missing: Vec<String> = chats
                        .iter()
                        .filter(|chat| !message.sent_to.contains(chat))
                        .cloned()
                        .collect();
                    for chat in &missing {
                        match telegram.send_message(chat, &message.text).await {
                            Ok(()) => {
                                message.sent_to.push(chat.clone());
                                let (outbox, path, copy) =
                                    (self.outbox.clone(), path.clone(), message.clone());
                                let _ = blocking(move || outbox.update(&path, &copy)).await;
                            }
                            Err(error) if error.is_transient() => {
                                tracing::warn!(error = %error, "telegram_unreachable_alerts_kept");
                                delivered = false;
                                reachable = false;
                                break;
                            }
                            Err(error) => {
                                // A wrong chat or token: retrying cannot help; the log has it.
                                tracing::error!(chat = %chat, error = %error, text = %message.text, "alert_undeliverable");
                                message.sent_to.push(chat.clone());
                            }
                        }
                    }
                    delivered
                }
                _ => {
                    tracing::warn!(severity = ?message.severity, issue_id = %message.issue_id, text = %message.text, "alert");
                    true
                }
            };
            if delivered {
                let outbox = self.outbox.clone();
                let _ = blocking(move || outbox.done(&path)).await;
                self.record_event(
                    "alert_sent",
                    json!({"issue_id": message.issue_id, "severity": message.severity}),
                )
                .await;
            } else {
                waiting += 1;
                oldest = Some(oldest.map_or(message.created_at, |o| o.min(message.created_at)));
            }
        }
        let mut live = self.live.lock().expect("poisoned");
        live.alerts_waiting = waiting;
        live.oldest_waiting = oldest;
    }

    async fn daily_summary(&self) {
        let at = now();
        let last_sent_on = self.live.lock().expect("poisoned").state.last_summary_on;
        let Some(due) = issues::summary_due(
            at,
            self.config.policy.zone,
            self.config.summary_hour,
            last_sent_on,
        ) else {
            return;
        };
        let events = self.events.clone();
        let days = [at - chrono::Duration::days(1), at];
        let stored = blocking(move || {
            days.iter()
                .flat_map(|day| events.read_day(*day))
                .collect::<Vec<Value>>()
        })
        .await;
        let since = at - chrono::Duration::hours(24);
        let count = |opening: bool| {
            stored
                .iter()
                .filter(|event| {
                    event["ts"]
                        .as_str()
                        .and_then(|ts| DateTime::parse_from_rfc3339(ts).ok())
                        .is_some_and(|ts| ts.to_utc() >= since)
                })
                .filter(|event| {
                    event["type"].as_str().is_some_and(|kind| {
                        Kind::ALL.iter().any(|k| {
                            let (opened, resolved) = k.event_types();
                            kind == if opening { opened } else { resolved }
                        })
                    })
                })
                .count()
        };
        let (opened, resolved) = (count(true), count(false));
        let text = {
            let live = self.live.lock().expect("poisoned");
            let heartbeats = self.heartbeats.lock().expect("poisoned");
            let services: Vec<(String, String)> = heartbeats
                .services()
                .map(|(name, seen)| (name.clone(), heartbeats.state_of(seen, at).to_string()))
                .collect();
            issues::summary_text(&live.state.book, &services, opened, resolved, at)
        };
        // Info: held through quiet hours like any alert that is not critical.
        self.queue_alert(at, "daily_summary", Severity::Info, text, None)
            .await;
        self.live.lock().expect("poisoned").state.last_summary_on = Some(due);
        self.save().await;
    }

    async fn save(&self) {
        let snapshot = self
            .store
            .snapshot(&self.live.lock().expect("poisoned").state);
        if let Err(error) = async { snapshot?.write().await }.await {
            tracing::warn!(error = %error, "state_save_failed");
        }
    }

    fn status(&self, pending: Vec<Action>, finished: Vec<(Stage, Action)>) -> Value {
        let at = now();
        let live = self.live.lock().expect("poisoned");
        let heartbeats = self.heartbeats.lock().expect("poisoned");
        let status = msg::Status {
            node: self.config.node.clone(),
            layers: Layer::ALL
                .iter()
                .map(|layer| {
                    let (checked_at, error) = live.layers.get(layer).cloned().unwrap_or_default();
                    (
                        layer.as_str().to_string(),
                        msg::LayerStatus {
                            checked_at: checked_at.map(|at| at.to_rfc3339()),
                            error,
                        },
                    )
                })
                .collect(),
            services: heartbeats
                .services()
                .map(|(name, seen)| {
                    (
                        name.clone(),
                        msg::ServiceStatus {
                            status: heartbeats.state_of(seen, at).to_string(),
                            reason: seen.reason.clone(),
                            last_seen: seen.at.to_rfc3339(),
                        },
                    )
                })
                .collect(),
            containers: live
                .containers
                .iter()
                .map(|c| msg::ContainerStatus {
                    name: c.name.clone(),
                    service: c.service.clone(),
                    state: c.state.clone(),
                    health: c.health.clone(),
                    restart_count: c.restart_count,
                    oom_killed: c.oom_killed,
                })
                .collect(),
            issues: live
                .state
                .book
                .open_issues()
                .map(|issue| msg::Issue {
                    id: issue.finding.id.clone(),
                    severity: format!("{:?}", issue.finding.severity).to_lowercase(),
                    summary: issue.finding.summary.clone(),
                    since: issue.opened_at.to_rfc3339(),
                })
                .collect(),
            pending_actions: pending
                .into_iter()
                .map(|action| msg::PendingAction {
                    id: action.id,
                    kind: "container_restart".into(),
                    target: action.target,
                    reason: action.reason,
                    created_at: action.created_at.to_rfc3339(),
                })
                .collect(),
            alerts_waiting: live.alerts_waiting,
            diagnose: live.diagnose.clone(),
            recent_actions: finished
                .into_iter()
                .map(|(stage, action)| msg::FinishedAction {
                    id: action.id,
                    target: action.target,
                    stage: stage.as_str().to_string(),
                    decided_by: action.decided_by,
                    finished_at: action.finished_at.map(|at| at.to_rfc3339()),
                    outcome: action.outcome,
                })
                .collect(),
            recent_events: live.recent_events.iter().cloned().collect(),
        };
        serde_json::to_value(status).expect("the status serializes")
    }
}

/// `health-monitor actions list|approve ID|reject ID`: the same decision as over MQTT,
/// from a shell in the container; the running service picks an approval up within seconds.
pub(crate) fn actions_cli(
    data_dir: &Path,
    command: crate::ActionsCommand,
) -> std::process::ExitCode {
    use std::process::ExitCode;
    let store = ActionStore::new(data_dir);
    let events = EventLog::new(
        data_dir,
        &std::env::var("HEALTH_MONITOR_NODE").unwrap_or_else(|_| "main".into()),
    );
    let user = std::env::var("USER").unwrap_or_else(|_| "cli".into());
    let (id, approve, by) = match command {
        crate::ActionsCommand::List => {
            for stage in Stage::ALL {
                for action in store.list(stage) {
                    println!(
                        "{:<9} {}  restart {}  {}{}",
                        stage.as_str(),
                        action.id,
                        action.target,
                        action.reason,
                        action
                            .outcome
                            .map(|o| format!("  → {o}"))
                            .unwrap_or_default()
                    );
                }
            }
            return ExitCode::SUCCESS;
        }
        crate::ActionsCommand::Approve { id, by } => (id, true, by),
        crate::ActionsCommand::Reject { id, by } => (id, false, by),
    };
    let by = format!("cli:{}", by.unwrap_or(user));
    match store.decide(&id, approve, &by, Utc::now()) {
        Ok(action) => {
            let kind = if approve {
                "action_approved"
            } else {
                "action_rejected"
            };
            let _ = events.append(&events.event(
                Utc::now(),
                kind,
                json!({"action_id": action.id, "target": action.target, "by": by}),
            ));
            println!(
                "{} {}",
                if approve { "approved" } else { "rejected" },
                action.id
            );
            ExitCode::SUCCESS
        }
        Err(reason) => {
            let _ = events.append(&events.event(
                Utc::now(),
                "decision_refused",
                json!({"action_id": id, "by": by, "reason": reason}),
            ));
            eprintln!("health-monitor: {reason}");
            ExitCode::FAILURE
        }
    }
}
