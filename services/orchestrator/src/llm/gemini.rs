//! Gemini's `generateContent` with `functionDeclarations`, and `embedContent`. Gemini
//! gives function calls no ids: they are numbered here and answered by name.

use super::{ProviderConfig, Reply, Request, ToolCall, ToolSpec, Turn};
use serde_json::{json, Value};

pub(super) fn chat_request(
    config: &ProviderConfig,
    system: &str,
    turns: &[Turn],
    tools: &[ToolSpec],
) -> Request {
    let mut contents: Vec<Value> = Vec::new();
    for turn in turns {
        let (role, part) = match turn {
            Turn::User { text } => ("user", vec![json!({"text": text})]),
            Turn::Assistant { text, calls } => {
                let mut parts = Vec::new();
                if !text.is_empty() {
                    parts.push(json!({"text": text}));
                }
                parts.extend(calls.iter().map(|call| {
                    let args = if call.arguments.is_object() {
                        call.arguments.clone()
                    } else {
                        json!({})
                    };
                    json!({"functionCall": {"name": call.name, "args": args}})
                }));
                ("model", parts)
            }
            Turn::Tool { name, content, .. } => {
                let response = if content.is_object() {
                    content.clone()
                } else {
                    json!({"result": content})
                };
                (
                    "user",
                    vec![json!({"functionResponse": {"name": name, "response": response}})],
                )
            }
        };
        super::push_merged(&mut contents, role, "parts", part);
    }
    let mut body = json!({
        "systemInstruction": {"parts": [{"text": system}]},
        "contents": contents,
    });
    if !tools.is_empty() {
        let declarations: Vec<Value> = tools
            .iter()
            .map(|tool| json!({"name": tool.name, "description": tool.description, "parameters": tool.parameters}))
            .collect();
        body["tools"] = json!([{"functionDeclarations": declarations}]);
    }
    Request {
        path: format!("/v1beta/models/{}:generateContent", config.model),
        body,
        headers: Vec::new(),
    }
}

pub(super) fn parse_reply(answer: &Value) -> Result<Reply, String> {
    let parts = answer["candidates"][0]["content"]["parts"]
        .as_array()
        .ok_or_else(|| {
            let reason = answer["candidates"][0]["finishReason"]
                .as_str()
                .unwrap_or("no candidates");
            format!("no content in the answer ({reason})")
        })?;
    let mut reply = Reply::default();
    for (index, part) in parts.iter().enumerate() {
        if let Some(text) = part["text"].as_str() {
            reply.text.push_str(text);
        }
        if let Some(call) = part.get("functionCall") {
            reply.calls.push(ToolCall {
                id: format!("gemini_{index}"),
                name: call["name"].as_str().unwrap_or_default().to_string(),
                arguments: if call["args"].is_null() {
                    json!({})
                } else {
                    call["args"].clone()
                },
            });
        }
    }
    Ok(reply)
}

pub(super) fn embed_request(model: &str, text: &str) -> Request {
    Request {
        path: format!("/v1beta/models/{model}:embedContent"),
        body: json!({"model": format!("models/{model}"), "content": {"parts": [{"text": text}]}}),
        headers: Vec::new(),
    }
}

pub(super) fn parse_embedding(answer: &Value) -> Option<Vec<f32>> {
    super::openai::floats(&answer["embedding"]["values"])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::test_support::{config, tools, turns_with_a_tool_round};

    #[test]
    fn a_tool_round_in_the_documented_shape() {
        let request = chat_request(&config(), "be brief", &turns_with_a_tool_round(), &tools());
        assert_eq!(request.path, "/v1beta/models/test-model:generateContent");
        let contents = request.body["contents"].as_array().unwrap();
        assert_eq!(contents[1]["role"], "model");
        assert_eq!(
            contents[1]["parts"][0]["functionCall"]["args"],
            json!({"mode": "fast"})
        );
        assert_eq!(
            contents[2]["parts"][0]["functionResponse"]["name"],
            "set_charging_mode"
        );
        assert_eq!(
            request.body["tools"][0]["functionDeclarations"][0]["name"],
            "set_charging_mode"
        );
    }

    #[test]
    fn function_calls_are_numbered_and_blocked_answers_named() {
        let answer = json!({"candidates": [{"content": {"role": "model", "parts": [
            {"functionCall": {"name": "get_pv_forecast", "args": {}}}]}}]});
        let reply = parse_reply(&answer).unwrap();
        assert_eq!(reply.calls[0].id, "gemini_0");
        let blocked = json!({"candidates": [{"finishReason": "SAFETY"}]});
        assert!(parse_reply(&blocked).unwrap_err().contains("SAFETY"));
        assert_eq!(
            parse_embedding(&json!({"embedding": {"values": [0.5, 1.0]}})),
            Some(vec![0.5, 1.0])
        );
    }
}
