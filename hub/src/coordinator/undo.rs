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
        let reason_zh = "主管冻结";
        let (t, r) = (terminal.clone(), reason.clone());
        match self
            .store(move |s| s.freeze_said(t.as_str(), &r, reason_zh))
            .await
        {
            Ok(()) => {
                tracing::warn!(terminal = %terminal, "frozen by the supervisor");
                Response::Frozen {
                    request_id: Some(request_id),
                    reason: Some(reason),
                    reason_zh: Some(reason_zh.to_string()),
                }
            }
            Err(e) => super::internal(&request_id, &e),
        }
    }

    /// A void or refund: the supervisor PIN or the owner's order first, then
    /// as a sale, with the original sale checked in the same store job that
    /// writes it pending; without a card, cash back from the drawer
    /// (`cash.rs`), or a code sale's money back to the wallet (`code.rs`).
    pub(super) async fn undo(
        &self,
        terminal: &TerminalId,
        request_id: RequestId,
        undo: Undo,
        card: Option<CardRead>,
        approval: Approval,
    ) -> Option<Response> {
        let Undo {
            kind,
            trace_no,
            amount,
        } = undo;
        // Whose sale it is: this checkout's, or the one the order names.
        let sale_terminal = match approval {
            Approval::Order(order) => {
                let orders = &self.settings.orders;
                let Some(taken) = orders.take(&order, terminal, kind, trace_no, amount, &request_id) else {
                    tracing::warn!(terminal = %terminal, kind = kind.as_str(), trace_no, "void or refund with an order that is not open for it");
                    return Some(Self::refused(request_id, kind, reason::ORDER_GONE));
                };
                tracing::info!(terminal = %terminal, kind = kind.as_str(), trace_no, by = %taken.by, "void or refund ordered on the web page");
                taken.sale_terminal
            }
            Approval::Split(group) => {
                let (g, t) = (group.clone(), terminal.clone());
                let open = self.store(move |s| s.split_part_open(&g, &t, trace_no)).await;
                if kind != TxnKind::Void || !matches!(open, Ok(true)) {
                    tracing::warn!(terminal = %terminal, trace_no, "a split sale's part may not be undone without the supervisor now");
                    return Some(Self::refused(request_id, kind, reason::SUPERVISOR_PIN));
                }
                tracing::info!(terminal = %terminal, trace_no, "a part of an unfinished split sale undone by the cashier");
                terminal.clone()
            }
            Approval::Pin(pin) => {
                if self.shop().supervisor_pin_hash.is_none() {
                    tracing::warn!(terminal = %terminal, "void or refund refused: no supervisor PIN is set (setting supervisor_pin)");
                }
                if !self.supervisor_pin_ok(&pin).await {
                    tracing::warn!(terminal = %terminal, kind = kind.as_str(), trace_no, "wrong supervisor PIN");
                    return Some(Self::refused(request_id, kind, reason::SUPERVISOR_PIN));
                }
                terminal.clone()
            }
        };
        let Some(card) = card else {
            // No card: the money goes back the way the sale was paid.
            let t = sale_terminal.clone();
            let paid_by = self.store(move |s| s.by_trace(&t, trace_no)).await;
            let sale = (sale_terminal, trace_no);
            return match paid_by {
                Ok(Some(txn)) if txn.paid.tender() == tallybox_core::protocol::Tender::Code => {
                    self.code_back(terminal, request_id, kind, amount, sale).await
                }
                _ => self.cash_back(terminal, request_id, kind, amount, sale).await,
            };
        };
        let currency = self.settings.currency.code().to_string();
        self.authorize(
            terminal,
            request_id,
            kind,
            amount,
            &currency,
            card,
            None,
            Some((sale_terminal, trace_no)),
            false,
            None,
        )
        .await
    }
}

/// A void or refund as a checkout asks it.
pub(super) struct Undo {
    pub kind: TxnKind,
    pub trace_no: u32,
    /// Nothing for a void (the whole sale goes back).
    pub amount: Amount,
}

/// Who lets a void or refund through.
pub(super) enum Approval {
    /// The supervisor's PIN, keyed at the checkout (none keyed: a wrong one).
    Pin(Secret<String>),
    /// The owner's order from the web page.
    Order(String),
    /// The cashier, undoing a part of this split sale (its group) that is
    /// not paid in full: no PIN for the ten minutes it may take.
    Split(RequestId),
}

impl Approval {
    pub fn of(pin: Option<Secret<String>>, order: Option<String>) -> Approval {
        match (order, pin) {
            (Some(order), _) => Approval::Order(order),
            (None, pin) => Approval::Pin(pin.unwrap_or_else(|| Secret::new(String::new()))),
        }
    }
}
