//! How far a destination is: a user's own table first, then Nominatim (OpenStreetMap)
//! with a cache on disk, so that every address is asked for once.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Place {
    pub latitude: f64,
    pub longitude: f64,
}

/// Great-circle distance in km.
pub fn haversine_km(a: Place, b: Place) -> f64 {
    let (lat1, lat2) = (a.latitude.to_radians(), b.latitude.to_radians());
    let d_lat = lat2 - lat1;
    let d_lon = (b.longitude - a.longitude).to_radians();
    let h = (d_lat / 2.0).sin().powi(2) + lat1.cos() * lat2.cos() * (d_lon / 2.0).sin().powi(2);
    2.0 * 6371.0 * h.sqrt().asin()
}

/// The search address for one place (`format=jsonv2`, first hit only).
pub fn nominatim_url(base: &str, query: &str) -> String {
    format!(
        "{}/search?q={}&format=jsonv2&limit=1",
        base.trim_end_matches('/'),
        urlencoding::encode(query)
    )
}

#[derive(Deserialize)]
struct Hit {
    lat: String,
    lon: String,
}

/// Nominatim answers a JSON array; coordinates are strings. `None`: no such place.
pub fn parse_nominatim(body: &str) -> Result<Option<Place>, String> {
    let hits: Vec<Hit> =
        serde_json::from_str(body).map_err(|e| format!("not a Nominatim answer: {e}"))?;
    let Some(hit) = hits.first() else {
        return Ok(None);
    };
    let number = |name: &str, text: &str| {
        text.parse::<f64>()
            .map_err(|_| format!("{name} {text:?} is not a number"))
    };
    Ok(Some(Place {
        latitude: number("lat", &hit.lat)?,
        longitude: number("lon", &hit.lon)?,
    }))
}

/// `EV_FORECAST_DISTANCES`: `name=km` pairs separated by `;`, the one-way road
/// distance a person knows better than any geocoder (e.g. `Office=42;Grandma=120`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DistanceTable(Vec<(String, f64)>);

impl DistanceTable {
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut entries = Vec::new();
        for entry in text.split(';').map(str::trim).filter(|e| !e.is_empty()) {
            let (name, km) = entry
                .rsplit_once('=')
                .ok_or_else(|| format!("{entry:?} is not name=km"))?;
            let km: f64 = km
                .trim()
                .parse()
                .ok()
                .filter(|km: &f64| km.is_finite() && *km >= 0.0)
                .ok_or_else(|| format!("{entry:?}: {:?} is not a distance in km", km.trim()))?;
            if name.trim().is_empty() {
                return Err(format!("{entry:?} has no name"));
            }
            entries.push((name.trim().to_lowercase(), km));
        }
        Ok(Self(entries))
    }

    /// The distance for an event whose location or title contains a table name.
    pub fn lookup(&self, location: Option<&str>, summary: &str) -> Option<f64> {
        let location = location.unwrap_or("").to_lowercase();
        let summary = summary.to_lowercase();
        self.0
            .iter()
            .find(|(name, _)| location.contains(name.as_str()) || summary.contains(name.as_str()))
            .map(|(_, km)| *km)
    }
}

/// Geocoded places by query; `None` remembers that Nominatim knows no such place.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GeocodeCache(pub BTreeMap<String, Option<Place>>);

impl GeocodeCache {
    pub fn key(query: &str) -> String {
        query
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase()
    }

    /// `Some(answer)` when asked before.
    pub fn get(&self, query: &str) -> Option<Option<Place>> {
        self.0.get(&Self::key(query)).copied()
    }

    pub fn insert(&mut self, query: &str, place: Option<Place>) {
        self.0.insert(Self::key(query), place);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn muenster_to_hamburg_is_about_240_km_as_the_crow_flies() {
        let muenster = Place {
            latitude: 51.9625,
            longitude: 7.6256,
        };
        let hamburg = Place {
            latitude: 53.5503,
            longitude: 9.9920,
        };
        let km = haversine_km(muenster, hamburg);
        assert!((km - 238.0).abs() < 5.0, "{km}");
        assert_eq!(haversine_km(muenster, muenster), 0.0);
    }

    #[test]
    fn the_saved_nominatim_answers_parse() {
        let hamburg = parse_nominatim(include_str!("../tests/fixtures/nominatim-hamburg.json"))
            .unwrap()
            .unwrap();
        assert!((hamburg.latitude - 53.55).abs() < 0.01 && (hamburg.longitude - 10.0).abs() < 0.01);
        assert_eq!(parse_nominatim("[]").unwrap(), None);
        assert!(parse_nominatim(r#"{"error":"Unable to geocode"}"#)
            .unwrap_err()
            .contains("not a Nominatim answer"));
    }

    #[test]
    fn the_url_escapes_the_address() {
        assert_eq!(
            nominatim_url("http://127.0.0.1:9/", "Bahnhofstraße 5, Münster"),
            "http://127.0.0.1:9/search?q=Bahnhofstra%C3%9Fe%205%2C%20M%C3%BCnster&format=jsonv2&limit=1"
        );
    }

    #[test]
    fn the_table_matches_location_or_title_and_bad_entries_are_named() {
        let table = DistanceTable::parse("Office=42; Grandma = 120 ;").unwrap();
        assert_eq!(
            table.lookup(Some("ACME Office, Dortmund"), "Work"),
            Some(42.0)
        );
        assert_eq!(table.lookup(None, "Visit grandma"), Some(120.0));
        assert_eq!(table.lookup(Some("Hamburg"), "Trip"), None);
        let ordered = DistanceTable::parse("Aachen Tivoli=85;Aachen=80").unwrap();
        assert_eq!(ordered.lookup(Some("Tivoli, Aachen"), "Match"), Some(80.0));
        assert_eq!(
            ordered.lookup(Some("Stadion"), "Match at Aachen Tivoli"),
            Some(85.0),
            "the first entry that matches wins"
        );
        assert!(DistanceTable::parse("Office")
            .unwrap_err()
            .contains("not name=km"));
        assert!(DistanceTable::parse("Office=far")
            .unwrap_err()
            .contains("\"far\" is not a distance"));
        assert_eq!(DistanceTable::parse("").unwrap(), DistanceTable::default());
    }

    #[test]
    fn the_cache_ignores_case_and_spacing() {
        let mut cache = GeocodeCache::default();
        cache.insert(
            "Hamburg  Hbf",
            Some(Place {
                latitude: 53.55,
                longitude: 10.0,
            }),
        );
        cache.insert("Nowhere", None);
        assert!(cache.get("hamburg hbf").unwrap().is_some());
        assert_eq!(cache.get("nowhere"), Some(None));
        assert_eq!(cache.get("Berlin"), None);
    }
}
