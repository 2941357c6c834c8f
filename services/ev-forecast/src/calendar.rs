//! Upcoming events from iCalendar text (RFC 5545), as Google, Outlook, Apple and
//! Nextcloud export them: time zones by TZID (IANA or the common Windows names), UTC
//! and floating times, all-day events, recurring events (RRULE with EXDATE, moved
//! instances by RECURRENCE-ID) and cancelled ones. Each event is parsed on its own, so
//! one malformed event is a warning, never the end of the calendar.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use std::collections::HashSet;
use std::io::BufReader;

/// One occurrence of an event.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub uid: String,
    pub summary: String,
    pub location: Option<String>,
    pub start: DateTime<Utc>,
    pub all_day: bool,
}

#[derive(Debug, Default)]
pub struct Parsed {
    /// Occurrences in the window, by start.
    pub events: Vec<Event>,
    /// What was skipped and why.
    pub warnings: Vec<String>,
}

/// How to read times that carry no zone, and when an all-day trip leaves.
#[derive(Clone, Copy, Debug)]
pub struct Reading {
    pub zone: Tz,
    pub all_day_departure: NaiveTime,
}

/// The few Windows zone names Outlook writes most, mapped to IANA.
const WINDOWS_ZONES: &[(&str, &str)] = &[
    ("W. Europe Standard Time", "Europe/Berlin"),
    ("Central Europe Standard Time", "Europe/Budapest"),
    ("Romance Standard Time", "Europe/Paris"),
    ("GMT Standard Time", "Europe/London"),
    ("Central European Standard Time", "Europe/Warsaw"),
    ("E. Europe Standard Time", "Europe/Chisinau"),
    ("FLE Standard Time", "Europe/Kiev"),
    ("Eastern Standard Time", "America/New_York"),
    ("Central Standard Time", "America/Chicago"),
    ("Mountain Standard Time", "America/Denver"),
    ("Pacific Standard Time", "America/Los_Angeles"),
    ("UTC", "UTC"),
];

fn zone_named(name: &str) -> Option<Tz> {
    let name = name.trim().trim_matches('"');
    name.parse::<Tz>().ok().or_else(|| {
        WINDOWS_ZONES
            .iter()
            .find(|(windows, _)| *windows == name)
            .and_then(|(_, iana)| iana.parse().ok())
    })
}

fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n' | 'N') => out.push('\n'),
                Some(other) => out.push(other),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out.trim().to_string()
}

/// A DTSTART/EXDATE/RECURRENCE-ID value: the instant, the zone it was written in,
/// and whether it is a date (all-day).
struct Stamp {
    at: DateTime<Tz>,
    all_day: bool,
}

fn param<'a>(property: &'a ical::property::Property, name: &str) -> Option<&'a str> {
    property
        .params
        .as_ref()?
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .and_then(|(_, values)| values.first())
        .map(String::as_str)
}

fn parse_stamp(
    value: &str,
    tzid: Option<&str>,
    reading: Reading,
    warnings: &mut Vec<String>,
) -> Result<Stamp, String> {
    let value = value.trim();
    let zone = match tzid {
        Some(name) => zone_named(name).unwrap_or_else(|| {
            warnings.push(format!(
                "unknown time zone {name:?}: read as {}",
                reading.zone
            ));
            reading.zone
        }),
        None => reading.zone,
    };
    if value.len() == 8 {
        let date = NaiveDate::parse_from_str(value, "%Y%m%d")
            .map_err(|e| format!("date {value:?}: {e}"))?;
        let local = date.and_time(reading.all_day_departure);
        let at = zone
            .from_local_datetime(&local)
            .earliest()
            .ok_or_else(|| format!("{value:?} does not exist in {zone}"))?;
        return Ok(Stamp { at, all_day: true });
    }
    if let Some(utc) = value.strip_suffix('Z') {
        let naive = NaiveDateTime::parse_from_str(utc, "%Y%m%dT%H%M%S")
            .map_err(|e| format!("time {value:?}: {e}"))?;
        return Ok(Stamp {
            at: Utc.from_utc_datetime(&naive).with_timezone(&zone),
            all_day: false,
        });
    }
    let naive = NaiveDateTime::parse_from_str(value, "%Y%m%dT%H%M%S")
        .map_err(|e| format!("time {value:?}: {e}"))?;
    let at = zone
        .from_local_datetime(&naive)
        .earliest()
        .ok_or_else(|| format!("{value:?} does not exist in {zone}"))?;
    Ok(Stamp { at, all_day: false })
}

