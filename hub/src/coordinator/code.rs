//! A code sale (付款码): the customer shows a payment code in a wallet app,
//! the checkout scans it, and the hub asks the code's provider. The same
//! rules as a card sale keep the money right:
//!
//! - **Pending before the provider hears of it**, under the store's
//!   admission rules, in one store job.
//! - **Exactly once**: the provider's order number is the request id
//!   ([`crate::payments::order_no`]), so a repeat after a crash asks about
//!   the same order instead of paying twice.
//! - **Not charged means not charged**: while the buyer confirms in the
//!   app, the hub asks the provider every few seconds (telling the checkout
//!   how long it still waits); when the time is up or the cashier presses
//!   C, it cancels the order, and only once the provider says it is closed
//!   does the cashier hear "not charged". An order no answer can settle
//!   stays `pending`, and the sweep ([`Coordinator::settle_code`]) asks
//!   again, at start too.
//!
//! A void or refund of a code sale gives the money back to the wallet
//! through the provider (`out_request_no`: the refund's own request id, so
//! a repeat refunds once).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use super::authorize::{owed, record_hits, unfit_code};
use super::*;
use crate::payments::{order_no, Answer, CodeProvider, Order, RefundOrder};
use crate::store::NewCode;
use tallybox_core::protocol::{Paid, Provider};

/// What the store found for a code request's id.
enum Start {
    Known(Txn),
    Lost,
    /// Written pending; for a void or refund, with the sale it undoes.
    Pending(Txn, Option<Box<Txn>>),
    Refused(ReasonCode),
    Unfit(Unfit),
}

/// A code request written pending, with the sale it undoes (a void or refund).
type Begun = (Txn, Option<Box<Txn>>);

/// How a code payment ended, as far as the provider said.
enum Decided {
    Answer(Answer),
    /// No answer could settle it: left pending for the sweep.
    Unknown(String),
}

/// The code sales the buyer is confirming now, by request id: the
/// checkout that asked, and how the cashier's C reaches the wait.
#[derive(Default)]
pub(super) struct Confirming(Mutex<HashMap<String, (TerminalId, Arc<tokio::sync::Notify>)>>);

/// Takes a code sale out of [`Confirming`] however its wait ends.
struct Waiting<'a> {
    confirming: &'a Confirming,
    id: String,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.confirming
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}

impl<A: Acquirer> Coordinator<A> {
    /// `supervisor_approved`: the sale came with the supervisor's right PIN.
    pub(super) async fn code_sale(
        &self,
        terminal: &TerminalId,
        sale: requests::CodeSale,
        supervisor_approved: bool,
    ) -> Option<Response> {
        let requests::CodeSale {
            request_id,
            amount,
            currency,
            code,
            split,
            ..
        } = sale;
        let claim = self.claim(&request_id)?;
        if let Some(code) = self.refused_before(&request_id) {
            return Some(Self::refused(request_id, TxnKind::Sale, code));
        }
        let settings = &self.settings;
        if let Err(message) = admission::check_amount(
            TxnKind::Sale,
            amount,
            &currency,
            settings.currency,
            settings.max_sale,
        ) {
            return Some(Response::Error {
                request_id: Some(request_id.to_string()),
                code: ErrorCode::InvalidAmount,
                message,
            });
        }
        let Some(provider) = Provider::of_code(code.expose()) else {
            // How long it was says what went wrong (a misread, a card number); never its digits.
            let digits = code.expose().len();
            tracing::warn!(terminal = %terminal, digits, "not a payment code any provider issues");
            return Some(self.refuse(request_id, TxnKind::Sale, reason::CODE_INVALID));
        };
        let Some(client) = settings.codes.get(provider) else {
            tracing::warn!(terminal = %terminal, provider = provider.as_str(), "a payment code of a provider the shop has not set up");
            return Some(self.refuse(request_id, TxnKind::Sale, reason::CODE_NOT_SET_UP));
        };
        let (rid, tid, rules) = (request_id.clone(), terminal.clone(), settings.fraud.get());
        let (currency, cashier_required) = (settings.currency, self.shop().cashier_sign_on);
        let found = self
            .store(move |s| {
                if let Some(txn) = s.by_request(rid.as_str())? {
                    return Ok(Start::Known(txn));
                }
                let ask = admission::Ask {
                    kind: TxnKind::Sale,
                    amount,
                    currency,
                    undo: None,
                    tender: Tender::Code,
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
                    split_owed: owed(s, split.as_ref())?,
                    ..Default::default()
                };
                let new = NewCode {
                    request_id: &rid,
                    terminal_id: &tid,
                    kind: TxnKind::Sale,
                    amount,
                    currency: currency.code(),
                    provider,
                    original_id: None,
                    split: split.as_ref(),
                };
                decide_and_begin(s, &ask, &facts, new, None)
            })
            .await;
        let txn = match self.started(terminal, &request_id, TxnKind::Sale, amount, found) {
            Ok((txn, _)) => txn,
            Err(answer) => return *answer,
        };
        let order = Order {
            out_trade_no: order_no(&request_id),
            code,
            amount: txn.amount,
            subject: self.shop().name,
            terminal: terminal.to_string(),
        };
        let started = Instant::now();
        let first = client.pay(&order).await;
        let decided = self
            .until_decided(terminal, &txn, client.as_ref(), first, started)
            .await;
        let answer = self.code_verdict(&txn, decided).await;
        drop(claim);
        tracing::info!(
            terminal = %terminal, request_id = %request_id, provider = provider.as_str(),
            ms = started.elapsed().as_millis() as u64, answered = answer.is_some(), "code sale finished"
        );
        answer
    }

