//! Places a person has told us about, and the questions still open.
//!
//! A place no table, answer or geocoder knows is counted at an assumed distance
//! (never 0 kWh) and asked about once a day while a trip goes there. The answer
//! (a confirmed knowledge fact from the orchestrator, or HA's text box) is kept in
//! `DATA_DIR/places.json` and wins over every other source, the user's table included:
//! it is the newest thing a person said.

use crate::geocode::GeocodeCache;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The longest one-way distance an answer may give: beyond it, it is a typo.
pub const MAX_ANSWER_KM: f64 = 2000.0;
/// An open question is asked again after this long, while trips still go there.
pub const ASK_AGAIN_AFTER_HOURS: i64 = 24;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConfirmedPlace {
    /// As the person wrote it.
    pub name: String,
    /// One way, by road.
    pub km: f64,
    pub said_at: DateTime<Utc>,
    /// Where it came from, e.g. "telegram: Aachen is 80 km" or "home assistant".
    pub source: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Places {
    /// By [`GeocodeCache::key`] of the name.
    #[serde(default)]
    pub confirmed: BTreeMap<String, ConfirmedPlace>,
    /// When each open question was last asked, by key.
    #[serde(default)]
    pub asked: BTreeMap<String, DateTime<Utc>>,
}

impl Places {
    /// An exact answer for the location first; else the longest confirmed name found
    /// in the location or the title ("Aachen" answers "Eurogress, Aachen").
    pub fn lookup(&self, location: &str, summary: &str) -> Option<f64> {
        if let Some(place) = self.confirmed.get(&GeocodeCache::key(location)) {
            return Some(place.km);
        }
        let location = GeocodeCache::key(location);
        let summary = GeocodeCache::key(summary);
        self.confirmed
            .iter()
            .filter(|(key, _)| location.contains(key.as_str()) || summary.contains(key.as_str()))
            .max_by_key(|(key, _)| key.len())
            .map(|(_, place)| place.km)
    }

    /// Keeps a person's answer; the question about it is closed.
    pub fn confirm(
        &mut self,
        name: &str,
        km: f64,
        now: DateTime<Utc>,
        source: &str,
    ) -> Result<(), String> {
        let name = name.trim();
        if name.is_empty() {
            return Err("the answer names no place".into());
        }
        if !km.is_finite() || km <= 0.0 || km > MAX_ANSWER_KM {
            return Err(format!(
                "{km} km for {name:?} is not a one-way distance between 0 and {MAX_ANSWER_KM} km"
            ));
        }
        let key = GeocodeCache::key(name);
        self.asked.remove(&key);
        self.confirmed.insert(
            key,
            ConfirmedPlace {
                name: name.to_string(),
                km,
                said_at: now,
                source: source.to_string(),
            },
        );
        Ok(())
    }

    /// Whether to ask about `place` now; asking is remembered.
    pub fn ask_now(&mut self, place: &str, now: DateTime<Utc>) -> bool {
        let key = GeocodeCache::key(place);
        let due = self
            .asked
            .get(&key)
            .is_none_or(|last| now - *last >= Duration::hours(ASK_AGAIN_AFTER_HOURS));
        if due {
            self.asked.insert(key, now);
        }
        due
    }
}

/// Reads a person's answer typed into HA's text box: `Atlantis=120`, `Atlantis: 120 km`,
/// or only `120` (km) while exactly one question is open.
pub fn parse_answer(text: &str, open: &[String]) -> Result<(String, f64), String> {
    let text = text.trim();
    let (name, number) = match text.rsplit_once(['=', ':']) {
        Some((name, number)) => (name.trim().to_string(), number),
        None => match open {
            [only] => (only.clone(), text),
            [] => {
                return Err(format!(
                    "{text:?}: no question is open; write place=km, e.g. Aachen=80"
                ))
            }
            many => {
                return Err(format!(
                    "{text:?}: which place? Open: {}; write place=km",
                    many.join(", ")
                ))
            }
        },
    };
    let number = number.trim();
    let digits = number
        .strip_suffix("km")
        .unwrap_or(number)
        .trim()
        .replace(',', ".");
    let km: f64 = digits.parse().map_err(|_| {
        format!("{number:?} is not a distance in km (write place=km, e.g. Aachen=80)")
    })?;
    Ok((name, km))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 30, 18, 0, 0).unwrap()
    }

    #[test]
    fn an_answer_is_found_by_its_name_in_the_location_or_title() {
        let mut places = Places::default();
        places.confirm("Aachen", 80.0, now(), "test").unwrap();
        places
            .confirm("Aachen Tivoli", 85.0, now(), "test")
            .unwrap();
        assert_eq!(places.lookup("aachen", "Trip"), Some(80.0));
        assert_eq!(places.lookup("Eurogress, Aachen", "Fair"), Some(80.0));
        assert_eq!(
            places.lookup("Stadion", "Match at Aachen Tivoli"),
            Some(85.0),
            "the longest name wins"
        );
        assert_eq!(places.lookup("Atlantis", "Mystery"), None);
    }

    #[test]
    fn answers_that_cannot_be_a_car_trip_are_refused_with_the_reason() {
        let mut places = Places::default();
        for km in [0.0, -5.0, f64::NAN, 25_000.0] {
            let error = places.confirm("Aachen", km, now(), "test").unwrap_err();
            assert!(error.contains("\"Aachen\""), "{error}");
        }
        assert!(places.confirm("  ", 80.0, now(), "test").is_err());
        assert!(
            places.confirmed.is_empty(),
            "nothing kept from a bad answer"
        );
    }

    #[test]
    fn a_question_is_asked_once_a_day_and_closed_by_its_answer() {
        let mut places = Places::default();
        assert!(places.ask_now("Atlantis", now()));
        assert!(!places.ask_now("atlantis ", now() + Duration::hours(3)));
        assert!(places.ask_now("Atlantis", now() + Duration::hours(24)));
        places
            .confirm("Atlantis", 120.0, now() + Duration::hours(25), "test")
            .unwrap();
        assert!(places.asked.is_empty());
    }

    #[test]
    fn typed_answers_name_the_place_or_answer_the_only_question() {
        let open = vec!["Atlantis".to_string()];
        assert_eq!(
            parse_answer("Atlantis=120", &[]).unwrap(),
            ("Atlantis".into(), 120.0)
        );
        assert_eq!(
            parse_answer("Messe Essen: 95,5 km", &[]).unwrap(),
            ("Messe Essen".into(), 95.5)
        );
        assert_eq!(
            parse_answer(" 120 km ", &open).unwrap(),
            ("Atlantis".into(), 120.0)
        );
        let two = vec!["Atlantis".to_string(), "Lemuria".to_string()];
        assert!(parse_answer("120", &two)
            .unwrap_err()
            .contains("Open: Atlantis, Lemuria"));
        assert!(parse_answer("120", &[])
            .unwrap_err()
            .contains("no question is open"));
        assert!(parse_answer("Atlantis=far", &open)
            .unwrap_err()
            .contains("\"far\" is not a distance"));
    }
}
