//! What the session does with the hub's answers: the sign-in, and the
//! outcome of the request it waits on — slips and the screen that says it.

use super::{Action, Op, Session, State};
use crate::session::Screens;
use tallybox_core::money::{Amount, Currency};
use tallybox_core::protocol::{
    ErrorCode, Outcome, Paid, Request, RequestId, Response, Tender, TxnKind, TxnStatus,
};
use tallybox_core::reason;
use tallybox_core::slip::{Copy, Slip};

impl Session {
    pub(super) fn on_answer(&mut self, response: Response) -> Vec<Action> {
        // Any other answer means the hub serves this terminal (a paired one
        // gets here only what opened with its key).
        if !matches!(
            response,
            Response::Error {
                code: ErrorCode::NotPaired,
                ..
            }
        ) {
            self.unpaired = false;
        }
        if let Response::SignedIn {
            request_id,
            store_name,
            frozen,
            frozen_zh,
            cashier,
            currency,
            minor_digits,
            ..
        } = &response
        {
            if self.sign_in.as_ref().and_then(Request::request_id) != Some(request_id) {
                return vec![];
            }
            self.sign_in = None;
            if let Some(code) = currency {
                // A code with neither an entry here nor digits from the hub
                // leaves the currency as it was: the hub refuses a sale in
                // the wrong one, so nothing is charged in it.
                if let Some(currency) =
                    Currency::from_code(code).or_else(|| Currency::new(code, (*minor_digits)?))
                {
                    self.config.currency = currency;
                }
            }
            self.store_name = store_name.clone();
            self.frozen = self.in_own_words(frozen, frozen_zh);
            self.cashier = cashier.clone();
            return self.refresh_idle();
        }
        // The hub refuses this terminal until it is paired (the checkout core
        // passes this on only once a sealed sign-in went unanswered): say so
        // at idle, and end what was waiting as unconfirmed: the hub may have
        // charged it before the key was revoked.
        if let Response::Error {
            code: ErrorCode::NotPaired,
            ..
        } = &response
        {
            self.unpaired = true;
            return match self.state {
                State::Waiting { .. } => {
                    let screen = self.ui().not_paired_mid_sale();
                    self.go(State::Done, screen)
                }
                _ => self.refresh_idle(),
            };
        }
        // A freeze or unfreeze the owner or a rule made: news, not an answer.
        if let Response::Frozen {
            request_id: None,
            reason,
            reason_zh,
        } = &response
        {
            self.frozen = self.in_own_words(reason, reason_zh);
            return self.refresh_idle();
        }
        // A void or refund the owner ordered on the web page: taken when the
        // checkout is at rest (a cashier mid-sale is not interrupted; the
        // order then lapses on the hub and the owner sends it again).
        if let Response::UndoOrder {
            order,
            kind,
            trace_no,
            amount,
            tender,
        } = &response
        {
            let at_rest = matches!(self.state, State::Idle | State::Done);
            if !at_rest || self.frozen.is_some() || self.unpaired {
                return vec![];
            }
            let op = match kind {
                TxnKind::Void => Op::Void { trace: *trace_no },
                TxnKind::Refund => Op::Refund {
                    trace: *trace_no,
                    amount: *amount,
                },
                TxnKind::Sale | TxnKind::Balance => return vec![],
            };
            self.supervisor_pin = None;
            self.order = Some(order.clone());
            if *tender == Some(Tender::Code) {
                // Back to the customer's wallet through the provider.
                return self.send_cash_back(op);
            }
            let ui = self.ui();
            // A card sale's card, or B for a cash sale's money from the drawer.
            let screen = ui.pay(&op.title(ui, self.config.currency), None);
            self.state = State::Card { op };
            return vec![Action::Show(screen)];
        }
        // A reprint the owner sent from the web page: printed whatever the
        // cashier is doing; the screen is left alone.
        if let Response::Print { receipt } = &response {
            return vec![Action::Print(Slip::of(
                receipt,
                Copy::Cardholder,
                true,
                self.config.slip_columns,
            ))];
        }
        // The buyer is confirming the code sale waited on in their app.
        if let Response::CodeWaiting {
            request_id,
            seconds_left,
        } = &response
        {
            let State::Waiting { request, title, .. } = &self.state else {
                return vec![];
            };
            if request.request_id() != Some(request_id) || self.cancelling.is_some() {
                return vec![];
            }
            self.confirming = true;
            return vec![Action::Show(self.ui().code_confirming(title, *seconds_left))];
        }
        let State::Waiting { request, .. } = &self.state else {
            return vec![]; // a late duplicate answer: already handled
        };
        if request.request_id().map(RequestId::as_str) != response.request_id() {
            return vec![];
        }
        if matches!(&response, Response::Outcome(o) if o.status == TxnStatus::Pending) {
            return vec![]; // not final yet: keep waiting
        }
        // A store rule asks for the supervisor: the same sale goes again with their PIN.
        if let (Response::Outcome(o), State::Waiting { request, .. }) = (&response, &self.state) {
            if o.response_code == reason::NEEDS_SUPERVISOR
                && matches!(
                    request,
                    Request::Sale(_) | Request::CashSale(_) | Request::CodeSale(_)
                )
            {
                let request = request.clone();
                let screen = self
                    .ui()
                    .supervisor_pin(self.ui().pick("APPROVE SALE", "主管确认"), 0);
                return self.go(
                    State::Approve {
                        request,
                        pin: tallybox_core::secret::Pin::new(),
                    },
                    screen,
                );
            }
        }
        if let Response::Outcome(outcome) = &response {
            if let Some(actions) = self.on_split_outcome(outcome) {
                return actions;
            }
        }
        let currency = self.config.currency;
        self.state = State::Done;
        self.cancelling = None;
        match response {
            Response::Outcome(outcome) => {
                if let Some(receipt) = &outcome.receipt {
                    self.last_link = receipt.link.clone();
                }
                outcome_actions(self.ui(), currency, self.config.slip_columns, outcome)
            }
            Response::Reprint {
                receipt: Some(receipt),
                ..
            } => vec![
                Action::Print(Slip::of(
                    &receipt,
                    Copy::Cardholder,
                    true,
                    self.config.slip_columns,
                )),
                Action::Show(
                    self.ui()
                        .message(("REPRINT", "重打印"), ("Printing the slip", "正在打印签购单")),
                ),
            ],
            Response::Reprint { receipt: None, .. } => {
                vec![Action::Show(self.ui().message(
                    ("REPRINT", "重打印"),
                    ("No sale to reprint", "没有可重打印的交易"),
                ))]
            }
            Response::Error {
                code: ErrorCode::InvalidAmount,
                ..
            } => {
                vec![Action::Show(self.ui().declined(reason::WRONG_AMOUNT, true))]
            }
            Response::Error { message, .. } => {
                vec![Action::Show(
                    self.ui().message(("HUB ERROR", "主机错误"), (&message, &message)),
                )]
            }
            Response::Drawer {
                refused: Some(code), ..
            } => vec![Action::Show(self.ui().drawer_refused(code))],
            Response::Drawer {
                count: Some(count),
                report,
                ..
            } => vec![
                Action::Print(Slip {
                    lines: report,
                    qr: None,
                }),
                Action::Show(self.ui().drawer_counted(currency, &count)),
            ],
            Response::Drawer { .. } => vec![Action::OpenDrawer, Action::Show(self.ui().no_sale_done())],
            Response::Settled {
                batch_no,
                balanced,
                report,
                ..
            } => vec![
                Action::Print(Slip {
                    lines: report,
                    qr: None,
                }),
                Action::Show(self.ui().settled(batch_no, balanced)),
            ],
            Response::Frozen {
                reason, reason_zh, ..
            } => {
                self.frozen = self.in_own_words(&reason, &reason_zh);
                self.go_idle()
            }
            Response::Cashier {
                refused: Some(code), ..
            } if code == reason::CASHIER_LOCKED => vec![Action::Show(self.ui().locked())],
            Response::Cashier {
                refused: Some(code), ..
            } => vec![Action::Show(self.ui().sign_on_refused(code))],
            Response::Cashier { cashier, .. } => {
                let screen = self.ui().signed_on(cashier.as_ref());
                self.cashier = cashier;
                vec![Action::Show(screen)]
            }
            // Handled above, before any request is matched; the time zone, the test
            // slip and the restart by the runtime.
            // Pairing answers go to the runtime, which holds the exchange.
            Response::SignedIn { .. }
            | Response::Print { .. }
            | Response::CodeWaiting { .. }
            | Response::UndoOrder { .. }
            | Response::TestSlip
            | Response::Restart
            | Response::AreYouThere
            | Response::Update { .. }
            | Response::TimeZone { .. }
            | Response::Paired { .. } => vec![],
        }
    }
}

