//! What a check found wrong, with an id that stays the same while the problem lasts.

use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub(crate) fn icon(self) -> &'static str {
        match self {
            Self::Critical => "🔴",
            Self::Warning => "🟠",
            Self::Info => "ℹ️",
        }
    }
}

/// The check that produces a finding; a layer's run replaces all of its findings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Layer {
    Heartbeats,
    Containers,
    Infrastructure,
    Entities,
    Diagnose,
}

impl Layer {
    pub(crate) const ALL: [Layer; 5] = [
        Layer::Heartbeats,
        Layer::Containers,
        Layer::Infrastructure,
        Layer::Entities,
        Layer::Diagnose,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Heartbeats => "heartbeats",
            Self::Containers => "containers",
            Self::Infrastructure => "infrastructure",
            Self::Entities => "entities",
            Self::Diagnose => "diagnose",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Kind {
    /// No heartbeat for too long, or its last will.
    ServiceDown,
    /// The service says it is degraded, and why.
    ServiceDegraded,
    ContainerNotRunning,
    ContainerUnhealthy,
    ContainerOomKilled,
    /// A monitoring layer could not run (Docker socket missing, HA unreachable).
    LayerFailed,
    HaUnreachable,
    /// REST answers but the WebSocket (every event-driven service's input) does not.
    HaWebsocketDead,
    BrokerUnreachable,
    InfluxUnreachable,
    EntityUnavailable,
    EntityStale,
    DiagnoseFailed,
}

impl Kind {
    pub(crate) const ALL: [Kind; 13] = [
        Kind::ServiceDown,
        Kind::ServiceDegraded,
        Kind::ContainerNotRunning,
        Kind::ContainerUnhealthy,
        Kind::ContainerOomKilled,
        Kind::LayerFailed,
        Kind::HaUnreachable,
        Kind::HaWebsocketDead,
        Kind::BrokerUnreachable,
        Kind::InfluxUnreachable,
        Kind::EntityUnavailable,
        Kind::EntityStale,
        Kind::DiagnoseFailed,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::ServiceDown => "service_down",
            Self::ServiceDegraded => "service_degraded",
            Self::ContainerNotRunning => "container_not_running",
            Self::ContainerUnhealthy => "container_unhealthy",
            Self::ContainerOomKilled => "container_oom_killed",
            Self::LayerFailed => "layer_failed",
            Self::HaUnreachable => "ha_unreachable",
            Self::HaWebsocketDead => "ha_websocket_dead",
            Self::BrokerUnreachable => "broker_unreachable",
            Self::InfluxUnreachable => "influx_unreachable",
            Self::EntityUnavailable => "entity_unavailable",
            Self::EntityStale => "entity_stale",
            Self::DiagnoseFailed => "diagnose_failed",
        }
    }

    /// Seed 002's normalized event types for an issue opening and closing.
    pub(crate) fn event_types(self) -> (&'static str, &'static str) {
        match self {
            Self::ServiceDown
            | Self::ServiceDegraded
            | Self::ContainerNotRunning
            | Self::ContainerUnhealthy
            | Self::ContainerOomKilled => ("service_unhealthy", "service_recovered"),
            Self::DiagnoseFailed => ("healthcheck_failed", "healthcheck_recovered"),
            Self::EntityUnavailable | Self::EntityStale => {
                ("entity_unavailable", "entity_recovered")
            }
            Self::LayerFailed
            | Self::HaUnreachable
            | Self::HaWebsocketDead
            | Self::BrokerUnreachable
            | Self::InfluxUnreachable => ("infrastructure_unreachable", "infrastructure_recovered"),
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub(crate) struct Finding {
    /// `<kind>:<target>`: the same problem keeps the same id.
    pub(crate) id: String,
    pub(crate) layer: Layer,
    pub(crate) kind: Kind,
    pub(crate) severity: Severity,
    /// The service, container, entity or system it is about.
    pub(crate) target: String,
    pub(crate) summary: String,
}

impl Finding {
    pub(crate) fn new(
        layer: Layer,
        kind: Kind,
        severity: Severity,
        target: &str,
        summary: impl Into<String>,
    ) -> Self {
        Self {
            id: format!("{kind}:{target}"),
            layer,
            kind,
            severity,
            target: target.to_string(),
            summary: summary.into(),
        }
    }
}
