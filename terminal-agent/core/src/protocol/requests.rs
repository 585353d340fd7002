//! What a checkout asks the hub, on `term/{tid}/req`.

use serde::{Deserialize, Serialize};

use super::{DeviceHealth, RequestId};
use crate::card::CardRead;
use crate::money::Amount;
use crate::secret::Secret;

/// Terminal → hub, on `term/{tid}/req`: one struct per kind, the kind
/// named once (the serde tag is the variant's name in snake case).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    /// Sent at start: the hub answers with the store's name and the open batch.
    SignIn(SignIn),
    Sale(Sale),
    /// A sale paid in cash: recorded at once (no acquirer), and the
    /// checkout opens its drawer.
    CashSale(CashSale),
    /// A sale paid by the payment code the customer shows in a wallet app:
    /// the hub asks the code's provider and, while the buyer confirms in
    /// the app, tells the checkout ([`Response::CodeWaiting`](super::Response::CodeWaiting)).
    CodeSale(CodeSale),
    /// The cashier stops a code sale the buyer has not confirmed: the hub
    /// cancels the order at the provider, and the sale's answer says
    /// whether it was charged.
    CancelCode(CancelCode),
    Balance(Balance),
    /// Voids this terminal's sale `trace_no` (open batch), with the same
    /// card; needs the supervisor PIN, or the owner's order from the page.
    Void(Void),
    /// Refunds `amount` of this terminal's sale `trace_no`, to the card
    /// presented; needs the supervisor PIN, or the owner's order from the
    /// page (which may name another checkout's sale).
    Refund(Refund),
    /// Settle (结算) the store's open batch with the acquirer and open a new one.
    Settle(Settle),
    /// The supervisor stops this terminal from selling (only the owner unfreezes).
    Freeze(Freeze),
    /// The receipt of this terminal's last approved sale, or of `trace_no`.
    Reprint(Reprint),
    /// "What became of this request?", sent by a terminal that restarted while
    /// waiting. The hub answers with the stored outcome; an id it never saw is
    /// marked lost, so a late copy of that request can never charge.
    Recall(Recall),
    /// The supervisor opens the cash drawer without a sale (change for a
    /// note, a float): counted and audited.
    NoSale(NoSale),
    /// The drawer counted at a shift's end: the hub compares it with the
    /// cash sales since the last count and records the difference.
    CountDrawer(CountDrawer),
    /// A cashier signs on at this checkout with their number and PIN; the
    /// sales that follow are theirs until another signs on or they sign off.
    SignOn(SignOn),
    SignOff(SignOff),
    /// Pairing with the owner's one-time code: the terminal's SPAKE2 message
    /// (base64). The only request a terminal sends unsealed once paired.
    Pair(Pair),
    /// Liveness; not answered.
    Heartbeat(Heartbeat),
    /// The approvals this checkout told its cashier of, from its own
    /// record: after each sign-in, those of the hub's open batch and later.
    /// The hub brings back any its database lost. Taken only sealed; not
    /// answered.
    Printed(Printed),
}

/// Sent at start: the hub answers with the store's name and the open batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignIn {
    pub request_id: RequestId,
    pub version: String,
    /// The lowest trace number the hub may give this checkout next: one
    /// past the highest it told the checkout of, and one more while a
    /// request of the checkout's is unanswered (the hub may have issued one
    /// for it). A hub whose store lost trace numbers below it (a card that
    /// did not keep what it was told to) moves on past this, so it never
    /// issues one twice. Absent from checkouts that have seen none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_floor: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sale {
    pub request_id: RequestId,
    pub amount: Amount,
    pub currency: String,
    pub card: CardRead,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin_block: Option<String>,
    /// The supervisor's PIN, when a store rule asked for their approval (`XV`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supervisor_pin: Option<Secret<String>>,
    /// This card pays the rest of a sale paid with several tenders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<SplitPart>,
}

/// One part of a sale paid with several tenders (cash, then a card for
/// the rest): the parts share `group` (the first part's request id) and
/// the sale's `total`; the hub takes no part beyond what is still owed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SplitPart {
    pub group: RequestId,
    pub total: Amount,
}

/// A sale paid in cash: recorded at once (no acquirer), and the
/// checkout opens its drawer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CashSale {
    pub request_id: RequestId,
    pub amount: Amount,
    pub currency: String,
    /// What the customer handed over: at least `amount`; the change is the
    /// difference.
    pub tendered: Amount,
    /// The supervisor's PIN, when a store rule asked for their approval (`XV`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supervisor_pin: Option<Secret<String>>,
    /// This cash is one part of a sale paid with several tenders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<SplitPart>,
}

