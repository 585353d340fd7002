//! The simulated acquirer and issuer: decides on the test cards
//! ([`tallybox_core::card::test_cards`]) the way a real issuer would, so a
//! demo and the tests meet every answer a shop meets. The decision itself is a
//! plain function ([`SimIssuer::decide`]); [`SimAcquirer`] only adds the delays.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;
use tallybox_core::code::ResponseCode;

use tallybox_core::card::pin_block::{self, PinKey};
use tallybox_core::card::test_cards::{self, Behaviour};
use tallybox_core::money::Amount;
use tallybox_core::protocol::TxnKind;

use super::{Acquirer, AcquirerError, AuthRequest, AuthResponse, BatchTotals, Reversal};

/// What the issuer decided and how long the acquirer takes to say it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Answer {
        response: AuthResponse,
        delay: Duration,
    },
    /// The acquirer never answers.
    Silence,
}

/// The key PIN blocks reach the issuer under: a random one for each run of
/// the simulator (a real acquirer has its own; none is built in).
struct IssuerPinKey(pub PinKey);

impl Default for IssuerPinKey {
    fn default() -> Self {
        IssuerPinKey(rand::random())
    }
}

impl std::fmt::Debug for IssuerPinKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IssuerPinKey(..)")
    }
}

/// The issuer's memory: balances of the cards that have one, and what the
/// acquirer approved for each terminal since its last settlement.
#[derive(Debug, Default)]
pub struct SimIssuer {
    /// PIN blocks come encrypted under this key.
    pin_key: IssuerPinKey,
    spent: HashMap<String, u64>,
    auth_counter: u32,
    /// Each terminal's open batch.
    batches: HashMap<String, OpenBatch>,
    /// Each terminal's last settled batch and the answer it got: a repeat of
    /// that settlement (the terminal did not hear the answer) gets it again.
    settled: HashMap<String, (u32, bool)>,
}

impl SimIssuer {
    /// An issuer that reads PIN blocks under `pin_key`.
    pub fn with_pin_key(pin_key: PinKey) -> SimIssuer {
        SimIssuer {
            pin_key: IssuerPinKey(pin_key),
            ..SimIssuer::default()
        }
    }

    fn answer(&mut self, code: ResponseCode, request: &AuthRequest, balance: Option<Amount>) -> AuthResponse {
        let approved = code.is_approved();
        if approved {
            self.auth_counter = self.auth_counter.wrapping_add(1);
        }
        AuthResponse {
            response_code: code,
            auth_code: if approved {
                // Six digits, unique per approval in this run, like a real auth code.
                format!(
                    "{:06}",
                    (u64::from(self.auth_counter) * 7919 + u64::from(request.trace_no)) % 1_000_000
                )
            } else {
                String::new()
            },
            reference_no: format!(
                "{}{:06}",
                tallybox_platform::clock::now().format("%H%M%S"),
                request.trace_no % 1_000_000
            ),
            balance,
        }
    }

    /// Decides, and remembers an approval for the settlement.
    pub fn decide(&mut self, request: &AuthRequest) -> Decision {
        let decision = self.decide_only(request);
        if let Decision::Answer { response, .. } = &decision {
            if response.approved() && request.kind != TxnKind::Balance {
                self.batches
                    .entry(request.terminal_id.clone())
                    .or_default()
                    .approve(request.trace_no, request.kind, request.amount.minor());
            }
        }
        decision
    }

    /// A reversal: that approval never happened.
    pub fn reversed(&mut self, terminal_id: &str, trace_no: u32) {
        let Some(batch) = self.batches.get_mut(terminal_id) else {
            return;
        };
        match batch.reverse(trace_no) {
            Some((kind, minor)) => tracing::debug!(
                terminal = terminal_id,
                trace_no,
                kind = kind.as_str(),
                minor,
                "approval reversed"
            ),
            None if trace_no <= batch.newest_let_go => tracing::warn!(
                terminal = terminal_id,
                trace_no,
                "a reversal of an approval older than the {RECENT} the simulated acquirer keeps: not taken off its totals"
            ),
            None => {}
        }
    }

