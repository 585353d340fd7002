//! Where a sale gets authorized. The coordinator takes one decoded request from
//! one terminal and returns the answer, holding the rules that keep money right:
//!
//! - **Exactly once.** A request id is charged at most once. A repeat while the
//!   first copy is being worked on is not answered (the first copy's answer is
//!   on its way); a repeat afterwards gets the stored answer.
//! - **Pending before authorize.** The transaction is on disk as `pending`
//!   before the acquirer hears of it.
//! - **Not charged means not charged.** When the acquirer does not answer in
//!   time, the authorization is reversed; only once the reversal is
//!   acknowledged does the cashier hear "not charged". Until then the row stays
//!   `pending` and [`Coordinator::reverse_leftovers`] keeps trying — also at
//!   every start, for sales a crash left behind.
//!
//! `mod.rs` dispatches a request by its kind; `authorize.rs` is the path of
//! every money request (sale, balance, void, refund), deciding with the pure
//! rules of `admission.rs` and `fraud.rs`; `cash.rs` records a cash sale
//! under the same rules, without an acquirer; `code.rs` takes a payment
//! code through its provider; `undo.rs` adds the supervisor PIN
//! for voids and refunds; `reversal.rs` reverses what the acquirer left
//! unanswered; `settle.rs` settles the batch; `cashier.rs` signs cashiers on;
//! `drawer.rs` opens the cash drawer without a sale and counts it;
//! `recall.rs` answers a restarted terminal; `terminal.rs` keeps freezes,
//! status and heartbeats.

pub mod admission;
mod authorize;
mod cash;
mod cashier;
mod code;
pub mod drawer;
pub mod fraud;
mod recall;
mod reversal;
pub mod settle;
mod terminal;
mod undo;

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;
use tallybox_core::card::pin_block::PinKey;
use tallybox_core::code::{ReasonCode, ResponseCode};
use tallybox_core::protocol::requests;

use tallybox_core::card::CardRead;
use tallybox_core::money::{Amount, Currency};
use tallybox_core::protocol::{
    ErrorCode, Outcome, Request, RequestId, Response, Tender, TerminalId, TxnKind, TxnStatus,
};
use tallybox_core::reason;
use tallybox_core::secret::Secret;

use crate::acquirer::{Acquirer, AcquirerError, AuthRequest, OriginalRef};
use crate::shop::SharedShop;
use crate::store::cashiers::SignOn;
use crate::store::fraud::FrozenWords;
use crate::store::{NewTxn, Store, StoreError, StoreHandle, Txn, Unfit, Verdict};

/// The store-wide facts the coordinator answers with.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Name, address, slip lines, merchant number and supervisor PIN; the
    /// owner edits them while the hub runs.
    pub shop: SharedShop,
    pub currency: Currency,
    pub max_sale: Amount,
    pub acquirer_timeout: Duration,
    /// The fraud rules in force (head office may replace them while the hub runs).
    pub fraud: fraud::SharedRules,
    /// Each checkout's PIN key (the hub translates PIN blocks from it into
    /// the acquirer's); none for a checkout that is not paired.
    pub pin_keys: PinKeys,
    /// The voids and refunds the owner ordered on the web page.
    pub orders: std::sync::Arc<crate::orders::UndoOrders>,
    /// The payment-code providers the shop takes, and how long a buyer may
    /// take to confirm.
    pub codes: crate::payments::Codes,
    /// News for a checkout while its request is worked on (a buyer
    /// confirming a code sale); none where nobody listens (tests).
    pub news: Option<tokio::sync::mpsc::Sender<(TerminalId, Response)>>,
}

/// Each checkout's PIN key, by its id.
#[derive(Clone)]
pub struct PinKeys(pub std::sync::Arc<PinKeyOf>);

/// Looks up one checkout's PIN key.
pub type PinKeyOf = dyn Fn(&TerminalId) -> Option<PinKey> + Send + Sync;

impl PinKeys {
    pub fn of(&self, terminal: &TerminalId) -> Option<PinKey> {
        (self.0)(terminal)
    }
}

impl std::fmt::Debug for PinKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PinKeys(..)")
    }
}

