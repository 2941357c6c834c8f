//! smart-ev-charging: charges the car from the house's own sun.
//!
//! It reads the grid, battery and wallbox meters from Home Assistant, reacts to their
//! `state_changed` events (with a periodic safety cycle), decides the charging current
//! in plain functions (`control`), and writes it to the wallbox's current entity —
//! never while safe mode is on. Its mode is a select in HA (MQTT discovery).

mod service;
mod settings;

fn main() -> std::process::ExitCode {
    homelab::run::<service::SmartEvCharging>()
}
