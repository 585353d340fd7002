//! The checkout session: a sans-IO state machine. Keys, cards and the hub's
//! answers go in; screens to show, slips to print and requests to send come
//! out. The same session runs on a terminal, on the hub's own checkout, on
//! simulated devices and in tests: it never touches a socket, a clock or a pin.
//!
//! ```text
//! Idle ─A/digit→ Amount ─#→ Card ─(PIN card)→ Pin ─#→ Waiting ─answer→ Done ─key→ Idle
//!                             ├─B→ Cash ─#→ Waiting (cash sale: drawer opens when approved)
//!                             ├─scan→ Waiting (code sale: the buyer may confirm in the app; C cancels)
//!                             └─D→ CodeEntry ─#→ Waiting (a payment code keyed by hand)
//!   └─D→ Menu ─1→ Card (balance)        ─2→ Waiting (reprint)
//!             ─3→ Waiting (settle)       ─4→ cashier sign-on / off (`cashier.rs`)
//! ```
//!
//! While `Waiting`, the runtime re-sends [`Session::outstanding`] with the same
//! request id until an answer arrives: the hub charges an id once.

mod admin;
mod answers;
mod cashier;
pub mod screens;
mod split;
#[cfg(test)]
pub(crate) mod tests;

use crate::devices::PrinterProblem;
use crate::journal::InFlight;
pub use screens::{Lang, Screen, Screens, SelfTest, StatusBar};
use tallybox_core::card::{pin_block, CardError, CardRead};
use tallybox_core::money::{Amount, Currency};
use tallybox_core::protocol::requests::{self, PrintedEntry};
use tallybox_core::protocol::{Cashier, Request, RequestId, Response};
use tallybox_core::reason;
use tallybox_core::secret::{Pin, Secret};
use tallybox_core::slip::Slip;

pub use crate::devices::keypad::Key;

#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    Key(Key),
    Card(Result<CardRead, CardError>),
    /// A barcode or QR code the scanner read (a customer's payment code).
    Scanned(Secret<String>),
    /// The scanner read something that is not a payment code (a QR code
    /// with a web address, a shop's own collection code, a misread).
    NotACode,
    Answer(Box<Response>),
    /// The outstanding request went unanswered for too long (runtime's timer).
    HubSilent,
    /// The printer stopped (`Some`) or is printing again (`None`).
    Printer(Option<PrinterProblem>),
    /// The printer's roll is running low (`true`) or was changed (`false`).
    PaperLow(bool),
    /// The cash drawer did not open: the printer that drives it has this problem.
    DrawerShut(PrinterProblem),
    /// The local time, `HH:MM`, for the idle screen's clock.
    Clock(String),
    /// A card stays in the swipe slot.
    CardStuck,
    /// The hub has no owner password yet: show this one-time code (and print
    /// it once); `None` once the owner has used it.
    SetupCode(Option<SetupNotice>),
    /// How a pairing the session asked for ([`Action::Pair`]) ended.
    Paired(Result<(), String>),
    /// The latest fraud rule hit the owner should look at (`T1 card_testing`),
    /// shown at idle on the hub's own checkout; `None` once it is old.
    Alert(Option<String>),
}

/// The hub's one-time setup code and the web page that asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetupNotice {
    pub code: String,
    pub page: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Show(Screen),
    /// One slip.
    Print(Slip),
    /// Open the cash drawer (through the printer's drawer port).
    OpenDrawer,
    /// Publish this request (again, if it was already sent).
    Send(Request),
    /// Pair with the hub using this code (the runtime runs the exchange and
    /// answers with [`Input::Paired`]).
    Pair(String),
    /// The menu's self-test: the runtime, which holds the device counts and
    /// the key, shows [`Screens::self_test`] and prints a test slip.
    SelfTest,
}

/// Fixed per terminal.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub currency: Currency,
    /// Printer columns: 32 on 58 mm paper, 48 on 80 mm.
    pub slip_columns: usize,
    /// The screens' language.
    pub lang: Lang,
    /// This checkout's id, shown where the owner needs it (to pair it).
    pub terminal: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Sale(Amount),
    Balance,
    /// Void this terminal's sale with this trace number.
    Void {
        trace: u32,
    },
    /// Refund this much of this terminal's sale with this trace number.
    Refund {
        trace: u32,
        amount: Amount,
    },
}

