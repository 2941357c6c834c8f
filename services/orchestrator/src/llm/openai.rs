//! OpenAI's Chat Completions with `tools` and the Embeddings API (and every server that
//! speaks them: llama.cpp, vLLM, LocalAI).

use super::{
    arguments_from_text, content_text, ProviderConfig, Reply, Request, ToolCall, ToolSpec, Turn,
};
use serde_json::{json, Value};

pub(super) fn chat_request(
    config: &ProviderConfig,
    system: &str,
    turns: &[Turn],
    tools: &[ToolSpec],
) -> Request {
    let mut messages = vec![json!({"role": "system", "content": system})];
    messages.extend(turns.iter().map(message));
    let mut body = json!({"model": config.model, "messages": messages});
    if !tools.is_empty() {
        body["tools"] = tools_json(tools);
    }
    Request {
        path: "/chat/completions".into(),
        body,
        headers: Vec::new(),
    }
}

/// Also Ollama's `tools` shape.
pub(super) fn tools_json(tools: &[ToolSpec]) -> Value {
    tools
        .iter()
        .map(|tool| {
            json!({"type": "function", "function": {
                "name": tool.name,
                "description": tool.description,
                "parameters": tool.parameters,
            }})
        })
        .collect()
}

fn message(turn: &Turn) -> Value {
    match turn {
        Turn::User { text } => json!({"role": "user", "content": text}),
        Turn::Assistant { text, calls } if calls.is_empty() => {
            json!({"role": "assistant", "content": text})
        }
        Turn::Assistant { text, calls } => json!({
            "role": "assistant",
            "content": if text.is_empty() { Value::Null } else { json!(text) },
            "tool_calls": calls.iter().map(|call| json!({
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": content_text(&call.arguments)},
            })).collect::<Vec<_>>(),
        }),
        Turn::Tool {
            call_id, content, ..
        } => {
            json!({"role": "tool", "tool_call_id": call_id, "content": content_text(content)})
        }
    }
}

pub(super) fn parse_reply(answer: &Value) -> Result<Reply, String> {
    let message = &answer["choices"][0]["message"];
    if message.is_null() {
        return Err("no choices[0].message in the answer".into());
    }
    Ok(reply_from_message(message, "call"))
}

/// An assistant message in OpenAI's shape (also Ollama's): its text and `tool_calls`,
/// each `{id?, function: {name, arguments}}` with arguments as a JSON string (OpenAI)
/// or an object (Ollama). Calls without an id are numbered `<prefix>_<n>`.
pub(super) fn reply_from_message(message: &Value, id_prefix: &str) -> Reply {
    let calls = message["tool_calls"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(index, call)| ToolCall {
            id: call["id"]
                .as_str()
                .map_or_else(|| format!("{id_prefix}_{index}"), str::to_string),
            name: call["function"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            arguments: match &call["function"]["arguments"] {
                Value::String(text) => arguments_from_text(text),
                Value::Null => json!({}),
                other => other.clone(),
            },
        })
        .collect();
    Reply {
        text: message["content"].as_str().unwrap_or_default().to_string(),
        calls,
    }
}

pub(super) fn embed_request(model: &str, text: &str) -> Request {
    Request {
        path: "/embeddings".into(),
        body: json!({"model": model, "input": text}),
        headers: Vec::new(),
    }
}

pub(super) fn parse_embedding(answer: &Value) -> Option<Vec<f32>> {
    floats(&answer["data"][0]["embedding"])
}

pub(super) fn floats(value: &Value) -> Option<Vec<f32>> {
    let vector: Vec<f32> = value
        .as_array()?
        .iter()
        .map(|x| x.as_f64().map(|x| x as f32))
        .collect::<Option<_>>()?;
    (!vector.is_empty()).then_some(vector)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::test_support::{config, tools, turns_with_a_tool_round};

    #[test]
    fn a_tool_round_in_the_documented_shape() {
        let request = chat_request(&config(), "be brief", &turns_with_a_tool_round(), &tools());
        assert_eq!(request.path, "/chat/completions");
        let messages = request.body["messages"].as_array().unwrap();
        assert_eq!(
            messages[0],
            json!({"role": "system", "content": "be brief"})
        );
        assert_eq!(
            messages[2]["tool_calls"][0]["function"]["arguments"],
            r#"{"mode":"fast"}"#
        );
        assert_eq!(
            messages[3],
            json!({"role": "tool", "tool_call_id": "c1", "content": r#"{"ok":true}"#})
        );
        assert_eq!(
            request.body["tools"][0]["function"]["name"],
            "set_charging_mode"
        );
    }

    #[test]
    fn a_reply_with_a_tool_call_and_one_with_broken_arguments() {
        let answer = json!({"choices": [{"message": {"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_a", "type": "function", "function": {"name": "get_house_state", "arguments": "{}"}},
            {"id": "call_b", "type": "function", "function": {"name": "set_charging_mode", "arguments": "{mode: fast"}}
        ]}, "finish_reason": "tool_calls"}]});
        let reply = parse_reply(&answer).unwrap();
        assert_eq!(reply.calls[0].arguments, json!({}));
        assert_eq!(
            reply.calls[1].arguments,
            json!("{mode: fast"),
            "kept raw for the error"
        );
        assert!(parse_reply(&json!({"error": "x"})).is_err());
    }
}
