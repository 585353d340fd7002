//! What the coordinator keeps about a terminal that is not a transaction:
//! whether it is frozen, its retained status as the broker reports it, and
//! the device counters each heartbeat brings.

use super::*;

impl<A: Acquirer> Coordinator<A> {
    /// Why `terminal` may not sell, if it may not.
    pub async fn frozen(&self, terminal: &TerminalId) -> Result<Option<String>, StoreError> {
        let t = terminal.clone();
        self.store(move |s| s.frozen(&t)).await
    }

    /// The freeze generation, and every known terminal with why it may not
    /// sell, if it may not.
    #[allow(clippy::type_complexity)]
    pub async fn frozen_terminals(&self) -> Result<(i64, Vec<(String, Option<String>)>), StoreError> {
        self.store(|s| Ok((s.freeze_generation()?, s.frozen_terminals()?)))
            .await
    }

    /// Notes a terminal's retained status (online / offline, version), if
    /// the hub knows the terminal (it signed in or was paired).
    pub async fn terminal_status(&self, terminal: &TerminalId, status: tallybox_core::protocol::Status) {
        let t = terminal.clone();
        let noted = self
            .store(move |s| s.note_status(&t, status.online, &status.version).map(|_| ()))
            .await;
        if let Err(e) = noted {
            tracing::warn!(terminal = %terminal, error = %e, "terminal status not recorded");
        }
    }

    /// A heartbeat: the terminal is alive, and its devices' counters.
    pub(super) async fn heartbeat(&self, terminal: &TerminalId, heartbeat: requests::Heartbeat) {
        let t = terminal.clone();
        let requests::Heartbeat { uptime_s, devices } = heartbeat;
        let recorded = self
            .store(move |s| {
                s.touch_terminal(&t, Some(true), None)?;
                match devices {
                    Some(health) => s.record_heartbeat(&t, uptime_s, &health),
                    None => Ok(()),
                }
            })
            .await;
        if let Err(e) = recorded {
            tracing::warn!(terminal = %terminal, error = %e, "heartbeat not recorded");
        }
    }
}
