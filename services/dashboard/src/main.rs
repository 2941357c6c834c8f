//! dashboard: a live web page for the whole home lab, behind one login.
//!
//! It reads MQTT only (every service's heartbeat, health-monitor's status, the charging
//! status and mode, the PV forecast, the EV plan, the house now) and sends two
//! commands: the charging mode, as HA's select does, and a person's decision on a
//! proposed action. The page is server-rendered; a section is re-rendered and swapped
//! when its data changes (Server-Sent Events). `/api/v1` serves the same as JSON.

mod auth;
mod live;
mod service;
mod settings;
mod view;
mod web;

fn main() -> std::process::ExitCode {
    homelab::run::<service::DashboardService>()
}
