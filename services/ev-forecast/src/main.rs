//! ev-forecast: scaffolded from the example-service template.
//!
//! It answers `{"command":"ping","request_id":"…"}` on
//! `homelab/orchestrator/command/ev-forecast` with a `pong` (once per request id,
//! even across restarts), publishes a `tick` every `EV_FORECAST_INTERVAL_SECONDS`, keeps
//! its counters in `DATA_DIR/state.json`, touches the health file after every cycle
//! and adds a `data_dir` step to `diagnose`.

mod commands;
mod service;

fn main() -> std::process::ExitCode {
    homelab::run::<service::EvForecastService>()
}