pub use admission::MAX_PIN_TRIES;

pub struct Coordinator<A> {
    store: StoreHandle,
    acquirer: A,
    settings: Settings,
    /// Request ids being worked on right now.
    in_flight: Mutex<HashSet<String>>,
    /// Requests refused before anything was written, newest last: a late copy
    /// of one gets the same refusal, even once the cause is gone (the cashier
    /// was told "not charged").
    refusals: Mutex<std::collections::VecDeque<(String, ReasonCode)>>,
    /// Told when a terminal's batch reaches the acquirer's limit: the
    /// settling job then settles it.
    batch_full: tokio::sync::Notify,
    /// The code sales whose buyer is confirming in the app.
    confirming: code::Confirming,
}

/// How many refusals the hub remembers.
const REFUSALS_KEPT: usize = 256;

/// Removes a request id from the in-flight set however its handling ends.
struct Claim<'a> {
    set: &'a Mutex<HashSet<String>>,
    id: String,
}

impl Drop for Claim<'_> {
    fn drop(&mut self) {
        self.set
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.id);
    }
}

fn internal(request_id: &RequestId, e: &StoreError) -> Response {
    tracing::error!(request_id = %request_id, error = %e, "store failure");
    Response::Error {
        request_id: Some(request_id.to_string()),
        code: ErrorCode::Internal,
        message: "the hub could not record this; the terminal will retry".into(),
    }
}

impl<A: Acquirer> Coordinator<A> {
    pub fn new(store: StoreHandle, acquirer: A, settings: Settings) -> Self {
        Coordinator {
            store,
            acquirer,
            settings,
            in_flight: Mutex::new(HashSet::new()),
            batch_full: tokio::sync::Notify::new(),
            refusals: Mutex::default(),
            confirming: code::Confirming::default(),
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// What each commit from now on changed ([`crate::store::Change`]).
    pub fn changes(&self) -> tokio::sync::broadcast::Receiver<crate::store::Change> {
        self.store.subscribe()
    }

    /// The shop as it is now (the owner may have just edited it).
    fn shop(&self) -> crate::shop::Shop {
        crate::shop::current(&self.settings.shop)
    }

    /// Runs `f` on the store thread, where concurrent writes share one commit
    /// (and one fsync); resolves once `f`'s changes are durable.
    async fn store<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Store) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        self.store.call(f).await
    }

    fn refusals(&self) -> std::sync::MutexGuard<'_, std::collections::VecDeque<(String, ReasonCode)>> {
        self.refusals.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Refuses `request_id` with `code`, and remembers it for a late copy.
    fn refuse(&self, request_id: RequestId, kind: TxnKind, code: ReasonCode) -> Response {
        let mut kept = self.refusals();
        kept.push_back((request_id.to_string(), code));
        while kept.len() > REFUSALS_KEPT {
            kept.pop_front();
        }
        Self::refused(request_id, kind, code)
    }

    /// The refusal a request with this id got before, if it did: a late
    /// copy gets it again (the cashier was told "not charged").
    fn refused_before(&self, id: &RequestId) -> Option<ReasonCode> {
        self.refusals()
            .iter()
            .find(|(kept, _)| kept == id.as_str())
            .map(|(_, code)| *code)
    }

