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

pub mod admission;
pub mod fraud;
pub mod settle;
mod undo;

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;
use tallybox_core::code::{ReasonCode, ResponseCode};
use tallybox_core::protocol::requests;

use tallybox_core::card::CardRead;
use tallybox_core::money::{Amount, Currency};
use tallybox_core::protocol::{
    ErrorCode, Outcome, Request, RequestId, Response, TerminalId, TxnKind, TxnStatus,
};
use tallybox_core::reason;
use tallybox_core::secret::Secret;

use crate::acquirer::{Acquirer, AcquirerError, AuthRequest, OriginalRef, Reversal};
use crate::shop::SharedShop;
use crate::store::cashiers::SignOn;
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
    pub fraud: fraud::FraudRules,
}

pub use admission::MAX_PIN_TRIES;

pub struct Coordinator<A> {
    store: StoreHandle,
    acquirer: A,
    settings: Settings,
    /// Request ids being worked on right now.
    in_flight: Mutex<HashSet<String>>,
    /// The last settlement request and its answer, for a terminal's retry.
    last_settlement: Mutex<Option<(RequestId, Response)>>,
    /// Requests refused before anything was written, newest last: a late copy
    /// of one gets the same refusal, even once the cause is gone (the cashier
    /// was told "not charged").
    refusals: Mutex<std::collections::VecDeque<(String, ReasonCode)>>,
}

/// How many refusals the hub remembers.
const REFUSALS_KEPT: usize = 256;

