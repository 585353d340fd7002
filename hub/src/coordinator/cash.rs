//! A cash sale: the customer hands over notes, the checkout opens its
//! drawer. No acquirer is asked, so there is nothing to leave pending: the
//! store job that looks the request id up also admits the sale under the
//! same rules as a card sale (frozen checkout, cashier signed on, the
//! amount rules of `fraud.rs`; the card rules have no card to count) and
//! records it approved, with its trace number and audit record, in one
//! SQLite transaction. A repeat gets the recorded sale (and its slip) back;
//! the drawer is the checkout's to open once, when it hears "approved".

use super::authorize::{record_hits, unfit_code};
use super::*;
use crate::store::NewCash;

/// What the store found for a cash sale's request id.
enum Cash {
    Known(Txn),
    Lost,
    Recorded(Txn),
    Refused(ReasonCode),
    Unfit(Unfit),
}

impl<A: Acquirer> Coordinator<A> {
    /// `supervisor_approved`: the sale came with the supervisor's right PIN.
    pub(super) async fn cash_sale(
        &self,
        terminal: &TerminalId,
        sale: requests::CashSale,
        supervisor_approved: bool,
    ) -> Option<Response> {
        let requests::CashSale {
            request_id,
            amount,
            currency,
            tendered,
            split,
            ..
        } = sale;
        let _claim = self.claim(&request_id)?;
        if let Some(code) = self.refused_before(&request_id) {
            return Some(Self::refused(request_id, TxnKind::Sale, code));
        }
        let settings = &self.settings;
        let checked = admission::check_amount(
            TxnKind::Sale,
            amount,
            &currency,
            settings.currency,
            settings.max_sale,
        )
        .and_then(|()| match tendered >= amount {
            true => Ok(()),
            false => Err(format!(
                "the cash handed over ({}) is less than the amount ({})",
                settings.currency.format(tendered),
                settings.currency.format(amount)
            )),
        });
        if let Err(message) = checked {
            return Some(Response::Error {
                request_id: Some(request_id.to_string()),
                code: ErrorCode::InvalidAmount,
                message,
            });
        }
        let (rid, tid, rules) = (request_id.clone(), terminal.clone(), settings.fraud.get());
        let (currency, cashier_required) = (settings.currency, self.shop().cashier_sign_on);
        let found = self
            .store(move |s| {
                if let Some(txn) = s.by_request(rid.as_str())? {
                    return Ok(Cash::Known(txn));
                }
                let ask = admission::Ask {
                    kind: TxnKind::Sale,
                    amount,
                    currency,
                    undo: None,
                    tender: Tender::Cash,
                    entry_mode: None,
                    supervisor_approved,
                    cashier_required,
                    rules: &rules,
                    now: tallybox_platform::clock::now().time(),
                };
                let facts = admission::Facts {
                    lost: s.is_lost(&rid)?,
                    unfit: s.unfit_for_sales()?,
                    frozen: s.frozen(&tid)?,
                    cashier_signed_on: cashier_required && s.terminal_cashier(&tid)?.is_some(),
                    fraud: s.cash_fraud_facts()?,
                    split_owed: super::authorize::owed(s, split.as_ref())?,
                    ..Default::default()
                };
                let new = NewCash {
                    request_id: &rid,
                    terminal_id: &tid,
                    kind: TxnKind::Sale,
                    amount,
                    currency: currency.code(),
                    tendered,
                    original_id: None,
                    split: split.as_ref(),
                };
                decide_and_record(s, &ask, &facts, new)
            })
            .await;
        self.cash_answer(terminal, request_id, TxnKind::Sale, amount, found)
    }

    /// A void or refund of a cash sale, approved by the supervisor or the
    /// owner's order (checked by the caller): the sale's facts read and the
    /// money back recorded in one store job, under the rules of `admission.rs`;
    /// no acquirer. The drawer opens at the checkout when it is approved.
    pub(super) async fn cash_back(
        &self,
        terminal: &TerminalId,
        request_id: RequestId,
        kind: TxnKind,
        amount: Amount,
        sale: (TerminalId, u32),
    ) -> Option<Response> {
        let _claim = self.claim(&request_id)?;
        if let Some(code) = self.refused_before(&request_id) {
            return Some(Self::refused(request_id, kind, code));
        }
        let (rid, tid, rules) = (request_id.clone(), terminal.clone(), self.settings.fraud.get());
        let currency = self.settings.currency;
        let found = self
            .store(move |s| {
                if let Some(txn) = s.by_request(rid.as_str())? {
                    return Ok(Cash::Known(txn));
                }
                let (sale_terminal, trace_no) = sale;
                let original = super::authorize::original(s, &sale_terminal, trace_no, None)?;
                let facts = no_card_facts(s, &rid, &tid, original)?;
                let ask = admission::Ask {
                    tender: Tender::Cash,
                    ..no_card_ask(kind, amount, currency, trace_no, &rules)
                };
                let new = NewCash {
                    request_id: &rid,
                    terminal_id: &tid,
                    kind,
                    amount,
                    currency: currency.code(),
                    tendered: amount,
                    original_id: None,
                    split: None,
                };
                decide_and_record(s, &ask, &facts, new)
            })
            .await;
        self.cash_answer(terminal, request_id, kind, amount, found)
    }

