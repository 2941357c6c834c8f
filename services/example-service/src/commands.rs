//! The domain of this service, free of I/O: which command gets which answer.

pub(crate) use homelab::messages::command::Command;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;

/// How many request ids are remembered to recognise a redelivered command.
const REMEMBERED_REQUESTS: usize = 256;

/// What to do about a command.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Reply {
    /// Publish `pong` carrying the request's id.
    Pong { request_id: Option<String> },
    /// Already answered (QoS 1 delivers at least once): do nothing.
    AlreadyAnswered,
}

/// Its message is what lands on the dead-letter topic, so it names the command and the choices.
#[derive(Debug)]
pub(crate) struct UnknownCommand(pub(crate) String);

/// The last request ids seen, oldest first; kept in the state file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct RecentRequests(VecDeque<String>);

impl RecentRequests {
    fn contains(&self, id: &str) -> bool {
        self.0.iter().any(|seen| seen == id)
    }

    /// Remembers a request as answered: only once its reply is delivered, so that a
    /// crash in between answers the redelivered request instead of ignoring it.
    pub(crate) fn record(&mut self, id: &str) {
        if self.contains(id) {
            return;
        }
        if self.0.len() == REMEMBERED_REQUESTS {
            self.0.pop_front();
        }
        self.0.push_back(id.to_string());
    }
}

pub(crate) fn decide(command: &Command, recent: &RecentRequests) -> Result<Reply, UnknownCommand> {
    match command.command.as_str() {
        "ping" => match &command.request_id {
            Some(id) if recent.contains(id) => Ok(Reply::AlreadyAnswered),
            request_id => Ok(Reply::Pong {
                request_id: request_id.clone(),
            }),
        },
        other => Err(UnknownCommand(other.to_string())),
    }
}

impl std::fmt::Display for UnknownCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "unknown command {:?}; this service understands: \"ping\"",
            self.0
        )
    }
}

impl std::error::Error for UnknownCommand {}

#[cfg(test)]
mod tests {
    use super::*;

    fn ping(id: Option<&str>) -> Command {
        Command {
            command: "ping".into(),
            request_id: id.map(str::to_string),
        }
    }

    #[test]
    fn a_ping_is_answered_once_per_request_id() {
        let mut recent = RecentRequests::default();
        assert_eq!(
            decide(&ping(Some("r1")), &recent).unwrap(),
            Reply::Pong {
                request_id: Some("r1".into())
            }
        );
        assert_eq!(
            decide(&ping(Some("r1")), &recent).unwrap(),
            Reply::Pong {
                request_id: Some("r1".into())
            },
            "not answered yet (the pong was not delivered): answered again"
        );
        recent.record("r1");
        assert_eq!(
            decide(&ping(Some("r1")), &recent).unwrap(),
            Reply::AlreadyAnswered
        );
        assert_eq!(
            decide(&ping(Some("r2")), &recent).unwrap(),
            Reply::Pong {
                request_id: Some("r2".into())
            }
        );
    }

    #[test]
    fn a_ping_without_id_is_always_answered() {
        let recent = RecentRequests::default();
        for _ in 0..2 {
            assert_eq!(
                decide(&ping(None), &recent).unwrap(),
                Reply::Pong { request_id: None }
            );
        }
    }

    #[test]
    fn only_the_latest_ids_are_remembered() {
        let mut recent = RecentRequests::default();
        for n in 0..=REMEMBERED_REQUESTS {
            recent.record(&n.to_string());
        }
        // "0" was pushed out by the 257th id, so it counts as new again.
        assert_eq!(
            decide(&ping(Some("0")), &recent).unwrap(),
            Reply::Pong {
                request_id: Some("0".into())
            }
        );
        assert_eq!(
            decide(&ping(Some("256")), &recent).unwrap(),
            Reply::AlreadyAnswered
        );
    }

    #[test]
    fn an_unknown_command_is_named_in_the_error() {
        let command = Command {
            command: "reboot".into(),
            request_id: None,
        };
        let error = decide(&command, &RecentRequests::default())
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("\"reboot\"") && error.contains("ping"),
            "{error}"
        );
    }
}
