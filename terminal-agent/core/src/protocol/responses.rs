//! What the hub answers or tells a checkout, on `term/{tid}/resp`.

use serde::{Deserialize, Serialize};

use super::{Paid, RequestId, Tender, TxnKind, TxnStatus};
use crate::code::{ReasonCode, ResponseCode};
use crate::money::{Amount, Currency};

/// What a slip and the web page show about one transaction. No full PAN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    pub merchant_name: String,
    /// Printed under the name, when the owner gave one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub merchant_address: String,
    /// The owner's lines above the slip body and at its end.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub header: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub footer: Vec<String>,
    pub merchant_id: String,
    pub terminal_id: String,
    pub kind: TxnKind,
    pub status: TxnStatus,
    pub amount: Amount,
    pub currency: Currency,
    /// The tender: the card (masked) or the cash handed over.
    #[serde(flatten)]
    pub paid: Paid,
    pub batch_no: u32,
    pub trace_no: u32,
    pub reference_no: String,
    pub auth_code: String,
    /// The cashier signed on at the checkout (操作员号), when one was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cashier: Option<String>,
    /// Local date and time of the transaction, `YYYY-MM-DD HH:MM:SS`.
    pub at: String,
    /// The customer's e-receipt page on the hub, when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
}

/// The outcome of a sale or balance inquiry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    pub request_id: RequestId,
    pub kind: TxnKind,
    pub status: TxnStatus,
    /// ISO 8583 response code (`"00"` approved, `"51"` insufficient funds, …).
    pub response_code: ResponseCode,
    /// Present when approved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt: Option<Receipt>,
    /// Present for an approved balance inquiry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balance: Option<Amount>,
}

/// Hub → terminal, on `term/{tid}/resp`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Response {
    SignedIn {
        request_id: RequestId,
        store_name: String,
        merchant_id: String,
        batch_no: u32,
        /// Why this terminal may not sell, when it is frozen.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        frozen: Option<String>,
        /// `frozen` in Chinese, when the hub has it: its words for the
        /// freezes it makes itself, a reason someone typed as typed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        frozen_zh: Option<String>,
        /// The cashier still signed on here from before.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cashier: Option<Cashier>,
        /// The store's time zone (IANA name) for the checkout's clock.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        time_zone: Option<String>,
        /// The store's currency (ISO 4217 code): what the checkout's amounts
        /// are in, and how many digits follow the point when it shows them.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        currency: Option<String>,
        /// That currency's minor-unit exponent (2 for HKD, 0 for JPY), for a
        /// checkout that does not know the code.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        minor_digits: Option<u8>,
    },
    /// The hub's half of a pairing: its SPAKE2 message and proof that it
    /// holds the key (base64); from now on messages are sealed.
    Paired {
        request_id: RequestId,
        message: String,
        confirm: String,
    },
    /// The owner changed the store's time zone: news, not an answer.
    TimeZone {
        time_zone: String,
    },
    /// The answer to a sign-on or sign-off: who is signed on now, or why a
    /// sign-on was refused (a reason code: wrong number or PIN, locked).
    Cashier {
        request_id: RequestId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cashier: Option<Cashier>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        refused: Option<ReasonCode>,
    },
    /// The terminal was frozen (`reason`) or unfrozen (no reason): sent when
    /// it changes, and as the answer to a `freeze` request.
    Frozen {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<RequestId>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// `reason` in Chinese, when the hub has it (as `frozen_zh`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason_zh: Option<String>,
    },
    Outcome(Outcome),
    /// The buyer is confirming the code sale `request_id` in their app: the
    /// hub asks the provider again until it is decided, for at most
    /// `seconds_left` more, then cancels it. News, sent at each asking; the
    /// sale's answer is still to come.
    CodeWaiting {
        request_id: RequestId,
        seconds_left: u32,
    },
    Reprint {
        request_id: RequestId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        receipt: Option<Receipt>,
    },
    /// The owner asked, on the web page, for this receipt to be printed
    /// here (a customer's copy): news, not an answer.
    Print {
        receipt: Receipt,
    },
    /// The owner ordered, on the web page, a void or refund of a sale here:
    /// the checkout asks for the card and sends the void or refund with this
    /// `order` instead of the supervisor PIN. News; `trace_no` is the sale's
    /// (of another checkout's sale, for a refund). `tender` is how the sale
    /// was paid (absent from older hubs: ask as for a card); a payment
    /// code's money goes back to the wallet at once, with nothing to ask.
    UndoOrder {
        order: String,
        kind: TxnKind,
        trace_no: u32,
        amount: Amount,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tender: Option<Tender>,
    },
    /// The owner asked, on the troubleshooting page, for a test slip from
    /// this checkout's printer: news.
    TestSlip,
    /// The owner asked for this checkout's program to restart: news.
    Restart,
    /// The hub heard, unsealed, that this checkout went offline (its last
    /// will, or anyone on the LAN saying so): a live checkout answers with a
    /// sealed heartbeat at once, which a stranger cannot forge.
    AreYouThere,
    /// A newer version of the checkout's program is on the hub: news. The
    /// signed bundle is at `path` on the hub's web server (`port`, on the
    /// host the checkout reaches the broker at).
    Update {
        version: String,
        port: u16,
        path: String,
    },
    /// The answer to `no_sale` and `count_drawer`: refused (a reason code:
    /// wrong supervisor PIN, frozen), or done; a count carries the cash
    /// expected and counted, and its report to print.
    Drawer {
        request_id: RequestId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        refused: Option<ReasonCode>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        count: Option<DrawerCount>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        report: Vec<String>,
    },
    /// The batch was settled: whether the acquirer's totals agreed, and the
    /// settlement report to print, line by line.
    Settled {
        request_id: RequestId,
        batch_no: u32,
        balanced: bool,
        report: Vec<String>,
    },
    Error {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<String>,
        code: ErrorCode,
        message: String,
    },
}

