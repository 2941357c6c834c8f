//! The HTML: one page of four sections, each also served alone so the page can swap
//! a section when the server says it changed (Server-Sent Events, a few lines of JS).

use crate::live::{Section, Snapshot};
use chrono::{DateTime, Utc};
use homelab::messages::pv_forecast::HourEnergy;
use maud::{html, Markup, PreEscaped, DOCTYPE};

pub(crate) const MODES: [&str; 5] = ["off", "pv", "min_pv", "fast", "smart"];

const STYLE: &str = r#"
body{font-family:system-ui,sans-serif;margin:0;background:#f4f5f7;color:#222}
header{background:#1f3a5f;color:#fff;padding:.6rem 1rem;display:flex;justify-content:space-between;align-items:center}
main{display:grid;grid-template-columns:repeat(auto-fit,minmax(320px,1fr));gap:1rem;padding:1rem}
section{background:#fff;border-radius:8px;padding:.8rem 1rem;box-shadow:0 1px 3px #0002}
h2{margin:.2rem 0 .6rem;font-size:1.1rem}
table{border-collapse:collapse;width:100%;font-size:.9rem}
td,th{text-align:left;padding:.2rem .3rem;border-bottom:1px solid #eee}
.online{color:#17803d}.degraded{color:#b25e00}.offline,.missing{color:#b3261e}
.critical{color:#b3261e}.warning{color:#b25e00}
button,select,input{font-size:1rem;padding:.3rem .6rem}
form.inline{display:inline}
.muted{color:#777;font-size:.85rem}
svg{width:100%;height:auto}
"#;

// Fetches for one section can overlap (the catch-up on connect and a live update) and
// answer out of order: only the latest request's answer is shown, never an older one.
const SCRIPT: &str = r#"
const events = new EventSource('/events');
const latest = {};
events.addEventListener('update', async (e) => {
  const section = e.data;
  const ticket = (latest[section] || 0) + 1;
  latest[section] = ticket;
  const response = await fetch('/section/' + section);
  if (!response.ok) return;
  const html = await response.text();
  if (latest[section] === ticket) {
    document.getElementById(section).outerHTML = html;
  }
});
"#;

fn layout(title: &str, body: &Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                style { (PreEscaped(STYLE)) }
            }
            body { (body) }
        }
    }
}

pub(crate) fn login(error: Option<&str>) -> Markup {
    layout(
        "homelab · sign in",
        &html! {
            header { strong { "homelab" } }
            main {
                section {
                    h2 { "Sign in" }
                    @if let Some(error) = error { p.critical { (error) } }
                    form method="post" action="/login" {
                        p { label { "User " input name="username" autocomplete="username" required; } }
                        p { label { "Password " input type="password" name="password" autocomplete="current-password" required; } }
                        p { button type="submit" { "Sign in" } }
                    }
                }
            }
        },
    )
}

pub(crate) fn page(snapshot: &Snapshot, user: &str, csrf: &str, now: DateTime<Utc>) -> Markup {
    layout(
        "homelab",
        &html! {
            header {
                strong { "homelab" }
                form.inline method="post" action="/logout" {
                    input type="hidden" name="csrf" value=(csrf);
                    span.muted { (user) " " }
                    button type="submit" { "Sign out" }
                }
            }
            main {
                @for section in Section::ALL { (render(section, snapshot, csrf, now)) }
            }
            script { (PreEscaped(SCRIPT)) }
        },
    )
}

pub(crate) fn render(
    section: Section,
    snapshot: &Snapshot,
    csrf: &str,
    now: DateTime<Utc>,
) -> Markup {
    match section {
        Section::Services => services(snapshot, now),
        Section::Energy => energy(snapshot),
        Section::Charging => charging(snapshot, csrf),
        Section::Actions => actions(snapshot, csrf),
    }
}

fn age(seconds: i64) -> String {
    match seconds {
        s if s < 90 => format!("{s} s"),
        s if s < 5400 => format!("{} min", s / 60),
        s => format!("{} h", s / 3600),
    }
}

fn services(snapshot: &Snapshot, now: DateTime<Utc>) -> Markup {
    html! {
        section #services {
            h2 { "Services" }
            @if snapshot.services.is_empty() { p.muted { "No heartbeat yet." } }
            table {
                @for (name, seen) in &snapshot.services {
                    @let beat = &seen.heartbeat;
                    @let status = format!("{:?}", beat.status).to_lowercase();
                    tr data-service=(name) {
                        td { (name) }
                        td class=(status) { (status) }
                        td.muted { (age((now - seen.received_at).num_seconds().max(0))) " ago" }
                        td.muted { (beat.version.as_deref().unwrap_or("")) }
                        td.muted { @if let Some(mb) = beat.memory_mb { (format!("{mb:.1} MiB")) } }
                    }
                    @if let Some(reason) = &beat.reason { tr { td colspan="5" class="muted" { (reason) } } }
                }
            }
            @if let Some(health) = &snapshot.health {
                h2 { "Open issues" }
                @if health.issues.is_empty() { p.muted { "None." } }
                ul {
                    @for issue in &health.issues {
                        li class=(issue.severity) { (issue.summary) }
                    }
                }
                @if !health.recent_events.is_empty() {
                    h2 { "Latest events" }
                    table.events {
                        @for event in &health.recent_events {
                            tr {
                                td.muted { (event.ts.get(11..16).unwrap_or("")) }
                                td { (event.kind.replace('_', " ")) }
                                td.muted { (event.text) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Bars of kWh per hour, drawn here: no script, no library. `actual`: what the meter
/// measured in the same hours, as a narrow dark bar inside each forecast bar.
pub(crate) fn hour_chart(hours: &[HourEnergy], actual: &[HourEnergy], label: &str) -> Markup {
    let width = 480.0;
    let height = 140.0;
    let max = hours
        .iter()
        .chain(actual)
        .map(|h| h.kwh)
        .fold(0.1_f64, f64::max);
    let bar = width / hours.len().max(1) as f64;
    let measured = |start| actual.iter().find(|a| a.start == start);
    html! {
        svg viewBox=(format!("0 0 {width} {}", height + 16.0)) role="img" aria-label=(label) {
            @for (index, hour) in hours.iter().enumerate() {
                @let h = hour.kwh / max * height;
                rect class="bar" x=(format!("{:.1}", index as f64 * bar + 1.0)) y=(format!("{:.1}", height - h))
                    width=(format!("{:.1}", (bar - 2.0).max(1.0))) height=(format!("{h:.1}")) fill="#f2a900" {
                    title { (hour.start.format("%H:%M UTC")) ": " (format!("{:.2} kWh", hour.kwh)) " forecast" }
                }
                @if let Some(done) = measured(hour.start) {
                    @let a = done.kwh / max * height;
                    rect class="actual" x=(format!("{:.1}", index as f64 * bar + bar * 0.3)) y=(format!("{:.1}", height - a))
                        width=(format!("{:.1}", (bar * 0.4).max(1.0))) height=(format!("{a:.1}")) fill="#3b4a5a" {
                        title { (hour.start.format("%H:%M UTC")) ": " (format!("{:.2} kWh", done.kwh)) " measured" }
                    }
                }
                @if index % 3 == 0 {
                    text x=(format!("{:.1}", index as f64 * bar)) y=(height + 13.0) font-size="10" fill="#777" {
                        (hour.start.format("%H"))
                    }
                }
            }
        }
    }
}

/// The house now from the production services' own messages (no simulator).
pub(crate) struct HouseNow {
    pub(crate) pv_w: Option<f64>,
    pub(crate) load_w: Option<f64>,
    pub(crate) grid_w: Option<f64>,
    pub(crate) battery_w: Option<f64>,
    pub(crate) battery_soc: Option<f64>,
    pub(crate) ev_w: Option<f64>,
}

/// Load is what PV makes less what goes to the grid, the battery and the car; only
/// when every part is known.
pub(crate) fn meters_now(snapshot: &Snapshot) -> Option<HouseNow> {
    let meters = snapshot.charging.as_ref().map(|c| c.meters)?;
    let pv_w = snapshot.pv.as_ref().and_then(|pv| pv.pv_now_w);
    let load_w = match (
        pv_w,
        meters.grid_export_w,
        meters.battery_charge_w,
        meters.ev_power_w,
    ) {
        (Some(pv), Some(grid), Some(battery), Some(ev)) => Some(pv - grid - battery - ev),
        _ => None,
    };
    Some(HouseNow {
        pv_w,
        load_w,
        grid_w: meters.grid_export_w,
        battery_w: meters.battery_charge_w,
        battery_soc: meters.battery_soc,
        ev_w: meters.ev_power_w,
    })
}

fn watts(value: Option<f64>) -> String {
    value.map_or("–".into(), |w| format!("{w:.0} W"))
}

fn percent(value: Option<f64>) -> String {
    value.map_or("–".into(), |p| format!("{p:.0} %"))
}

fn energy(snapshot: &Snapshot) -> Markup {
    html! {
        section #energy {
            h2 { "Energy" }
            @if let Some(house) = &snapshot.house {
                table #now {
                    tr { td { "PV" } td { (format!("{:.0} W", house.pv_w)) } }
                    tr { td { "House load" } td { (format!("{:.0} W", house.load_w)) } }
                    tr { td { "Battery" } td { (format!("{:.0} % · {:.0} W", house.battery_soc, house.battery_w)) } }
                    tr { td { "Grid" } td { (format!("{:.0} W", house.grid_w)) } }
                    tr { td { "Car" } td { (format!("{:.0} % · {:.0} W", house.ev_soc, house.ev_w)) } }
                }
                @if house.simulated { p.muted { "Simulated house (sim-home)." } }
            } @else if let Some(now) = meters_now(snapshot) {
                table #now {
                    tr { td { "PV" } td { (watts(now.pv_w)) } }
                    tr { td { "House load" } td { (watts(now.load_w)) } }
                    tr { td { "Battery" } td { (percent(now.battery_soc)) " · " (watts(now.battery_w)) } }
                    tr { td { "Grid (export +)" } td { (watts(now.grid_w)) } }
                    tr { td { "Car" } td { (watts(now.ev_w)) } }
                }
                p.muted { "From the meters smart-ev-charging and pv-forecast read." }
            }
            @match &snapshot.pv {
                None => p.muted { "No PV forecast yet." },
                Some(pv) => {
                    p { "Today " strong { (format!("{:.1} kWh", pv.today_kwh)) }
                        " (" (format!("{:.1}", pv.today_remaining_kwh)) " to come), tomorrow "
                        strong { (format!("{:.1} kWh", pv.tomorrow_kwh)) }
                        @if pv.stale { " · " span.warning { "stale" } } }
                    (hour_chart(&pv.today, &pv.today_actual, "PV today: forecast and measured, kWh per hour"))
                    @if !pv.today_actual.is_empty() {
                        p.muted { "Measured so far " (format!("{:.1} kWh", pv.today_actual.iter().map(|h| h.kwh).sum::<f64>()))
                            " against " (format!("{:.1} kWh", pv.today.iter().filter(|h| pv.today_actual.iter().any(|a| a.start == h.start)).map(|h| h.kwh).sum::<f64>()))
                            " forecast for the same hours (dark bars)." }
                    }
                    p.muted { "Tomorrow" }
                    (hour_chart(&pv.tomorrow, &[], "PV forecast tomorrow, kWh per hour"))
                    p.muted { "Model: " (pv.model) }
                }
            }
        }
    }
}

fn charging(snapshot: &Snapshot, csrf: &str) -> Markup {
    let mode = snapshot
        .mode
        .clone()
        .or_else(|| snapshot.charging.as_ref().map(|c| c.mode.clone()));
    html! {
        section #charging {
            h2 { "Charging" }
            form method="post" action="/charging/mode" {
                input type="hidden" name="csrf" value=(csrf);
                label { "Mode " select name="mode" id="mode" {
                    @for option in MODES {
                        option value=(option) selected[mode.as_deref() == Some(option)] { (option) }
                    }
                } }
                " " button type="submit" { "Set" }
            }
            p { "Mode now: " strong #mode-now { (mode.as_deref().unwrap_or("unknown")) } }
            @if let Some(status) = &snapshot.charging {
                p {
                    @match status.target_current_a {
                        Some(current) => { (format!("{current:.0} A on {} phase(s)", status.phases)) }
                        None => "not charging",
                    }
                    @if let Some(surplus) = status.surplus_w { " · surplus " (format!("{surplus:.0} W")) }
                }
                p.muted { (status.reason) }
            }
            @if let Some(plan) = &snapshot.plan {
                p { "Plan: " (format!("{:.1} kWh", plan.energy_needed_kwh))
                    @if let Some(deadline) = plan.deadline { " by " (deadline.format("%a %H:%M UTC")) }
                    " · urgency " (plan.urgency.as_str()) }
                @if let Some(warning) = &plan.warning { p.warning #plan-warning { (warning) } }
                ul { @for trip in plan.trips.iter().take(5) {
                    li { (trip.start.format("%a %H:%M")) " " (trip.summary) " · " (format!("{:.1} kWh", trip.energy_kwh))
                        @if trip.distance_source == homelab::messages::ev_forecast::DistanceSource::Assumed {
                            " · " span.warning.assumed title="Found nowhere: answer in HA's EV place distance box (place=km) or on Telegram" {
                                (format!("{:.0} km assumed", trip.distance_km.unwrap_or_default())) }
                        }
                        @if !trip.fits_one_charge { " · " span.warning { "beyond one charge" } }
                    }
                } }
            }
        }
    }
}

fn actions(snapshot: &Snapshot, csrf: &str) -> Markup {
    let pending = snapshot
        .health
        .as_ref()
        .map(|health| health.pending_actions.clone())
        .unwrap_or_default();
    let finished = snapshot
        .health
        .as_ref()
        .map(|health| health.recent_actions.clone())
        .unwrap_or_default();
    html! {
        section #actions {
            h2 { "Actions waiting for you" }
            @if pending.is_empty() { p.muted { "Nothing to approve." } }
            @for action in &pending {
                div.action data-action=(action.id) {
                    p { strong { (action.kind) " " (action.target) } br; span.muted { (action.reason) } }
                    form.inline method="post" action=(format!("/actions/{}/approve", action.id)) {
                        input type="hidden" name="csrf" value=(csrf);
                        button type="submit" { "Approve" }
                    }
                    " "
                    form.inline method="post" action=(format!("/actions/{}/reject", action.id)) {
                        input type="hidden" name="csrf" value=(csrf);
                        button type="submit" { "Reject" }
                    }
                }
            }
            @if !finished.is_empty() {
                h2 { "Done" }
                table.history {
                    @for action in &finished {
                        tr data-finished=(action.id) {
                            td { (action.target) }
                            td class=(if action.stage == "completed" { "online" } else { "warning" }) { (action.stage) }
                            td.muted { (action.decided_by.as_deref().unwrap_or("")) }
                            td.muted { (action.outcome.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chart_has_one_bar_per_hour_scaled_to_the_highest() {
        let start = DateTime::parse_from_rfc3339("2026-06-21T00:00:00Z")
            .unwrap()
            .to_utc();
        let hours: Vec<HourEnergy> = (0..24)
            .map(|h| HourEnergy {
                start: start + chrono::Duration::hours(h),
                kwh: if (6..20).contains(&h) {
                    (h - 5) as f64 * 0.1
                } else {
                    0.0
                },
                p10_kwh: None,
                p90_kwh: None,
            })
            .collect();
        let svg = hour_chart(&hours, &[], "today").into_string();
        assert_eq!(svg.matches("<rect").count(), 24);
        // The highest hour (19:00, 1.4 kWh) is full height.
        assert!(
            svg.contains(r#"y="0.0""#) && svg.contains(r#"height="140.0""#),
            "{svg}"
        );
        assert!(svg.contains("19:00 UTC: 1.40 kWh forecast"));
        // Measured hours get their own bar, on the same scale.
        let measured = [HourEnergy {
            start: start + chrono::Duration::hours(10),
            kwh: 2.8,
            p10_kwh: None,
            p90_kwh: None,
        }];
        let svg = hour_chart(&hours, &measured, "today").into_string();
        assert_eq!(svg.matches(r#"class="actual""#).count(), 1);
        assert!(
            svg.contains(r#"height="140.0""#) && svg.contains(r#"height="70.0""#),
            "2.8 kWh is the new top; 1.4 kWh is half of it: {svg}"
        );
        assert!(svg.contains("10:00 UTC: 2.80 kWh measured"));
    }

    #[test]
    fn the_house_now_comes_from_the_meters_and_load_only_when_every_part_is_known() {
        use homelab::messages::smart_ev_charging::{MetersNow, Status};
        let status = |meters| Status {
            mode: "pv".into(),
            surplus_w: None,
            target_current_a: None,
            phases: 3.0,
            reason: String::new(),
            demand_kwh: None,
            shortfall_kwh: None,
            meters,
        };
        let mut snapshot = Snapshot {
            charging: Some(status(MetersNow {
                grid_export_w: Some(1200.0),
                battery_charge_w: Some(800.0),
                battery_soc: Some(64.0),
                ev_power_w: Some(4100.0),
            })),
            ..Snapshot::default()
        };
        let now = meters_now(&snapshot).unwrap();
        assert_eq!(
            (now.pv_w, now.load_w),
            (None, None),
            "no PV reading: no load"
        );
        snapshot.pv = Some(homelab::messages::pv_forecast::Updated {
            generated_at: DateTime::UNIX_EPOCH,
            today_date: DateTime::UNIX_EPOCH.date_naive(),
            today: Vec::new(),
            tomorrow: Vec::new(),
            today_kwh: 0.0,
            today_remaining_kwh: 0.0,
            tomorrow_kwh: 0.0,
            model: "physical".into(),
            hold_out_error: None,
            stale: false,
            today_actual: Vec::new(),
            pv_now_w: Some(6500.0),
        });
        let now = meters_now(&snapshot).unwrap();
        assert_eq!(now.load_w, Some(400.0), "6500 − 1200 − 800 − 4100");
        let page = energy(&snapshot).into_string();
        assert!(page.contains("6500 W") && page.contains("64 %"), "{page}");
    }
}
