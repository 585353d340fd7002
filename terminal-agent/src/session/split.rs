//! A sale paid in parts: cash first (`A` instead of `#` takes the cash
//! keyed as a part), then a card or more cash for what is still owed. Each
//! part is a transaction of its own at the hub, sharing the sale's group and
//! total; the customer gets one receipt listing the parts once the sale is
//! paid in full. When a later part is not paid (a card declined), the
//! cashier chooses: pay the rest another way, or undo the paid parts (cash
//! back from the drawer, no supervisor needed while the sale is unfinished).
//!
//! ```text
//! Cash ─A→ Waiting ─approved, still owed→ Card (rest) ─card→ Waiting ─approved, paid→ Done (one receipt)
//!                                              └─declined / C→ SplitChoice ─1→ Card (rest)
//!                                                                          └─2→ Waiting (void each cash part) → Done
//! ```

use super::{Action, Op, Session, State};
use tallybox_core::money::Amount;
use tallybox_core::protocol::requests::{self, SplitPart};
use tallybox_core::protocol::{Outcome, Paid, Receipt, Request, RequestId, TxnKind, TxnStatus};
use tallybox_core::slip::{self, Copy, Slip};

/// The sale being paid in parts.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Split {
    group: RequestId,
    total: Amount,
    /// The parts paid so far, as the hub recorded them.
    paid: Vec<Receipt>,
    /// The cash parts still to void, when the cashier chose to undo.
    undoing: Vec<u32>,
    /// What was given back so far by undoing.
    given_back: u64,
}

impl Split {
    fn paid_minor(&self) -> u64 {
        self.paid.iter().map(|r| r.amount.minor()).sum()
    }

    fn owed(&self) -> Amount {
        Amount::from_minor(self.total.minor().saturating_sub(self.paid_minor())).unwrap_or(Amount::ZERO)
    }
}

impl Session {
    /// What a part of this sale carries: its group and the sale's total.
    pub(super) fn split_part(&self) -> Option<SplitPart> {
        self.split.as_ref().map(|s| SplitPart {
            group: s.group.clone(),
            total: s.total,
        })
    }

    /// `A` in the cash entry: the cash keyed pays part of `total` (all of it
    /// when it covers the rest).
    pub(super) fn pay_part_in_cash(&mut self, total_owed: Amount, part: Amount) -> Vec<Action> {
        if part >= total_owed {
            return self.send_cash(total_owed, part);
        }
        if self.split.is_none() {
            self.split = Some(Split {
                group: RequestId::new(),
                total: total_owed,
                paid: Vec::new(),
                undoing: Vec::new(),
                given_back: 0,
            });
        }
        self.send_cash(part, part)
    }

    /// The answer to a part while a split is under way; `None` when this
    /// outcome is not a split's (the ordinary handling applies).
    pub(super) fn on_split_outcome(&mut self, outcome: &Outcome) -> Option<Vec<Action>> {
        let ui = self.ui();
        let currency = self.config.currency;
        let columns = self.config.slip_columns;
        if !self.split.as_ref()?.undoing.is_empty() {
            return Some(self.on_undo_answer(outcome));
        }
        let split = self.split.as_mut()?;
        if outcome.kind != TxnKind::Sale {
            return None;
        }
        let approved = outcome.status == TxnStatus::Approved;
        match (&outcome.receipt, approved) {
            (Some(receipt), true) => {
                split.paid.push(receipt.clone());
                let cash = matches!(receipt.paid, Paid::Cash { .. });
                let owed = split.owed();
                let mut actions = Vec::new();
                if cash {
                    actions.push(Action::OpenDrawer);
                }
                if !owed.is_zero() {
                    let paid = Amount::from_minor(split.paid_minor()).unwrap_or(Amount::ZERO);
                    self.state = State::Card { op: Op::Sale(owed) };
                    actions.push(Action::Show(ui.split_owed(currency, paid, owed)));
                    return Some(actions);
                }
                // Paid in full: the card part's signed copy for the shop,
                // one receipt for the customer.
                let split = self.split.take()?;
                for part in split.paid.iter().filter(|p| p.paid.card().is_some()) {
                    actions.push(Action::Print(Slip::of(part, Copy::Merchant, false, columns)));
                }
                actions.push(Action::Print(Slip {
                    lines: slip::render_split(&split.paid, columns),
                    qr: None,
                }));
                let change = receipt.paid.change(receipt.amount).unwrap_or(Amount::ZERO);
                self.state = State::Done;
                actions.push(Action::Show(ui.split_paid(currency, split.total, change)));
                Some(actions)
            }
            _ if split.paid.is_empty() => {
                self.split = None;
                None
            }
            _ => {
                let owed = split.owed();
                self.state = State::SplitChoice;
                Some(vec![Action::Show(ui.split_not_paid(
                    currency,
                    Some(outcome.response_code),
                    owed,
                ))])
            }
        }
    }