    /// The cashier pressed C on the code sale `sale`: its wait ends now and
    /// the hub cancels the order (the sale's answer says how it ended).
    pub(super) fn cancel_code(&self, terminal: &TerminalId, sale: &RequestId) {
        let confirming = self.confirming.0.lock().unwrap_or_else(|e| e.into_inner());
        match confirming.get(sale.as_str()) {
            Some((asker, stop)) if asker == terminal => {
                tracing::info!(terminal = %terminal, request_id = %sale, "the cashier stopped a code sale");
                stop.notify_one();
            }
            Some(_) => {
                tracing::warn!(terminal = %terminal, request_id = %sale, "a cancel for another checkout's code sale ignored")
            }
            None => {}
        }
    }

    /// Asks the provider until the order is decided, the buyer's time is up
    /// or the cashier stops it; then cancels it.
    async fn until_decided(
        &self,
        terminal: &TerminalId,
        txn: &Txn,
        client: &dyn CodeProvider,
        first: Result<Answer, String>,
        started: Instant,
    ) -> Decided {
        let codes = &self.settings.codes;
        let out_trade_no = order_no(&txn.request_id);
        let stop = Arc::new(tokio::sync::Notify::new());
        self.confirming
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(txn.request_id.to_string(), (terminal.clone(), Arc::clone(&stop)));
        let _waiting = Waiting {
            confirming: &self.confirming,
            id: txn.request_id.to_string(),
        };
        let deadline = started + codes.wait;
        let mut last = for_this(first, txn);
        loop {
            match &last {
                Ok(Answer::Waiting) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    self.tell(
                        terminal,
                        Response::CodeWaiting {
                            request_id: txn.request_id.clone(),
                            seconds_left: left.as_secs() as u32,
                        },
                    );
                }
                Ok(answer) => return Decided::Answer(answer.clone()),
                Err(why) => {
                    tracing::warn!(terminal = %terminal, trace_no = txn.trace_no, error = %why, "no answer to trust from the provider; asking again")
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                tracing::warn!(terminal = %terminal, trace_no = txn.trace_no, "the buyer did not confirm in time; cancelling the order");
                break;
            }
            tokio::select! {
                () = tokio::time::sleep(codes.poll.min(left)) => {}
                () = stop.notified() => break,
            }
            last = for_this(client.query(&out_trade_no).await, txn);
        }
        match client.cancel(&out_trade_no).await {
            Ok(()) => Decided::Answer(Answer::Closed),
            Err(why) => {
                // Paid just now, perhaps: the provider's word decides.
                match for_this(client.query(&out_trade_no).await, txn) {
                    Ok(answer @ (Answer::Paid { .. } | Answer::Closed)) => Decided::Answer(answer),
                    _ => Decided::Unknown(why),
                }
            }
        }
    }

    /// Tells `terminal` news; a full queue drops it (it is said again).
    fn tell(&self, terminal: &TerminalId, news: Response) {
        if let Some(news_to) = &self.settings.news {
            let _ = news_to.try_send((terminal.clone(), news));
        }
    }