impl Response {
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Response::SignedIn { request_id, .. }
            | Response::Cashier { request_id, .. }
            | Response::Paired { request_id, .. }
            | Response::Reprint { request_id, .. }
            | Response::Drawer { request_id, .. }
            | Response::Settled { request_id, .. } => Some(request_id.as_str()),
            Response::Outcome(o) => Some(o.request_id.as_str()),
            Response::Frozen { request_id, .. } => request_id.as_ref().map(RequestId::as_str),
            Response::Print { .. }
            | Response::CodeWaiting { .. }
            | Response::UndoOrder { .. }
            | Response::TestSlip
            | Response::Restart
            | Response::AreYouThere
            | Response::Update { .. }
            | Response::TimeZone { .. } => None,
            Response::Error { request_id, .. } => request_id.as_deref(),
        }
    }
}

/// A drawer count: what the drawer should hold and what was in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrawerCount {
    pub expected: Amount,
    pub counted: Amount,
}

impl DrawerCount {
    /// Counted less expected, in minor units: above zero over, below short.
    pub fn difference(&self) -> i64 {
        self.counted.minor() as i64 - self.expected.minor() as i64
    }
}

/// A cashier (收银员) as a checkout shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cashier {
    /// 1 to 4 digits, unique in the store.
    pub no: String,
    pub name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Payload over [`MAX_PAYLOAD`](super::MAX_PAYLOAD).
    TooLarge,
    /// Not JSON, not an object, or fields missing / of the wrong type.
    Malformed,
    /// `"v"` missing or not one this hub speaks.
    UnsupportedVersion,
    /// `"type"` is not a request this hub knows.
    UnknownType,
    /// The amount is zero or above the store's limit.
    InvalidAmount,
    /// The request id was already used for a different request.
    DuplicateRequestId,
    /// The hub failed on its side (storage); retry with the same request id.
    Internal,
    /// This terminal is not paired with the hub (or was revoked): pair it
    /// with a code from the owner's page.
    NotPaired,
    /// No pairing is open, or its code was used up: start one on the owner's page.
    NoPairing,
}

/// The `"type"` of every message the hub sends a terminal.
pub const RESPONSE_TYPES: &[&str] = &[
    "signed_in",
    "paired",
    "time_zone",
    "cashier",
    "outcome",
    "code_waiting",
    "reprint",
    "print",
    "undo_order",
    "test_slip",
    "restart",
    "are_you_there",
    "update",
    "settled",
    "drawer",
    "frozen",
    "error",
];
