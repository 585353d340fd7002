//! What the coordinator keeps about a terminal that is not a transaction:
//! whether it is frozen, its retained status as the broker reports it, and
//! the device counters each heartbeat brings.

use super::*;

impl<A: Acquirer> Coordinator<A> {
    /// Why `terminal` may not sell, if it may not.
    pub async fn frozen(&self, terminal: &TerminalId) -> Result<Option<FrozenWords>, StoreError> {
        let t = terminal.clone();
        self.store(move |s| s.frozen_said(&t)).await
    }

    /// The freeze generation, and every known terminal with why it may not
    /// sell, if it may not.
    #[allow(clippy::type_complexity)]
    pub async fn frozen_terminals(&self) -> Result<(i64, Vec<(String, Option<FrozenWords>)>), StoreError> {
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

    /// A paired checkout's record of the approvals it printed: any the
    /// store lost is brought back (see [`crate::store::reconcile`]).
    pub(super) async fn printed(&self, terminal: &TerminalId, printed: requests::Printed) {
        let (t, merchant) = (terminal.clone(), self.shop().merchant_id);
        let entries = printed.entries.len();
        match self
            .store(move |s| s.reconcile_printed(&t, &merchant, &printed.entries))
            .await
        {
            Ok(done) => {
                if !done.brought_back.is_empty() {
                    tracing::warn!(terminal = %terminal, traces = ?done.brought_back, "approvals the hub's records had lost were brought back from the checkout's own record");
                }
                for why in &done.refused {
                    tracing::warn!(terminal = %terminal, why, "an approval in the checkout's record was not taken");
                }
                tracing::debug!(terminal = %terminal, entries, known = done.known, "checkout's record compared");
            }
            Err(e) => {
                tracing::error!(terminal = %terminal, error = %e, "the checkout's record could not be compared; it is sent again at its next sign-in")
            }
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
