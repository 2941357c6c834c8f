//! smart-ev-charging's domain, free of I/O: the charging decision and a simulated
//! house to replay it on. `main.rs` wires it to Home Assistant through `homelab`.

pub mod control;
pub mod meters;
pub mod plan;
pub mod reconcile;
pub mod simulation;
