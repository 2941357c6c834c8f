//! ev-forecast: what the car needs for the next trips, as a demand plan.
//!
//! Every `EV_FORECAST_REFRESH_SECONDS` it reads the calendars in
//! `EV_FORECAST_ICAL_URLS` (iCal URLs or files; Google Calendar's "secret address in
//! iCal format" works) and `GOOGLE_CALENDAR_IDS` (the Calendar API with a service
//! account), finds how far each destination is (the user's
//! `EV_FORECAST_DISTANCES` first, else Nominatim, cached in `DATA_DIR`), and publishes
//! `homelab/ev-forecast/plan` (retained): energy needed, deadline, urgency and trips.
//! It never commands the charger: smart-ev-charging acts on the plan.

mod google_api;
mod service;

fn main() -> std::process::ExitCode {
    homelab::run::<service::EvForecastService>()
}