    /// The acquirer's totals for `terminal_id` against the hub's: true when
    /// they agree. The terminal's approvals are forgotten either way (a new
    /// batch starts). The batch the terminal settled last gets the answer it
    /// got then.
    pub fn settle(&mut self, totals: &BatchTotals) -> bool {
        if let Some(&(batch_no, balanced)) = self.settled.get(&totals.terminal_id) {
            if batch_no == totals.batch_no {
                tracing::info!(terminal = %totals.terminal_id, batch_no, balanced, "settlement repeated: its first answer");
                return balanced;
            }
        }
        let mine = self.totals(&totals.terminal_id);
        self.batches.remove(&totals.terminal_id);
        let balanced = (
            mine.sales_count,
            mine.sales_minor,
            mine.refunds_count,
            mine.refunds_minor,
        ) == (
            totals.sales_count,
            totals.sales_minor,
            totals.refunds_count,
            totals.refunds_minor,
        );
        if !balanced {
            tracing::warn!(terminal = %totals.terminal_id, ?mine, hub = ?totals, "settlement out of balance");
        }
        self.settled
            .insert(totals.terminal_id.clone(), (totals.batch_no, balanced));
        balanced
    }

    fn totals(&self, terminal_id: &str) -> BatchTotals {
        let sums = self.batches.get(terminal_id).map(|b| b.sums).unwrap_or_default();
        BatchTotals::of(
            terminal_id,
            0,
            SUMMED
                .iter()
                .zip(sums)
                .map(|(kind, (count, minor))| (*kind, count, minor)),
        )
    }

    fn decide_only(&mut self, request: &AuthRequest) -> Decision {
        let pan = request.card.pan.digits();
        let now = |response| Decision::Answer {
            response,
            delay: Duration::ZERO,
        };
        let Some(card) = test_cards::by_pan(pan) else {
            return now(self.answer(ResponseCode::INVALID_CARD, request, None));
        };
        if card.expiry != request.card.expiry.yymm() {
            return now(self.answer(ResponseCode::EXPIRED_CARD, request, None));
        }
        if let Some(expected) = card.pin {
            let given = request
                .pin_block
                .as_deref()
                .and_then(|block| pin_block::decrypt(block, pan, &self.pin_key.0).ok().flatten());
            if given.as_deref() != Some(expected) {
                return now(self.answer(ResponseCode::WRONG_PIN, request, None));
            }
        }
        if matches!(request.kind, TxnKind::Void | TxnKind::Refund) {
            // Money goes back to the card: a card with a balance gets it back.
            if let Some(spent) = self.spent.get_mut(pan) {
                *spent = spent.saturating_sub(request.amount.minor());
            }
            return now(self.answer(ResponseCode::APPROVED, request, None));
        }
        let is_balance = request.kind == TxnKind::Balance;
        match card.behaviour {
            Behaviour::Approve => {
                let balance = is_balance.then(|| Amount::from_minor(88_888_888).unwrap_or(Amount::ZERO));
                now(self.answer(ResponseCode::APPROVED, request, balance))
            }
            Behaviour::Balance { minor } => {
                let spent = self.spent.entry(pan.to_string()).or_default();
                let left = minor.saturating_sub(*spent);
                if is_balance {
                    let balance = Amount::from_minor(left).ok();
                    return now(self.answer(ResponseCode::APPROVED, request, balance));
                }
                if request.amount.minor() > left {
                    return now(self.answer(ResponseCode::INSUFFICIENT_FUNDS, request, None));
                }
                *spent += request.amount.minor();
                now(self.answer(ResponseCode::APPROVED, request, None))
            }
            Behaviour::Decline { code } => now(self.answer(code, request, None)),
            Behaviour::Slow { ms } => Decision::Answer {
                response: self.answer(ResponseCode::APPROVED, request, None),
                delay: Duration::from_millis(ms),
            },
            Behaviour::NoAnswer => Decision::Silence,
        }
    }
}

/// How many of a terminal's newest approvals the simulated acquirer keeps
/// one by one, for a reversal to take back; older ones live on only in
/// its totals, so a day of sales without a settlement costs no more memory
/// than a minute's.
const RECENT: usize = 4096;

/// The kinds a batch sums, in the order of [`OpenBatch::sums`].
const SUMMED: [TxnKind; 3] = [TxnKind::Sale, TxnKind::Void, TxnKind::Refund];

