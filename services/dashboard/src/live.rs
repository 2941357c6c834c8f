//! What the dashboard knows: the latest of each topic it reads, kept in memory (the
//! broker's retained messages fill it at start), and a signal per changed section.

use chrono::{DateTime, Utc};
use homelab::messages::{
    ev_forecast::Plan, health_monitor, heartbeat::Heartbeat, pv_forecast::Updated, sim_home,
    smart_ev_charging,
};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::RwLock;
use tokio::sync::broadcast;

/// The page's parts, each refreshed on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Section {
    Services,
    Energy,
    Charging,
    Actions,
}

impl Section {
    pub(crate) const ALL: [Section; 4] = [
        Section::Services,
        Section::Energy,
        Section::Charging,
        Section::Actions,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Services => "services",
            Self::Energy => "energy",
            Self::Charging => "charging",
            Self::Actions => "actions",
        }
    }

    pub(crate) fn parse(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|section| section.as_str() == name)
    }
}

#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub(crate) struct ServiceSeen {
    pub(crate) heartbeat: Heartbeat,
    pub(crate) received_at: DateTime<Utc>,
}

#[derive(Clone, Debug, Default, Serialize, utoipa::ToSchema)]
pub(crate) struct Snapshot {
    pub(crate) services: BTreeMap<String, ServiceSeen>,
    pub(crate) health: Option<health_monitor::Status>,
    pub(crate) charging: Option<smart_ev_charging::Status>,
    /// The charging mode as the select entity's state says.
    pub(crate) mode: Option<String>,
    pub(crate) pv: Option<Updated>,
    pub(crate) plan: Option<Plan>,
    /// The house now (sim-home in a demo).
    pub(crate) house: Option<sim_home::Status>,
}

pub(crate) struct Live {
    snapshot: RwLock<Snapshot>,
    changes: broadcast::Sender<Section>,
}

impl Live {
    pub(crate) fn new() -> Self {
        Self {
            snapshot: RwLock::new(Snapshot::default()),
            changes: broadcast::channel(256).0,
        }
    }

    pub(crate) fn snapshot(&self) -> Snapshot {
        self.snapshot.read().expect("poisoned").clone()
    }

    pub(crate) fn changes(&self) -> broadcast::Receiver<Section> {
        self.changes.subscribe()
    }

    pub(crate) fn update(&self, sections: &[Section], change: impl FnOnce(&mut Snapshot)) {
        change(&mut self.snapshot.write().expect("poisoned"));
        for section in sections {
            // Nobody watching is fine.
            let _ = self.changes.send(*section);
        }
    }
}
