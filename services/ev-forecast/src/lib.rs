//! ev-forecast's decisions, free of I/O: calendar reading, distances and the plan.

pub mod calendar;
pub mod geocode;
pub mod google;
pub mod places;
pub mod plan;
