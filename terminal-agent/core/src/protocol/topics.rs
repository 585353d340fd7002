//! The MQTT topic names of one store (the table in `PROTOCOL.md`).

use super::TerminalId;

/// The topic names of one store.
#[derive(Debug, Clone)]
pub struct Topics {
    prefix: String,
}

impl Topics {
    pub fn new(store: &str) -> Self {
        Topics {
            prefix: format!("tallybox/v1/{store}"),
        }
    }

    pub fn hub_status(&self) -> String {
        format!("{}/hub/status", self.prefix)
    }
    /// The hub's probe of its own link: it publishes here and must hear it back.
    pub fn hub_ping(&self) -> String {
        format!("{}/hub/ping", self.prefix)
    }
    pub fn term_status(&self, tid: &TerminalId) -> String {
        format!("{}/term/{tid}/status", self.prefix)
    }
    pub fn req(&self, tid: &TerminalId) -> String {
        format!("{}/term/{tid}/req", self.prefix)
    }
    pub fn resp(&self, tid: &TerminalId) -> String {
        format!("{}/term/{tid}/resp", self.prefix)
    }
    pub fn cmd(&self, tid: &TerminalId) -> String {
        format!("{}/term/{tid}/cmd", self.prefix)
    }
    /// What the hub subscribes to: every terminal's requests and status.
    pub fn all_requests(&self) -> String {
        format!("{}/term/+/req", self.prefix)
    }
    pub fn all_statuses(&self) -> String {
        format!("{}/term/+/status", self.prefix)
    }

    /// Splits `…/term/{tid}/{leaf}` into the terminal and the leaf.
    pub fn parse_term_topic<'t>(&self, topic: &'t str) -> Option<(TerminalId, &'t str)> {
        let rest = topic.strip_prefix(&self.prefix)?.strip_prefix("/term/")?;
        let (tid, leaf) = rest.split_once('/')?;
        Some((TerminalId::parse(tid).ok()?, leaf))
    }
}
