//! One user from `.env`, its password hashed with argon2id at start; sessions with a
//! CSRF token each; failed logins limited per address. Pure apart from the hashing,
//! with `now` passed in.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use chrono::{DateTime, Duration, Utc};
use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;

/// Failed logins allowed per address within [`FAILURE_WINDOW`].
pub(crate) const MAX_FAILURES: usize = 5;
pub(crate) const FAILURE_WINDOW_MINUTES: i64 = 10;

/// OWASP's argon2id minimum (7 MiB, 5 passes): small enough for a 32 MiB container.
fn hasher() -> Argon2<'static> {
    let params = Params::new(7 * 1024, 5, 1, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// The stored form of a password (PHC string); blocking, tens of milliseconds.
pub(crate) fn hash_password(password: &str) -> String {
    // 16 random bytes (uuid v4 draws them from the OS) as the salt.
    let salt =
        SaltString::encode_b64(uuid::Uuid::new_v4().as_bytes()).expect("16 bytes make a salt");
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .expect("hashing with valid parameters")
        .to_string()
}

/// Blocking, tens of milliseconds: call it off the async workers.
pub(crate) fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            hasher()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

fn random_token() -> String {
    format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )
}

#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Session {
    pub(crate) user: String,
    pub(crate) csrf: String,
    expires: DateTime<Utc>,
}

#[derive(Debug, PartialEq)]
pub(crate) enum Refusal {
    /// Too many failures from this address: try again after this.
    RateLimited {
        retry_after_seconds: i64,
    },
    WrongCredentials,
}

pub(crate) struct Auth {
    username: String,
    password_hash: String,
    ttl: Duration,
    sessions: Mutex<HashMap<String, Session>>,
    failures: Mutex<HashMap<IpAddr, VecDeque<DateTime<Utc>>>>,
}

impl Auth {
    pub(crate) fn new(username: &str, password_hash: String, ttl: Duration) -> Self {
        Self {
            username: username.to_string(),
            password_hash,
            ttl,
            sessions: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Refused before the password is even checked when the address is over its limit.
    pub(crate) fn check_rate(&self, from: IpAddr, now: DateTime<Utc>) -> Result<(), Refusal> {
        let mut failures = self.failures.lock().expect("poisoned");
        let recent = failures.entry(from).or_default();
        let window = Duration::minutes(FAILURE_WINDOW_MINUTES);
        while recent.front().is_some_and(|at| now - *at > window) {
            recent.pop_front();
        }
        if recent.len() >= MAX_FAILURES {
            let oldest = *recent.front().expect("not empty");
            return Err(Refusal::RateLimited {
                retry_after_seconds: (oldest + window - now).num_seconds().max(1),
            });
        }
        Ok(())
    }

    /// After [`Auth::check_rate`] and the (blocking) password check: a session, or a
    /// recorded failure.
    pub(crate) fn finish_login(
        &self,
        user: &str,
        password_ok: bool,
        from: IpAddr,
        now: DateTime<Utc>,
    ) -> Result<(String, Session), Refusal> {
        if !(password_ok && user == self.username) {
            self.failures
                .lock()
                .expect("poisoned")
                .entry(from)
                .or_default()
                .push_back(now);
            return Err(Refusal::WrongCredentials);
        }
        self.failures.lock().expect("poisoned").remove(&from);
        let token = random_token();
        let session = Session {
            user: self.username.clone(),
            csrf: random_token(),
            expires: now + self.ttl,
        };
        let mut sessions = self.sessions.lock().expect("poisoned");
        sessions.retain(|_, session| session.expires > now);
        sessions.insert(token.clone(), session.clone());
        Ok((token, session))
    }

    pub(crate) fn password_hash(&self) -> &str {
        &self.password_hash
    }

    pub(crate) fn session(&self, token: &str, now: DateTime<Utc>) -> Option<Session> {
        let sessions = self.sessions.lock().expect("poisoned");
        sessions
            .get(token)
            .filter(|session| session.expires > now)
            .cloned()
    }

    pub(crate) fn logout(&self, token: &str) {
        self.sessions.lock().expect("poisoned").remove(token);
    }
}

/// Compares without stopping at the first difference (CSRF tokens).
pub(crate) fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |diff, (x, y)| diff | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-30T12:00:00Z")
            .unwrap()
            .to_utc()
            + Duration::minutes(minutes)
    }

    fn auth() -> Auth {
        Auth::new("anna", "unused".into(), Duration::hours(12))
    }

    #[test]
    fn a_password_verifies_against_its_hash_only() {
        let hash = hash_password("correct horse");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("correct hors", &hash));
        assert!(!verify_password("x", "not a hash"));
    }

    #[test]
    fn five_failures_lock_the_address_for_the_window_even_for_the_right_password() {
        let auth = auth();
        let from: IpAddr = "192.0.2.7".parse().unwrap();
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        for minute in 0..5 {
            assert_eq!(auth.check_rate(from, at(minute)), Ok(()));
            assert_eq!(
                auth.finish_login("anna", false, from, at(minute))
                    .unwrap_err(),
                Refusal::WrongCredentials
            );
        }
        assert_eq!(
            auth.check_rate(from, at(5)),
            Err(Refusal::RateLimited {
                retry_after_seconds: 300
            })
        );
        assert_eq!(auth.check_rate(other, at(5)), Ok(()), "per address");
        // The first failure leaves the window after 10 minutes.
        assert_eq!(auth.check_rate(from, at(11)), Ok(()));
        assert!(auth.finish_login("anna", true, from, at(11)).is_ok());
    }

    #[test]
    fn sessions_expire_and_end_at_logout() {
        let auth = auth();
        let from: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(
            auth.finish_login("bob", true, from, at(0)).is_err(),
            "only the configured user"
        );
        let (token, session) = auth.finish_login("anna", true, from, at(0)).unwrap();
        assert_eq!(auth.session(&token, at(60)), Some(session.clone()));
        assert_eq!(auth.session(&token, at(12 * 60 + 1)), None);
        let (token, _) = auth.finish_login("anna", true, from, at(0)).unwrap();
        auth.logout(&token);
        assert_eq!(auth.session(&token, at(1)), None);
        assert!(same_secret(&session.csrf, &session.csrf.clone()));
        assert!(!same_secret(&session.csrf, "x"));
    }
}