/// The VEVENT blocks of a calendar, each as its own small calendar, and the
/// calendar's default zone (X-WR-TIMEZONE) when it names one.
fn split_events(text: &str) -> (Vec<String>, Option<String>) {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    let mut default_zone = None;
    for line in text.lines() {
        let trimmed = line.trim_end_matches('\r');
        if current.is_none() {
            if let Some(zone) = trimmed.strip_prefix("X-WR-TIMEZONE:") {
                default_zone = Some(zone.trim().to_string());
            }
        }
        if trimmed.eq_ignore_ascii_case("BEGIN:VEVENT") {
            current = Some(String::from("BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"));
        }
        if let Some(block) = current.as_mut() {
            block.push_str(trimmed);
            block.push_str("\r\n");
            if trimmed.eq_ignore_ascii_case("END:VEVENT") {
                block.push_str("END:VCALENDAR\r\n");
                blocks.push(current.take().unwrap_or_default());
            }
        }
    }
    (blocks, default_zone)
}

/// `UID x, "summary"` of an event that did not parse, read line by line so that a
/// person can find it in their calendar.
fn label(block: &str) -> String {
    let value = |name: &str| {
        block.lines().find_map(|line| {
            let (key, value) = line.split_once(':')?;
            let key = key.split(';').next()?;
            key.eq_ignore_ascii_case(name)
                .then(|| unescape(value.trim_end_matches('\r')))
        })
    };
    match (value("UID"), value("SUMMARY")) {
        (Some(uid), Some(summary)) => format!("UID {uid}, {summary:?}"),
        (Some(uid), None) => format!("UID {uid}, no title"),
        (None, Some(summary)) => format!("no UID, {summary:?}"),
        (None, None) => "no UID, no title".into(),
    }
}

struct Raw {
    uid: String,
    summary: String,
    location: Option<String>,
    start: Stamp,
    rrule: Option<String>,
    exdates: Vec<DateTime<Tz>>,
    recurrence_id: Option<DateTime<Utc>>,
    cancelled: bool,
}

fn read_event(block: &str, reading: Reading, warnings: &mut Vec<String>) -> Result<Raw, String> {
    let mut parser = ical::IcalParser::new(BufReader::new(block.as_bytes()));
    let calendar = parser
        .next()
        .ok_or("empty event")?
        .map_err(|e| e.to_string())?;
    let event = calendar.events.into_iter().next().ok_or("no event")?;
    let mut uid = None;
    let mut summary = String::new();
    let mut location = None;
    let mut start = None;
    let mut rrule = None;
    let mut exdates = Vec::new();
    let mut recurrence_id = None;
    let mut cancelled = false;
    for property in &event.properties {
        let value = property.value.clone().unwrap_or_default();
        match property.name.to_ascii_uppercase().as_str() {
            "UID" => uid = Some(value),
            "SUMMARY" => summary = unescape(&value),
            "LOCATION" => location = Some(unescape(&value)).filter(|l| !l.is_empty()),
            "DTSTART" => {
                start = Some(parse_stamp(
                    &value,
                    param(property, "TZID"),
                    reading,
                    warnings,
                )?)
            }
            "RRULE" => rrule = Some(value),
            "EXDATE" => {
                for one in value.split(',') {
                    exdates.push(parse_stamp(one, param(property, "TZID"), reading, warnings)?.at);
                }
            }
            "RECURRENCE-ID" => {
                recurrence_id = Some(
                    parse_stamp(&value, param(property, "TZID"), reading, warnings)?
                        .at
                        .with_timezone(&Utc),
                );
            }
            "STATUS" => cancelled = value.trim().eq_ignore_ascii_case("CANCELLED"),
            _ => {}
        }
    }
    let start = start.ok_or("no DTSTART")?;
    let uid = uid.unwrap_or_else(|| format!("{summary}@{}", start.at.to_rfc3339()));
    Ok(Raw {
        uid,
        summary,
        location,
        start,
        rrule,
        exdates,
        recurrence_id,
        cancelled,
    })
}

/// All-day rules often end `UNTIL=20261231`; the rrule crate wants a time with a
/// zone when DTSTART has one.
fn normalise_until(rule: &str) -> String {
    rule.split(';')
        .map(|part| match part.split_once('=') {
            Some((key, value)) if key.eq_ignore_ascii_case("UNTIL") && value.len() == 8 => {
                format!("UNTIL={value}T235959Z")
            }
            _ => part.to_string(),
        })
        .collect::<Vec<_>>()
        .join(";")
}