    /// Stores how the code payment `txn` ended; the answer for its
    /// checkout, or none while no answer settles it.
    async fn code_verdict(&self, txn: &Txn, decided: Decided) -> Option<Response> {
        let (status, code, trade_no, buyer) = match decided {
            Decided::Unknown(why) => {
                tracing::error!(terminal = %txn.terminal_id, trace_no = txn.trace_no, error = %why, "the code payment is undecided; the sweep will ask the provider again");
                return None;
            }
            Decided::Answer(Answer::Paid { trade_no, buyer, .. }) => {
                (TxnStatus::Approved, ResponseCode::APPROVED, trade_no, buyer)
            }
            Decided::Answer(Answer::Declined(code, detail)) => {
                tracing::info!(terminal = %txn.terminal_id, trace_no = txn.trace_no, code = %code, detail = %detail, "the provider declined");
                (TxnStatus::Declined, code, String::new(), None)
            }
            // Closed by the provider or cancelled by the hub: nothing charged.
            Decided::Answer(Answer::Closed | Answer::Waiting) => {
                (TxnStatus::Reversed, reason::CODE_CANCELLED, String::new(), None)
            }
        };
        let id = txn.id;
        let done = self
            .store(move |s| {
                if let Some(buyer) = &buyer {
                    s.note_buyer(id, buyer)?;
                }
                s.finish(
                    id,
                    &Verdict {
                        status,
                        response_code: code,
                        auth_code: "",
                        reference_no: &trade_no,
                    },
                )
            })
            .await;
        match done {
            Ok(t) => Some(self.outcome(&t, None)),
            Err(e) => Some(internal(&txn.request_id, &e)),
        }
    }

    /// Money back to the wallet that paid a code sale (a void gives the
    /// whole sale back, a refund part of it), approved by the caller.
    pub(super) async fn code_back(
        &self,
        terminal: &TerminalId,
        request_id: RequestId,
        kind: TxnKind,
        amount: Amount,
        sale: (TerminalId, u32),
    ) -> Option<Response> {
        let claim = self.claim(&request_id)?;
        if let Some(code) = self.refused_before(&request_id) {
            return Some(Self::refused(request_id, kind, code));
        }
        let (rid, tid, rules) = (request_id.clone(), terminal.clone(), self.settings.fraud.get());
        let currency = self.settings.currency;
        let found = self
            .store(move |s| {
                if let Some(txn) = s.by_request(rid.as_str())? {
                    return Ok(Start::Known(txn));
                }
                let (sale_terminal, trace_no) = sale;
                let original = super::authorize::original(s, &sale_terminal, trace_no, None)?;
                let paid_by = original
                    .as_ref()
                    .and_then(|o| s.get(o.id).transpose())
                    .transpose()?;
                let provider = match paid_by.as_ref().map(|t| &t.paid) {
                    Some(Paid::Code { provider, .. }) => *provider,
                    _ => return Ok(Start::Refused(reason::NO_ORIGINAL)),
                };
                let facts = super::cash::no_card_facts(s, &rid, &tid, original)?;
                let ask = admission::Ask {
                    tender: Tender::Code,
                    ..super::cash::no_card_ask(kind, amount, currency, trace_no, &rules)
                };
                let new = NewCode {
                    request_id: &rid,
                    terminal_id: &tid,
                    kind,
                    amount,
                    currency: currency.code(),
                    provider,
                    original_id: None,
                    split: None,
                };
                decide_and_begin(s, &ask, &facts, new, paid_by)
            })
            .await;
        let (txn, sale) = match self.started(terminal, &request_id, kind, amount, found) {
            Ok((txn, Some(sale))) => (txn, sale),
            Ok((txn, None)) => return self.not_sent(&txn, reason::NO_ORIGINAL).await,
            Err(answer) => return *answer,
        };
        let answer = self.refund_code(&txn, &sale).await;
        drop(claim);
        answer
    }

    /// Asks the provider to give `txn` (a void or refund) back from `sale`.
    async fn refund_code(&self, txn: &Txn, sale: &Txn) -> Option<Response> {
        let Paid::Code { provider, .. } = sale.paid else {
            return self.not_sent(txn, reason::NO_ORIGINAL).await;
        };
        let Some(client) = self.settings.codes.get(provider) else {
            tracing::warn!(terminal = %txn.terminal_id, provider = provider.as_str(), "the provider of this code sale is no longer set up");
            return self.not_sent(txn, reason::CODE_NOT_SET_UP).await;
        };
        let refund = RefundOrder {
            out_trade_no: order_no(&sale.request_id),
            out_request_no: order_no(&txn.request_id),
            amount: txn.amount,
            sale_amount: sale.amount,
        };
        let decided = match for_this(client.refund(&refund).await, txn) {
            Ok(answer @ (Answer::Paid { .. } | Answer::Declined(..))) => Decided::Answer(answer),
            Ok(other) => Decided::Answer(Answer::Declined(
                reason::CODE_REFUSED,
                format!("the provider answered a refund with {other:?}"),
            )),
            Err(why) => Decided::Unknown(why),
        };
        self.code_verdict(txn, decided).await
    }

