//! Voids (撤销) and refunds (退货): the supervisor PIN, then the sale they
//! undo, checked in the same store job that writes them pending (so two
//! refunds at once can never give back more than the sale); after that they
//! go to the acquirer like a sale.

use tallybox_core::card::CardRead;
use tallybox_core::money::{Amount, Currency};
use tallybox_core::protocol::{RequestId, Response, TerminalId, TxnKind, TxnStatus};
use tallybox_core::reason;
use tallybox_core::secret::Secret;

use super::Coordinator;
use crate::acquirer::{Acquirer, OriginalRef};
use crate::store::{Store, StoreError};

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
        match self.store(move |s| s.freeze(t.as_str(), &r)).await {
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

/// Checks a void or refund against the sale it undoes: this terminal's
/// approved sale `trace_no`; a void only in the open batch, in full, with the
/// same card, and not after a refund; a refund only of what is left. The
/// amount to ask for and the sale, or the code to refuse with.
#[allow(clippy::type_complexity)]
#[allow(clippy::too_many_arguments)]
pub(super) fn undo_check(
    s: &mut Store,
    rules: &super::fraud::FraudRules,
    terminal: &TerminalId,
    kind: TxnKind,
    trace_no: u32,
    amount: Amount,
    currency: Currency,
    card: &CardRead,
) -> Result<Result<(Amount, Option<(i64, OriginalRef)>), &'static str>, StoreError> {
    let Some(sale) = s.by_trace(terminal, trace_no)? else {
        return Ok(Err(reason::NO_ORIGINAL));
    };
    if sale.kind != TxnKind::Sale || sale.status != TxnStatus::Approved {
        return Ok(Err(reason::NO_ORIGINAL));
    }
    let (voided, refunded) = s.undone(sale.id)?;
    if voided {
        return Ok(Err(reason::NO_ORIGINAL));
    }
    let amount = match kind {
        TxnKind::Void => {
            if sale.batch_no != s.batch_no()? || refunded > 0 {
                return Ok(Err(reason::NO_ORIGINAL));
            }
            if !s.same_card(sale.id, card.pan.digits())? {
                return Ok(Err(reason::OTHER_CARD));
            }
            sale.amount
        }
        _ => {
            if amount.is_zero() || refunded + amount.minor() > sale.amount.minor() {
                return Ok(Err(reason::REFUND_TOO_LARGE));
            }
            let mut hits = Vec::new();
            if !s.same_card(sale.id, card.pan.digits())? {
                hits.push((
                    super::fraud::REFUND_OTHER_CARD,
                    rules.refund_other_card_action,
                    format!("refund of trace {trace_no} to a card other than the sale's"),
                ));
            }
            let (sold, refunded_today) = s.takings_today()?;
            if refunded_today + amount.minor() > sold {
                let money = |minor: u64| currency.format_minor(minor);
                hits.push((
                    super::fraud::REFUNDS_OVER_SALES,
                    rules.refunds_over_sales_action,
                    format!(
                        "refunds today would reach {} against sales of {}",
                        money(refunded_today + amount.minor()),
                        money(sold)
                    ),
                ));
            }
            for (rule, action, detail) in hits {
                let hit = crate::store::fraud::Hit {
                    rule,
                    action,
                    detail,
                    card: None,
                };
                if s.record_hit(terminal, &hit)? {
                    tracing::warn!(terminal = %terminal, detail = %hit.detail, action = ?hit.action, "fraud rule hit");
                }
                // Refunds carry no supervisor approval of their own: they already needed the PIN.
                if hit.action == super::fraud::Action::Block {
                    return Ok(Err(reason::FRAUD_BLOCKED));
                }
            }
            amount
        }
    };
    let original = OriginalRef {
        trace_no: sale.trace_no,
        reference_no: sale.reference_no.clone(),
        auth_code: sale.auth_code.clone(),
    };
    Ok(Ok((amount, Some((sale.id, original)))))
}