/// A sale paid by a payment code (付款码). The hub names the provider's
/// order after `request_id`, so a repeat after a crash asks about the same
/// order instead of paying twice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeSale {
    pub request_id: RequestId,
    pub amount: Amount,
    pub currency: String,
    /// The code as scanned (or keyed): it pays once, within a minute, so it
    /// is neither stored nor logged.
    pub code: Secret<String>,
    /// The supervisor's PIN, when a store rule asked for their approval (`XV`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supervisor_pin: Option<Secret<String>>,
    /// This code pays one part of a sale paid with several tenders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<SplitPart>,
}

/// Stops the code sale `sale` while the buyer has not confirmed it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancelCode {
    pub request_id: RequestId,
    pub sale: RequestId,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Balance {
    pub request_id: RequestId,
    pub card: CardRead,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin_block: Option<String>,
}

/// Voids this terminal's sale `trace_no` (open batch), with the same
/// card; needs the supervisor PIN, or the owner's order from the page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Void {
    pub request_id: RequestId,
    pub trace_no: u32,
    /// The sale's card; none for a cash sale (the money goes back from
    /// the drawer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card: Option<CardRead>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supervisor_pin: Option<Secret<String>>,
    /// The [`Response::UndoOrder`](super::Response::UndoOrder) this carries out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<String>,
    /// A part of this unfinished split sale (its group), undone by the
    /// cashier's choice when a later part failed: needs no supervisor PIN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<RequestId>,
}

/// Refunds `amount` of this terminal's sale `trace_no`, to the card
/// presented; needs the supervisor PIN, or the owner's order from the page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Refund {
    pub request_id: RequestId,
    pub trace_no: u32,
    pub amount: Amount,
    /// The card to refund to; none for a cash sale (cash back from the
    /// drawer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card: Option<CardRead>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub supervisor_pin: Option<Secret<String>>,
    /// The [`Response::UndoOrder`](super::Response::UndoOrder) this carries out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order: Option<String>,
}

/// Settle (结算) the store's open batch with the acquirer and open a new one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settle {
    pub request_id: RequestId,
}

/// The supervisor stops this terminal from selling (only the owner unfreezes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Freeze {
    pub request_id: RequestId,
    pub supervisor_pin: Secret<String>,
}

/// The receipt of this terminal's last approved sale, or of `trace_no`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reprint {
    pub request_id: RequestId,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trace_no: Option<u32>,
}

/// "What became of this request?", sent by a terminal that restarted while
/// waiting. The hub answers with the stored outcome; an id it never saw is
/// marked lost, so a late copy of that request can never charge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recall {
    pub request_id: RequestId,
}

/// The supervisor opens the cash drawer without a sale (change for a
/// note, a float): counted and audited.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoSale {
    pub request_id: RequestId,
    pub supervisor_pin: Secret<String>,
}

/// The drawer counted at a shift's end: the hub compares it with the cash
/// sales since the last count and records the difference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CountDrawer {
    pub request_id: RequestId,
    pub supervisor_pin: Secret<String>,
    /// The cash found in the drawer.
    pub counted: Amount,
}

/// A cashier signs on at this checkout with their number and PIN; the
/// sales that follow are theirs until another signs on or they sign off.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignOn {
    pub request_id: RequestId,
    pub cashier: String,
    pub pin: Secret<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignOff {
    pub request_id: RequestId,
}

/// Pairing with the owner's one-time code: the terminal's SPAKE2 message
/// (base64). The only request a terminal sends unsealed once paired.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pair {
    pub request_id: RequestId,
    pub message: String,
}

/// Liveness; not answered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    pub uptime_s: u64,
    /// How the checkout's devices have been doing since it started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub devices: Option<DeviceHealth>,
}

/// The approvals a checkout told its cashier of, from its own record
/// (see [`Request::Printed`]); as many a message as [`Printed::BUDGET`] takes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Printed {
    pub entries: Vec<PrintedEntry>,
}

impl Printed {
    /// The entries' JSON a message carries at most: sealed (base64 in an
    /// envelope, a third larger) it stays inside
    /// [`MAX_PAYLOAD`](super::MAX_PAYLOAD).
    pub const BUDGET: usize = super::MAX_PAYLOAD * 3 / 4 - 1024;

    /// `entries` in messages within [`Printed::BUDGET`], in order.
    pub fn messages(entries: Vec<PrintedEntry>) -> Vec<Printed> {
        let mut out: Vec<Printed> = Vec::new();
        let mut used = Printed::BUDGET;
        for entry in entries {
            let size = serde_json::to_vec(&entry).map_or(0, |j| j.len()) + 1;
            if used + size > Printed::BUDGET {
                out.push(Printed { entries: Vec::new() });
                used = 0;
            }
            used += size;
            if let Some(last) = out.last_mut() {
                last.entries.push(entry);
            }
        }
        out
    }
}

/// One approval as the checkout printed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrintedEntry {
    pub request_id: RequestId,
    /// For a void or refund: the trace number of the sale it undid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub original_trace: Option<u32>,
    pub receipt: super::Receipt,
}