    /// `C` while parts are paid: the cashier must choose, not walk away.
    pub(super) fn split_interrupted(&mut self) -> Option<Vec<Action>> {
        let split = self.split.as_ref()?;
        if split.paid.is_empty() {
            self.split = None;
            return None;
        }
        let owed = split.owed();
        self.state = State::SplitChoice;
        Some(vec![Action::Show(self.ui().split_not_paid(
            self.config.currency,
            None,
            owed,
        ))])
    }

    /// The cashier's choice after a part was not paid: 1 pay the rest
    /// another way, 2 undo the paid parts.
    pub(super) fn on_split_choice(&mut self, choice: u8) -> Vec<Action> {
        let ui = self.ui();
        let currency = self.config.currency;
        let Some(split) = self.split.as_mut() else {
            return self.go_idle();
        };
        match choice {
            1 => {
                let owed = split.owed();
                let paid = Amount::from_minor(split.paid_minor()).unwrap_or(Amount::ZERO);
                self.state = State::Card { op: Op::Sale(owed) };
                vec![Action::Show(ui.split_owed(currency, paid, owed))]
            }
            2 => {
                split.undoing = split.paid.iter().rev().map(|p| p.trace_no).collect();
                self.void_next_part()
            }
            _ => vec![],
        }
    }

    fn void_next_part(&mut self) -> Vec<Action> {
        let Some(split) = self.split.as_ref() else {
            return vec![];
        };
        let Some(&trace) = split.undoing.first() else {
            return vec![];
        };
        let request = Request::Void(requests::Void {
            request_id: RequestId::new(),
            trace_no: trace,
            card: None,
            supervisor_pin: None,
            order: None,
            split: Some(split.group.clone()),
        });
        let title = self.ui().pick("UNDO PAID PART", "撤销已付部分").to_string();
        let screen = self.ui().processing(&title);
        self.wait(request, title, screen)
    }

    fn on_undo_answer(&mut self, outcome: &Outcome) -> Vec<Action> {
        let ui = self.ui();
        let currency = self.config.currency;
        let Some(split) = self.split.as_mut() else {
            return vec![];
        };
        if outcome.kind != TxnKind::Void || outcome.status != TxnStatus::Approved {
            // The hub would not undo it: the supervisor's void (B 1) can.
            let given_back = split.given_back;
            self.split = None;
            self.state = State::Done;
            let mut actions = vec![Action::Show(ui.split_undo_refused(outcome.response_code))];
            if given_back > 0 {
                actions.insert(0, Action::OpenDrawer);
            }
            return actions;
        }
        split.undoing.remove(0);
        split.given_back += outcome.receipt.as_ref().map_or(0, |r| r.amount.minor());
        if !split.undoing.is_empty() {
            return self.void_next_part();
        }
        let back = Amount::from_minor(split.given_back).unwrap_or(Amount::ZERO);
        self.split = None;
        self.state = State::Done;
        vec![Action::OpenDrawer, Action::Show(ui.cash_back(currency, back))]
    }
}
