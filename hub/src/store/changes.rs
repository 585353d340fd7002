//! What a commit changed, as typed values: the store writer hands them out
//! after the commit that holds them is on disk ([`super::StoreHandle::subscribe`]),
//! so the page's live stream, the freeze announcements and the hub's own
//! checkout hear of a sale, a freeze or a fraud hit at once, without reading
//! SQLite to find out whether anything moved. Only the writer's connection
//! collects them (a job rolled back drops its own); writes on other
//! connections — the web page's edits, another `tallybox` process — are seen
//! through SQLite's `data_version` instead (`web::watch_changes`).

use tallybox_core::protocol::{TerminalId, TxnStatus};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A transaction was recorded (`pending`) or reached its final state.
    Txn {
        id: i64,
        terminal: TerminalId,
        status: TxnStatus,
    },
    /// A terminal was heard from: status, heartbeat, sign-in; `changed`
    /// when it went online or offline or runs another version (noted so
    /// only while the shop is in a chain).
    TerminalSeen { terminal: TerminalId, changed: bool },
    /// A fraud rule hit `terminal`.
    FraudHit { terminal: TerminalId, rule: String },
    /// A freeze was put on (`frozen`) or taken off `scope` (a terminal id, or `store`).
    Freeze { scope: String, frozen: bool },
    /// Batch `batch_no` was settled.
    Settled { batch_no: u32 },
    /// A troubleshooting check's status changed.
    Check {
        id: String,
        status: String,
        evidence: String,
        evidence_zh: String,
    },
    /// Local day `day` (`2026-12-05`) is over: the hub looked after it ended.
    DayClosed { day: String },
    /// Head office's document `kind` at `version` was taken (`refused`
    /// says why not); `kept_local` names what the owner's own settings kept.
    Applied {
        kind: String,
        version: u64,
        kept_local: Vec<String>,
        refused: Option<String>,
    },
}

/// The changes of the open transaction, when this connection collects them.
#[derive(Debug, Default)]
pub(super) struct Collected(Option<Vec<Change>>);

impl Collected {
    pub(super) fn start(&mut self) {
        self.0.get_or_insert_with(Vec::new);
    }

    /// Whether this connection collects (the writer's, or inside [`super::Store::on_own`]).
    pub(super) fn collecting(&self) -> bool {
        self.0.is_some()
    }

    pub(super) fn stop(&mut self) {
        self.0 = None;
    }

    pub(super) fn note(&mut self, change: Change) {
        if let Some(changes) = &mut self.0 {
            changes.push(change);
        }
    }

    /// How many are held, to roll back to.
    pub(super) fn mark(&self) -> usize {
        self.0.as_ref().map_or(0, Vec::len)
    }

    pub(super) fn roll_back_to(&mut self, mark: usize) {
        if let Some(changes) = &mut self.0 {
            changes.truncate(mark);
        }
    }

    /// What is held so far.
    pub(super) fn peek(&self) -> &[Change] {
        self.0.as_deref().unwrap_or_default()
    }

    pub(super) fn take(&mut self) -> Vec<Change> {
        self.0.as_mut().map(std::mem::take).unwrap_or_default()
    }
}
