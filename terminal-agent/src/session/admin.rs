//! Void (撤销) and refund (退货) at the keypad: `B` opens the supervisor's
//! menu; the supervisor types their PIN, then the sale's trace number (from
//! its slip) and, for a refund, the amount; then the card is presented. The
//! hub checks the PIN, the sale and the amount left, and answers like a sale.
//!
//! ```text
//! Idle ─B→ AdminMenu ─1/2→ Supervisor ─#→ Trace ─#→ (refund: RefundAmount ─#→) Card → Waiting
//!                    └─3→ Supervisor ─#→ Waiting (freeze this checkout)
//!                    └─4→ Supervisor ─#→ Waiting (no sale: the drawer opens once the hub recorded it)
//!                    └─5→ Supervisor ─#→ Count ─#→ Waiting (the drawer counted at a shift's end)
//! Waiting ─XV (a store rule asks the supervisor)→ Approve ─#→ Waiting (same sale, new id, their PIN)
//! ```

use super::{Action, Key, Op, Screens, Session, State};
use tallybox_core::money::Amount;
use tallybox_core::protocol::requests;
use tallybox_core::protocol::{Request, RequestId};
use tallybox_core::secret::Pin;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminOp {
    Void,
    Refund,
    /// Stop this checkout from selling until the owner unfreezes it.
    Freeze,
    /// Open the cash drawer without a sale.
    NoSale,
    /// Count the cash drawer at a shift's end.
    Count,
}

impl AdminOp {
    fn title(self, ui: Screens) -> &'static str {
        match self {
            AdminOp::Void => ui.pick("VOID", "撤销"),
            AdminOp::Refund => ui.pick("REFUND", "退货"),
            AdminOp::Freeze => ui.pick("FREEZE", "冻结"),
            AdminOp::NoSale => ui.pick("NO SALE", "开钱箱"),
            AdminOp::Count => ui.pick("COUNT DRAWER", "交班点钞"),
        }
    }
}

const MAX_SUPERVISOR_DIGITS: usize = 8;
const MAX_TRACE_DIGITS: usize = 6;
const MAX_AMOUNT_DIGITS: usize = 9;

/// What a key does to a number being typed.
pub(super) enum Edit {
    Changed,
    Done,
    Unchanged,
}

/// A number being keyed: plain digits (an amount, a trace number) or a
/// [`Pin`], which never prints.
pub(super) trait Digits {
    fn push_digit(&mut self, digit: char);
    fn pop_digit(&mut self);
    fn count(&self) -> usize;
}

/// String and Pin have the same three methods under these names.
macro_rules! digits {
    ($($t:ty),*) => {$(
        impl Digits for $t {
            fn push_digit(&mut self, digit: char) {
                self.push(digit);
            }
            fn pop_digit(&mut self) {
                self.pop();
            }
            fn count(&self) -> usize {
                self.len()
            }
        }
    )*};
}

digits!(String, Pin);

pub(super) fn edit(digits: &mut impl Digits, key: Key, max: usize) -> Edit {
    match key {
        Key::Digit(d) if digits.count() < max => {
            digits.push_digit(char::from(b'0' + d));
            Edit::Changed
        }
        Key::Star => {
            digits.pop_digit();
            Edit::Changed
        }
        Key::Hash if digits.count() > 0 => Edit::Done,
        _ => Edit::Unchanged,
    }
}

