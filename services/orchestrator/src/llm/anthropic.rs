//! Anthropic's Messages API with `tools` (`tool_use` / `tool_result` blocks). It has no
//! embeddings API.

use super::{content_text, ProviderConfig, Reply, Request, ToolCall, ToolSpec, Turn};
use serde_json::{json, Value};

pub(super) fn chat_request(
    config: &ProviderConfig,
    system: &str,
    turns: &[Turn],
    tools: &[ToolSpec],
) -> Request {
    let mut messages: Vec<Value> = Vec::new();
    for turn in turns {
        let (role, block) = match turn {
            Turn::User { text } => ("user", vec![json!({"type": "text", "text": text})]),
            Turn::Assistant { text, calls } => {
                let mut blocks = Vec::new();
                if !text.is_empty() {
                    blocks.push(json!({"type": "text", "text": text}));
                }
                blocks.extend(calls.iter().map(|call| {
                    json!({"type": "tool_use", "id": call.id, "name": call.name, "input": object(&call.arguments)})
                }));
                ("assistant", blocks)
            }
            Turn::Tool {
                call_id, content, ..
            } => (
                "user",
                vec![
                    json!({"type": "tool_result", "tool_use_id": call_id, "content": content_text(content)}),
                ],
            ),
        };
        // Consecutive tool results (and user text) share one user message, as the API asks.
        super::push_merged(&mut messages, role, "content", block);
    }
    let mut body = json!({
        "model": config.model,
        "max_tokens": 1024,
        "system": system,
        "messages": messages,
    });
    if !tools.is_empty() {
        body["tools"] = tools
            .iter()
            .map(|tool| json!({"name": tool.name, "description": tool.description, "input_schema": tool.parameters}))
            .collect();
    }
    Request {
        path: "/v1/messages".into(),
        body,
        headers: Vec::new(),
    }
}

/// `input` must be an object; a call whose arguments did not parse is sent back empty.
fn object(arguments: &Value) -> Value {
    if arguments.is_object() {
        arguments.clone()
    } else {
        json!({})
    }
}

pub(super) fn parse_reply(answer: &Value) -> Result<Reply, String> {
    let blocks = answer["content"]
        .as_array()
        .ok_or("no content blocks in the answer")?;
    let mut reply = Reply::default();
    for block in blocks {
        match block["type"].as_str() {
            Some("text") => reply
                .text
                .push_str(block["text"].as_str().unwrap_or_default()),
            Some("tool_use") => reply.calls.push(ToolCall {
                id: block["id"].as_str().unwrap_or_default().to_string(),
                name: block["name"].as_str().unwrap_or_default().to_string(),
                arguments: block["input"].clone(),
            }),
            _ => {}
        }
    }
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::test_support::{config, tools, turns_with_a_tool_round};

    #[test]
    fn a_tool_round_in_the_documented_shape() {
        let request = chat_request(&config(), "be brief", &turns_with_a_tool_round(), &tools());
        assert_eq!(request.path, "/v1/messages");
        assert_eq!(request.body["system"], "be brief");
        let messages = request.body["messages"].as_array().unwrap();
        assert_eq!(messages[1]["content"][0]["type"], "tool_use");
        assert_eq!(messages[1]["content"][0]["input"], json!({"mode": "fast"}));
        assert_eq!(messages[2]["role"], "user");
        assert_eq!(messages[2]["content"][0]["type"], "tool_result");
        assert_eq!(messages[2]["content"][0]["tool_use_id"], "c1");
        assert_eq!(request.body["tools"][0]["input_schema"]["type"], "object");
    }

    #[test]
    fn text_and_tool_use_blocks() {
        let answer = json!({"id": "msg_1", "type": "message", "role": "assistant", "stop_reason": "tool_use",
            "content": [{"type": "text", "text": "Let me look."},
                        {"type": "tool_use", "id": "toolu_1", "name": "get_ev_plan", "input": {}}]});
        let reply = parse_reply(&answer).unwrap();
        assert_eq!(reply.text, "Let me look.");
        assert_eq!(reply.calls[0].id, "toolu_1");
    }
}
