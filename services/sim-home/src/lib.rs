//! sim-home: a SIMULATED house for trying the home lab without Home Assistant.

pub mod api;
pub mod physics;