    fn claim(&self, id: &RequestId) -> Option<Claim<'_>> {
        let mut set = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        set.insert(id.to_string()).then(|| Claim {
            set: &self.in_flight,
            id: id.to_string(),
        })
    }

    /// The answer to one request, or `None` when no answer is due now.
    pub async fn handle(&self, terminal: &TerminalId, request: Request) -> Option<Response> {
        match request {
            Request::SignIn(requests::SignIn {
                request_id,
                version,
                trace_floor,
            }) => {
                tracing::info!(terminal = %terminal, ?version, "terminal signed in");
                let t = terminal.clone();
                let batch = self
                    .store(move |s| {
                        s.touch_terminal(&t, Some(true), Some(&version))?;
                        if let Some(floor) = trace_floor {
                            if let Some(had) = s.raise_trace_floor(&t, floor)? {
                                tracing::warn!(terminal = %t, had, floor, "the checkout was given trace numbers the hub's records lost (history lost below the database): its trace numbers go on past them");
                            }
                        }
                        Ok((s.batch_no()?, s.frozen_said(&t)?, s.terminal_cashier(&t)?))
                    })
                    .await;
                Some(match batch {
                    Ok((batch_no, frozen, cashier)) => {
                        let (frozen, frozen_zh) = FrozenWords::split(frozen);
                        Response::SignedIn {
                            request_id,
                            store_name: self.shop().name,
                            merchant_id: self.shop().merchant_id,
                            batch_no,
                            frozen,
                            frozen_zh,
                            cashier,
                            time_zone: Some(tallybox_platform::clock::zone_name()),
                            currency: Some(self.settings.currency.code().to_string()),
                            minor_digits: Some(self.settings.currency.exponent()),
                        }
                    }
                    Err(e) => internal(&request_id, &e),
                })
            }
            Request::Sale(requests::Sale {
                request_id,
                amount,
                currency,
                card,
                pin_block,
                supervisor_pin,
                split,
            }) => {
                let Some(approved) = self.sale_approval(supervisor_pin.as_ref()).await else {
                    return Some(Self::refused(request_id, TxnKind::Sale, reason::SUPERVISOR_PIN));
                };
                self.authorize(
                    terminal,
                    request_id,
                    TxnKind::Sale,
                    amount,
                    &currency,
                    card,
                    pin_block,
                    None,
                    approved,
                    split,
                )
                .await
            }
            Request::CashSale(sale) => {
                let Some(approved) = self.sale_approval(sale.supervisor_pin.as_ref()).await else {
                    return Some(Self::refused(
                        sale.request_id,
                        TxnKind::Sale,
                        reason::SUPERVISOR_PIN,
                    ));
                };
                self.cash_sale(terminal, sale, approved).await
            }
            Request::CodeSale(sale) => {
                let Some(approved) = self.sale_approval(sale.supervisor_pin.as_ref()).await else {
                    return Some(Self::refused(
                        sale.request_id,
                        TxnKind::Sale,
                        reason::SUPERVISOR_PIN,
                    ));
                };
                self.code_sale(terminal, sale, approved).await
            }
            Request::CancelCode(requests::CancelCode { sale, .. }) => {
                self.cancel_code(terminal, &sale);
                None
            }
            Request::Void(requests::Void {
                request_id,
                trace_no,
                card,
                supervisor_pin,
                order,
                split,
            }) => {
                let approval = match split {
                    Some(group) => undo::Approval::Split(group),
                    None => undo::Approval::of(supervisor_pin, order),
                };
                let undo = undo::Undo {
                    kind: TxnKind::Void,
                    trace_no,
                    amount: Amount::ZERO,
                };
                self.undo(terminal, request_id, undo, card, approval).await
            }
            Request::Refund(requests::Refund {
                request_id,
                trace_no,
                amount,
                card,
                supervisor_pin,
                order,
            }) => {
                let approval = undo::Approval::of(supervisor_pin, order);
                let undo = undo::Undo {
                    kind: TxnKind::Refund,
                    trace_no,
                    amount,
                };
                self.undo(terminal, request_id, undo, card, approval).await
            }
            Request::Settle(requests::Settle { request_id }) => self.settle_request(request_id).await,
            Request::Freeze(requests::Freeze {
                request_id,
                supervisor_pin,
            }) => Some(
                self.freeze_by_supervisor(terminal, request_id, &supervisor_pin)
                    .await,
            ),
            Request::Balance(requests::Balance {
                request_id,
                card,
                pin_block,
            }) => {
                let currency = self.settings.currency.code().to_string();
                self.authorize(
                    terminal,
                    request_id,
                    TxnKind::Balance,
                    Amount::ZERO,
                    &currency,
                    card,
                    pin_block,
                    None,
                    false,
                    None,
                )
                .await
            }
            Request::Reprint(requests::Reprint { request_id, trace_no }) => {
                let t = terminal.clone();
                let found = self.store(move |s| s.for_reprint(&t, trace_no)).await;
                Some(match found {
                    Ok(txn) => Response::Reprint {
                        request_id,
                        receipt: txn.map(|t| self.receipt_of(&t)),
                    },
                    Err(e) => internal(&request_id, &e),
                })
            }
            Request::Recall(requests::Recall { request_id }) => self.recall(terminal, request_id).await,
            Request::NoSale(ask) => self.no_sale(terminal, ask).await,
            Request::CountDrawer(ask) => self.count_drawer(terminal, ask).await,
            Request::SignOn(requests::SignOn {
                request_id,
                cashier,
                pin,
            }) => {
                let _claim = self.claim(&request_id)?;
                Some(self.sign_on(terminal, request_id, cashier, pin).await)
            }
            // Answered by the MQTT link, which holds the keys (`keys.rs`).
            Request::Pair(requests::Pair { .. }) => None,
            Request::SignOff(requests::SignOff { request_id }) => {
                let t = terminal.clone();
                Some(match self.store(move |s| s.sign_off(&t)).await {
                    Ok(()) => {
                        tracing::info!(terminal = %terminal, "cashier signed off");
                        Response::Cashier {
                            request_id,
                            cashier: None,
                            refused: None,
                        }
                    }
                    Err(e) => internal(&request_id, &e),
                })
            }
            Request::Heartbeat(heartbeat) => {
                self.heartbeat(terminal, heartbeat).await;
                None
            }
            Request::Printed(printed) => {
                self.printed(terminal, printed).await;
                None
            }
        }
    }

    /// Whether a sale comes with the supervisor's approval: a PIN comes only
    /// when a store rule asked for one (`XV`); `None` when it is wrong.
    async fn sale_approval(&self, pin: Option<&Secret<String>>) -> Option<bool> {
        match pin {
            None => Some(false),
            Some(pin) => self.supervisor_pin_ok(pin).await.then_some(true),
        }
    }

    fn receipt_of(&self, txn: &Txn) -> tallybox_core::protocol::Receipt {
        txn.receipt(&self.shop())
    }

    fn outcome(&self, txn: &Txn, balance: Option<Amount>) -> Response {
        Response::Outcome(Outcome {
            request_id: txn.request_id.clone(),
            kind: txn.kind,
            status: txn.status,
            // A finished transaction always has its code.
            response_code: txn.response_code.unwrap_or(ResponseCode::SYSTEM_MALFUNCTION),
            receipt: (txn.status == TxnStatus::Approved && txn.kind != TxnKind::Balance)
                .then(|| self.receipt_of(txn)),
            balance,
        })
    }

    /// A request refused by the hub before the acquirer: nothing charged.
    fn refused(request_id: RequestId, kind: TxnKind, code: ReasonCode) -> Response {
        Response::Outcome(Outcome {
            request_id,
            kind,
            status: TxnStatus::Failed,
            response_code: code,
            receipt: None,
            balance: None,
        })
    }

    fn not_received(request_id: RequestId, kind: TxnKind) -> Response {
        Response::Outcome(Outcome {
            request_id,
            kind,
            status: TxnStatus::Failed,
            response_code: reason::NOT_RECEIVED,
            receipt: None,
            balance: None,
        })
    }

    /// A stored transaction answering a repeated request id.
    fn repeat(
        &self,
        txn: &Txn,
        terminal: &TerminalId,
        kind: TxnKind,
        amount: Amount,
        tender: Tender,
    ) -> Option<Response> {
        // A void's amount is the sale's, learned from the store: not compared.
        let amount_differs = kind != TxnKind::Void && txn.amount != amount;
        let other = txn.terminal_id != terminal.as_str() || txn.kind != kind || txn.paid.tender() != tender;
        if other || amount_differs {
            tracing::warn!(terminal = %terminal, request_id = %txn.request_id, "request id reused for a different request");
            return Some(Response::Error {
                request_id: Some(txn.request_id.to_string()),
                code: ErrorCode::DuplicateRequestId,
                message: "this request id was already used for another request; make a new one".into(),
            });
        }
        // Still pending and not being worked on: the reversal sweep owns it now.
        (txn.status != TxnStatus::Pending).then(|| self.outcome(txn, None))
    }
}

#[cfg(test)]
mod tests;
