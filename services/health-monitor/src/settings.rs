//! health-monitor's settings (`TELEGRAM_*`, `DAILY_SUMMARY_HOUR`, `DOCKER_HOST` and
//! `HEALTH_MONITOR_*`), checked once into [`Config`] with errors that name the variable.

use crate::issues::{AlertPolicy, QuietHours};
use homelab::secret::Secret;
use serde::Deserialize;
use std::time::Duration;

#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub(crate) struct MonitorSettings {
    /// Empty: alerts go to the log only.
    pub(crate) telegram_bot_token: Secret,
    /// Comma-separated chat ids that get every alert.
    pub(crate) telegram_chat_ids: String,
    /// The Bot API, or a self-hosted Bot API server.
    pub(crate) telegram_api_url: String,
    /// Local hour of the daily summary.
    pub(crate) daily_summary_hour: u32,
    /// The Docker Engine; empty means the standard unix socket.
    pub(crate) docker_host: String,
    /// Only this Compose project's containers (empty: every Compose container).
    pub(crate) health_monitor_docker_project: String,
    /// The node name in the event store's path.
    pub(crate) health_monitor_node: String,
    pub(crate) health_monitor_container_interval_seconds: u64,
    pub(crate) health_monitor_infra_interval_seconds: u64,
    pub(crate) health_monitor_entity_interval_seconds: u64,
    pub(crate) health_monitor_diagnose_interval_seconds: u64,
    /// Heartbeat intervals a service may miss before it counts as down.
    pub(crate) health_monitor_missed_heartbeats: u32,
    /// Comma-separated HA entities that must not be unavailable or stale.
    pub(crate) health_monitor_entities: String,
    pub(crate) health_monitor_entity_stale_minutes: u64,
    pub(crate) health_monitor_alert_cooldown_minutes: u64,
    /// `22-7`: local hours in which only critical alerts go out; empty: none.
    pub(crate) health_monitor_quiet_hours: String,
    /// No second restart of a container within this time of the last one.
    pub(crate) health_monitor_action_cooldown_minutes: u64,
    /// Event days older than this are deleted (the newest day always stays).
    pub(crate) health_monitor_events_days: u64,
}

impl Default for MonitorSettings {
    fn default() -> Self {
        Self {
            telegram_bot_token: Secret::default(),
            telegram_chat_ids: String::new(),
            telegram_api_url: "https://api.telegram.org".into(),
            daily_summary_hour: 8,
            docker_host: String::new(),
            health_monitor_docker_project: String::new(),
            health_monitor_node: "main".into(),
            health_monitor_container_interval_seconds: 120,
            health_monitor_infra_interval_seconds: 300,
            health_monitor_entity_interval_seconds: 300,
            health_monitor_diagnose_interval_seconds: 1800,
            health_monitor_missed_heartbeats: 3,
            health_monitor_entities: String::new(),
            health_monitor_entity_stale_minutes: 120,
            health_monitor_alert_cooldown_minutes: 30,
            health_monitor_quiet_hours: String::new(),
            health_monitor_action_cooldown_minutes: 30,
            health_monitor_events_days: 30,
        }
    }
}

/// The settings, checked.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) telegram: Option<(String, Secret, Vec<String>)>,
    pub(crate) summary_hour: u32,
    pub(crate) docker_host: String,
    pub(crate) docker_project: String,
    pub(crate) node: String,
    pub(crate) container_interval: Option<Duration>,
    pub(crate) infra_interval: Option<Duration>,
    pub(crate) entity_interval: Option<Duration>,
    pub(crate) diagnose_interval: Option<Duration>,
    pub(crate) missed_heartbeats: i32,
    pub(crate) entities: Vec<String>,
    pub(crate) entity_stale: chrono::Duration,
    pub(crate) policy: AlertPolicy,
    pub(crate) action_cooldown: chrono::Duration,
    pub(crate) events_kept: Duration,
}

fn every(seconds: u64) -> Option<Duration> {
    (seconds > 0).then(|| Duration::from_secs(seconds))
}

fn minutes(value: u64) -> chrono::Duration {
    chrono::Duration::minutes(value.min(10_000_000) as i64)
}