impl Op {
    fn title(self, ui: Screens, currency: Currency) -> String {
        match self {
            Op::Sale(a) => ui.sale_title(currency, a),
            Op::Balance => ui.balance_title(),
            Op::Void { trace } => ui.void_title(trace),
            Op::Refund { amount, .. } => ui.refund_title(currency, amount),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum State {
    Idle,
    Amount {
        digits: String,
    },
    Menu,
    /// Void and refund: the supervisor's menu, PIN, the sale's trace number,
    /// the refund's amount (see `admin.rs`).
    AdminMenu,
    Supervisor {
        op: admin::AdminOp,
        pin: Pin,
    },
    Trace {
        op: admin::AdminOp,
        digits: String,
    },
    RefundAmount {
        trace: u32,
        digits: String,
    },
    /// The cash counted in the drawer at a shift's end, keyed after the
    /// supervisor's PIN.
    Count {
        digits: String,
    },
    /// Menu 4 while a cashier is signed on: sign on another, or sign off.
    CashierMenu,
    /// The owner's pairing code being keyed, then the exchange with the hub.
    PairCode {
        digits: String,
    },
    Pairing,
    /// A cashier signing on: their number, then their PIN.
    CashierNo {
        digits: String,
    },
    CashierPin {
        no: String,
        pin: Pin,
    },
    /// A payment code keyed by hand for a sale of `amount`.
    CodeEntry {
        amount: Amount,
        digits: Secret<String>,
    },
    /// A cash sale of `amount`: what the customer hands over, keyed.
    Cash {
        amount: Amount,
        digits: String,
    },
    /// A later part of a split sale was not paid, or the cashier stopped:
    /// 1 pay the rest another way, 2 undo the paid parts (`split.rs`).
    SplitChoice,
    /// A store rule wants the supervisor to approve this sale: their PIN.
    Approve {
        request: Request,
        pin: Pin,
    },
    Card {
        op: Op,
    },
    Pin {
        op: Op,
        card: CardRead,
        pin: Pin,
    },
    Waiting {
        request: Request,
        title: String,
        silent: bool,
    },
    Done,
}

pub struct Session {
    config: SessionConfig,
    state: State,
    store_name: String,
    /// The sign-in request until the hub answers it.
    sign_in: Option<Request>,
    /// The highest trace number the hub told this checkout of (on the
    /// receipts of its approvals): each sign-in asks the hub to go on past
    /// it (`trace_floor`).
    last_trace: Option<u32>,
    /// What stops the printer, if anything.
    printer: Option<PrinterProblem>,
    /// The supervisor PIN typed for the void or refund being keyed in.
    supervisor_pin: Option<Pin>,
    /// The owner's order (from the web page) for the void or refund whose
    /// card is asked for, instead of the supervisor PIN.
    order: Option<String>,
    /// Why this terminal may not sell, while it is frozen.
    frozen: Option<String>,
    paper_low: bool,
    clock: String,
    /// The e-receipt link of the last approved sale, shown as a QR code when
    /// its slip cannot print.
    last_link: Option<String>,
    /// The hub's setup code, shown at idle until the owner has used it.
    setup_code: Option<String>,
    /// A recent fraud alert, shown at idle.
    alert: Option<String>,
    /// The cashier signed on here; the hub stamps their sales with them.
    cashier: Option<Cashier>,
    /// The hub refuses this terminal until it is paired.
    unpaired: bool,
    /// What goes to the hub is sealed (the checkout holds a key); without
    /// it, no sale starts before the hub has answered the sign-in, so no
    /// card data goes out in clear to a hub that requires pairing.
    sealed: bool,
    /// This checkout's PIN key, once paired (from the pairing's key).
    pin_key: Option<Secret<pin_block::PinKey>>,
    /// This program's version, told at sign-in.
    version: String,
    /// The sale being paid in parts, if one is.
    split: Option<split::Split>,
    /// The cashier stopped the code sale waited on: this cancel goes out
    /// with it until the sale's answer comes.
    cancelling: Option<Request>,
    /// The hub said the buyer is confirming the code sale waited on: it
    /// may take longer than the hub's usual silence.
    confirming: bool,
}

/// The amount entry takes at most 9 digits: 9,999,999.99.
const MAX_AMOUNT_DIGITS: usize = 9;
const MAX_PIN_DIGITS: usize = 12;
/// Payment codes have 16 to 24 digits.
const MAX_CODE_DIGITS: usize = 24;

impl Session {
    pub fn new(config: SessionConfig) -> Self {
        Session {
            config,
            state: State::Idle,
            store_name: "Tallybox".to_string(),
            sign_in: None,
            last_trace: None,
            printer: None,
            supervisor_pin: None,
            order: None,
            frozen: None,
            paper_low: false,
            setup_code: None,
            alert: None,
            cashier: None,
            unpaired: false,
            sealed: false,
            pin_key: None,
            version: String::new(),
            clock: String::new(),
            last_link: None,
            split: None,
            cancelling: None,
            confirming: false,
        }
    }

    /// First actions after start: sign in and show the idle screen.
    pub fn start(&mut self, version: &str) -> Vec<Action> {
        self.version = version.to_string();
        vec![self.sign_in(), Action::Show(self.idle_screen())]
    }

    /// The key this checkout's pairing gave, if it is paired: what it sends
    /// is sealed, and it takes PINs (under a PIN key derived from it).
    pub fn set_pairing(&mut self, key: Option<&tallybox_core::seal::Key>) {
        self.sealed = key.is_some();
        self.pin_key = key.map(|k| Secret::new(pin_block::checkout_key(k)));
    }

    /// Signs in again, unless a sign-in is already outstanding (then it is
    /// being re-sent): the runtime checks this way that the hub still serves
    /// this checkout.
    pub fn sign_in_again(&mut self) -> Vec<Action> {
        match self.sign_in {
            Some(_) => vec![],
            None => vec![self.sign_in()],
        }
    }

    /// A trace number the hub gave this checkout (on a receipt, or the
    /// highest in its record of printed approvals at start).
    pub fn saw_trace(&mut self, trace_no: u32) {
        self.last_trace = self.last_trace.max(Some(trace_no));
        self.refresh_trace_floor();
    }

    /// The trace floor to sign in with: one past the last trace number
    /// seen, and one more while a request is unanswered (the hub may have
    /// given it one the checkout never heard of).
    fn trace_floor(&self) -> Option<u32> {
        let unanswered = matches!(self.state, State::Waiting { .. }) as u32;
        self.last_trace.map(|t| t + 1 + unanswered)
    }

    /// An outstanding sign-in goes again with the floor as it is now.
    fn refresh_trace_floor(&mut self) {
        let floor = self.trace_floor();
        if let Some(Request::SignIn(sign_in)) = &mut self.sign_in {
            sign_in.trace_floor = sign_in.trace_floor.max(floor);
        }
    }

    /// A new sign-in, kept outstanding until the hub answers it.
    fn sign_in(&mut self) -> Action {
        let request = Request::SignIn(requests::SignIn {
            request_id: RequestId::new(),
            version: self.version.clone(),
            trace_floor: self.trace_floor(),
        });
        self.sign_in = Some(request.clone());
        Action::Send(request)
    }

    /// Picks up the sale that was in flight when the terminal stopped: the hub
    /// answers from its records, so the slip is printed now (or the cashier
    /// learns it was not charged).
    pub fn resume(&mut self, entry: InFlight) -> Vec<Action> {
        let request = Request::Recall(requests::Recall {
            request_id: entry.request_id,
        });
        let screen = self.ui().processing(&entry.title);
        self.wait(request, entry.title, screen)
    }

    fn wait(&mut self, request: Request, title: String, screen: Screen) -> Vec<Action> {
        self.state = State::Waiting {
            request: request.clone(),
            title,
            silent: false,
        };
        self.refresh_trace_floor();
        self.cancelling = None;
        self.confirming = false;
        vec![Action::Send(request), Action::Show(screen)]
    }

    /// Requests the runtime must keep re-sending until answered.
    pub fn outstanding(&self) -> Vec<&Request> {
        // A sign-in goes alone: the hub learns the checkout's trace floor
        // before the request it left unanswered comes again.
        if let Some(sign_in) = &self.sign_in {
            return vec![sign_in];
        }
        let mut out = Vec::new();
        if let State::Waiting { request, .. } = &self.state {
            out.push(request);
            out.extend(&self.cancelling);
        }
        out
    }

    /// The id of the customer request being waited on (sale, balance, reprint),
    /// so the runtime can tell the cashier when the hub stays silent.
    pub fn waiting_on(&self) -> Option<&RequestId> {
        match &self.state {
            State::Waiting { request, .. } => request.request_id(),
            _ => None,
        }
    }

    /// The sale in flight, if any: the runtime journals it so a restart can
    /// recall it. Balance inquiries and reprints charge nothing and are not kept.
    pub fn in_flight(&self) -> Option<InFlight> {
        match &self.state {
            State::Waiting {
                request:
                    Request::Sale(requests::Sale { request_id, .. })
                    | Request::CashSale(requests::CashSale { request_id, .. })
                    | Request::CodeSale(requests::CodeSale { request_id, .. })
                    | Request::Recall(requests::Recall { request_id }),
                title,
                ..
            } => Some(InFlight {
                request_id: request_id.clone(),
                title: title.clone(),
            }),
            _ => None,
        }
    }

    /// The checkout's record of `outcome` when it approves the request
    /// waited on (a balance inquiry aside): its receipt as printed, less
    /// the shop's own lines, and for a void the trace number it undid.
    pub fn printed_entry(&self, outcome: &tallybox_core::protocol::Outcome) -> Option<PrintedEntry> {
        let State::Waiting { request, .. } = &self.state else {
            return None;
        };
        let approval = outcome.status == tallybox_core::protocol::TxnStatus::Approved
            && outcome.kind != tallybox_core::protocol::TxnKind::Balance;
        if request.request_id() != Some(&outcome.request_id) || !approval {
            return None;
        }
        let mut receipt = outcome.receipt.clone()?;
        receipt.header.clear();
        receipt.footer.clear();
        receipt.merchant_address.clear();
        let original_trace = match request {
            Request::Void(requests::Void { trace_no, .. }) => Some(*trace_no),
            Request::Refund(requests::Refund {
                trace_no,
                order: None,
                ..
            }) => Some(*trace_no),
            _ => None,
        };
        Some(PrintedEntry {
            request_id: outcome.request_id.clone(),
            original_trace,
            receipt,
        })
    }

    /// A sign-in is waiting for the hub's answer.
    pub fn signing_in(&self) -> bool {
        self.sign_in.is_some()
    }

    /// The amount a card is wanted for right now (zero for a balance
    /// inquiry): the contactless reader looks for a card only then.
    pub fn card_wanted(&self) -> Option<Amount> {
        match self.state {
            State::Card { op: Op::Sale(amount) } => Some(amount),
            State::Card { op: Op::Balance } => Some(Amount::ZERO),
            _ => None,
        }
    }

    /// Signed in with the hub, and what stops the printer.
    pub fn link_and_printer(&self) -> (bool, Option<crate::devices::PrinterProblem>, bool) {
        (self.sign_in.is_none(), self.printer, self.paper_low)
    }

    /// The store's name, as the hub gave it at sign-in.
    pub fn store_name(&self) -> &str {
        &self.store_name
    }

    pub fn state_name(&self) -> &'static str {
        match self.state {
            State::Idle => "idle",
            State::Amount { .. } => "amount",
            State::Menu => "menu",
            State::AdminMenu => "admin_menu",
            State::Supervisor { .. } => "supervisor_pin",
            State::Trace { .. } => "trace",
            State::RefundAmount { .. } => "refund_amount",
            State::Count { .. } => "count_drawer",
            State::Approve { .. } => "supervisor_approval",
            State::CashierMenu => "cashier_menu",
            State::PairCode { .. } => "pair_code",
            State::Pairing => "pairing",
            State::CashierNo { .. } => "cashier_no",
            State::CashierPin { .. } => "cashier_pin",
            State::Card { .. } => "card",
            State::Cash { .. } => "cash",
            State::CodeEntry { .. } => "code_entry",
            State::SplitChoice => "split_choice",
            State::Pin { .. } => "pin",
            State::Waiting { .. } => "waiting",
            State::Done => "done",
        }
    }

    /// Feeds one input; `today` is the local `(year, month)` for the expiry check.
    pub fn handle(&mut self, input: Input, today: (u16, u8)) -> Vec<Action> {
        match input {
            Input::Key(key) => self.on_key(key),
            Input::Card(card) => self.on_card(card, today),
            Input::Scanned(code) => match self.state {
                State::Card { op: Op::Sale(amount) } => self.send_code(amount, code),
                _ => vec![], // a scan when no sale asks for one is ignored
            },
            Input::NotACode => match self.state {
                // The cashier hears why nothing happened, and scans again.
                State::Card { op: op @ Op::Sale(_) } => {
                    let title = op.title(self.ui(), self.config.currency);
                    let notice = Some(reason::explain(reason::CODE_INVALID));
                    vec![Action::Show(self.ui().pay(&title, notice))]
                }
                _ => vec![],
            },
            Input::Answer(response) => self.on_answer(*response),
            Input::HubSilent => match &mut self.state {
                // The buyer confirming in the app takes longer; the hub says
                // how long it waits, and C stops it.
                State::Waiting { .. } if self.confirming => vec![],
                State::Waiting { silent, .. } => {
                    *silent = true;
                    vec![Action::Show(self.ui().hub_silent())]
                }
                _ => vec![],
            },
            Input::CardStuck => vec![Action::Show(self.ui().message(
                ("CARD STUCK", "卡片卡住"),
                ("Pull card out gently", "请轻轻取出卡片"),
            ))],
            Input::PaperLow(low) => {
                self.paper_low = low;
                self.refresh_idle()
            }
            Input::DrawerShut(problem) => vec![Action::Show(self.ui().drawer_shut(problem))],
            Input::Clock(clock) => {
                self.clock = clock;
                self.refresh_idle()
            }
            Input::Paired(outcome) => {
                if !matches!(self.state, State::Pairing) {
                    return vec![];
                }
                let screen = self.ui().paired(&outcome);
                let mut actions = self.go(State::Done, screen);
                if outcome.is_ok() {
                    // Signed in again, sealed: the hub learns the pairing worked.
                    self.unpaired = false;
                    actions.push(self.sign_in());
                }
                actions
            }
            Input::Alert(alert) => {
                self.alert = alert;
                self.refresh_idle()
            }
            Input::SetupCode(notice) => {
                let first = self.setup_code.is_none();
                self.setup_code = notice.as_ref().map(|n| n.code.clone());
                let mut actions = self.refresh_idle();
                if let (true, Some(n)) = (first, notice) {
                    actions.push(Action::Print(tallybox_core::slip::setup(&n.code, &n.page)));
                }
                actions
            }
            Input::Printer(problem) => {
                self.printer = problem;
                match (&self.state, problem) {
                    (State::Done, Some(problem)) => {
                        vec![Action::Show(
                            self.ui().printer_problem(problem, self.last_link.as_deref()),
                        )]
                    }
                    (State::Idle, _) => vec![Action::Show(self.idle_screen())],
                    _ => vec![],
                }
            }
        }
    }

    /// The screens in this checkout's language.
    pub fn screens(&self) -> Screens {
        self.ui()
    }

    /// Printer columns of this checkout's slips.
    pub fn slip_columns(&self) -> usize {
        self.config.slip_columns
    }

    /// A freeze's reason in the screen's language: the hub's Chinese words
    /// on a Chinese screen when it sent them, its English otherwise (a
    /// reason someone typed comes as typed).
    fn in_own_words(&self, en: &Option<String>, zh: &Option<String>) -> Option<String> {
        match self.config.lang {
            Lang::Zh => zh.clone().or_else(|| en.clone()),
            Lang::En => en.clone(),
        }
    }

    fn ui(&self) -> Screens {
        Screens {
            lang: self.config.lang,
        }
    }

    fn idle_screen(&self) -> Screen {
        if self.unpaired {
            return self.ui().not_paired(&self.store_name, &self.config.terminal);
        }
        if let Some(reason) = &self.frozen {
            return self.ui().frozen(reason);
        }
        let status = StatusBar {
            clock: self.clock.clone(),
            online: self.sign_in.is_none(),
            printer_ok: self.printer.is_none(),
            paper_low: self.paper_low,
        };
        match (&self.setup_code, &self.alert, self.printer) {
            (Some(code), _, None) => self.ui().idle_setup(&self.store_name, &status, code),
            (None, Some(alert), None) => self.ui().idle_alert(&self.store_name, &status, alert),
            _ => self.ui().idle(
                &self.store_name,
                &status,
                self.printer,
                self.cashier.as_ref().map(|c| c.no.as_str()),
            ),
        }
    }

    /// The idle screen again when it is showing and something on it changed.
    fn refresh_idle(&self) -> Vec<Action> {
        match self.state {
            State::Idle => vec![Action::Show(self.idle_screen())],
            _ => vec![],
        }
    }

    fn go_idle(&mut self) -> Vec<Action> {
        self.state = State::Idle;
        self.order = None;
        vec![Action::Show(self.idle_screen())]
    }

    fn go(&mut self, state: State, screen: Screen) -> Vec<Action> {
        self.state = state;
        vec![Action::Show(screen)]
    }

    fn on_key(&mut self, key: Key) -> Vec<Action> {
        // A frozen terminal starts no sale, void or refund; nor does one the
        // hub refuses until it is paired (no card is read, so no card data
        // goes out in clear). The menu still works: pairing is D 5.
        let starts_money = matches!(key, Key::A | Key::B | Key::Digit(_));
        let unserved = self.unpaired || (!self.sealed && self.sign_in.is_some());
        let refused = self.frozen.is_some() || unserved;
        if refused && starts_money && matches!(self.state, State::Idle | State::Done) {
            return self.go_idle();
        }
        if let Some(actions) = self.on_admin_key(key) {
            return actions;
        }
        if let Some(actions) = self.on_cashier_key(key) {
            return actions;
        }
        let currency = self.config.currency;
        let ui = self.ui();
        match (&mut self.state, key) {
            (State::Idle | State::Done, Key::A) => self.go(
                State::Amount {
                    digits: String::new(),
                },
                ui.amount_entry(currency, ""),
            ),
            (State::Idle | State::Done, Key::Digit(d)) if d > 0 => {
                let digits = d.to_string();
                let screen = ui.amount_entry(currency, &digits);
                self.go(State::Amount { digits }, screen)
            }
            (State::Idle | State::Done, Key::D) => self.go(State::Menu, ui.menu()),
            (State::Done, _) => self.go_idle(),
            (State::Amount { digits }, Key::Digit(d)) => {
                if digits.len() < MAX_AMOUNT_DIGITS && !(digits.is_empty() && d == 0) {
                    digits.push(char::from(b'0' + d));
                }
                let screen = ui.amount_entry(currency, digits);
                vec![Action::Show(screen)]
            }
            (State::Amount { digits }, Key::Star) => {
                digits.pop();
                let screen = ui.amount_entry(currency, digits);
                vec![Action::Show(screen)]
            }
            (State::Amount { digits }, Key::Hash) => {
                let minor: u64 = digits.parse().unwrap_or(0);
                match Amount::from_minor(minor) {
                    Ok(amount) if !amount.is_zero() => {
                        let op = Op::Sale(amount);
                        self.go(State::Card { op }, ui.pay(&op.title(ui, currency), None))
                    }
                    _ => vec![Action::Show(ui.declined(reason::WRONG_AMOUNT, true))],
                }
            }
            (State::Menu, Key::Digit(1)) => {
                let op = Op::Balance;
                self.go(State::Card { op }, ui.present_card(&op.title(ui, currency), None))
            }
            (State::Menu, Key::Digit(6)) => {
                self.state = State::Done;
                vec![Action::SelfTest]
            }
            (State::Menu, Key::Digit(3)) => {
                let request = Request::Settle(requests::Settle {
                    request_id: RequestId::new(),
                });
                self.wait(request, ui.settle_title(), ui.processing(&ui.settle_title()))
            }
            (State::Menu, Key::Digit(2)) => {
                let request = Request::Reprint(requests::Reprint {
                    request_id: RequestId::new(),
                    trace_no: None,
                });
                self.wait(request, ui.reprint_title(), ui.processing(&ui.reprint_title()))
            }
            (State::Pin { pin, op, .. }, Key::Digit(d)) => {
                if pin.len() < MAX_PIN_DIGITS {
                    pin.push(char::from(b'0' + d));
                }
                let screen = ui.pin_entry(&op.title(ui, currency), pin.len());
                vec![Action::Show(screen)]
            }
            (State::Pin { pin, op, .. }, Key::Star) => {
                pin.pop();
                let screen = ui.pin_entry(&op.title(ui, currency), pin.len());
                vec![Action::Show(screen)]
            }
            (State::Pin { pin, .. }, Key::Hash) if pin.len() >= 4 => {
                let State::Pin { op, card, pin } = std::mem::replace(&mut self.state, State::Idle) else {
                    unreachable!("matched Pin above")
                };
                self.send(op, card, Some(pin.expose()))
            }
            (State::Card { op: Op::Sale(amount) }, Key::B) => {
                let amount = *amount;
                let screen = ui.cash_entry(currency, amount, "", false);
                self.go(
                    State::Cash {
                        amount,
                        digits: String::new(),
                    },
                    screen,
                )
            }
            // A void or refund of a cash sale: the money goes back from the drawer.
            (
                State::Card {
                    op: op @ (Op::Void { .. } | Op::Refund { .. }),
                },
                Key::B,
            ) => {
                let op = *op;
                self.send_cash_back(op)
            }
            (State::Cash { amount, digits }, Key::Digit(d)) => {
                if digits.len() < MAX_AMOUNT_DIGITS && !(digits.is_empty() && d == 0) {
                    digits.push(char::from(b'0' + d));
                }
                vec![Action::Show(ui.cash_entry(currency, *amount, digits, false))]
            }
            (State::Cash { amount, digits }, Key::Star) => {
                digits.pop();
                vec![Action::Show(ui.cash_entry(currency, *amount, digits, false))]
            }
            (State::Cash { amount, digits }, Key::A) => match Amount::from_minor(digits.parse().unwrap_or(0))
            {
                Ok(part) if !part.is_zero() => {
                    let amount = *amount;
                    self.pay_part_in_cash(amount, part)
                }
                _ => vec![],
            },
            (State::Card { op: Op::Sale(amount) }, Key::D) => {
                let amount = *amount;
                self.go(
                    State::CodeEntry {
                        amount,
                        digits: Secret::default(),
                    },
                    ui.code_entry(currency, amount, ""),
                )
            }
            (State::CodeEntry { amount, digits }, Key::Digit(d)) => {
                let mut keyed = digits.expose().clone();
                if keyed.len() < MAX_CODE_DIGITS {
                    keyed.push(char::from(b'0' + d));
                }
                *digits = Secret::new(keyed);
                vec![Action::Show(ui.code_entry(currency, *amount, digits.expose()))]
            }
            (State::CodeEntry { amount, digits }, Key::Star) => {
                let mut keyed = digits.expose().clone();
                keyed.pop();
                *digits = Secret::new(keyed);
                vec![Action::Show(ui.code_entry(currency, *amount, digits.expose()))]
            }
            (State::CodeEntry { amount, digits }, Key::Hash) if !digits.expose().is_empty() => {
                let (amount, code) = (*amount, digits.clone());
                self.send_code(amount, code)
            }
            (State::CodeEntry { amount, .. }, Key::C) => {
                let op = Op::Sale(*amount);
                self.go(State::Card { op }, ui.pay(&op.title(ui, currency), None))
            }
            // The cashier stops a code sale: the hub closes the order at the
            // provider and answers the sale; pressed again, the checkout
            // stops waiting without knowing.
            (
                State::Waiting {
                    request: Request::CodeSale(sale),
                    title,
                    ..
                },
                Key::C,
            ) => match self.cancelling {
                Some(_) => self.go(State::Done, ui.result_unknown()),
                None => {
                    let cancel = Request::CancelCode(requests::CancelCode {
                        request_id: RequestId::new(),
                        sale: sale.request_id.clone(),
                    });
                    let screen = ui.code_cancelling(title);
                    self.cancelling = Some(cancel.clone());
                    vec![Action::Send(cancel), Action::Show(screen)]
                }
            },
            (State::SplitChoice, Key::Digit(choice)) => self.on_split_choice(choice),
            (State::Card { op: Op::Sale(_) } | State::Cash { .. }, Key::C) if self.split.is_some() => {
                self.split_interrupted().unwrap_or_else(|| self.go_idle())
            }
            (State::Cash { amount, digits }, Key::Hash) => {
                // Nothing keyed: the customer gave the exact amount.
                let tendered = match digits.is_empty() {
                    true => Ok(*amount),
                    false => Amount::from_minor(digits.parse().unwrap_or(0)),
                };
                match tendered {
                    Ok(tendered) if tendered >= *amount => {
                        let amount = *amount;
                        self.send_cash(amount, tendered)
                    }
                    _ => vec![Action::Show(ui.cash_entry(currency, *amount, digits, true))],
                }
            }
            (State::Waiting { silent: true, .. }, Key::C) => self.go(State::Done, ui.result_unknown()),
            (
                State::Amount { .. }
                | State::Menu
                | State::Card { .. }
                | State::Cash { .. }
                | State::Pin { .. },
                Key::C,
            ) => self.go_idle(),
            _ => vec![],
        }
    }

    fn on_card(&mut self, card: Result<CardRead, CardError>, today: (u16, u8)) -> Vec<Action> {
        let State::Card { op } = self.state else {
            return vec![]; // a swipe when no one asked for a card is ignored
        };
        let title = op.title(self.ui(), self.config.currency);
        let card = match card.and_then(|c| c.check_at(today.0, today.1).map(|()| c)) {
            Ok(card) => card,
            Err(e) => {
                let code = match e {
                    CardError::Expired(_) => reason::EXPIRED_AT_TERMINAL,
                    _ => reason::READ_ERROR,
                };
                let notice = Some(reason::explain(code));
                let screen = match op {
                    Op::Balance => self.ui().present_card(&title, notice),
                    _ => self.ui().pay(&title, notice),
                };
                return vec![Action::Show(screen)];
            }
        };
        // Voids and refunds are authorised by the supervisor, not the cardholder.
        if card.needs_pin() && matches!(op, Op::Sale(_) | Op::Balance) {
            if self.pin_key.is_none() {
                // A PIN is only ever sent under this checkout's own key.
                let screen = self.ui().message(
                    ("PAIR FIRST", "请先配对"),
                    ("PIN needs pairing", "密码卡需先配对"),
                );
                return self.go(State::Done, screen);
            }
            let screen = self.ui().pin_entry(&title, 0);
            return self.go(
                State::Pin {
                    op,
                    card,
                    pin: Pin::new(),
                },
                screen,
            );
        }
        self.send(op, card, None)
    }

    /// A sale paid by the payment code scanned or keyed: the hub asks the
    /// code's provider.
    fn send_code(&mut self, amount: Amount, code: Secret<String>) -> Vec<Action> {
        let request = Request::CodeSale(requests::CodeSale {
            request_id: RequestId::new(),
            amount,
            currency: self.config.currency.code().to_string(),
            code,
            supervisor_pin: None,
            split: self.split_part(),
        });
        let title = Op::Sale(amount).title(self.ui(), self.config.currency);
        let screen = self.ui().processing(&title);
        self.wait(request, title, screen)
    }

    fn send_cash(&mut self, amount: Amount, tendered: Amount) -> Vec<Action> {
        let request = Request::CashSale(requests::CashSale {
            request_id: RequestId::new(),
            amount,
            currency: self.config.currency.code().to_string(),
            tendered,
            supervisor_pin: None,
            split: self.split_part(),
        });
        let title = Op::Sale(amount).title(self.ui(), self.config.currency);
        let screen = self.ui().processing(&title);
        self.wait(request, title, screen)
    }

    /// A void or refund of a cash sale: no card; the hub checks the sale
    /// was paid in cash.
    fn send_cash_back(&mut self, op: Op) -> Vec<Action> {
        let (request_id, supervisor_pin, order) = (
            RequestId::new(),
            self.supervisor_pin.take().map(|p| p.to_secret()),
            self.order.take(),
        );
        let request = match op {
            Op::Void { trace } => Request::Void(requests::Void {
                request_id,
                trace_no: trace,
                card: None,
                supervisor_pin,
                order,
                split: None,
            }),
            Op::Refund { trace, amount } => Request::Refund(requests::Refund {
                request_id,
                trace_no: trace,
                amount,
                card: None,
                supervisor_pin,
                order,
            }),
            Op::Sale(_) | Op::Balance => return vec![],
        };
        let title = op.title(self.ui(), self.config.currency);
        let screen = self.ui().processing(&title);
        self.wait(request, title, screen)
    }

    fn send(&mut self, op: Op, card: CardRead, pin: Option<&str>) -> Vec<Action> {
        let encrypted = match (pin, &self.pin_key) {
            (Some(p), Some(key)) => Some(pin_block::encrypt(p, card.pan.digits(), key.expose())),
            (Some(_), None) => Some(Err(pin_block::PinError::Unreadable)),
            (None, _) => None,
        };
        let pin_block = match encrypted {
            Some(Ok(block)) => Some(block),
            Some(Err(e)) => {
                return vec![Action::Show(self.ui().message(
                    ("PIN NOT ACCEPTED", "密码无法加密"),
                    (&e.to_string(), &e.to_string()),
                ))]
            }
            None => None,
        };
        let request_id = RequestId::new();
        let request = match op {
            Op::Sale(amount) => Request::Sale(requests::Sale {
                request_id,
                amount,
                currency: self.config.currency.code().to_string(),
                card,
                pin_block,
                supervisor_pin: None,
                split: self.split_part(),
            }),
            Op::Balance => Request::Balance(requests::Balance {
                request_id,
                card,
                pin_block,
            }),
            Op::Void { trace } => Request::Void(requests::Void {
                request_id,
                trace_no: trace,
                card: Some(card),
                supervisor_pin: self.supervisor_pin.take().map(|p| p.to_secret()),
                order: self.order.take(),
                split: None,
            }),
            Op::Refund { trace, amount } => Request::Refund(requests::Refund {
                request_id,
                trace_no: trace,
                amount,
                card: Some(card),
                supervisor_pin: self.supervisor_pin.take().map(|p| p.to_secret()),
                order: self.order.take(),
            }),
        };
        let title = op.title(self.ui(), self.config.currency);
        let screen = self.ui().processing(&title);
        self.wait(request, title, screen)
    }
}
