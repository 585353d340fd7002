//! Admission: may this sale, void or refund run now? Plain rules over facts,
//! the quinn-proto way: no SQLite, no tokio, no clock of its own (the local
//! time is a fact). The coordinator's store job gathers the [`Facts`] for one
//! request, calls [`decide`], records what it says (fraud hits, a freeze)
//! and, when the request is admitted, writes it `pending` — one job, so no
//! other request can slip between the check and the write.
//!
//! The rules, in the order they are asked (the first that refuses answers):
//!
//! | rule | refused with |
//! |---|---|
//! | amount 0 or above the store's limit, another currency ([`check_amount`]) | `invalid_amount` error |
//! | the terminal recalled this id as lost before it arrived | "not received" |
//! | the hub's disk is nearly full, its clock behind its records | `XD` / `XT` |
//! | the terminal is frozen | `XZ` |
//! | the store wants a cashier signed on, none is | `XN` |
//! | a part of a split sale is more than is still owed | `XA` |
//! | three wrong PINs today with this card (sales, balance) | `XP` |
//! | a sale breaks a fraud rule set to block, or to ask the supervisor | `XB` / `XV` |
//! | a void or refund has no approved sale of this terminal to undo | `XO` |
//! | a void or refund paid back another way than the sale was paid (cash, card) | `XM` |
//! | a void: outside the open batch, partly refunded, or another card | `XO` / `XM` |
//! | a refund: more than what is left of the sale | `XF` |
//! | a refund breaks a fraud rule set to block | `XB` |
//!
//! A repeated request id never reaches these rules: the store job answers it
//! from the stored transaction first (exactly once).

use chrono::NaiveTime;
use tallybox_core::card::EntryMode;
use tallybox_core::code::ReasonCode;
use tallybox_core::money::{Amount, Currency};
use tallybox_core::protocol::{Tender, TxnKind, TxnStatus};
use tallybox_core::reason;

use super::fraud::{self, Action, FraudRules};
use crate::acquirer::OriginalRef;
use crate::store::fraud::{Facts as FraudFacts, Hit};
use crate::store::Unfit;

/// Wrong PINs a card may have in a day at this store.
pub const MAX_PIN_TRIES: u32 = 3;

/// What is asked, and the store's settings that bear on it.
#[derive(Debug, Clone)]
pub struct Ask<'a> {
    pub kind: TxnKind,
    pub amount: Amount,
    pub currency: Currency,
    /// The trace number of the sale a void or refund undoes.
    pub undo: Option<u32>,
    /// How it is paid (a void or refund: how the money goes back).
    pub tender: Tender,
    /// How the card was read; none for cash.
    pub entry_mode: Option<EntryMode>,
    /// The supervisor's PIN came with this sale and was right.
    pub supervisor_approved: bool,
    /// The owner requires a cashier signed on for a sale.
    pub cashier_required: bool,
    pub rules: &'a FraudRules,
    /// The store's local time of day.
    pub now: NaiveTime,
}

/// What the store knows about the request, read in the job that writes it.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// The terminal recalled this request id before it arrived.
    pub lost: bool,
    pub unfit: Option<Unfit>,
    /// Why the terminal is frozen, when it is.
    pub frozen: Option<String>,
    pub cashier_signed_on: bool,
    /// Wrong PINs with this card today.
    pub pin_failures_today: u32,
    /// For a sale: what the fraud rules look at.
    pub fraud: FraudFacts,
    /// For a void or refund: the sale it undoes and the day's takings.
    pub undo: UndoFacts,
    /// For a part of a split sale: what is still owed, in minor units.
    pub split_owed: Option<u64>,
}

/// What a void or refund is checked against.
#[derive(Debug, Clone, Default)]
pub struct UndoFacts {
    /// This terminal's transaction with the trace number asked, if any.
    pub sale: Option<Original>,
    /// The store's open batch.
    pub open_batch: u32,
    /// Minor units sold and refunded today, store-wide.
    pub sold_today: u64,
    pub refunded_today: u64,
}

