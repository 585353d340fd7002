//! The path every money request takes — sale, balance inquiry, void, refund:
//! a repeat answered from the store, the admission rules decided in the
//! store job that writes the request `pending`, then the acquirer within the
//! time-out, then the verdict stored. A silent acquirer means a reversal
//! (`reversal.rs`), never a guess.

use super::*;
use tallybox_core::card::pin_block;

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

impl<A: Acquirer> Coordinator<A> {
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn authorize(
        &self,
        terminal: &TerminalId,
        request_id: RequestId,
        kind: TxnKind,
        amount: Amount,
        currency: &str,
        card: CardRead,
        pin_block: Option<String>,
        undo: Option<(TerminalId, u32)>,
        supervisor_approved: bool,
        split: Option<requests::SplitPart>,
    ) -> Option<Response> {
        let claim = self.claim(&request_id)?;
        if let Some(code) = self.refused_before(&request_id) {
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
            settings.fraud.get(),
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
                    undo: undo.as_ref().map(|(_, trace_no)| *trace_no),
                    tender: Tender::Card,
                    entry_mode: Some(c.entry_mode),
                    supervisor_approved,
                    cashier_required,
                    rules: &rules,
                    now: tallybox_platform::clock::now().time(),
                };
                let sale_terminal = undo.as_ref().map_or(&tid, |(t, _)| t);
                let mut facts = gather(s, &ask, &rid, &tid, sale_terminal, &c)?;
                facts.split_owed = owed(s, split.as_ref())?;
                let decided = admission::decide(&ask, &facts);
                record_hits(s, &tid, &decided.hits)?;
                if let Some((why, why_zh)) = &decided.freeze {
                    s.freeze_said(tid.as_str(), why, why_zh)?;
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
                            split: split.as_ref(),
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
            Ok(Start::Known(txn)) => return self.repeat(&txn, terminal, kind, amount, Tender::Card),
            Ok(Start::Lost) => return Some(Self::not_received(request_id, kind)),
            Ok(Start::Refused(code)) => return Some(self.refuse(request_id, kind, code)),
            Ok(Start::Unfit(why)) => {
                tracing::error!(terminal = %terminal, request_id = %request_id, reason = %why, "refused: the hub cannot take transactions now");
                return Some(self.refuse(request_id, kind, unfit_code(&why)));
            }
            Ok(Start::Pending(txn, original)) => (txn, original),
        };
        let (pin_block, pin_key_check) = match pin_block {
            None => (None, None),
            Some(block) => match self.pin_for_acquirer(terminal, &block, &card).await {
                Ok((block, check)) => (Some(block), Some(check)),
                Err(e) => {
                    tracing::error!(terminal = %terminal, trace_no = txn.trace_no, error = %e, "the PIN cannot go to the acquirer; not sent");
                    let code = match e {
                        AcquirerError::NotSent { field: Some(41), .. } => reason::NO_BANK_TERMINAL,
                        _ => reason::PIN_UNSECURED,
                    };
                    return self.not_sent(&txn, code).await;
                }
            },
        };
        let auth = AuthRequest {
            kind,
            terminal_id: terminal.to_string(),
            trace_no: txn.trace_no,
            batch_no: txn.batch_no,
            amount: txn.amount,
            card,
            pin_block,
            pin_key_check,
            original,
            at: txn.created(),
        };
        let started = std::time::Instant::now();
        let answer = self.within_timeout(self.acquirer.authorize(auth)).await;
        let response = match answer {
            Ok(response) => response,
            Err(AcquirerError::NotSent { field, why }) => {
                // Never on the wire: nothing to reverse, nothing charged.
                tracing::error!(terminal = %terminal, trace_no = txn.trace_no, error = %why, "the acquirer cannot take this request; not sent");
                // Field 41 is the checkout's id at the acquirer; the others
                // the link builds from the card.
                let code = match field {
                    Some(41) => reason::NO_BANK_TERMINAL,
                    Some(52) => reason::PIN_UNSECURED,
                    _ => reason::READ_ERROR,
                };
                return self.not_sent(&txn, code).await;
            }
            Err(e @ AcquirerError::BadAnswer(_)) => {
                // It may have charged the card for something else: undone.
                tracing::error!(terminal = %terminal, trace_no = txn.trace_no, error = %e, "the acquirer's answer was refused; reversing");
                return self.reverse(&txn).await.map(|t| self.outcome(&t, None));
            }
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
                if txn.status == TxnStatus::Approved && kind != TxnKind::Balance {
                    self.note_batch_size(txn.batch_no, terminal.as_str()).await;
                }
                Some(self.outcome(&txn, response.balance))
            }
            Err(e) if e.is_storage() => {
                // Approved, but the disk will not take it: the customer must not
                // pay for a sale the hub cannot show. Reversed now; the row stays
                // pending, and the sweep records the reversal once there is room.
                tracing::error!(terminal = %terminal, trace_no = txn.trace_no, error = %e, "the approval cannot be recorded; reversing it");
                // The disk is full: the reversal cannot be noted first, so it
                // goes out as a repeat, which a host takes either way.
                match self
                    .within_timeout(self.acquirer.reverse(txn.reversal(true)))
                    .await
                {
                    Ok(_) => Some(self.refuse(request_id, kind, reason::HUB_STORAGE)),
                    Err(_) => Some(internal(&request_id, &e)),
                }
            }
            Err(e) => Some(internal(&request_id, &e)),
        }
    }

    /// `block` (encrypted under `terminal`'s PIN key) under the acquirer's
    /// PIN key for it, and that key's check value; why not, when it cannot be.
    async fn pin_for_acquirer(
        &self,
        terminal: &TerminalId,
        block: &str,
        card: &CardRead,
    ) -> Result<(String, String), AcquirerError> {
        let from = self
            .settings
            .pin_keys
            .of(terminal)
            .ok_or_else(|| AcquirerError::NotSent {
                field: Some(52),
                why: format!(
                    "{terminal} is not paired: a PIN is only taken under a paired checkout's own key"
                ),
            })?;
        let to = self
            .within_timeout(self.acquirer.pin_key(terminal.as_str()))
            .await?;
        let block = pin_block::translate(block, card.pan.digits(), &from, &to).map_err(|e| {
            AcquirerError::NotSent {
                field: Some(52),
                why: e.to_string(),
            }
        })?;
        Ok((block, pin_block::check_value(&to)))
    }

    /// Ends a transaction the acquirer was never asked about as failed with
    /// `code`: not charged.
    pub(super) async fn not_sent(&self, txn: &Txn, code: ResponseCode) -> Option<Response> {
        match self.end_here(txn.id, TxnStatus::Failed, code).await {
            Ok(t) => Some(self.outcome(&t, None)),
            Err(e) => Some(internal(&txn.request_id, &e)),
        }
    }

    /// Ends transaction `id` with a status and code of the hub's own (no
    /// authorization code or reference from the acquirer).
    pub(super) async fn end_here(
        &self,
        id: i64,
        status: TxnStatus,
        code: ResponseCode,
    ) -> Result<Txn, StoreError> {
        self.store(move |s: &mut Store| {
            s.finish(
                id,
                &Verdict {
                    status,
                    response_code: code,
                    auth_code: "",
                    reference_no: "",
                },
            )
        })
        .await
    }

    /// Waits for the acquirer at most the configured time-out.
    pub(super) async fn within_timeout<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, AcquirerError>>,
    ) -> Result<T, AcquirerError> {
        let limit = self.settings.acquirer_timeout;
        tokio::time::timeout(limit, call)
            .await
            .unwrap_or(Err(AcquirerError::TimedOut(limit)))
    }
}

