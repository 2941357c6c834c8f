//! orchestrator: the household talks to the house from Telegram.
//!
//! A message from an allowed chat goes to the language model chosen by `LLM_PROVIDER`
//! (Gemini, OpenAI or any server speaking its API, Anthropic, Ollama) with tools over
//! what the other services publish: the house now, the PV forecast, the car's plan, the
//! charging mode, the services' health. Changes (the charging mode, health-monitor's
//! repairs, a place's distance) are proposed with Confirm / Cancel buttons and only a
//! tap carries them out. The memory (conversations, decisions, facts, a searchable
//! store, the notebook `memory.md`) lives in `DATA_DIR/memory/`; confirmed facts go to
//! the other services on `homelab/orchestrator/knowledge-update`.

mod assistant;
mod house;
mod llm;
mod memory;
mod service;
mod settings;
mod tools;

fn main() -> std::process::ExitCode {
    homelab::run::<service::OrchestratorService>()
}