/// The transaction a void or refund names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Original {
    pub id: i64,
    pub kind: TxnKind,
    pub status: TxnStatus,
    pub batch_no: u32,
    pub amount: Amount,
    /// A void of it is recorded (or pending).
    pub voided: bool,
    /// Minor units already refunded of it (pending refunds count).
    pub refunded: u64,
    /// How the sale was paid.
    pub tender: Tender,
    /// The card presented now is the card of the sale (true for cash).
    pub same_card: bool,
    /// What the acquirer needs to find it.
    pub reference: OriginalRef,
}

/// What to do with the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Write it pending and ask the acquirer for `amount` (a void's is the sale's).
    Admit {
        amount: Amount,
        original: Option<(i64, OriginalRef)>,
    },
    /// Recalled as lost: it must never charge.
    Lost,
    /// The hub cannot take any transaction now.
    Unfit(Unfit),
    /// Refused with this reason code; nothing is written.
    Refuse(ReasonCode),
}

/// The verdict and what must be kept whatever it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    pub verdict: Verdict,
    /// Fraud rule hits to record for the owner.
    pub hits: Vec<Hit>,
    /// Freeze the terminal, for this reason in English and Chinese (card testing).
    pub freeze: Option<(String, String)>,
}

impl Admission {
    fn only(verdict: Verdict) -> Admission {
        Admission {
            verdict,
            hits: Vec::new(),
            freeze: None,
        }
    }
}

/// The checks that need no facts: the amount and the currency. The error
/// is the message for an `invalid_amount` answer.
pub fn check_amount(
    kind: TxnKind,
    amount: Amount,
    currency: &str,
    store_currency: Currency,
    max_sale: Amount,
) -> Result<(), String> {
    if kind == TxnKind::Sale && (amount.is_zero() || amount > max_sale) {
        return Err(format!(
            "amount must be {} to {}",
            store_currency.format_minor(1),
            store_currency.format(max_sale)
        ));
    }
    if currency != store_currency.code() {
        return Err(format!("this store takes {store_currency}, not {currency}"));
    }
    Ok(())
}

/// May the request run: the rules of the table above, in that order.
pub fn decide(ask: &Ask, facts: &Facts) -> Admission {
    if facts.lost {
        return Admission::only(Verdict::Lost);
    }
    if let Some(why) = &facts.unfit {
        return Admission::only(Verdict::Unfit(why.clone()));
    }
    if facts.frozen.is_some() {
        return Admission::only(Verdict::Refuse(reason::FROZEN));
    }
    if ask.kind == TxnKind::Sale && ask.cashier_required && !facts.cashier_signed_on {
        return Admission::only(Verdict::Refuse(reason::SIGN_ON_FIRST));
    }
    // A part of a split sale pays at most what is still owed.
    if facts.split_owed.is_some_and(|owed| ask.amount.minor() > owed) {
        return Admission::only(Verdict::Refuse(reason::WRONG_AMOUNT));
    }
    // Three wrong PINs today and the card is refused here until tomorrow.
    if ask.undo.is_none() && facts.pin_failures_today >= MAX_PIN_TRIES {
        return Admission::only(Verdict::Refuse(reason::PIN_TRIES));
    }
    match ask.undo {
        None if ask.kind == TxnKind::Sale => judge_sale(ask, &facts.fraud),
        None => Admission::only(Verdict::Admit {
            amount: ask.amount,
            original: None,
        }),
        Some(trace_no) => judge_undo(ask, trace_no, &facts.undo),
    }
}

