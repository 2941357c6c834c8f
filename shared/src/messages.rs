//! The messages services exchange over MQTT, typed once: the publisher builds them
//! and every subscriber reads them with the same type, so that a field renamed on
//! one side cannot silently become a default on the other.

/// A field that older senders leave out and that was always true for them.
fn yes() -> bool {
    true
}

/// `homelab/<service>/heartbeat` (retained): alive, degraded, or gone and why.
pub mod heartbeat {
    use serde::{Deserialize, Serialize};
    use serde_json::{Map, Value};

    /// Every service's heartbeat.
    pub const FILTER: &str = "homelab/+/heartbeat";
    /// The last will: the broker lost the connection (a crash, a kill, the network).
    pub const CONNECTION_LOST: &str = "connection_lost";
    /// The service stopped on purpose.
    pub const SHUTDOWN: &str = "shutdown";
    /// The service stopped because it failed.
    pub const ERROR: &str = "error";

    pub fn topic(service: &str) -> String {
        format!("homelab/{service}/heartbeat")
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    #[serde(rename_all = "snake_case")]
    #[cfg_attr(feature = "openapi", schema(as = HeartbeatStatus))]
    pub enum Status {
        Online,
        Degraded,
        Offline,
    }

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    pub struct Heartbeat {
        pub status: Status,
        pub service: String,
        #[serde(default)]
        pub version: Option<String>,
        /// Degraded: what is wrong. Offline: `connection_lost`, `shutdown` or `error`.
        #[serde(default)]
        pub reason: Option<String>,
        /// How often the next one comes; absent on `offline`.
        #[serde(default)]
        pub interval_seconds: Option<u64>,
        #[serde(default)]
        pub uptime_seconds: Option<f64>,
        #[serde(default)]
        pub memory_mb: Option<f64>,
        /// The service's own health fields and the envelope's.
        #[serde(flatten)]
        pub details: Map<String, Value>,
    }
}

/// health-monitor's status for the dashboard, and the decisions on its actions.
pub mod health_monitor {
    use serde::{Deserialize, Serialize};
    use std::collections::BTreeMap;

    /// Retained: every check's state.
    pub const STATUS_TOPIC: &str = "homelab/health-monitor/status";
    /// `homelab/health-monitor/actions/<id>/approve` or `.../reject`.
    pub const DECISIONS_FILTER: &str = "homelab/health-monitor/actions/+/+";
    /// The answer to a decision: accepted, or why not.
    pub const ACTION_RESULT_TOPIC: &str = "homelab/health-monitor/action_result";

    /// What an action id may be (letters, digits, `-`, `_`; at most 200): both the
    /// sender of a decision and health-monitor check it before a path is built from it.
    pub fn valid_action_id(id: &str) -> bool {
        !id.is_empty()
            && id.len() <= 200
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    }

    pub fn decision_topic(action_id: &str, approve: bool) -> String {
        let verb = if approve { "approve" } else { "reject" };
        format!("homelab/health-monitor/actions/{action_id}/{verb}")
    }

    /// A person's decision; `by` names them (the sender's service when absent).
    #[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    pub struct Decision {
        #[serde(default)]
        pub by: Option<String>,
    }

    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    pub struct ActionResult {
        pub action_id: String,
        pub accepted: bool,
        pub detail: String,
    }

    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    #[cfg_attr(feature = "openapi", schema(as = HealthMonitorStatus))]
    pub struct Status {
        pub node: String,
        pub layers: BTreeMap<String, LayerStatus>,
        pub services: BTreeMap<String, ServiceStatus>,
        pub containers: Vec<ContainerStatus>,
        pub issues: Vec<Issue>,
        pub pending_actions: Vec<PendingAction>,
        /// Alerts not yet delivered (Telegram unreachable, or quiet hours).
        pub alerts_waiting: usize,
        /// The last `diagnose --json` of each service's container.
        #[serde(default)]
        pub diagnose: BTreeMap<String, DiagnoseStatus>,
        /// The latest finished actions (completed, failed, rejected), newest first.
        #[serde(default)]
        pub recent_actions: Vec<FinishedAction>,
        /// The latest events of the event store, newest first.
        #[serde(default)]
        pub recent_events: Vec<RecentEvent>,
    }

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    pub struct FinishedAction {
        pub id: String,
        pub target: String,
        /// completed, failed or rejected.
        pub stage: String,
        pub decided_by: Option<String>,
        pub finished_at: Option<String>,
        pub outcome: Option<String>,
    }

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    pub struct RecentEvent {
        pub ts: String,
        /// Seed 002's type: service_unhealthy, remediation_completed, ...
        #[serde(rename = "type")]
        pub kind: String,
        pub text: String,
    }

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    pub struct DiagnoseStatus {
        pub checked_at: String,
        /// No step failed.
        pub ok: bool,
        /// `step: detail` of each failing step.
        pub failing: Vec<String>,
    }

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    pub struct LayerStatus {
        /// When it last ran; `None`: not yet, or switched off.
        pub checked_at: Option<String>,
        /// Why its last run failed.
        pub error: Option<String>,
    }

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    pub struct ServiceStatus {
        /// online, degraded, offline or missing.
        pub status: String,
        pub reason: Option<String>,
        pub last_seen: String,
    }

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    pub struct ContainerStatus {
        pub name: String,
        pub service: Option<String>,
        pub state: String,
        pub health: String,
        pub restart_count: i64,
        pub oom_killed: bool,
    }

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    pub struct Issue {
        pub id: String,
        /// critical, warning or info.
        pub severity: String,
        pub summary: String,
        pub since: String,
    }

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    pub struct PendingAction {
        pub id: String,
        pub kind: String,
        pub target: String,
        pub reason: String,
        pub created_at: String,
    }
}