fn outcome_actions(ui: Screens, currency: Currency, slip_columns: usize, outcome: Outcome) -> Vec<Action> {
    match (outcome.status, outcome.kind) {
        (TxnStatus::Approved, TxnKind::Sale | TxnKind::Void | TxnKind::Refund) => {
            let Some(receipt) = outcome.receipt else {
                return vec![Action::Show(
                    ui.message(("APPROVED", "交易成功"), ("Receipt missing", "缺少签购单数据")),
                )];
            };
            if let Paid::Code { provider, .. } = receipt.paid {
                // The provider moved the money: the customer's receipt only.
                let screen = match outcome.kind {
                    TxnKind::Sale => ui.code_paid(currency, receipt.amount, provider),
                    _ => ui.code_back(currency, receipt.amount),
                };
                return vec![
                    Action::Print(Slip::of(&receipt, Copy::Cardholder, false, slip_columns)),
                    Action::Show(screen),
                ];
            }
            match receipt.paid.change(receipt.amount) {
                // Cash: the customer's receipt and the drawer; the shop keeps
                // no signed copy.
                Some(change) if outcome.kind == TxnKind::Sale => vec![
                    Action::OpenDrawer,
                    Action::Print(Slip::of(&receipt, Copy::Cardholder, false, slip_columns)),
                    Action::Show(ui.cash_paid(currency, change)),
                ],
                // A cash sale voided or refunded: the money goes back from the drawer.
                Some(_) => vec![
                    Action::OpenDrawer,
                    Action::Print(Slip::of(&receipt, Copy::Cardholder, false, slip_columns)),
                    Action::Show(ui.cash_back(currency, receipt.amount)),
                ],
                _ => vec![
                    Action::Print(Slip::of(&receipt, Copy::Merchant, false, slip_columns)),
                    Action::Print(Slip::of(&receipt, Copy::Cardholder, false, slip_columns)),
                    Action::Show(ui.approved(currency, receipt.amount, &receipt.auth_code)),
                ],
            }
        }
        (TxnStatus::Approved, TxnKind::Balance) => {
            vec![Action::Show(
                ui.balance(currency, outcome.balance.unwrap_or(Amount::ZERO)),
            )]
        }
        (TxnStatus::Reversed | TxnStatus::Failed, _) => {
            vec![Action::Show(ui.declined(outcome.response_code, true))]
        }
        (TxnStatus::Declined | TxnStatus::Pending, _) => {
            vec![Action::Show(ui.declined(outcome.response_code, false))]
        }
    }
}
