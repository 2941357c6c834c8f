//! The orchestrator's settings (`TELEGRAM_*`, `LLM_*`, each provider's key and address,
//! and the memory's limits), checked once into [`Config`] with errors that name the
//! variable.

use crate::llm::{ProviderConfig, ProviderKind};
use homelab::secret::Secret;
use serde::Deserialize;
use std::time::Duration;

#[derive(Clone, Debug, Deserialize)]
#[serde(default)]
pub(crate) struct OrchestratorSettings {
    /// Empty: the assistant is not reachable (the service waits, degraded).
    pub(crate) telegram_bot_token: Secret,
    /// The Bot API, or a self-hosted Bot API server.
    pub(crate) telegram_api_url: String,
    /// Comma-separated chat ids allowed to talk to the house.
    pub(crate) telegram_allowed_chat_ids: String,
    /// gemini, openai, anthropic or ollama.
    pub(crate) llm_provider: String,
    /// Empty: the provider's default model (seed 000's table).
    pub(crate) llm_model: String,
    /// Empty: the provider's default embedding model; `none` switches embeddings off.
    pub(crate) llm_embedding_model: String,
    /// One request to the provider, retries not counted.
    pub(crate) llm_timeout_seconds: u64,
    pub(crate) gemini_api_key: Secret,
    pub(crate) gemini_base_url: String,
    pub(crate) openai_api_key: Secret,
    /// Any OpenAI-compatible server (llama.cpp, vLLM, ...).
    pub(crate) openai_base_url: String,
    pub(crate) anthropic_api_key: Secret,
    pub(crate) anthropic_base_url: String,
    pub(crate) ollama_url: String,
    pub(crate) max_conversation_history: usize,
    pub(crate) max_decisions: usize,
    pub(crate) memory_document_max_size: usize,
    pub(crate) semantic_memory_max_entries: usize,
    pub(crate) semantic_memory_recency_weight: f64,
    pub(crate) semantic_memory_recency_half_life_days: f64,
    /// UTC hour of the nightly consolidation.
    pub(crate) memory_consolidation_hour: u32,
}

pub(crate) const GEMINI_URL: &str = "https://generativelanguage.googleapis.com";
pub(crate) const OPENAI_URL: &str = "https://api.openai.com/v1";
pub(crate) const ANTHROPIC_URL: &str = "https://api.anthropic.com";

impl Default for OrchestratorSettings {
    fn default() -> Self {
        Self {
            telegram_bot_token: Secret::default(),
            telegram_api_url: "https://api.telegram.org".into(),
            telegram_allowed_chat_ids: String::new(),
            llm_provider: "gemini".into(),
            llm_model: String::new(),
            llm_embedding_model: String::new(),
            llm_timeout_seconds: 60,
            gemini_api_key: Secret::default(),
            gemini_base_url: GEMINI_URL.into(),
            openai_api_key: Secret::default(),
            openai_base_url: OPENAI_URL.into(),
            anthropic_api_key: Secret::default(),
            anthropic_base_url: ANTHROPIC_URL.into(),
            ollama_url: "http://ollama:11434".into(),
            max_conversation_history: 50,
            max_decisions: 500,
            memory_document_max_size: 4000,
            semantic_memory_max_entries: 5000,
            semantic_memory_recency_weight: 0.15,
            semantic_memory_recency_half_life_days: 30.0,
            memory_consolidation_hour: 3,
        }
    }
}

/// The memory's limits (seed 000 §11).
#[derive(Clone, Copy, Debug)]
pub(crate) struct MemoryLimits {
    pub(crate) history: usize,
    pub(crate) decisions: usize,
    pub(crate) notes_chars: usize,
    pub(crate) semantic_entries: usize,
    pub(crate) recency_weight: f64,
    pub(crate) half_life_days: f64,
}

/// The settings, checked.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    /// `None`: no bot token, nobody can talk to the assistant.
    pub(crate) telegram: Option<TelegramConfig>,
    pub(crate) provider: ProviderConfig,
    pub(crate) limits: MemoryLimits,
    pub(crate) consolidation_hour: u32,
}

