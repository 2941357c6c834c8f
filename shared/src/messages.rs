//! The messages services exchange over MQTT, typed once: the publisher builds them
//! and every subscriber reads them with the same type, so that a field renamed on
//! one side cannot silently become a default on the other.

/// `homelab/ev-forecast/plan` (retained): the energy the car needs, by when.
pub mod ev_forecast {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Serialize};

    pub const PLAN_TOPIC: &str = "homelab/ev-forecast/plan";

    #[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum DistanceSource {
        /// The user's distance table.
        Table,
        /// Nominatim, straight line × road factor.
        Geocoded,
        /// Not found: the trip counts no energy (and a warning says so).
        Unknown,
    }

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    pub struct Trip {
        pub summary: String,
        pub destination: Option<String>,
        pub start: DateTime<Utc>,
        /// One way, by road.
        pub distance_km: Option<f64>,
        pub distance_source: DistanceSource,
        /// There and back.
        pub energy_kwh: f64,
    }

    #[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
    #[serde(rename_all = "snake_case")]
    pub enum Urgency {
        None,
        Low,
        Medium,
        High,
    }

    impl Urgency {
        pub fn as_str(self) -> &'static str {
            match self {
                Self::None => "none",
                Self::Low => "low",
                Self::Medium => "medium",
                Self::High => "high",
            }
        }
    }

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    pub struct Plan {
        pub energy_needed_kwh: f64,
        /// When the first trip leaves; `None` without trips.
        pub deadline: Option<DateTime<Utc>>,
        pub urgency: Urgency,
        pub trips: Vec<Trip>,
        /// The car's state of charge the plan counted with, when known.
        pub ev_soc: Option<f64>,
    }
}

/// `homelab/pv-forecast/updated`: PV energy per hour for today and tomorrow.
pub mod pv_forecast {
    use chrono::{DateTime, NaiveDate, Utc};
    use serde::{Deserialize, Serialize};

    pub const UPDATED_TOPIC: &str = "homelab/pv-forecast/updated";

    /// The energy of one hour starting at `start`.
    #[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
    pub struct HourEnergy {
        pub start: DateTime<Utc>,
        pub kwh: f64,
    }

    /// How far the model was off on held-out days.
    #[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
    pub struct ForecastError {
        pub mae_kwh: f64,
        pub nmae: f64,
        pub hours: usize,
    }

    #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
    pub struct Updated {
        pub generated_at: DateTime<Utc>,
        /// The local date "today" refers to.
        pub today_date: NaiveDate,
        pub today: Vec<HourEnergy>,
        pub tomorrow: Vec<HourEnergy>,
        pub today_kwh: f64,
        /// Of today, what is still to come (0 when the forecast is not today's).
        pub today_remaining_kwh: f64,
        pub tomorrow_kwh: f64,
        pub model: String,
        pub hold_out_error: Option<ForecastError>,
        /// Older than its refresh interval allows: the last good one, kept.
        pub stale: bool,
    }
}
