//! Ollama's native `/api/chat` with `tools` and `/api/embed`.

use super::{content_text, ProviderConfig, Reply, Request, ToolSpec, Turn};
use serde_json::{json, Value};

pub(super) fn chat_request(
    config: &ProviderConfig,
    system: &str,
    turns: &[Turn],
    tools: &[ToolSpec],
) -> Request {
    let mut messages = vec![json!({"role": "system", "content": system})];
    messages.extend(turns.iter().map(|turn| match turn {
        Turn::User { text } => json!({"role": "user", "content": text}),
        Turn::Assistant { text, calls } => json!({
            "role": "assistant",
            "content": text,
            "tool_calls": calls.iter().map(|call| json!({"function": {"name": call.name, "arguments": call.arguments}})).collect::<Vec<_>>(),
        }),
        Turn::Tool { name, content, .. } => {
            json!({"role": "tool", "tool_name": name, "content": content_text(content)})
        }
    }));
    let mut body = json!({"model": config.model, "messages": messages, "stream": false});
    if !tools.is_empty() {
        body["tools"] = super::openai::tools_json(tools);
    }
    Request {
        path: "/api/chat".into(),
        body,
        headers: Vec::new(),
    }
}

pub(super) fn parse_reply(answer: &Value) -> Result<Reply, String> {
    let message = answer.get("message").ok_or("no message in the answer")?;
    Ok(super::openai::reply_from_message(message, "ollama"))
}

pub(super) fn embed_request(model: &str, text: &str) -> Request {
    Request {
        path: "/api/embed".into(),
        body: json!({"model": model, "input": text}),
        headers: Vec::new(),
    }
}

pub(super) fn parse_embedding(answer: &Value) -> Option<Vec<f32>> {
    super::openai::floats(&answer["embeddings"][0])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::test_support::{config, tools, turns_with_a_tool_round};

    #[test]
    fn a_tool_round_in_the_documented_shape() {
        let request = chat_request(&config(), "be brief", &turns_with_a_tool_round(), &tools());
        assert_eq!(request.path, "/api/chat");
        assert_eq!(request.body["stream"], false);
        let messages = request.body["messages"].as_array().unwrap();
        assert_eq!(
            messages[2]["tool_calls"][0]["function"]["arguments"],
            json!({"mode": "fast"})
        );
        assert_eq!(messages[3]["role"], "tool");
        let answer = json!({"model": "llama3", "message": {"role": "assistant", "content": "",
            "tool_calls": [{"function": {"name": "get_house_state", "arguments": {}}}]}, "done": true});
        assert_eq!(
            parse_reply(&answer).unwrap().calls[0].name,
            "get_house_state"
        );
        assert_eq!(
            parse_embedding(&json!({"embeddings": [[0.1, 0.2]]}))
                .unwrap()
                .len(),
            2
        );
    }
}