/// Keeps the fraud rule hits a decision made, for the owner (each once).
pub(super) fn record_hits(
    s: &mut Store,
    terminal: &TerminalId,
    hits: &[crate::store::fraud::Hit],
) -> Result<(), StoreError> {
    for hit in hits {
        if s.record_hit(terminal, hit)? {
            tracing::warn!(terminal = %terminal, rule = hit.rule, action = ?hit.action, detail = %hit.detail, "fraud rule hit");
        }
    }
    Ok(())
}

/// What is still owed of the split sale `part` belongs to, in minor units.
pub(super) fn owed(s: &Store, part: Option<&requests::SplitPart>) -> Result<Option<u64>, StoreError> {
    part.map(|p| Ok(p.total.minor().saturating_sub(s.split_paid(&p.group)?)))
        .transpose()
}

/// What the cashier is told when the hub cannot take transactions now.
pub(super) fn unfit_code(why: &Unfit) -> ReasonCode {
    match why {
        Unfit::DiskFull { .. } => reason::HUB_STORAGE,
        Unfit::ClockBehind { .. } => reason::HUB_CLOCK,
        Unfit::HistoryLost(_) => reason::HUB_HISTORY,
        Unfit::Settling { .. } => reason::SETTLING,
    }
}

/// What admission looks at, read from the store for one request: the
/// sale's fraud facts, or the void's or refund's original sale.
fn gather(
    s: &mut Store,
    ask: &admission::Ask,
    request_id: &RequestId,
    terminal: &TerminalId,
    sale_terminal: &TerminalId,
    card: &CardRead,
) -> Result<admission::Facts, StoreError> {
    let mut facts = admission::Facts {
        lost: s.is_lost(request_id)?,
        unfit: s.unfit_for_sales()?,
        frozen: s.frozen(terminal)?,
        cashier_signed_on: ask.cashier_required && s.terminal_cashier(terminal)?.is_some(),
        // Voids and refunds are the supervisor's: the card's PIN tries do not count.
        pin_failures_today: match ask.undo {
            None => s.pin_failures_today(card.pan.digits())?,
            Some(_) => 0,
        },
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
                sale: original(s, sale_terminal, trace_no, Some(card))?,
                open_batch: s.batch_no()?,
                sold_today,
                refunded_today,
            };
        }
    }
    Ok(facts)
}

/// The transaction with `trace_no` at `terminal`, as a void or refund sees
/// it; `card` is the card presented (none for cash back).
pub(super) fn original(
    s: &mut Store,
    terminal: &TerminalId,
    trace_no: u32,
    card: Option<&CardRead>,
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
        tender: sale.paid.tender(),
        same_card: match card {
            Some(card) => s.same_card(sale.id, card.pan.digits())?,
            None => true,
        },
        reference: OriginalRef {
            trace_no: sale.trace_no,
            batch_no: sale.batch_no,
            reference_no: sale.reference_no.clone(),
            auth_code: sale.auth_code.clone(),
            at: sale.created(),
        },
    }))
}