/// Commands to a service from the orchestrator (or a person with `mosquitto_pub`).
pub mod command {
    use serde::{Deserialize, Serialize};

    /// `homelab/orchestrator/command/<service>`: only the orchestrator publishes there.
    pub fn topic(service: &str) -> String {
        format!("homelab/orchestrator/command/{service}")
    }

    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    pub struct Command {
        pub command: String,
        /// Repeats of the same id are answered once (QoS 1 delivers at least once).
        #[serde(default)]
        pub request_id: Option<String>,
    }

    /// `homelab/<service>/pong`: the answer to `ping`.
    #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    pub struct Pong {
        pub request_id: Option<String>,
    }
}

/// `homelab/smart-ev-charging/status`: what the charging decided and why.
pub mod smart_ev_charging {
    use serde::{Deserialize, Serialize};

    pub const STATUS_TOPIC: &str = "homelab/smart-ev-charging/status";

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    #[cfg_attr(feature = "openapi", schema(as = ChargingStatus))]
    pub struct Status {
        /// off, pv, min_pv, fast or smart.
        pub mode: String,
        /// What the car may use now; `None` while a meter is not believed.
        pub surplus_w: Option<f64>,
        /// `None`: not charging.
        pub target_current_a: Option<f64>,
        pub phases: f64,
        pub reason: String,
        /// smart: energy the plan still asks for.
        pub demand_kwh: Option<f64>,
        /// smart: what the deadline will miss even at full power.
        pub shortfall_kwh: Option<f64>,
        /// The house's meters as the decision saw them.
        #[serde(default)]
        pub meters: MetersNow,
    }

    /// Each `None` while its meter is not configured, too old, or not believed.
    #[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    pub struct MetersNow {
        /// Positive while exporting.
        pub grid_export_w: Option<f64>,
        /// Positive while the home battery charges.
        pub battery_charge_w: Option<f64>,
        pub battery_soc: Option<f64>,
        /// What the car draws.
        pub ev_power_w: Option<f64>,
    }
}

/// `homelab/sim-home/status`: the SIMULATED house (demo and tests only).
pub mod sim_home {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Serialize};

    pub const STATUS_TOPIC: &str = "homelab/sim-home/status";

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    #[cfg_attr(feature = "openapi", schema(as = SimHomeStatus))]
    pub struct Status {
        /// Always true: this is not a real house.
        pub simulated: bool,
        pub sim_time: DateTime<Utc>,
        /// HH:MM on the house's clock.
        pub sim_local_time: String,
        pub pv_w: f64,
        pub load_w: f64,
        /// Export positive.
        pub grid_w: f64,
        /// Charging positive.
        pub battery_w: f64,
        pub battery_soc: f64,
        pub ev_w: f64,
        pub ev_soc: f64,
    }
}