/// What the store found for a sale's request id.
enum Start {
    /// Seen before: answer from this.
    Known(Txn),
    /// Recalled by its terminal before it arrived: never to be charged.
    Lost,
    /// New: now written `pending` (with the sale it undoes, for a void or refund).
    Pending(Txn, Option<OriginalRef>),
    /// A void or refund that cannot be done; nothing written.
    Refused(ReasonCode),
    /// The hub cannot take any transaction now (disk, clock); nothing written.
    Unfit(Unfit),
}

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
            last_settlement: Mutex::new(None),
            refusals: Mutex::default(),
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
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
            Request::SignIn(requests::SignIn { request_id, version }) => {
                tracing::info!(terminal = %terminal, %version, "terminal signed in");
                let t = terminal.clone();
                let batch = self
                    .store(move |s| {
                        s.touch_terminal(&t, Some(true), Some(&version))?;
                        Ok((s.batch_no()?, s.frozen(&t)?, s.terminal_cashier(&t)?))
                    })
                    .await;
                Some(match batch {
                    Ok((batch_no, frozen, cashier)) => Response::SignedIn {
                        request_id,
                        store_name: self.shop().name,
                        merchant_id: self.shop().merchant_id,
                        batch_no,
                        frozen,
                        cashier,
                        time_zone: Some(tallybox_platform::clock::zone_name()),
                        currency: Some(self.settings.currency.code().to_string()),
                        minor_digits: Some(self.settings.currency.exponent()),
                    },
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
            }) => {
                // A supervisor PIN comes only when a rule asked for one; a wrong one stops here.
                let approved = match supervisor_pin {
                    None => false,
                    Some(pin) if self.supervisor_pin_ok(&pin).await => true,
                    Some(_) => return Some(Self::refused(request_id, TxnKind::Sale, reason::SUPERVISOR_PIN)),
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
                )
                .await
            }
            Request::Void(requests::Void {
                request_id,
                trace_no,
                card,
                supervisor_pin,
            }) => {
                self.undo(
                    terminal,
                    request_id,
                    TxnKind::Void,
                    trace_no,
                    Amount::ZERO,
                    card,
                    &supervisor_pin,
                )
                .await
            }
            Request::Refund(requests::Refund {
                request_id,
                trace_no,
                amount,
                card,
                supervisor_pin,
            }) => {
                self.undo(
                    terminal,
                    request_id,
                    TxnKind::Refund,
                    trace_no,
                    amount,
                    card,
                    &supervisor_pin,
                )
                .await
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
            Request::Heartbeat(requests::Heartbeat { uptime_s, devices }) => {
                let t = terminal.clone();
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
                None
            }
        }
    }

    /// A cashier signs on: the PIN is checked against its argon2 hash off
    /// the store thread, then the attempt is recorded (and counted towards
    /// the lock when wrong). Unknown, removed and wrong all answer alike.
    async fn sign_on(
        &self,
        terminal: &TerminalId,
        request_id: RequestId,
        no: String,
        pin: Secret<String>,
    ) -> Response {
        let n = no.clone();
        let found = match self.store(move |s| s.cashier_pin_hash(&n)).await {
            Ok(found) => found,
            Err(e) => return internal(&request_id, &e),
        };
        let pin_ok = match found {
            Some((hash, false)) => {
                tokio::task::spawn_blocking(move || crate::passwords::verify(pin.expose(), &hash))
                    .await
                    .unwrap_or(false)
            }
            _ => false,
        };
        let t = terminal.clone();
        let refused = |code: ReasonCode| Response::Cashier {
            request_id: request_id.clone(),
            cashier: None,
            refused: Some(code),
        };
        match self.store(move |s| s.sign_on(&t, &no, pin_ok)).await {
            Ok(SignOn::Done(cashier)) => {
                tracing::info!(terminal = %terminal, cashier = %cashier.no, "cashier signed on");
                Response::Cashier {
                    request_id,
                    cashier: Some(cashier),
                    refused: None,
                }
            }
            Ok(SignOn::Wrong) => {
                tracing::warn!(terminal = %terminal, "cashier sign-on refused: wrong number or PIN");
                refused(reason::CASHIER_WRONG)
            }
            Ok(SignOn::Locked) => {
                tracing::warn!(terminal = %terminal, "cashier sign-on refused: locked");
                refused(reason::CASHIER_LOCKED)
            }
            Err(e) => internal(&request_id, &e),
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
    fn repeat(&self, txn: &Txn, terminal: &TerminalId, kind: TxnKind, amount: Amount) -> Option<Response> {
        // A void's amount is the sale's, learned from the store: not compared.
        let amount_differs = kind != TxnKind::Void && txn.amount != amount;
        if txn.terminal_id != terminal.as_str() || txn.kind != kind || amount_differs {
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

    #[allow(clippy::too_many_arguments)]
    async fn authorize(
        &self,
        terminal: &TerminalId,
        request_id: RequestId,
        kind: TxnKind,
        amount: Amount,
        currency: &str,
        card: CardRead,
        pin_block: Option<String>,
        undo: Option<u32>,
        supervisor_approved: bool,
    ) -> Option<Response> {
        let claim = self.claim(&request_id)?;
        let refused_before = self
            .refusals()
            .iter()
            .find(|(id, _)| id == request_id.as_str())
            .map(|(_, c)| *c);
        if let Some(code) = refused_before {
            return Some(Self::refused(request_id, kind, code));
        }
        let settings = &self.settings;
        if let Err(message) =
            admission::check_amount(kind, amount, currency, settings.currency, settings.max_sale)
        {
            return Some(Response::Error {
                request_id: Some(request_id.to_string()),
                code: ErrorCode::InvalidAmount,
                message,
            });
        }
        // One store job looks the id up and, when it is new, gathers the facts,
        // decides and writes it pending: one trip to the store thread, and no
        // gap between the check and the write.
        let (rid, tid, c, rules) = (
            request_id.clone(),
            terminal.clone(),
            card.clone(),
            settings.fraud.clone(),
        );
        let (currency, cashier_required) = (settings.currency, self.shop().cashier_sign_on);
        let found = self
            .store(move |s| {
                if let Some(txn) = s.by_request(rid.as_str())? {
                    return Ok(Start::Known(txn));
                }
                let ask = admission::Ask {
                    kind,
                    amount,
                    currency,
                    undo,
                    entry_mode: c.entry_mode,
                    supervisor_approved,
                    cashier_required,
                    rules: &rules,
                    now: tallybox_platform::clock::now().time(),
                };
                let facts = gather(s, &ask, &rid, &tid, &c)?;
                let decided = admission::decide(&ask, &facts);
                for hit in &decided.hits {
                    if s.record_hit(&tid, hit)? {
                        tracing::warn!(terminal = %tid, rule = hit.rule, action = ?hit.action, detail = %hit.detail, "fraud rule hit");
                    }
                }
                if let Some(why) = &decided.freeze {
                    s.freeze(tid.as_str(), why)?;
                }
                match decided.verdict {
                    admission::Verdict::Lost => Ok(Start::Lost),
                    admission::Verdict::Unfit(why) => Ok(Start::Unfit(why)),
                    admission::Verdict::Refuse(code) => {
                        if let Some(why) = &facts.frozen {
                            tracing::warn!(terminal = %tid, reason = %why, "refused: frozen");
                        }
                        Ok(Start::Refused(code))
                    }
                    admission::Verdict::Admit { amount, original } => {
                        let new = NewTxn {
                            request_id: &rid,
                            terminal_id: &tid,
                            kind,
                            amount,
                            currency: currency.code(),
                            card: &c,
                            original_id: original.as_ref().map(|(id, _)| *id),
                        };
                        Ok(Start::Pending(s.begin(&new)?, original.map(|(_, r)| r)))
                    }
                }
            })
            .await;
        let (txn, original) = match found {
            Err(e) if e.is_storage() => {
                tracing::error!(terminal = %terminal, request_id = %request_id, error = %e, "refused: the hub cannot record transactions");
                return Some(self.refuse(request_id, kind, reason::HUB_STORAGE));
            }
            Err(e) => return Some(internal(&request_id, &e)),
            Ok(Start::Known(txn)) => return self.repeat(&txn, terminal, kind, amount),
            Ok(Start::Lost) => return Some(Self::not_received(request_id, kind)),
            Ok(Start::Refused(code)) => return Some(self.refuse(request_id, kind, code)),
            Ok(Start::Unfit(why)) => {
                tracing::error!(terminal = %terminal, request_id = %request_id, reason = %why, "refused: the hub cannot take transactions now");
                let code = match why {
                    Unfit::DiskFull { .. } => reason::HUB_STORAGE,
                    Unfit::ClockBehind { .. } => reason::HUB_CLOCK,
                };
                return Some(self.refuse(request_id, kind, code));
            }
            Ok(Start::Pending(txn, original)) => (txn, original),
        };
        let auth = AuthRequest {
            kind,
            terminal_id: terminal.to_string(),
            trace_no: txn.trace_no,
            amount: txn.amount,
            card,
            pin_block,
            original,
        };
        let started = std::time::Instant::now();
        let answer = self.within_timeout(self.acquirer.authorize(auth)).await;
        let response = match answer {
            Ok(response) => response,
            Err(e) => {
                tracing::warn!(terminal = %terminal, trace_no = txn.trace_no, error = %e, "no answer from the acquirer; reversing");
                return self.reverse(&txn).await.map(|t| self.outcome(&t, None));
            }
        };
        let status = if response.approved() {
            TxnStatus::Approved
        } else {
            TxnStatus::Declined
        };
        let (id, r) = (txn.id, response.clone());
        let done = self
            .store(move |s| {
                s.finish(
                    id,
                    &Verdict {
                        status,
                        response_code: r.response_code,
                        auth_code: &r.auth_code,
                        reference_no: &r.reference_no,
                    },
                )
            })
            .await;
        drop(claim);
        match done {
            Ok(txn) => {
                tracing::info!(
                    terminal = %terminal, request_id = %request_id, kind = kind.as_str(), status = txn.status.as_str(),
                    code = %response.response_code, trace_no = txn.trace_no, ms = started.elapsed().as_millis() as u64,
                    "transaction finished"
                );
                Some(self.outcome(&txn, response.balance))
            }
            Err(e) if e.is_storage() => {
                // Approved, but the disk will not take it: the customer must not
                // pay for a sale the hub cannot show. Reversed now; the row stays
                // pending, and the sweep records the reversal once there is room.
                tracing::error!(terminal = %terminal, trace_no = txn.trace_no, error = %e, "the approval cannot be recorded; reversing it");
                let reversal = Reversal {
                    terminal_id: txn.terminal_id.clone(),
                    trace_no: txn.trace_no,
                    amount: txn.amount,
                };
                match self.within_timeout(self.acquirer.reverse(reversal)).await {
                    Ok(_) => Some(self.refuse(request_id, kind, reason::HUB_STORAGE)),
                    Err(_) => Some(internal(&request_id, &e)),
                }
            }
            Err(e) => Some(internal(&request_id, &e)),
        }
    }

    /// Waits for the acquirer at most the configured time-out.
    async fn within_timeout<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, AcquirerError>>,
    ) -> Result<T, AcquirerError> {
        let limit = self.settings.acquirer_timeout;
        tokio::time::timeout(limit, call)
            .await
            .unwrap_or(Err(AcquirerError::TimedOut(limit)))
    }

    /// Reverses a pending transaction; the reversed row once acknowledged.
    async fn reverse(&self, txn: &Txn) -> Option<Txn> {
        let reversal = Reversal {
            terminal_id: txn.terminal_id.clone(),
            trace_no: txn.trace_no,
            amount: txn.amount,
        };
        if let Err(e) = self.within_timeout(self.acquirer.reverse(reversal)).await {
            tracing::warn!(trace_no = txn.trace_no, error = %e, "reversal not acknowledged; will retry");
            return None;
        }
        let id = txn.id;
        let verdict = move |s: &mut Store| {
            s.finish(
                id,
                &Verdict {
                    status: TxnStatus::Reversed,
                    response_code: reason::NOT_CHARGED,
                    auth_code: "",
                    reference_no: "",
                },
            )
        };
        match self.store(verdict).await {
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
    pub async fn reverse_leftovers(&self) -> Result<usize, StoreError> {
        let pending = self.store(|s| s.pending()).await?;
        let mut reversed = 0;
        for txn in pending {
            let Some(_claim) = self.claim(&txn.request_id) else {
                continue;
            };
            if self.reverse(&txn).await.is_some() {
                reversed += 1;
            }
        }
        Ok(reversed)
    }

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

    /// Notes a terminal's retained status (online / offline, version).
    pub async fn terminal_status(&self, terminal: &TerminalId, status: tallybox_core::protocol::Status) {
        let t = terminal.clone();
        let noted = self
            .store(move |s| s.touch_terminal(&t, Some(status.online), Some(&status.version)))
            .await;
        if let Err(e) = noted {
            tracing::warn!(terminal = %terminal, error = %e, "terminal status not recorded");
        }
    }

    /// "What became of this request?" from a terminal that restarted.
    async fn recall(&self, terminal: &TerminalId, request_id: RequestId) -> Option<Response> {
        let _claim = self.claim(&request_id)?;
        let (rid, tid) = (request_id.clone(), terminal.clone());
        let found = self
            .store(move |s| {
                if let Some(txn) = s.by_request(rid.as_str())? {
                    return Ok(Some(txn));
                }
                s.mark_lost(&rid, &tid)?;
                Ok(None)
            })
            .await;
        match found {
            Ok(Some(txn)) if txn.terminal_id != terminal.as_str() => Some(Response::Error {
                request_id: Some(request_id.to_string()),
                code: ErrorCode::DuplicateRequestId,
                message: "this request id belongs to another terminal".into(),
            }),
            Ok(Some(txn)) => (txn.status != TxnStatus::Pending).then(|| self.outcome(&txn, None)),
            Ok(None) => {
                tracing::info!(terminal = %terminal, request_id = %request_id, "recalled request never arrived: marked lost, not charged");
                Some(Self::not_received(request_id, TxnKind::Sale))
            }
            Err(e) => Some(internal(&request_id, &e)),
        }
    }
}

#[cfg(test)]
mod tests;

/// What admission looks at, read from the store for one request: the
/// sale's fraud facts, or the void's or refund's original sale.
fn gather(
    s: &mut Store,
    ask: &admission::Ask,
    request_id: &RequestId,
    terminal: &TerminalId,
    card: &CardRead,
) -> Result<admission::Facts, StoreError> {
    let mut facts = admission::Facts {
        lost: s.is_lost(request_id)?,
        unfit: s.unfit_for_sales()?,
        frozen: s.frozen(terminal)?,
        cashier_signed_on: ask.cashier_required && s.terminal_cashier(terminal)?.is_some(),
        pin_failures_today: s.pin_failures_today(card.pan.digits())?,
        ..Default::default()
    };
    match ask.undo {
        None if ask.kind == TxnKind::Sale => {
            facts.fraud = s.fraud_facts(terminal, card, &ask.rules.limits())?;
        }
        None => {}
        Some(trace_no) => {
            let (sold_today, refunded_today) = s.takings_today()?;
            facts.undo = admission::UndoFacts {
                sale: original(s, terminal, trace_no, card)?,
                open_batch: s.batch_no()?,
                sold_today,
                refunded_today,
            };
        }
    }
    Ok(facts)
}

/// The transaction with `trace_no` at `terminal`, as a void or refund sees it.
fn original(
    s: &mut Store,
    terminal: &TerminalId,
    trace_no: u32,
    card: &CardRead,
) -> Result<Option<admission::Original>, StoreError> {
    let Some(sale) = s.by_trace(terminal, trace_no)? else {
        return Ok(None);
    };
    let (voided, refunded) = s.undone(sale.id)?;
    Ok(Some(admission::Original {
        id: sale.id,
        kind: sale.kind,
        status: sale.status,
        batch_no: sale.batch_no,
        amount: sale.amount,
        voided,
        refunded,
        same_card: s.same_card(sale.id, card.pan.digits())?,
        reference: OriginalRef {
            trace_no: sale.trace_no,
            reference_no: sale.reference_no.clone(),
            auth_code: sale.auth_code.clone(),
        },
    }))
}