    /// The answer to a cash request, from what its store job found.
    fn cash_answer(
        &self,
        terminal: &TerminalId,
        request_id: RequestId,
        kind: TxnKind,
        amount: Amount,
        found: Result<Cash, StoreError>,
    ) -> Option<Response> {
        match found {
            Err(e) if e.is_storage() => {
                tracing::error!(terminal = %terminal, request_id = %request_id, error = %e, "refused: the hub cannot record transactions");
                Some(self.refuse(request_id, kind, reason::HUB_STORAGE))
            }
            Err(e) => Some(internal(&request_id, &e)),
            Ok(Cash::Known(txn)) => self.repeat(&txn, terminal, kind, amount, Tender::Cash),
            Ok(Cash::Lost) => Some(Self::not_received(request_id, kind)),
            Ok(Cash::Refused(code)) => Some(self.refuse(request_id, kind, code)),
            Ok(Cash::Unfit(why)) => {
                tracing::error!(terminal = %terminal, request_id = %request_id, reason = %why, "refused: the hub cannot take transactions now");
                Some(self.refuse(request_id, kind, unfit_code(&why)))
            }
            Ok(Cash::Recorded(txn)) => {
                tracing::info!(
                    terminal = %terminal, request_id = %request_id, kind = kind.as_str(), tender = "cash",
                    status = txn.status.as_str(), trace_no = txn.trace_no, "transaction finished"
                );
                Some(self.outcome(&txn, None))
            }
        }
    }
}

/// What admission looks at for money given back without a card (from the
/// drawer, or to a wallet): the sale it undoes, and the day's takings.
pub(super) fn no_card_facts(
    s: &mut Store,
    request_id: &RequestId,
    terminal: &TerminalId,
    sale: Option<admission::Original>,
) -> Result<admission::Facts, StoreError> {
    let (sold_today, refunded_today) = s.takings_today()?;
    Ok(admission::Facts {
        lost: s.is_lost(request_id)?,
        unfit: s.unfit_for_sales()?,
        frozen: s.frozen(terminal)?,
        undo: admission::UndoFacts {
            sale,
            open_batch: s.batch_no()?,
            sold_today,
            refunded_today,
        },
        ..Default::default()
    })
}

/// A void or refund of the sale `trace_no` without a card, approved by the
/// caller (the supervisor or the owner's order); the caller sets its tender.
pub(super) fn no_card_ask(
    kind: TxnKind,
    amount: Amount,
    currency: Currency,
    trace_no: u32,
    rules: &fraud::FraudRules,
) -> admission::Ask<'_> {
    admission::Ask {
        kind,
        amount,
        currency,
        undo: Some(trace_no),
        tender: Tender::Cash,
        entry_mode: None,
        supervisor_approved: true,
        cashier_required: false,
        rules,
        now: tallybox_platform::clock::now().time(),
    }
}

/// Decides `ask` on `facts`, keeps the fraud hits and, when admitted,
/// records `new` for the amount admitted (a void's is the sale's; money
/// given back is what the drawer hands over) against the sale it undoes.
fn decide_and_record(
    s: &mut Store,
    ask: &admission::Ask,
    facts: &admission::Facts,
    new: NewCash<'_>,
) -> Result<Cash, StoreError> {
    let decided = admission::decide(ask, facts);
    record_hits(s, new.terminal_id, &decided.hits)?;
    Ok(match decided.verdict {
        admission::Verdict::Lost => Cash::Lost,
        admission::Verdict::Unfit(why) => Cash::Unfit(why),
        admission::Verdict::Refuse(code) => Cash::Refused(code),
        admission::Verdict::Admit { amount, original } => {
            let tendered = match new.kind {
                TxnKind::Sale => new.tendered,
                _ => amount,
            };
            let new = NewCash {
                amount,
                tendered,
                original_id: original.map(|(id, _)| id),
                ..new
            };
            Cash::Recorded(s.record_cash(&new)?)
        }
    })
}