#[derive(Clone, Debug)]
pub(crate) struct TelegramConfig {
    pub(crate) api_url: String,
    pub(crate) token: Secret,
    pub(crate) allowed_chats: Vec<i64>,
}

impl Config {
    pub(crate) fn from_settings(settings: &OrchestratorSettings) -> Result<Self, String> {
        let telegram = if settings.telegram_bot_token.is_empty() {
            None
        } else {
            let allowed_chats = parse_chat_ids(&settings.telegram_allowed_chat_ids)?;
            if allowed_chats.is_empty() {
                return Err(
                    "TELEGRAM_ALLOWED_CHAT_IDS is empty: nobody could talk to the bot; \
                     list your chat ids, comma-separated"
                        .into(),
                );
            }
            Some(TelegramConfig {
                api_url: settings.telegram_api_url.clone(),
                token: settings.telegram_bot_token.clone(),
                allowed_chats,
            })
        };
        let kind = ProviderKind::parse(&settings.llm_provider)?;
        let (base_url, default_url, api_key, key_variable) = match kind {
            ProviderKind::Gemini => (
                &settings.gemini_base_url,
                GEMINI_URL,
                &settings.gemini_api_key,
                "GEMINI_API_KEY",
            ),
            ProviderKind::OpenAi => (
                &settings.openai_base_url,
                OPENAI_URL,
                &settings.openai_api_key,
                "OPENAI_API_KEY",
            ),
            ProviderKind::Anthropic => (
                &settings.anthropic_base_url,
                ANTHROPIC_URL,
                &settings.anthropic_api_key,
                "ANTHROPIC_API_KEY",
            ),
            ProviderKind::Ollama => (&settings.ollama_url, "", &Secret::default(), ""),
        };
        // A local OpenAI-compatible server needs no key; the public APIs do.
        if api_key.is_empty()
            && !key_variable.is_empty()
            && base_url.trim_end_matches('/') == default_url
        {
            return Err(format!(
                "LLM_PROVIDER={} needs {key_variable} (or point {} at a server that needs none)",
                kind.as_str(),
                kind.url_variable()
            ));
        }
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(format!(
                "{} must be an http(s) address, got '{base_url}'",
                kind.url_variable()
            ));
        }
        if settings.llm_timeout_seconds == 0 {
            return Err("LLM_TIMEOUT_SECONDS must be at least 1".into());
        }
        let model = if settings.llm_model.trim().is_empty() {
            kind.default_model().to_string()
        } else {
            settings.llm_model.trim().to_string()
        };
        let embedding_model = match settings.llm_embedding_model.trim() {
            "" => kind.default_embedding_model().map(str::to_string),
            "none" => None,
            other => Some(other.to_string()),
        };
        if settings.memory_consolidation_hour > 23 {
            return Err(format!(
                "MEMORY_CONSOLIDATION_HOUR must be 0-23, got {}",
                settings.memory_consolidation_hour
            ));
        }
        if !(0.0..=1.0).contains(&settings.semantic_memory_recency_weight) {
            return Err(format!(
                "SEMANTIC_MEMORY_RECENCY_WEIGHT must be between 0 and 1, got {}",
                settings.semantic_memory_recency_weight
            ));
        }
        if settings.semantic_memory_recency_half_life_days <= 0.0 {
            return Err("SEMANTIC_MEMORY_RECENCY_HALF_LIFE_DAYS must be above 0".into());
        }
        for (name, value) in [
            (
                "MAX_CONVERSATION_HISTORY",
                settings.max_conversation_history,
            ),
            ("MAX_DECISIONS", settings.max_decisions),
            (
                "SEMANTIC_MEMORY_MAX_ENTRIES",
                settings.semantic_memory_max_entries,
            ),
        ] {
            if value == 0 {
                return Err(format!("{name} must be at least 1"));
            }
        }
        if settings.memory_document_max_size < 200 {
            return Err(format!(
                "MEMORY_DOCUMENT_MAX_SIZE must be at least 200 characters, got {}",
                settings.memory_document_max_size
            ));
        }
        Ok(Self {
            telegram,
            provider: ProviderConfig {
                kind,
                model,
                embedding_model,
                base_url: base_url.trim_end_matches('/').to_string(),
                api_key: api_key.clone(),
                timeout: Duration::from_secs(settings.llm_timeout_seconds),
            },
            limits: MemoryLimits {
                history: settings.max_conversation_history,
                decisions: settings.max_decisions,
                notes_chars: settings.memory_document_max_size,
                semantic_entries: settings.semantic_memory_max_entries,
                recency_weight: settings.semantic_memory_recency_weight,
                half_life_days: settings.semantic_memory_recency_half_life_days,
            },
            consolidation_hour: settings.memory_consolidation_hour,
        })
    }
}