/// The fraud rules on a sale; a supervisor's PIN turns "ask" into "allow".
fn judge_sale(ask: &Ask, facts: &FraudFacts) -> Admission {
    let mut hits = ask
        .rules
        .check(facts, ask.amount, ask.currency, ask.entry_mode, ask.now);
    for hit in &mut hits {
        if hit.action == Action::AskSupervisor && ask.supervisor_approved {
            hit.action = Action::Allow;
            hit.detail.push_str("; approved by the supervisor");
            hit.detail_zh.push_str("；主管已批准");
        }
    }
    let freeze = hits
        .iter()
        .find(|h| h.rule == fraud::CARD_TESTING && ask.rules.freeze_on_card_testing)
        .map(|h| (h.detail.clone(), h.detail_zh.clone()));
    let verdict = if hits.iter().any(|h| h.action == Action::Block) {
        Verdict::Refuse(reason::FRAUD_BLOCKED)
    } else if hits.iter().any(|h| h.action == Action::AskSupervisor) {
        Verdict::Refuse(reason::NEEDS_SUPERVISOR)
    } else {
        Verdict::Admit {
            amount: ask.amount,
            original: None,
        }
    };
    Admission {
        verdict,
        hits,
        freeze,
    }
}

/// A void gives back the whole sale of the open batch, to its card; a
/// refund part or all of what is left of any approved sale.
fn judge_undo(ask: &Ask, trace_no: u32, facts: &UndoFacts) -> Admission {
    let refuse = |code| Admission::only(Verdict::Refuse(code));
    let Some(sale) = &facts.sale else {
        return refuse(reason::NO_ORIGINAL);
    };
    if sale.kind != TxnKind::Sale || sale.status != TxnStatus::Approved || sale.voided {
        return refuse(reason::NO_ORIGINAL);
    }
    // Money goes back the way it came: a card sale to its card, cash from
    // the drawer.
    if sale.tender != ask.tender {
        return refuse(reason::OTHER_CARD);
    }
    let original = Some((sale.id, sale.reference.clone()));
    if ask.kind == TxnKind::Void {
        if sale.batch_no != facts.open_batch || sale.refunded > 0 {
            return refuse(reason::NO_ORIGINAL);
        }
        if !sale.same_card {
            return refuse(reason::OTHER_CARD);
        }
        return Admission::only(Verdict::Admit {
            amount: sale.amount,
            original,
        });
    }
    let asked = ask.amount.minor();
    if asked == 0 || sale.refunded + asked > sale.amount.minor() {
        return refuse(reason::REFUND_TOO_LARGE);
    }
    let hit = |rule, action, (detail, detail_zh): (String, String)| Hit {
        rule,
        action,
        detail,
        detail_zh,
        card: None,
    };
    let mut hits = Vec::new();
    if !sale.same_card {
        hits.push(hit(
            fraud::REFUND_OTHER_CARD,
            ask.rules.refund_other_card_action,
            (
                format!("refund of trace {trace_no} to a card other than the sale's"),
                format!("流水号 {trace_no} 的退货退到了原交易以外的卡上"),
            ),
        ));
    }
    if facts.refunded_today + asked > facts.sold_today {
        hits.push(hit(
            fraud::REFUNDS_OVER_SALES,
            ask.rules.refunds_over_sales_action,
            (
                format!(
                    "refunds today would reach {} against sales of {}",
                    ask.currency.format_minor(facts.refunded_today + asked),
                    ask.currency.format_minor(facts.sold_today)
                ),
                format!(
                    "今日退货将达到 {}，而销售只有 {}",
                    ask.currency.format_minor(facts.refunded_today + asked),
                    ask.currency.format_minor(facts.sold_today)
                ),
            ),
        ));
    }
    // Refunds carry no supervisor approval of their own: they already needed the PIN.
    let verdict = if hits.iter().any(|h| h.action == Action::Block) {
        Verdict::Refuse(reason::FRAUD_BLOCKED)
    } else {
        Verdict::Admit {
            amount: ask.amount,
            original,
        }
    };
    Admission {
        verdict,
        hits,
        freeze: None,
    }
}

#[cfg(test)]
mod tests;
