//! health-monitor: watches every layer of the home lab and tells a person.
//!
//! Heartbeats arrive live over MQTT; containers (Docker Engine API), Home Assistant
//! and the broker, chosen HA entities and each service's `diagnose` are polled. What
//! they find becomes issues with stable ids: an event in `DATA_DIR/events/`, one
//! Telegram alert per issue (cooldown, quiet hours, a recovery message, a daily
//! summary; queued on disk while Telegram is away), and for a dead or unhealthy
//! container a *proposed* restart in `DATA_DIR/actions/pending/`. Nothing is restarted
//! until a person approves it over MQTT or with `health-monitor actions approve ID`.

mod actions;
mod checks;
mod docker;
mod events;
mod findings;
mod heartbeats;
mod issues;
mod outbox;
mod service;
mod settings;

use clap::Subcommand;
use std::process::ExitCode;

#[derive(Subcommand, Debug)]
enum Tool {
    /// List the remediation actions, or approve or reject a pending one.
    Actions {
        #[command(subcommand)]
        command: ActionsCommand,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum ActionsCommand {
    /// Every action with its stage.
    List,
    /// Let a pending action run.
    Approve {
        id: String,
        /// Who decides (default: $USER).
        #[arg(long)]
        by: Option<String>,
    },
    /// Drop a pending action.
    Reject {
        id: String,
        #[arg(long)]
        by: Option<String>,
    },
}

fn main() -> ExitCode {
    homelab::run_with_tools::<service::HealthMonitorService, Tool>(|tool| match tool {
        Tool::Actions { command } => match homelab::settings::load::<settings::MonitorSettings>() {
            Ok(settings) => service::actions_cli(&settings.common.data_dir, command),
            Err(error) => {
                eprintln!("health-monitor: {error}");
                ExitCode::from(2)
            }
        },
    })
}
