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

const SCRIPT: &str = r#"
const events = new EventSource('/events');
events.addEventListener('update', async (e) => {
  const section = e.data;
  const response = await fetch('/section/' + section);
  if (response.ok) {
    document.getElementById(section).outerHTML = await response.text();
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

/// Bars of kWh per hour, drawn here: no script, no library.
pub(crate) fn hour_chart(hours: &[HourEnergy], label: &str) -> Markup {
    let width = 480.0;
    let height = 140.0;
    let max = hours.iter().map(|h| h.kwh).fold(0.1_f64, f64::max);
    let bar = width / hours.len().max(1) as f64;
    html! {
        svg viewBox=(format!("0 0 {width} {}", height + 16.0)) role="img" aria-label=(label) {
            @for (index, hour) in hours.iter().enumerate() {
                @let h = hour.kwh / max * height;
                rect class="bar" x=(format!("{:.1}", index as f64 * bar + 1.0)) y=(format!("{:.1}", height - h))
                    width=(format!("{:.1}", (bar - 2.0).max(1.0))) height=(format!("{h:.1}")) fill="#f2a900" {
                    title { (hour.start.format("%H:%M UTC")) ": " (format!("{:.2} kWh", hour.kwh)) }
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

fn energy(snapshot: &Snapshot) -> Markup {
    html! {
        section #energy {
            h2 { "Energy" }
            @if let Some(house) = &snapshot.house {
                table {
                    tr { td { "PV" } td { (format!("{:.0} W", house.pv_w)) } }
                    tr { td { "House load" } td { (format!("{:.0} W", house.load_w)) } }
                    tr { td { "Battery" } td { (format!("{:.0} % · {:.0} W", house.battery_soc, house.battery_w)) } }
                    tr { td { "Grid" } td { (format!("{:.0} W", house.grid_w)) } }
                    tr { td { "Car" } td { (format!("{:.0} % · {:.0} W", house.ev_soc, house.ev_w)) } }
                }
                @if house.simulated { p.muted { "Simulated house (sim-home)." } }
            }
            @match &snapshot.pv {
                None => p.muted { "No PV forecast yet." },
                Some(pv) => {
                    p { "Today " strong { (format!("{:.1} kWh", pv.today_kwh)) }
                        " (" (format!("{:.1}", pv.today_remaining_kwh)) " to come), tomorrow "
                        strong { (format!("{:.1} kWh", pv.tomorrow_kwh)) }
                        @if pv.stale { " · " span.warning { "stale" } } }
                    (hour_chart(&pv.today, "PV forecast today, kWh per hour"))
                    p.muted { "Tomorrow" }
                    (hour_chart(&pv.tomorrow, "PV forecast tomorrow, kWh per hour"))
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
                ul { @for trip in plan.trips.iter().take(5) {
                    li { (trip.start.format("%a %H:%M")) " " (trip.summary) " · " (format!("{:.1} kWh", trip.energy_kwh)) }
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
            })
            .collect();
        let svg = hour_chart(&hours, "today").into_string();
        assert_eq!(svg.matches("<rect").count(), 24);
        // The highest hour (19:00, 1.4 kWh) is full height.
        assert!(
            svg.contains(r#"y="0.0""#) && svg.contains(r#"height="140.0""#),
            "{svg}"
        );
        assert!(svg.contains("19:00 UTC: 1.40 kWh"));
    }
}
