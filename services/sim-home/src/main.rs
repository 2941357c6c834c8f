//! sim-home: a SIMULATED house, so that the home lab can be tried without Home
//! Assistant (as `evcc --demo` lets people try evcc). It speaks the parts of the HA
//! REST and WebSocket API our services use, owns `sensor.sim_*` and
//! `number.sim_wallbox_*` entities, and runs a day `SIM_SPEED` times faster than real
//! time. Started only by scripts/run-local.sh and the compose `demo` profile.

mod service;

fn main() -> std::process::ExitCode {
    homelab::run::<service::SimHome>()
}