fn occurrences(
    raw: &Raw,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<DateTime<Utc>>, String> {
    let Some(rule) = &raw.rrule else {
        let at = raw.start.at.with_timezone(&Utc);
        return Ok(if at >= from && at < to {
            vec![at]
        } else {
            vec![]
        });
    };
    let zone: rrule::Tz = raw.start.at.timezone().into();
    let start = raw.start.at.with_timezone(&zone);
    let parsed: rrule::RRule<rrule::Unvalidated> = normalise_until(rule)
        .parse()
        .map_err(|e| format!("RRULE {rule:?}: {e}"))?;
    let validated = parsed
        .validate(start)
        .map_err(|e| format!("RRULE {rule:?}: {e}"))?;
    let mut set = rrule::RRuleSet::new(start).rrule(validated);
    for exdate in &raw.exdates {
        set = set.exdate(exdate.with_timezone(&zone));
    }
    // `after` is exclusive; a second earlier keeps an occurrence right at `from`.
    let result = set
        .after((from - chrono::Duration::seconds(1)).with_timezone(&zone))
        .before(to.with_timezone(&zone))
        .all(1000);
    Ok(result
        .dates
        .into_iter()
        .map(|d| d.with_timezone(&Utc))
        .filter(|d| *d >= from && *d < to)
        .collect())
}

/// Occurrences starting in `from..to`.
pub fn parse(text: &str, reading: Reading, from: DateTime<Utc>, to: DateTime<Utc>) -> Parsed {
    let (blocks, default_zone) = split_events(text);
    let reading = Reading {
        zone: default_zone
            .as_deref()
            .and_then(zone_named)
            .unwrap_or(reading.zone),
        ..reading
    };
    let mut parsed = Parsed::default();
    let mut raws = Vec::new();
    for (index, block) in blocks.iter().enumerate() {
        match read_event(block, reading, &mut parsed.warnings) {
            Ok(raw) => raws.push(raw),
            Err(error) => parsed.warnings.push(format!(
                "event {} ({}) skipped: {error}",
                index + 1,
                label(block)
            )),
        }
    }
    // Moved or cancelled single instances replace what the rule generated.
    let overridden: HashSet<(String, DateTime<Utc>)> = raws
        .iter()
        .filter_map(|raw| raw.recurrence_id.map(|at| (raw.uid.clone(), at)))
        .collect();
    for raw in &raws {
        if raw.cancelled {
            continue;
        }
        match occurrences(raw, from, to) {
            Ok(starts) => {
                for start in starts {
                    if raw.recurrence_id.is_none() && overridden.contains(&(raw.uid.clone(), start))
                    {
                        continue;
                    }
                    parsed.events.push(Event {
                        uid: raw.uid.clone(),
                        summary: raw.summary.clone(),
                        location: raw.location.clone(),
                        start,
                        all_day: raw.start.all_day,
                    });
                }
            }
            Err(error) => parsed.warnings.push(format!(
                "event {:?} (UID {}) skipped: {error}",
                raw.summary, raw.uid
            )),
        }
    }
    parsed.events.sort_by_key(|e| e.start);
    parsed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window() -> (DateTime<Utc>, DateTime<Utc>) {
        (
            Utc.with_ymd_and_hms(2026, 11, 23, 0, 0, 0).unwrap(),
            Utc.with_ymd_and_hms(2026, 11, 30, 0, 0, 0).unwrap(),
        )
    }

    fn reading() -> Reading {
        Reading {
            zone: chrono_tz::UTC,
            all_day_departure: NaiveTime::from_hms_opt(8, 0, 0).unwrap(),
        }
    }

    fn read(text: &str) -> Parsed {
        let (from, to) = window();
        parse(text, reading(), from, to)
    }

    fn starts(parsed: &Parsed, summary: &str) -> Vec<String> {
        parsed
            .events
            .iter()
            .filter(|e| e.summary == summary)
            .map(|e| e.start.to_rfc3339())
            .collect()
    }

    #[test]
    fn google_recurring_events_honour_exdate_and_moved_instances() {
        let parsed = read(include_str!("../tests/fixtures/google.ics"));
        assert_eq!(parsed.warnings, Vec::<String>::new());
        // Mon 23 at 07:30 Berlin; Wed 25 is excluded; Fri 27 moved to 10:00.
        assert_eq!(starts(&parsed, "Office"), vec!["2026-11-23T06:30:00+00:00"]);
        assert_eq!(
            starts(&parsed, "Office (late start)"),
            vec!["2026-11-27T09:00:00+00:00"]
        );
        let office = parsed
            .events
            .iter()
            .find(|e| e.summary == "Office")
            .unwrap();
        assert_eq!(
            office.location.as_deref(),
            Some("ACME Office, Hafenweg 12, 48155 Münster")
        );
    }

    #[test]
    fn all_day_events_leave_at_the_departure_hour_of_the_calendar_zone() {
        let parsed = read(include_str!("../tests/fixtures/google.ics"));
        // X-WR-TIMEZONE is Berlin: 08:00 there is 07:00 UTC.
        assert_eq!(
            starts(&parsed, "Weekend at Grandma's"),
            vec!["2026-11-28T07:00:00+00:00"]
        );
        assert!(
            parsed
                .events
                .iter()
                .find(|e| e.summary == "Weekend at Grandma's")
                .unwrap()
                .all_day
        );
        // A monthly all-day rule ending on a date (UNTIL=20261231).
        assert_eq!(
            starts(&parsed, "Recycling run"),
            vec!["2026-11-26T07:00:00+00:00"]
        );
    }

    #[test]
    fn utc_events_cancelled_events_and_events_without_place() {
        let parsed = read(include_str!("../tests/fixtures/google.ics"));
        assert_eq!(
            starts(&parsed, "Volleyball"),
            vec!["2026-11-24T17:00:00+00:00"]
        );
        assert!(starts(&parsed, "Dentist").is_empty(), "cancelled");
        let call = parsed
            .events
            .iter()
            .find(|e| e.summary == "Call with the bank")
            .unwrap();
        assert_eq!(call.location, None);
        assert!(
            parsed.events.windows(2).all(|w| w[0].start <= w[1].start),
            "sorted"
        );
    }

    #[test]
    fn outlook_windows_zones_and_folded_lines() {
        let parsed = read(include_str!("../tests/fixtures/outlook.ics"));
        assert_eq!(parsed.warnings, Vec::<String>::new());
        assert_eq!(
            starts(&parsed, "Kundentermin Dortmund"),
            vec![
                "2026-11-24T08:00:00+00:00",
                "2026-11-25T08:00:00+00:00",
                "2026-11-26T08:00:00+00:00"
            ]
        );
        assert_eq!(
            parsed.events[0].location.as_deref(),
            Some("Kunde GmbH, Westfalendamm 87, 44141 Dortmund")
        );
    }

    #[test]
    fn malformed_events_are_warnings_and_the_rest_is_read() {
        let parsed = read(include_str!("../tests/fixtures/malformed.ics"));
        let summaries: Vec<&str> = parsed.events.iter().map(|e| e.summary.as_str()).collect();
        assert_eq!(summaries, vec!["Unknown zone", "Still read"]);
        let warnings = parsed.warnings.join("\n");
        // Each skipped event is named by UID and title, so a person can find it.
        assert!(
            warnings.contains(
                "event 1 (UID bad-date, \"Someone typed the date by hand\") skipped: time \"2026-11-24 08:00\""
            ),
            "{warnings}"
        );
        assert!(
            warnings.contains("event 2 (UID no-start, \"No start at all\") skipped: no DTSTART"),
            "{warnings}"
        );
        assert!(
            warnings.contains("event \"Unreadable rule\" (UID bad-rule) skipped: RRULE"),
            "{warnings}"
        );
        assert!(
            warnings.contains("unknown time zone \"Mars/Olympus_Mons\""),
            "{warnings}"
        );
        assert_eq!(read("this is not a calendar").events, vec![]);
    }

    #[test]
    fn a_daylight_saving_change_keeps_the_local_hour() {
        let text = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:x\r\nDTSTART;TZID=Europe/Berlin:20261019T073000\r\nRRULE:FREQ=WEEKLY\r\nSUMMARY:Gym\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        let from = Utc.with_ymd_and_hms(2026, 10, 19, 0, 0, 0).unwrap();
        let to = Utc.with_ymd_and_hms(2026, 10, 27, 0, 0, 0).unwrap();
        let parsed = parse(text, reading(), from, to);
        let hours: Vec<String> = parsed.events.iter().map(|e| e.start.to_rfc3339()).collect();
        // 07:30 CEST, then 07:30 CET after the clocks went back on 25 October.
        assert_eq!(
            hours,
            vec!["2026-10-19T05:30:00+00:00", "2026-10-26T06:30:00+00:00"]
        );
    }
}
