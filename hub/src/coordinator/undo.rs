//! Voids (撤销) and refunds (退货): the supervisor PIN, then the sale they
//! undo, checked by the admission rules (`admission.rs`) in the same store
//! job that writes them pending (so two refunds at once can never give back
//! more than the sale); after that they go to the acquirer like a sale.

use tallybox_core::card::CardRead;
use tallybox_core::money::Amount;
use tallybox_core::protocol::{RequestId, Response, TerminalId, TxnKind};
use tallybox_core::reason;
use tallybox_core::secret::Secret;

use super::Coordinator;
use crate::acquirer::Acquirer;

impl<A: Acquirer> Coordinator<A> {
    /// Whether `given` is the supervisor's PIN (never, when none is set).
    /// Argon2 takes tens of milliseconds: it runs off the async workers.
    pub(super) async fn supervisor_pin_ok(&self, given: &Secret<String>) -> bool {
        let Some(hash) = self.shop().supervisor_pin_hash else {
            return false;
        };
        let given = given.clone();
        tokio::task::spawn_blocking(move || crate::passwords::verify(given.expose(), &hash))
            .await
            .unwrap_or(false)
    }

    /// The supervisor freezes their own checkout from the keypad; only the
    /// owner can unfreeze it. A wrong PIN answers like a refused void.
    pub(super) async fn freeze_by_supervisor(
        &self,
        terminal: &TerminalId,
        request_id: RequestId,
        supervisor_pin: &Secret<String>,
    ) -> Response {
        if !self.supervisor_pin_ok(supervisor_pin).await {
            tracing::warn!(terminal = %terminal, "freeze refused: wrong supervisor PIN");
            return Self::refused(request_id, TxnKind::Void, reason::SUPERVISOR_PIN);
        }
        let reason = "frozen by supervisor".to_string();
        let (t, r) = (terminal.clone(), reason.clone());
        match self
            .store(move |s| s.freeze_said(t.as_str(), &r, "主管冻结"))
            .await
        {
            Ok(()) => {
                tracing::warn!(terminal = %terminal, "frozen by the supervisor");
                Response::Frozen {
                    request_id: Some(request_id),
                    reason: Some(reason),
                }
            }
            Err(e) => super::internal(&request_id, &e),
        }
    }

    /// A void or refund: the supervisor PIN first, then as a sale, with the
    /// original sale checked in the same store job that writes it pending.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn undo(
        &self,
        terminal: &TerminalId,
        request_id: RequestId,
        kind: TxnKind,
        trace_no: u32,
        amount: Amount,
        card: CardRead,
        supervisor_pin: &Secret<String>,
    ) -> Option<Response> {
        if self.shop().supervisor_pin_hash.is_none() {
            tracing::warn!(terminal = %terminal, "void or refund refused: no supervisor PIN is set (setting supervisor_pin)");
        }
        if !self.supervisor_pin_ok(supervisor_pin).await {
            tracing::warn!(terminal = %terminal, kind = kind.as_str(), trace_no, "wrong supervisor PIN");
            return Some(Self::refused(request_id, kind, reason::SUPERVISOR_PIN));
        }
        let currency = self.settings.currency.code().to_string();
        self.authorize(
            terminal,
            request_id,
            kind,
            amount,
            &currency,
            card,
            None,
            Some(trace_no),
            false,
        )
        .await
    }
}
