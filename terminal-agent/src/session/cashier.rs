//! Cashier sign-on (签到) and sign-off (签退) at the keypad: menu 4, the
//! cashier's number, their PIN; and menu 5, pairing with the hub by the
//! owner's one-time code (the runtime runs the exchange: [`Action::Pair`]).
//!
//! Sign-on: menu 4, the
//! cashier's number, their PIN. The hub checks the PIN, locks a cashier who
//! keeps getting it wrong (the owner unlocks them on the web page), and
//! stamps every sale that follows with the cashier's number.
//!
//! ```text
//! Menu ─4→ CashierNo ─#→ CashierPin ─#→ Waiting (sign_on)
//!      └─4, someone signed on→ CashierMenu ─1→ CashierNo
//!                                          └─2→ Waiting (sign_off)
//! ```

use super::admin::{edit, Edit};
use super::{Action, Key, Session, State};
use tallybox_core::protocol::requests;
use tallybox_core::protocol::{Request, RequestId};
use tallybox_core::seal::CODE_DIGITS;

const MAX_CASHIER_DIGITS: usize = 4;
const MAX_PIN_DIGITS: usize = 8;

impl Session {
    /// Keys of the sign-on flow; `None` when `key` is not theirs.
    pub(super) fn on_cashier_key(&mut self, key: Key) -> Option<Vec<Action>> {
        let ui = self.ui();
        let actions = match (&mut self.state, key) {
            (State::Menu, Key::Digit(4)) => match &self.cashier {
                Some(cashier) => {
                    let screen = ui.cashier_menu(cashier);
                    self.go(State::CashierMenu, screen)
                }
                None => self.start_sign_on(),
            },
            (State::CashierMenu, Key::Digit(1)) => self.start_sign_on(),
            (State::Menu, Key::Digit(5)) => self.go(
                State::PairCode {
                    digits: String::new(),
                },
                ui.pair_code_entry(""),
            ),
            (State::PairCode { .. }, Key::C) => self.go_idle(),
            (State::PairCode { digits }, key) => match edit(digits, key, CODE_DIGITS) {
                Edit::Changed => vec![Action::Show(ui.pair_code_entry(digits))],
                Edit::Done if digits.len() == CODE_DIGITS => {
                    let code = std::mem::take(digits);
                    self.state = State::Pairing;
                    vec![Action::Show(ui.processing(&ui.pair_title())), Action::Pair(code)]
                }
                Edit::Done | Edit::Unchanged => vec![],
            },
            (State::CashierMenu, Key::Digit(2)) => {
                let request = Request::SignOff(requests::SignOff {
                    request_id: RequestId::new(),
                });
                let title = ui.pick("SIGN OFF", "签退").to_string();
                let screen = ui.processing(&title);
                self.wait(request, title, screen)
            }
            (State::CashierMenu | State::CashierNo { .. } | State::CashierPin { .. }, Key::C) => {
                self.go_idle()
            }
            (State::CashierNo { digits }, key) => match edit(digits, key, MAX_CASHIER_DIGITS) {
                Edit::Changed => vec![Action::Show(ui.cashier_no_entry(digits))],
                Edit::Done => {
                    let no = std::mem::take(digits);
                    let screen = ui.cashier_pin_entry(&no, 0);
                    self.go(
                        State::CashierPin {
                            no,
                            pin: tallybox_core::secret::Pin::new(),
                        },
                        screen,
                    )
                }
                Edit::Unchanged => vec![],
            },
            (State::CashierPin { no, pin }, key) => match edit(pin, key, MAX_PIN_DIGITS) {
                Edit::Changed => vec![Action::Show(ui.cashier_pin_entry(no, pin.len()))],
                Edit::Done => {
                    let request = Request::SignOn(requests::SignOn {
                        request_id: RequestId::new(),
                        cashier: std::mem::take(no),
                        pin: pin.to_secret(),
                    });
                    let title = ui.sign_on_title();
                    let screen = ui.processing(&title);
                    self.wait(request, title, screen)
                }
                Edit::Unchanged => vec![],
            },
            _ => return None,
        };
        Some(actions)
    }

    fn start_sign_on(&mut self) -> Vec<Action> {
        let screen = self.ui().cashier_no_entry("");
        self.go(
            State::CashierNo {
                digits: String::new(),
            },
            screen,
        )
    }
}