impl Session {
    /// Keys of the void / refund flow; `None` when `key` is not theirs.
    pub(super) fn on_admin_key(&mut self, key: Key) -> Option<Vec<Action>> {
        let ui = self.ui();
        let currency = self.config.currency;
        let actions = match (&mut self.state, key) {
            (State::Idle | State::Done, Key::B) => self.go(State::AdminMenu, ui.admin_menu()),
            (State::AdminMenu, Key::Digit(n @ 1..=5)) => {
                let op = [
                    AdminOp::Void,
                    AdminOp::Refund,
                    AdminOp::Freeze,
                    AdminOp::NoSale,
                    AdminOp::Count,
                ][n as usize - 1];
                let pin = Pin::new();
                self.go(State::Supervisor { op, pin }, ui.supervisor_pin(op.title(ui), 0))
            }
            (State::Approve { request, pin }, key) if key != Key::C => {
                let title = ui.pick("APPROVE SALE", "主管确认");
                match edit(pin, key, MAX_SUPERVISOR_DIGITS) {
                    Edit::Changed => vec![Action::Show(ui.supervisor_pin(title, pin.len()))],
                    Edit::Done => {
                        let mut request = request.clone();
                        // A new request: the refused one was never a transaction.
                        match &mut request {
                            Request::Sale(requests::Sale {
                                request_id,
                                supervisor_pin,
                                ..
                            })
                            | Request::CashSale(requests::CashSale {
                                request_id,
                                supervisor_pin,
                                ..
                            })
                            | Request::CodeSale(requests::CodeSale {
                                request_id,
                                supervisor_pin,
                                ..
                            }) => {
                                *request_id = RequestId::new();
                                *supervisor_pin = Some(pin.to_secret());
                            }
                            _ => {}
                        }
                        let title = ui.pick("SUPERVISOR APPROVED", "主管已确认").to_string();
                        let screen = ui.processing(&title);
                        self.wait(request, title, screen)
                    }
                    Edit::Unchanged => vec![],
                }
            }
            (
                State::AdminMenu
                | State::Supervisor { .. }
                | State::Trace { .. }
                | State::RefundAmount { .. }
                | State::Count { .. }
                | State::Approve { .. },
                Key::C,
            ) => {
                self.supervisor_pin = None;
                self.go_idle()
            }
            (State::Supervisor { op, pin }, key) => {
                let op = *op;
                match edit(pin, key, MAX_SUPERVISOR_DIGITS) {
                    Edit::Changed => vec![Action::Show(ui.supervisor_pin(op.title(ui), pin.len()))],
                    Edit::Done if matches!(op, AdminOp::Freeze | AdminOp::NoSale) => {
                        let (request_id, supervisor_pin) = (RequestId::new(), pin.to_secret());
                        let request = match op {
                            AdminOp::Freeze => Request::Freeze(requests::Freeze {
                                request_id,
                                supervisor_pin,
                            }),
                            _ => Request::NoSale(requests::NoSale {
                                request_id,
                                supervisor_pin,
                            }),
                        };
                        let title = op.title(ui).to_string();
                        let screen = ui.processing(&title);
                        self.wait(request, title, screen)
                    }
                    Edit::Done if op == AdminOp::Count => {
                        self.supervisor_pin = Some(std::mem::take(pin));
                        self.go(
                            State::Count {
                                digits: String::new(),
                            },
                            ui.count_entry(currency, ""),
                        )
                    }
                    Edit::Done => {
                        self.supervisor_pin = Some(std::mem::take(pin));
                        self.go(
                            State::Trace {
                                op,
                                digits: String::new(),
                            },
                            ui.trace_entry(op.title(ui), ""),
                        )
                    }
                    Edit::Unchanged => vec![],
                }
            }
            (State::Trace { op, digits }, key) => {
                let op = *op;
                match edit(digits, key, MAX_TRACE_DIGITS) {
                    Edit::Changed => vec![Action::Show(ui.trace_entry(op.title(ui), digits))],
                    Edit::Done => {
                        let trace: u32 = digits.parse().unwrap_or(0);
                        match op {
                            // These ask no trace number: they never get here.
                            AdminOp::Freeze | AdminOp::NoSale | AdminOp::Count => self.go_idle(),
                            AdminOp::Void => {
                                let op = Op::Void { trace };
                                self.go(State::Card { op }, ui.pay(&op.title(ui, currency), None))
                            }
                            AdminOp::Refund => self.go(
                                State::RefundAmount {
                                    trace,
                                    digits: String::new(),
                                },
                                ui.refund_amount(currency, trace, ""),
                            ),
                        }
                    }
                    Edit::Unchanged => vec![],
                }
            }
            (State::Count { digits }, key) => match edit(digits, key, MAX_AMOUNT_DIGITS) {
                Edit::Changed => vec![Action::Show(ui.count_entry(currency, digits))],
                Edit::Done => match (
                    Amount::from_minor(digits.parse().unwrap_or(0)),
                    self.supervisor_pin.take(),
                ) {
                    (Ok(counted), Some(pin)) => {
                        let request = Request::CountDrawer(requests::CountDrawer {
                            request_id: RequestId::new(),
                            supervisor_pin: pin.to_secret(),
                            counted,
                        });
                        let title = AdminOp::Count.title(ui).to_string();
                        let screen = ui.processing(&title);
                        self.wait(request, title, screen)
                    }
                    _ => self.go_idle(),
                },
                Edit::Unchanged => vec![],
            },
            (State::RefundAmount { trace, digits }, key) => {
                let trace = *trace;
                if matches!(key, Key::Digit(0)) && digits.is_empty() {
                    return Some(vec![]);
                }
                match edit(digits, key, MAX_AMOUNT_DIGITS) {
                    Edit::Changed => vec![Action::Show(ui.refund_amount(currency, trace, digits))],
                    Edit::Done => match Amount::from_minor(digits.parse().unwrap_or(0)) {
                        Ok(amount) if !amount.is_zero() => {
                            let op = Op::Refund { trace, amount };
                            self.go(State::Card { op }, ui.pay(&op.title(ui, currency), None))
                        }
                        _ => vec![],
                    },
                    Edit::Unchanged => vec![],
                }
            }
            _ => return None,
        };
        Some(actions)
    }
}