/// What the acquirer holds of a terminal's batch until it settles.
#[derive(Debug, Default)]
struct OpenBatch {
    /// Count and amount of the approvals not reversed, by kind ([`SUMMED`]).
    sums: [(u32, u64); 3],
    /// The newest approvals (trace, kind, amount), oldest first.
    recent: VecDeque<(u32, TxnKind, u64)>,
    /// The trace of the newest approval let go from `recent`.
    newest_let_go: u32,
}

impl OpenBatch {
    fn sum(&mut self, kind: TxnKind) -> Option<&mut (u32, u64)> {
        SUMMED.iter().position(|k| *k == kind).map(|i| &mut self.sums[i])
    }

    /// An approval; the same trace approved again (a repeat) counts once.
    fn approve(&mut self, trace_no: u32, kind: TxnKind, minor: u64) {
        // Traces grow within a batch: only one not above the newest kept
        // can be a repeat, worth looking for.
        if self.recent.back().is_some_and(|(newest, ..)| *newest >= trace_no) {
            self.reverse(trace_no);
        }
        if let Some(sum) = self.sum(kind) {
            sum.0 += 1;
            sum.1 += minor;
        }
        self.recent.push_back((trace_no, kind, minor));
        if self.recent.len() > RECENT {
            if let Some((trace, ..)) = self.recent.pop_front() {
                self.newest_let_go = self.newest_let_go.max(trace);
            }
        }
    }

    /// Takes an approval back: its kind and amount, if it is still kept.
    fn reverse(&mut self, trace_no: u32) -> Option<(TxnKind, u64)> {
        let at = self.recent.iter().rposition(|(trace, ..)| *trace == trace_no)?;
        let (_, kind, minor) = self.recent.remove(at)?;
        if let Some(sum) = self.sum(kind) {
            sum.0 -= 1;
            sum.1 -= minor;
        }
        Some((kind, minor))
    }
}

#[derive(Default)]
pub struct SimAcquirer {
    issuer: Mutex<SimIssuer>,
}