/// `homelab/ev-forecast/plan` (retained): the energy the car needs, by when.
pub mod ev_forecast {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Serialize};

    pub const PLAN_TOPIC: &str = "homelab/ev-forecast/plan";

    #[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    #[serde(rename_all = "snake_case")]
    pub enum DistanceSource {
        /// The user's distance table.
        Table,
        /// Nominatim, straight line × road factor.
        Geocoded,
        /// Found nowhere: `EV_FORECAST_UNKNOWN_DISTANCE_KM` counts until a person
        /// answers the [`Clarification`] (never 0 kWh).
        Assumed,
        /// A person said how far it is (a confirmed knowledge fact or HA's text box).
        Confirmed,
    }

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    pub struct Trip {
        pub summary: String,
        pub destination: Option<String>,
        pub start: DateTime<Utc>,
        /// One way, by road.
        pub distance_km: Option<f64>,
        pub distance_source: DistanceSource,
        /// There and back.
        pub energy_kwh: f64,
        /// Whether one full battery covers this trip and the reserve.
        #[serde(default = "super::yes")]
        pub fits_one_charge: bool,
        /// What this trip needs beyond one full battery (reserve included).
        #[serde(default)]
        pub shortfall_kwh: f64,
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    #[serde(rename_all = "snake_case")]
    pub enum Urgency {
        None,
        Low,
        Medium,
        High,
    }

    impl Urgency {
        pub fn as_str(self) -> &'static str {
            match self {
                Self::None => "none",
                Self::Low => "low",
                Self::Medium => "medium",
                Self::High => "high",
            }
        }
    }

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    pub struct Plan {
        pub energy_needed_kwh: f64,
        /// When the first trip leaves; `None` without trips.
        pub deadline: Option<DateTime<Utc>>,
        pub urgency: Urgency,
        pub trips: Vec<Trip>,
        /// The car's state of charge the plan counted with, when known.
        pub ev_soc: Option<f64>,
        /// What the trips before the deadline's group need beyond one full battery
        /// (reserve included): charge on the way. 0 when a full charge covers them.
        #[serde(default)]
        pub shortfall_kwh: f64,
        /// The same in words, for a person; `None` when a full charge covers it.
        #[serde(default)]
        pub warning: Option<String>,
    }

    /// `homelab/ev-forecast/alert`: a plan that cannot be met on one charge, said once.
    pub const ALERT_TOPIC: &str = "homelab/ev-forecast/alert";

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    pub struct Alert {
        pub text: String,
        pub shortfall_kwh: f64,
        pub deadline: Option<DateTime<Utc>>,
    }

    /// `homelab/ev-forecast/clarification`: a place no table, answer or geocoder knows.
    /// The orchestrator asks a person; the answer comes back as a confirmed
    /// [`super::orchestrator::KnowledgeUpdate`] (kind `destination`, `subject` = `place`).
    pub const CLARIFICATION_TOPIC: &str = "homelab/ev-forecast/clarification";

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    pub struct Clarification {
        /// The calendar's location, as written.
        pub place: String,
        /// The first event going there.
        pub summary: String,
        pub start: DateTime<Utc>,
        /// One way, counted until answered.
        pub assumed_km: f64,
        /// The question for a person, in words.
        pub question: String,
    }
}

/// What the orchestrator learns and tells the others.
pub mod orchestrator {
    use serde::{Deserialize, Serialize};

    /// `homelab/orchestrator/knowledge-update`: one fact, as the orchestrator stores it.
    pub const KNOWLEDGE_UPDATE_TOPIC: &str = "homelab/orchestrator/knowledge-update";

    #[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    #[serde(rename_all = "snake_case")]
    pub enum FactKind {
        /// A place and how far it is.
        Destination,
        PersonPattern,
        Preference,
        /// A person corrected something the house assumed ("Aachen is 80 km, not 60").
        Correction,
        General,
    }

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    pub struct KnowledgeUpdate {
        pub kind: FactKind,
        /// What the fact is about, e.g. the place "Aachen".
        pub subject: String,
        /// The fact in words, e.g. "Aachen is 80 km one way".
        pub statement: String,
        /// For destinations and their corrections: one way, by road.
        #[serde(default)]
        pub distance_km: Option<f64>,
        /// 0.7 inferred, 1.0 confirmed by a person.
        pub confidence: f64,
        pub confirmed: bool,
    }
}

/// `homelab/pv-forecast/updated`: PV energy per hour for today and tomorrow.
pub mod pv_forecast {
    use chrono::{DateTime, NaiveDate, Utc};
    use serde::{Deserialize, Serialize};

    pub const UPDATED_TOPIC: &str = "homelab/pv-forecast/updated";

    /// The energy of one hour starting at `start`.
    #[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    pub struct HourEnergy {
        pub start: DateTime<Utc>,
        /// The central forecast (or what was measured).
        pub kwh: f64,
        /// 9 hours in 10 make at least this much: from the model's errors on days it
        /// had not seen, for this kind of sky. `None` until there is such history.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub p10_kwh: Option<f64>,
        /// 9 hours in 10 make at most this much.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub p90_kwh: Option<f64>,
    }

    /// How far the model was off on held-out days.
    #[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    pub struct ForecastError {
        pub mae_kwh: f64,
        pub nmae: f64,
        pub hours: usize,
    }

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
    pub struct Updated {
        pub generated_at: DateTime<Utc>,
        /// The local date "today" refers to.
        pub today_date: NaiveDate,
        pub today: Vec<HourEnergy>,
        pub tomorrow: Vec<HourEnergy>,
        pub today_kwh: f64,
        /// Of today, what is still to come (0 when the forecast is not today's).
        pub today_remaining_kwh: f64,
        pub tomorrow_kwh: f64,
        pub model: String,
        pub hold_out_error: Option<ForecastError>,
        /// Older than its refresh interval allows: the last good one, kept.
        pub stale: bool,
        /// What the PV meter measured in today's complete hours (empty without a meter).
        #[serde(default)]
        pub today_actual: Vec<HourEnergy>,
        /// The PV meter's last reading, when there is a meter.
        #[serde(default)]
        pub pv_now_w: Option<f64>,
    }
}
