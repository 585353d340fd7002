//! Reversals (冲正): a sale the acquirer did not answer in time is reversed
//! before the cashier hears "not charged", and whatever a crash left pending
//! is reversed at start and by the sweep until the acquirer acknowledges.

use super::*;

impl<A: Acquirer> Coordinator<A> {
    /// Reverses a pending transaction; the reversed row once acknowledged.
    pub(super) async fn reverse(&self, txn: &Txn) -> Option<Txn> {
        let id = txn.id;
        // One the hub cannot note (a full disk) goes out as a repeat, which
        // a host takes either way: the customer's money comes first.
        let repeat = self.store(move |s| s.reversal_going(id)).await.unwrap_or(true);
        match self
            .within_timeout(self.acquirer.reverse(txn.reversal(repeat)))
            .await
        {
            Ok(()) => {}
            // Kept pending: the original may have gone out under another
            // setting. An id for the checkout in `acquirer_terminal_ids` lets
            // the reversal out.
            Err(e @ AcquirerError::NotSent { .. }) => {
                tracing::error!(terminal = %txn.terminal_id, trace_no = txn.trace_no, error = %e, "the reversal cannot be sent; give the checkout an acquirer terminal id (acquirer_terminal_ids)");
                return None;
            }
            Err(e) => {
                tracing::warn!(trace_no = txn.trace_no, error = %e, "reversal not acknowledged; will retry");
                return None;
            }
        }
        match self
            .end_here(txn.id, TxnStatus::Reversed, reason::NOT_CHARGED)
            .await
        {
            Ok(t) => {
                tracing::info!(terminal = %t.terminal_id, trace_no = t.trace_no, "transaction reversed: not charged");
                Some(t)
            }
            Err(e) => {
                tracing::error!(trace_no = txn.trace_no, error = %e, "reversal acknowledged but not recorded; will retry");
                None
            }
        }
    }

    /// Reverses every `pending` transaction nobody is working on: at start-up,
    /// those a crash left behind; later, those whose reversal failed before.
    ///
    /// Not while the history is lost below the database: a sale left pending
    /// there may have been approved and printed, its approval lost with the
    /// rest, and the checkout's record (taken when it signs in) completes it.
    /// The sweep reverses what is still pending once the owner accepts the
    /// loss or restores a backup.
    pub async fn reverse_leftovers(&self) -> Result<usize, StoreError> {
        let (pending, lost) = self
            .store(|s| Ok((s.pending()?, s.history_lost()?.is_some())))
            .await?;
        if lost {
            if !pending.is_empty() {
                tracing::debug!(
                    pending = pending.len(),
                    "sales left pending wait for the checkouts' records: the history is lost"
                );
            }
            return Ok(0);
        }
        self.reverse_each(pending).await
    }

    /// Reverses each of `pending` (read a moment ago) that nobody is working
    /// on and that is still pending.
    pub(super) async fn reverse_each(&self, pending: Vec<Txn>) -> Result<usize, StoreError> {
        let mut reversed = 0;
        for txn in pending {
            let Some(_claim) = self.claim(&txn.request_id) else {
                continue;
            };
            // The list was read before the claim: the sale may have finished
            // since (approved and answered). Reversing it then would undo a
            // charge the customer was told about.
            let id = txn.id;
            let now = self.store(move |s| s.get(id)).await?;
            if now.is_none_or(|t| t.status != TxnStatus::Pending) {
                continue;
            }
            // A code payment is settled with its provider, not the acquirer.
            let settled = match txn.paid.tender() {
                Tender::Code => self.settle_code(&txn).await,
                _ => self.reverse(&txn).await.is_some(),
            };
            if settled {
                reversed += 1;
            }
        }
        Ok(reversed)
    }
}