impl MonitorSettings {
    pub(crate) fn config(&self, zone: chrono_tz::Tz) -> anyhow::Result<Config> {
        let chats: Vec<String> = self
            .telegram_chat_ids
            .split(',')
            .map(str::trim)
            .filter(|chat| !chat.is_empty())
            .map(str::to_string)
            .collect();
        for chat in &chats {
            let digits = chat.strip_prefix('-').unwrap_or(chat);
            if !(digits.chars().all(|c| c.is_ascii_digit()) || chat.starts_with('@')) {
                anyhow::bail!(
                    "TELEGRAM_CHAT_IDS: {chat:?} is not a chat id (a number, or @channel)"
                );
            }
        }
        let telegram = match (self.telegram_bot_token.is_empty(), chats.is_empty()) {
            (true, _) => None,
            (false, true) => anyhow::bail!(
                "TELEGRAM_CHAT_IDS is empty: set the chats that get alerts, or clear TELEGRAM_BOT_TOKEN"
            ),
            (false, false) => {
                let url = self.telegram_api_url.trim();
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    anyhow::bail!("TELEGRAM_API_URL={url:?} is not an http(s) address");
                }
                Some((url.to_string(), self.telegram_bot_token.clone(), chats))
            }
        };
        if self.daily_summary_hour > 23 {
            anyhow::bail!("DAILY_SUMMARY_HOUR={} is not 0-23", self.daily_summary_hour);
        }
        if self.health_monitor_missed_heartbeats == 0 || self.health_monitor_missed_heartbeats > 100
        {
            anyhow::bail!(
                "HEALTH_MONITOR_MISSED_HEARTBEATS={} is not 1-100",
                self.health_monitor_missed_heartbeats
            );
        }
        let quiet = QuietHours::parse(&self.health_monitor_quiet_hours)
            .map_err(|error| anyhow::anyhow!("HEALTH_MONITOR_QUIET_HOURS: {error}"))?;
        let entities: Vec<String> = self
            .health_monitor_entities
            .split(',')
            .map(str::trim)
            .filter(|entity| !entity.is_empty())
            .map(str::to_string)
            .collect();
        if let Some(bad) = entities
            .iter()
            .find(|entity| !homelab::ha::valid_entity_id(entity))
        {
            anyhow::bail!(
                "HEALTH_MONITOR_ENTITIES: {bad:?} is not an entity id like sensor.pv_power"
            );
        }
        let node = self.health_monitor_node.trim();
        if node.is_empty()
            || !node
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            anyhow::bail!("HEALTH_MONITOR_NODE={node:?} must be letters, digits, - or _");
        }
        let docker_host = match self.docker_host.trim() {
            "" => "unix:///var/run/docker.sock".to_string(),
            host => host.to_string(),
        };
        Ok(Config {
            telegram,
            summary_hour: self.daily_summary_hour,
            docker_host,
            docker_project: self.health_monitor_docker_project.trim().to_string(),
            node: node.to_string(),
            container_interval: every(self.health_monitor_container_interval_seconds),
            infra_interval: every(self.health_monitor_infra_interval_seconds),
            entity_interval: every(self.health_monitor_entity_interval_seconds),
            diagnose_interval: every(self.health_monitor_diagnose_interval_seconds),
            missed_heartbeats: self.health_monitor_missed_heartbeats as i32,
            entities,
            entity_stale: minutes(self.health_monitor_entity_stale_minutes),
            policy: AlertPolicy {
                cooldown: minutes(self.health_monitor_alert_cooldown_minutes),
                quiet,
                zone,
            },
            action_cooldown: minutes(self.health_monitor_action_cooldown_minutes),
            events_kept: Duration::from_secs(self.health_monitor_events_days.max(1) * 86_400),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(change: impl FnOnce(&mut MonitorSettings)) -> anyhow::Result<Config> {
        let mut settings = MonitorSettings::default();
        change(&mut settings);
        settings.config(chrono_tz::Europe::Berlin)
    }

    #[test]
    fn defaults_are_valid_and_log_alerts_without_a_token() {
        let config = with(|_| {}).unwrap();
        assert!(config.telegram.is_none());
        assert_eq!(config.docker_host, "unix:///var/run/docker.sock");
        assert_eq!(config.container_interval, Some(Duration::from_secs(120)));
    }

    #[test]
    fn bad_settings_are_refused_naming_the_variable() {
        type Change = Box<dyn FnOnce(&mut MonitorSettings)>;
        let cases: [(&str, Change); 7] = [
            (
                "TELEGRAM_CHAT_IDS is empty",
                Box::new(|s| s.telegram_bot_token = Secret::new("1:x")),
            ),
            (
                "TELEGRAM_CHAT_IDS: \"abc\"",
                Box::new(|s| s.telegram_chat_ids = "12, abc".into()),
            ),
            (
                "TELEGRAM_API_URL",
                Box::new(|s| {
                    s.telegram_bot_token = Secret::new("1:x");
                    s.telegram_chat_ids = "12".into();
                    s.telegram_api_url = "api.telegram.org".into();
                }),
            ),
            (
                "DAILY_SUMMARY_HOUR=24",
                Box::new(|s| s.daily_summary_hour = 24),
            ),
            (
                "HEALTH_MONITOR_QUIET_HOURS",
                Box::new(|s| s.health_monitor_quiet_hours = "22".into()),
            ),
            (
                "HEALTH_MONITOR_ENTITIES: \"pv power\"",
                Box::new(|s| s.health_monitor_entities = "sensor.a,pv power".into()),
            ),
            (
                "HEALTH_MONITOR_NODE",
                Box::new(|s| s.health_monitor_node = "../x".into()),
            ),
        ];
        for (expected, change) in cases {
            let error = with(change).unwrap_err().to_string();
            assert!(error.contains(expected), "{expected}: {error}");
        }
        let chats = with(|s| {
            s.telegram_bot_token = Secret::new("1:x");
            s.telegram_chat_ids = "12, -100123 ,@house".into();
        })
        .unwrap();
        assert_eq!(chats.telegram.unwrap().2, ["12", "-100123", "@house"]);
    }
}
