//! example-service: the template every new service is copied from.
//!
//! It answers `{"command":"ping","request_id":"…"}` on
//! `homelab/orchestrator/command/example-service` with a `pong` (once per request id,
//! even across restarts), publishes a `tick` every `EXAMPLE_INTERVAL_SECONDS`, keeps
//! its counters in `DATA_DIR/state.json`, touches the health file after every cycle
//! and adds a `data_dir` step to `diagnose`.

mod commands;
mod service;

fn main() -> std::process::ExitCode {
    homelab::run::<service::ExampleService>()
}