fn parse_chat_ids(text: &str) -> Result<Vec<i64>, String> {
    text.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            entry.parse::<i64>().map_err(|_| {
                format!("TELEGRAM_ALLOWED_CHAT_IDS: '{entry}' is not a chat id (a whole number)")
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> OrchestratorSettings {
        OrchestratorSettings {
            telegram_bot_token: Secret::new("123:abc"),
            telegram_allowed_chat_ids: "42, -1001".into(),
            gemini_api_key: Secret::new("g-key"),
            ..OrchestratorSettings::default()
        }
    }

    #[test]
    fn defaults_follow_seed_000s_table() {
        let config = Config::from_settings(&settings()).unwrap();
        assert_eq!(config.provider.kind, ProviderKind::Gemini);
        assert_eq!(config.provider.model, "gemini-2.0-flash");
        assert_eq!(
            config.provider.embedding_model.as_deref(),
            Some("gemini-embedding-001")
        );
        assert_eq!(config.telegram.unwrap().allowed_chats, vec![42, -1001]);
        assert_eq!(config.limits.history, 50);
        assert_eq!(config.limits.semantic_entries, 5000);
    }

    #[test]
    fn bad_settings_are_named() {
        let cases: Vec<(OrchestratorSettings, &str)> = vec![
            (
                OrchestratorSettings {
                    llm_provider: "mistral".into(),
                    ..settings()
                },
                "LLM_PROVIDER",
            ),
            (
                OrchestratorSettings {
                    gemini_api_key: Secret::default(),
                    ..settings()
                },
                "GEMINI_API_KEY",
            ),
            (
                OrchestratorSettings {
                    telegram_allowed_chat_ids: "42,me".into(),
                    ..settings()
                },
                "'me' is not a chat id",
            ),
            (
                OrchestratorSettings {
                    telegram_allowed_chat_ids: " ".into(),
                    ..settings()
                },
                "TELEGRAM_ALLOWED_CHAT_IDS is empty",
            ),
            (
                OrchestratorSettings {
                    memory_consolidation_hour: 24,
                    ..settings()
                },
                "MEMORY_CONSOLIDATION_HOUR",
            ),
            (
                OrchestratorSettings {
                    llm_provider: "openai".into(),
                    openai_base_url: "ftp://x".into(),
                    openai_api_key: Secret::new("k"),
                    ..settings()
                },
                "OPENAI_BASE_URL",
            ),
        ];
        for (settings, expected) in cases {
            let error = Config::from_settings(&settings).unwrap_err();
            assert!(error.contains(expected), "{expected}: {error}");
        }
    }

    #[test]
    fn a_local_openai_compatible_server_needs_no_key() {
        let config = Config::from_settings(&OrchestratorSettings {
            llm_provider: "openai".into(),
            openai_base_url: "http://llama.local:8080/v1/".into(),
            llm_embedding_model: "none".into(),
            ..settings()
        })
        .unwrap();
        assert_eq!(config.provider.base_url, "http://llama.local:8080/v1");
        assert_eq!(config.provider.model, "gpt-4o");
        assert_eq!(config.provider.embedding_model, None);
    }
}