impl SimAcquirer {
    fn issuer(&self) -> std::sync::MutexGuard<'_, SimIssuer> {
        self.issuer.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Acquirer for SimAcquirer {
    async fn pin_key(&self, _terminal_id: &str) -> Result<PinKey, AcquirerError> {
        Ok(self.issuer().pin_key.0)
    }

    async fn authorize(&self, request: AuthRequest) -> Result<AuthResponse, AcquirerError> {
        let decision = self.issuer().decide(&request);
        match decision {
            Decision::Answer { response, delay } => {
                // Even a zero sleep waits for the timer's next 1 ms tick.
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                Ok(response)
            }
            Decision::Silence => std::future::pending().await,
        }
    }

    async fn reverse(&self, reversal: Reversal) -> Result<(), AcquirerError> {
        tracing::info!(terminal = %reversal.terminal_id, trace_no = reversal.trace_no, amount_minor = reversal.amount.minor(), "simulated acquirer acknowledged reversal");
        self.issuer().reversed(&reversal.terminal_id, reversal.trace_no);
        Ok(())
    }

    async fn settle(&self, totals: BatchTotals) -> Result<bool, AcquirerError> {
        Ok(self.issuer().settle(&totals))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tallybox_core::card::EntryMode;

    const PIN_KEY: PinKey = [0x3C; 16];

    fn request(name: &str, minor: u64, pin: Option<&str>) -> AuthRequest {
        let card = test_cards::by_name(name).unwrap().read(EntryMode::Swipe);
        let pin_block = pin.map(|p| pin_block::encrypt(p, card.pan.digits(), &PIN_KEY).unwrap());
        AuthRequest {
            kind: TxnKind::Sale,
            terminal_id: "T1".into(),
            trace_no: 1,
            batch_no: 1,
            amount: Amount::from_minor(minor).unwrap(),
            card,
            pin_block,
            pin_key_check: None,
            original: None,
            at: chrono::Utc::now(),
        }
    }

    fn code(issuer: &mut SimIssuer, r: &AuthRequest) -> String {
        match issuer.decide(r) {
            Decision::Answer { response, .. } => response.response_code.to_string(),
            Decision::Silence => "silence".into(),
        }
    }

    #[test]
    fn a_voided_sale_is_not_counted_whatever_order_the_approvals_are_kept_in() {
        // Each issuer's map has its own hash order: a void came before its
        // sale in some of them, and the voided sale was counted.
        for _ in 0..64 {
            let mut issuer = SimIssuer::default();
            for (kind, trace, minor) in [
                (TxnKind::Sale, 1, 1000),
                (TxnKind::Sale, 2, 500),
                (TxnKind::Void, 3, 1000),
                (TxnKind::Refund, 4, 200),
            ] {
                let r = AuthRequest {
                    kind,
                    trace_no: trace,
                    batch_no: 1,
                    ..request("approved", minor, None)
                };
                assert_eq!(code(&mut issuer, &r), "00");
            }
            let hub = BatchTotals {
                terminal_id: "T1".into(),
                batch_no: 1,
                trace_no: 9,
                sales_count: 1,
                sales_minor: 500,
                refunds_count: 1,
                refunds_minor: 200,
            };
            assert!(issuer.settle(&hub), "the void takes its sale off");
        }
    }

    #[test]
    fn a_day_of_sales_is_summed_and_the_newest_can_still_be_reversed() {
        let mut issuer = SimIssuer::default();
        let sales = RECENT as u32 * 3;
        for trace in 1..=sales {
            let r = AuthRequest {
                trace_no: trace,
                ..request("approved", 100, None)
            };
            assert_eq!(code(&mut issuer, &r), "00");
        }
        // A repeat of the last one counts once; then it is reversed.
        let last = AuthRequest {
            trace_no: sales,
            ..request("approved", 100, None)
        };
        assert_eq!(code(&mut issuer, &last), "00");
        issuer.reversed("T1", sales);
        let batch = &issuer.batches["T1"];
        assert_eq!(
            batch.recent.len(),
            RECENT - 1,
            "only the newest are kept one by one"
        );
        let hub = BatchTotals {
            terminal_id: "T1".into(),
            batch_no: 1,
            trace_no: sales + 1,
            sales_count: sales - 1,
            sales_minor: u64::from(sales - 1) * 100,
            refunds_count: 0,
            refunds_minor: 0,
        };
        assert!(issuer.settle(&hub), "{:?}", issuer.totals("T1"));
        assert!(issuer.batches.is_empty(), "a settled batch is let go");
    }

    #[test]
    fn every_test_card_gets_its_answer() {
        let mut issuer = SimIssuer::with_pin_key(PIN_KEY);
        let cases = [
            ("approved", "00"),
            ("visa", "00"),
            ("expired", "54"),
            ("lost", "41"),
            ("frozen", "43"),
            ("invalid", "14"),
            ("pin", "55"),
            ("no-answer", "silence"),
        ];
        for (name, expected) in cases {
            assert_eq!(code(&mut issuer, &request(name, 100, None)), expected, "{name}");
        }
        assert_eq!(code(&mut issuer, &request("pin", 100, Some("1234"))), "00");
        assert_eq!(code(&mut issuer, &request("pin", 100, Some("9999"))), "55");
        // A block under any other key is a wrong PIN.
        assert_eq!(
            code(&mut SimIssuer::default(), &request("pin", 100, Some("1234"))),
            "55"
        );
        match issuer.decide(&request("slow", 100, None)) {
            Decision::Answer { delay, .. } => assert_eq!(delay, Duration::from_secs(3)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn low_balance_approves_until_the_money_runs_out() {
        let mut issuer = SimIssuer::default();
        assert_eq!(code(&mut issuer, &request("low-balance", 20_000, None)), "51");
        assert_eq!(code(&mut issuer, &request("low-balance", 6_000, None)), "00");
        assert_eq!(code(&mut issuer, &request("low-balance", 6_000, None)), "51");
        assert_eq!(code(&mut issuer, &request("low-balance", 4_000, None)), "00");
    }

    #[test]
    fn approvals_carry_auth_and_reference_numbers() {
        let mut issuer = SimIssuer::default();
        let Decision::Answer { response, .. } = issuer.decide(&request("approved", 100, None)) else {
            panic!()
        };
        assert_eq!(response.auth_code.len(), 6);
        assert_eq!(response.reference_no.len(), 12);
    }
}
