//! The tools the model may call. Each is a typed request parsed from the model's
//! arguments (a bad argument is answered with what was wrong, never guessed at), and
//! none names a topic: the orchestrator decides where a change goes. Every tool that
//! changes something only *proposes* it; a person's tap carries it out.

use crate::llm::{ToolCall, ToolSpec};
use crate::memory::notes::SECTIONS;
use crate::memory::pending::Change;
use homelab::messages::health_monitor::valid_action_id;
use homelab::messages::orchestrator::{FactKind, KnowledgeUpdate};
use serde::Deserialize;
use serde_json::{json, Value};

/// The charging modes smart-ev-charging knows.
pub(crate) const MODES: [&str; 5] = ["off", "pv", "min_pv", "fast", "smart"];

/// What the model asked for, checked.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum ToolRequest {
    HouseState,
    PvForecast,
    EvPlan,
    ChargingMode,
    ServiceHealth,
    /// Needs a person's tap.
    Propose {
        change: Change,
        reason: String,
    },
    /// An inferred fact: stored at 0.7 and published unconfirmed (no service acts on it).
    StoreInferredFact(KnowledgeUpdate),
    UpdateNotes {
        section: String,
        content: String,
    },
    Recall {
        query: String,
    },
}

pub(crate) fn specs() -> Vec<ToolSpec> {
    let none = json!({"type": "object", "properties": {}});
    vec![
        ToolSpec {
            name: "get_house_state",
            description: "PV, house load, battery, grid and car power and charge now.",
            parameters: none.clone(),
        },
        ToolSpec {
            name: "get_pv_forecast",
            description: "Solar energy expected today (and what is left of it) and tomorrow.",
            parameters: none.clone(),
        },
        ToolSpec {
            name: "get_ev_plan",
            description: "The car's next trips from the family calendar and the energy they need by when.",
            parameters: none.clone(),
        },
        ToolSpec {
            name: "get_charging_mode",
            description: "The wallbox's charging mode, current and why.",
            parameters: none.clone(),
        },
        ToolSpec {
            name: "set_charging_mode",
            description: "Ask the user to confirm a new charging mode: off, pv (solar surplus only), min_pv (minimum current plus surplus), fast (full power now) or smart (meet the next trip cheaply). Nothing changes until the user taps Confirm.",
            parameters: json!({"type": "object", "properties": {
                "mode": {"type": "string", "enum": MODES},
                "reason": {"type": "string", "description": "Why, in the user's words"}
            }, "required": ["mode", "reason"]}),
        },
        ToolSpec {
            name: "get_service_health",
            description: "Which home-lab services are up, open problems, and repair actions waiting for approval.",
            parameters: none.clone(),
        },
        ToolSpec {
            name: "decide_pending_action",
            description: "Ask the user to confirm approving or rejecting one of health-monitor's pending repair actions (see get_service_health). Nothing happens until the user taps Confirm.",
            parameters: json!({"type": "object", "properties": {
                "action_id": {"type": "string"},
                "approve": {"type": "boolean"},
                "reason": {"type": "string"}
            }, "required": ["action_id", "approve", "reason"]}),
        },
        ToolSpec {
            name: "store_fact",
            description: "Remember a fact about the household. For a place's distance (kind destination or correction, with distance_km) the user is asked to confirm, and the car's planning then uses it.",
            parameters: json!({"type": "object", "properties": {
                "kind": {"type": "string", "enum": ["destination", "person_pattern", "preference", "correction", "general"]},
                "subject": {"type": "string", "description": "What it is about, e.g. the place name"},
                "statement": {"type": "string", "description": "The fact in one sentence"},
                "distance_km": {"type": "number", "description": "For places: one way, by road"}
            }, "required": ["kind", "subject", "statement"]}),
        },
        ToolSpec {
            name: "update_memory_notes",
            description: "Rewrite one section of your notebook memory.md (shown to you in every conversation). Sections: Household, Destinations & Distances, Preferences & Habits, Patterns & Rules, Important Notes. Keep it short.",
            parameters: json!({"type": "object", "properties": {
                "section": {"type": "string", "enum": SECTIONS},
                "content": {"type": "string", "description": "The section's whole new text"}
            }, "required": ["section", "content"]}),
        },
        ToolSpec {
            name: "recall",
            description: "Search what was said and learnt in earlier conversations.",
            parameters: json!({"type": "object", "properties": {
                "query": {"type": "string"}
            }, "required": ["query"]}),
        },
    ]
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SetMode {
    mode: String,
    #[serde(default)]
    reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DecideAction {
    action_id: String,
    approve: bool,
    #[serde(default)]
    reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StoreFact {
    kind: FactKind,
    subject: String,
    statement: String,
    #[serde(default)]
    distance_km: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateNotes {
    section: String,
    content: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Recall {
    query: String,
}

/// The longest distance a person's answer may give (as ev-forecast accepts).
const MAX_DISTANCE_KM: f64 = 2_000.0;

/// Checks one call. The error is for the model: what was wrong and what is expected.
pub(crate) fn parse(call: &ToolCall) -> Result<ToolRequest, String> {
    let arguments =
        match &call.arguments {
            Value::Object(_) => call.arguments.clone(),
            Value::Null => json!({}),
            other => {
                return Err(format!(
                "the arguments of {} are not a JSON object ({}); send an object as the schema says",
                call.name,
                crate::llm::content_text(other).chars().take(80).collect::<String>()
            ))
            }
        };
    let typed = |error: serde_json::Error| format!("invalid arguments for {}: {error}", call.name);
    Ok(match call.name.as_str() {
        "get_house_state" => ToolRequest::HouseState,
        "get_pv_forecast" => ToolRequest::PvForecast,
        "get_ev_plan" => ToolRequest::EvPlan,
        "get_charging_mode" => ToolRequest::ChargingMode,
        "get_service_health" => ToolRequest::ServiceHealth,
        "set_charging_mode" => {
            let args: SetMode = serde_json::from_value(arguments).map_err(typed)?;
            let mode = args.mode.trim().to_ascii_lowercase();
            if !MODES.contains(&mode.as_str()) {
                return Err(format!(
                    "unknown mode '{}'; use one of {}",
                    args.mode,
                    MODES.join(", ")
                ));
            }
            ToolRequest::Propose {
                change: Change::SetChargingMode { mode },
                reason: args.reason,
            }
        }
        "decide_pending_action" => {
            let args: DecideAction = serde_json::from_value(arguments).map_err(typed)?;
            if !valid_action_id(&args.action_id) {
                return Err(format!(
                    "'{}' is not an action id; take one from get_service_health",
                    args.action_id
                ));
            }
            ToolRequest::Propose {
                change: Change::DecideAction {
                    action_id: args.action_id,
                    approve: args.approve,
                },
                reason: args.reason,
            }
        }
        "store_fact" => {
            let args: StoreFact = serde_json::from_value(arguments).map_err(typed)?;
            if args.subject.trim().is_empty() || args.statement.trim().is_empty() {
                return Err("subject and statement must not be empty".into());
            }
            if let Some(km) = args.distance_km {
                if !(km.is_finite() && km > 0.0 && km <= MAX_DISTANCE_KM) {
                    return Err(format!(
                        "distance_km must be above 0 and at most {MAX_DISTANCE_KM}, got {km}"
                    ));
                }
            }
            let fact = KnowledgeUpdate {
                kind: args.kind,
                subject: args.subject.trim().to_string(),
                statement: args.statement.trim().to_string(),
                distance_km: args.distance_km,
                confidence: crate::memory::knowledge::INFERRED,
                confirmed: false,
            };
            let changes_plans = matches!(args.kind, FactKind::Destination | FactKind::Correction)
                && args.distance_km.is_some();
            if changes_plans {
                ToolRequest::Propose {
                    reason: fact.statement.clone(),
                    change: Change::RememberFact { fact },
                }
            } else {
                ToolRequest::StoreInferredFact(fact)
            }
        }
        "update_memory_notes" => {
            let args: UpdateNotes = serde_json::from_value(arguments).map_err(typed)?;
            ToolRequest::UpdateNotes {
                section: args.section,
                content: args.content,
            }
        }
        "recall" => {
            let args: Recall = serde_json::from_value(arguments).map_err(typed)?;
            ToolRequest::Recall { query: args.query }
        }
        other => {
            let names: Vec<&str> = specs().iter().map(|spec| spec.name).collect();
            return Err(format!(
                "there is no tool '{other}'; the tools are {}",
                names.join(", ")
            ));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(name: &str, arguments: Value) -> ToolCall {
        ToolCall {
            id: "c".into(),
            name: name.into(),
            arguments,
        }
    }

    #[test]
    fn changes_are_only_proposed() {
        let proposed = parse(&call(
            "set_charging_mode",
            json!({"mode": "FAST", "reason": "leaving at 7"}),
        ))
        .unwrap();
        assert_eq!(
            proposed,
            ToolRequest::Propose {
                change: Change::SetChargingMode {
                    mode: "fast".into()
                },
                reason: "leaving at 7".into()
            }
        );
        let distance = parse(&call(
            "store_fact",
            json!({"kind": "correction", "subject": "Aachen", "statement": "Aachen is 80 km, not 60", "distance_km": 80}),
        ))
        .unwrap();
        assert!(matches!(
            distance,
            ToolRequest::Propose {
                change: Change::RememberFact { .. },
                ..
            }
        ));
        let preference = parse(&call(
            "store_fact",
            json!({"kind": "preference", "subject": "sauna", "statement": "Sauna on Fridays"}),
        ))
        .unwrap();
        assert!(matches!(
            preference,
            ToolRequest::StoreInferredFact(KnowledgeUpdate {
                confirmed: false,
                ..
            })
        ));
    }

    #[test]
    fn bad_arguments_say_what_was_wrong() {
        let cases = [
            (
                call("set_charging_mode", json!("{mode: fast")),
                "not a JSON object",
            ),
            (
                call("set_charging_mode", json!({"mode": "turbo", "reason": "x"})),
                "unknown mode 'turbo'",
            ),
            (
                call("set_charging_mode", json!({"reason": "x"})),
                "missing field `mode`",
            ),
            (
                call(
                    "set_charging_mode",
                    json!({"mode": "pv", "topic": "homelab/#"}),
                ),
                "unknown field `topic`",
            ),
            (
                call(
                    "decide_pending_action",
                    json!({"action_id": "../../etc", "approve": true}),
                ),
                "not an action id",
            ),
            (
                call(
                    "store_fact",
                    json!({"kind": "destination", "subject": "Aachen", "statement": "far", "distance_km": -3}),
                ),
                "distance_km must be above 0",
            ),
            (
                call(
                    "store_fact",
                    json!({"kind": "rumour", "subject": "a", "statement": "b"}),
                ),
                "unknown variant `rumour`",
            ),
            (
                call("publish_mqtt", json!({})),
                "there is no tool 'publish_mqtt'",
            ),
        ];
        for (call, expected) in cases {
            let error = parse(&call).unwrap_err();
            assert!(error.contains(expected), "{expected}: {error}");
        }
    }
}
