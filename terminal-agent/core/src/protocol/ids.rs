//! The short ids that name a store, a checkout and one customer action.

use serde::{Deserialize, Serialize};

/// Short id of a store or terminal: 1–32 of `A-Z a-z 0-9 - _`, safe in a topic.
fn valid_id(s: &str) -> bool {
    (1..=32).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TerminalId(String);

impl TerminalId {
    pub fn parse(s: &str) -> Result<Self, String> {
        if valid_id(s) {
            Ok(TerminalId(s.to_string()))
        } else {
            Err(format!(
                "'{s}' is not a terminal id: use 1-32 letters, digits, '-' or '_'"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for TerminalId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for TerminalId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        TerminalId::parse(&s)
    }
}

impl From<TerminalId> for String {
    fn from(t: TerminalId) -> String {
        t.0
    }
}

/// Made once per customer action and re-sent unchanged until answered: the hub
/// charges a request id at most once.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RequestId(String);

/// Where new request ids take the time from (Unix milliseconds): given once
/// by a program that may read the clock (the core reads none).
static CLOCK: std::sync::OnceLock<fn() -> u64> = std::sync::OnceLock::new();

impl RequestId {
    /// Makes every id after this start with the time `now` gives.
    pub fn take_time_from(now: fn() -> u64) {
        let _ = CLOCK.set(now);
    }

    /// A new id: [`RequestId::made_at`] the time once a program gave the
    /// clock ([`RequestId::take_time_from`]), else a random UUID (v4).
    pub fn new() -> Self {
        match CLOCK.get() {
            Some(now) => RequestId::made_at(now()),
            None => RequestId(uuid::Uuid::new_v4().to_string()),
        }
    }

    /// A UUID of version 7: `unix_ms`, then 74 random bits. Ids made one
    /// after another sort together, so the hub's index of them takes each
    /// new one on its last page instead of a random one (an SD card's wear).
    pub fn made_at(unix_ms: u64) -> Self {
        let nanos = (unix_ms % 1000) as u32 * 1_000_000;
        let at = uuid::Timestamp::from_unix(uuid::NoContext, unix_ms / 1000, nanos);
        RequestId(uuid::Uuid::new_v7(at).to_string())
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        let ok = (8..=64).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(RequestId(s.to_string()))
        } else {
            Err("request_id must be 8-64 letters, digits, '-' or '_'".to_string())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for RequestId {
    fn default() -> Self {
        RequestId::new()
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for RequestId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        RequestId::parse(&s)
    }
}

impl From<RequestId> for String {
    fn from(r: RequestId) -> String {
        r.0
    }
}