    /// Settles a code payment left `pending` (by a crash, or an answer that
    /// never came): a sale is asked about, and cancelled unless paid; a void
    /// or refund is asked for again (once, whatever the repeats). Whether
    /// the provider's word settled it and it is recorded.
    pub(super) async fn settle_code(&self, txn: &Txn) -> bool {
        let Paid::Code { provider, .. } = txn.paid else {
            return false;
        };
        let Some(client) = self.settings.codes.get(provider) else {
            return false;
        };
        let answer = match txn.kind {
            TxnKind::Sale => {
                let order = order_no(&txn.request_id);
                let decided = match for_this(client.query(&order).await, txn) {
                    Ok(answer @ (Answer::Paid { .. } | Answer::Closed | Answer::Declined(..))) => {
                        Decided::Answer(answer)
                    }
                    _ => match client.cancel(&order).await {
                        Ok(()) => Decided::Answer(Answer::Closed),
                        Err(why) => Decided::Unknown(why),
                    },
                };
                self.code_verdict(txn, decided).await
            }
            _ => {
                let Some(id) = txn.original_id else {
                    return false;
                };
                match self.store(move |s| s.get(id)).await {
                    Ok(Some(sale)) => self.refund_code(txn, &sale).await,
                    _ => return false,
                }
            }
        };
        matches!(answer, Some(Response::Outcome(_)))
    }

    /// The transaction a code request's store job wrote, or the answer
    /// when it wrote none.
    fn started(
        &self,
        terminal: &TerminalId,
        request_id: &RequestId,
        kind: TxnKind,
        amount: Amount,
        found: Result<Start, StoreError>,
    ) -> Result<Begun, Box<Option<Response>>> {
        let request_id = request_id.clone();
        match found {
            Err(e) if e.is_storage() => {
                tracing::error!(terminal = %terminal, request_id = %request_id, error = %e, "refused: the hub cannot record transactions");
                Err(Box::new(Some(self.refuse(request_id, kind, reason::HUB_STORAGE))))
            }
            Err(e) => Err(Box::new(Some(internal(&request_id, &e)))),
            Ok(Start::Known(txn)) => Err(Box::new(self.repeat(&txn, terminal, kind, amount, Tender::Code))),
            Ok(Start::Lost) => Err(Box::new(Some(Self::not_received(request_id, kind)))),
            Ok(Start::Refused(code)) => Err(Box::new(Some(self.refuse(request_id, kind, code)))),
            Ok(Start::Unfit(why)) => {
                tracing::error!(terminal = %terminal, request_id = %request_id, reason = %why, "refused: the hub cannot take transactions now");
                Err(Box::new(Some(self.refuse(request_id, kind, unfit_code(&why)))))
            }
            Ok(Start::Pending(txn, sale)) => Ok((txn, sale)),
        }
    }
}

#[cfg(test)]
mod tests;

/// `answer`, unless it says `txn` was paid (or refunded) for another
/// amount than its own: then no answer to trust (the order is cancelled
/// when its time is up, which gives a paid one back).
fn for_this(answer: Result<Answer, String>, txn: &Txn) -> Result<Answer, String> {
    match answer {
        Ok(Answer::Paid {
            amount: Some(amount), ..
        }) if amount != txn.amount => {
            tracing::error!(terminal = %txn.terminal_id, trace_no = txn.trace_no, paid = amount.minor(), asked = txn.amount.minor(), "the provider names another amount than the order's; not taken");
            Err(format!(
                "the provider says {} was paid for an order of {}",
                amount.minor(),
                txn.amount.minor()
            ))
        }
        other => other,
    }
}

/// Decides `ask` on `facts`, keeps the fraud hits and, when admitted,
/// writes `new` pending for the amount admitted against the sale it undoes.
fn decide_and_begin(
    s: &mut Store,
    ask: &admission::Ask,
    facts: &admission::Facts,
    new: NewCode<'_>,
    sale: Option<Txn>,
) -> Result<Start, StoreError> {
    let decided = admission::decide(ask, facts);
    record_hits(s, new.terminal_id, &decided.hits)?;
    Ok(match decided.verdict {
        admission::Verdict::Lost => Start::Lost,
        admission::Verdict::Unfit(why) => Start::Unfit(why),
        admission::Verdict::Refuse(code) => Start::Refused(code),
        admission::Verdict::Admit { amount, original } => {
            let new = NewCode {
                amount,
                original_id: original.map(|(id, _)| id),
                ..new
            };
            Start::Pending(s.begin_code(&new)?, sale.map(Box::new))
        }
    })
}
