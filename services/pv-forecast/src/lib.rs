//! pv-forecast's decisions, free of I/O: sun geometry, the model, the forecast and
//! the backtest. The service (main.rs) fetches weather and history and publishes.

pub mod backtest;
pub mod calibrate;
pub mod forecast;
pub mod model;
pub mod solar;
pub mod uncertainty;
pub mod weather;