/// The kinds of request, each once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestKind {
    SignIn,
    Sale,
    CashSale,
    CodeSale,
    CancelCode,
    Balance,
    Void,
    Refund,
    Settle,
    Freeze,
    Reprint,
    Recall,
    NoSale,
    CountDrawer,
    SignOn,
    SignOff,
    Pair,
    Heartbeat,
    Printed,
}

impl RequestKind {
    /// Every kind, in the order of [`Request`].
    pub const ALL: [RequestKind; 19] = [
        RequestKind::SignIn,
        RequestKind::Sale,
        RequestKind::CashSale,
        RequestKind::CodeSale,
        RequestKind::CancelCode,
        RequestKind::Balance,
        RequestKind::Void,
        RequestKind::Refund,
        RequestKind::Settle,
        RequestKind::Freeze,
        RequestKind::Reprint,
        RequestKind::Recall,
        RequestKind::NoSale,
        RequestKind::CountDrawer,
        RequestKind::SignOn,
        RequestKind::SignOff,
        RequestKind::Pair,
        RequestKind::Heartbeat,
        RequestKind::Printed,
    ];

    /// The `"type"` tag on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            RequestKind::SignIn => "sign_in",
            RequestKind::Sale => "sale",
            RequestKind::CashSale => "cash_sale",
            RequestKind::CodeSale => "code_sale",
            RequestKind::CancelCode => "cancel_code",
            RequestKind::Balance => "balance",
            RequestKind::Void => "void",
            RequestKind::Refund => "refund",
            RequestKind::Settle => "settle",
            RequestKind::Freeze => "freeze",
            RequestKind::Reprint => "reprint",
            RequestKind::Recall => "recall",
            RequestKind::NoSale => "no_sale",
            RequestKind::CountDrawer => "count_drawer",
            RequestKind::SignOn => "sign_on",
            RequestKind::SignOff => "sign_off",
            RequestKind::Pair => "pair",
            RequestKind::Heartbeat => "heartbeat",
            RequestKind::Printed => "printed",
        }
    }
}

impl Request {
    pub fn kind(&self) -> RequestKind {
        match self {
            Request::SignIn(_) => RequestKind::SignIn,
            Request::Sale(_) => RequestKind::Sale,
            Request::CashSale(_) => RequestKind::CashSale,
            Request::CodeSale(_) => RequestKind::CodeSale,
            Request::CancelCode(_) => RequestKind::CancelCode,
            Request::Balance(_) => RequestKind::Balance,
            Request::Void(_) => RequestKind::Void,
            Request::Refund(_) => RequestKind::Refund,
            Request::Settle(_) => RequestKind::Settle,
            Request::Freeze(_) => RequestKind::Freeze,
            Request::Reprint(_) => RequestKind::Reprint,
            Request::Recall(_) => RequestKind::Recall,
            Request::NoSale(_) => RequestKind::NoSale,
            Request::CountDrawer(_) => RequestKind::CountDrawer,
            Request::SignOn(_) => RequestKind::SignOn,
            Request::SignOff(_) => RequestKind::SignOff,
            Request::Pair(_) => RequestKind::Pair,
            Request::Heartbeat(_) => RequestKind::Heartbeat,
            Request::Printed(_) => RequestKind::Printed,
        }
    }

    pub fn request_id(&self) -> Option<&RequestId> {
        match self {
            Request::SignIn(SignIn { request_id, .. })
            | Request::Sale(Sale { request_id, .. })
            | Request::CashSale(CashSale { request_id, .. })
            | Request::CodeSale(CodeSale { request_id, .. })
            | Request::CancelCode(CancelCode { request_id, .. })
            | Request::Balance(Balance { request_id, .. })
            | Request::Void(Void { request_id, .. })
            | Request::Refund(Refund { request_id, .. })
            | Request::Settle(Settle { request_id, .. })
            | Request::Freeze(Freeze { request_id, .. })
            | Request::Reprint(Reprint { request_id, .. })
            | Request::Recall(Recall { request_id, .. })
            | Request::NoSale(NoSale { request_id, .. })
            | Request::CountDrawer(CountDrawer { request_id, .. })
            | Request::SignOn(SignOn { request_id, .. })
            | Request::SignOff(SignOff { request_id, .. })
            | Request::Pair(Pair { request_id, .. }) => Some(request_id),
            Request::Heartbeat(_) | Request::Printed(_) => None,
        }
    }
}

/// The `"type"` of every request a terminal sends.
pub const REQUEST_TYPES: [&str; 19] = {
    let mut types = [""; 19];
    let mut i = 0;
    while i < RequestKind::ALL.len() {
        types[i] = RequestKind::ALL[i].as_str();
        i += 1;
    }
    types
};
