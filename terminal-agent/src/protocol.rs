//! The wire protocol between checkout points and the hub: MQTT topics and the
//! versioned JSON messages on them. `PROTOCOL.md` beside this crate documents
//! the same thing for someone writing a terminal in another language.
//!
//! Decoding is strict and typed: a payload that is too large, not JSON, of
//! another version or of an unknown type becomes a [`ProtocolError`] with a
//! code the sender can act on, never a panic.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::amount::Amount;
use crate::card::{Brand, CardRead, EntryMode, MaskedPan};

/// The `"v"` every payload carries.
pub const VERSION: u32 = 1;
/// Payloads larger than this are refused before parsing.
pub const MAX_PAYLOAD: usize = 16 * 1024;

/// Short id of a store or terminal: 1–32 of `A-Z a-z 0-9 - _`, safe in a topic.
fn valid_id(s: &str) -> bool {
    (1..=32).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TerminalId(String);

impl TerminalId {
    pub fn parse(s: &str) -> Result<Self, String> {
        if valid_id(s) {
            Ok(TerminalId(s.to_string()))
        } else {
            Err(format!(
                "'{s}' is not a terminal id: use 1-32 letters, digits, '-' or '_'"
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for TerminalId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for TerminalId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        TerminalId::parse(&s)
    }
}

impl From<TerminalId> for String {
    fn from(t: TerminalId) -> String {
        t.0
    }
}

/// Made once per customer action and re-sent unchanged until answered: the hub
/// charges a request id at most once.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RequestId(String);

impl RequestId {
    pub fn new() -> Self {
        RequestId(uuid::Uuid::new_v4().to_string())
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        let ok = (8..=64).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(RequestId(s.to_string()))
        } else {
            Err("request_id must be 8-64 letters, digits, '-' or '_'".to_string())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for RequestId {
    fn default() -> Self {
        RequestId::new()
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for RequestId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        RequestId::parse(&s)
    }
}

impl From<RequestId> for String {
    fn from(r: RequestId) -> String {
        r.0
    }
}

/// The topic names of one store.
#[derive(Debug, Clone)]
pub struct Topics {
    prefix: String,
}

impl Topics {
    pub fn new(store: &str) -> Self {
        Topics {
            prefix: format!("tallybox/v1/{store}"),
        }
    }

    pub fn hub_status(&self) -> String {
        format!("{}/hub/status", self.prefix)
    }
    pub fn term_status(&self, tid: &TerminalId) -> String {
        format!("{}/term/{tid}/status", self.prefix)
    }
    pub fn req(&self, tid: &TerminalId) -> String {
        format!("{}/term/{tid}/req", self.prefix)
    }
    pub fn resp(&self, tid: &TerminalId) -> String {
        format!("{}/term/{tid}/resp", self.prefix)
    }
    pub fn cmd(&self, tid: &TerminalId) -> String {
        format!("{}/term/{tid}/cmd", self.prefix)
    }
    /// What the hub subscribes to: every terminal's requests and status.
    pub fn all_requests(&self) -> String {
        format!("{}/term/+/req", self.prefix)
    }
    pub fn all_statuses(&self) -> String {
        format!("{}/term/+/status", self.prefix)
    }

    /// Splits `…/term/{tid}/{leaf}` into the terminal and the leaf.
    pub fn parse_term_topic<'t>(&self, topic: &'t str) -> Option<(TerminalId, &'t str)> {
        let rest = topic.strip_prefix(&self.prefix)?.strip_prefix("/term/")?;
        let (tid, leaf) = rest.split_once('/')?;
        Some((TerminalId::parse(tid).ok()?, leaf))
    }
}

/// Kind of money movement (settlement is a batch operation, not a transaction).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TxnKind {
    Sale,
    Balance,
    /// 撤销: cancels a sale of the open batch, in full.
    Void,
    /// 退货: gives back part or all of an earlier sale.
    Refund,
}

impl TxnKind {
    pub fn as_str(self) -> &'static str {
        match self {
            TxnKind::Sale => "sale",
            TxnKind::Balance => "balance",
            TxnKind::Void => "void",
            TxnKind::Refund => "refund",
        }
    }
}

/// Life of a transaction: `pending` until the acquirer answered, then final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TxnStatus {
    Pending,
    Approved,
    Declined,
    /// Refused by the hub before reaching the acquirer (nothing charged).
    Failed,
    /// Sent, but not answered in time: reversed with the acquirer, not charged.
    Reversed,
}

impl TxnStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TxnStatus::Pending => "pending",
            TxnStatus::Approved => "approved",
            TxnStatus::Declined => "declined",
            TxnStatus::Failed => "failed",
            TxnStatus::Reversed => "reversed",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            TxnStatus::Pending,
            TxnStatus::Approved,
            TxnStatus::Declined,
            TxnStatus::Failed,
            TxnStatus::Reversed,
        ]
        .into_iter()
        .find(|t| t.as_str() == s)
    }
}

/// Terminal → hub, on `term/{tid}/req`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// Sent at start: the hub answers with the store's name and the open batch.
    SignIn {
        request_id: RequestId,
        version: String,
    },
    Sale {
        request_id: RequestId,
        amount: Amount,
        currency: String,
        card: CardRead,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pin_block: Option<String>,
        /// The supervisor's PIN, when a store rule asked for their approval (`XV`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        supervisor_pin: Option<String>,
    },
    Balance {
        request_id: RequestId,
        card: CardRead,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pin_block: Option<String>,
    },
    /// Voids this terminal's sale `trace_no` (open batch), with the same
    /// card; needs the supervisor PIN.
    Void {
        request_id: RequestId,
        trace_no: u32,
        card: CardRead,
        supervisor_pin: String,
    },
    /// Refunds `amount` of this terminal's sale `trace_no`, to the card
    /// presented; needs the supervisor PIN.
    Refund {
        request_id: RequestId,
        trace_no: u32,
        amount: Amount,
        card: CardRead,
        supervisor_pin: String,
    },
    /// Settle (结算) the store's open batch with the acquirer and open a new one.
    Settle {
        request_id: RequestId,
    },
    /// The supervisor stops this terminal from selling (only the owner unfreezes).
    Freeze {
        request_id: RequestId,
        supervisor_pin: String,
    },
    /// The receipt of this terminal's last approved sale, or of `trace_no`.
    Reprint {
        request_id: RequestId,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        trace_no: Option<u32>,
    },
    /// "What became of this request?", sent by a terminal that restarted while
    /// waiting. The hub answers with the stored outcome; an id it never saw is
    /// marked lost, so a late copy of that request can never charge.
    Recall {
        request_id: RequestId,
    },
    /// A cashier signs on at this checkout with their number and PIN; the
    /// sales that follow are theirs until another signs on or they sign off.
    SignOn {
        request_id: RequestId,
        cashier: String,
        pin: String,
    },
    SignOff {
        request_id: RequestId,
    },
    /// Pairing with the owner's one-time code: the terminal's SPAKE2 message
    /// (base64). The only request a terminal sends unsealed once paired.
    Pair {
        request_id: RequestId,
        message: String,
    },
    /// Liveness; not answered.
    Heartbeat {
        uptime_s: u64,
        /// How the checkout's devices have been doing since it started.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        devices: Option<DeviceHealth>,
    },
}

/// Counters a checkout keeps about its devices, sent with each heartbeat so
/// the owner can see a dirty reader or a printer problem from the phone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceHealth {
    pub swipes: u32,
    pub swipe_errors: u32,
    pub taps: u32,
    pub tap_errors: u32,
    pub cards_stuck: u32,
    /// What stops the printer now, if anything.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub printer: Option<crate::devices::PrinterProblem>,
    /// Slips waiting in the print queue.
    #[serde(default)]
    pub slips_waiting: u32,
    /// Paper printed, in millimetres (for the owner's paper-roll estimate).
    #[serde(default)]
    pub paper_mm: u64,
    /// How the printer is reached: `uart`, `rfcomm` (Bluetooth), `usb`, `tcp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub printer_link: Option<String>,
    /// The printer's sensor says the roll is nearly out.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub paper_low: bool,
    /// The checkout's own machine: temperature, power, Bluetooth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine: Option<crate::machine::MachineHealth>,
    /// Parts that could not be opened at start, each with why ("keypad:
    /// GPIO: ..."): not wired, not switched on in config.txt, no rights.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_started: Vec<String>,
}

impl Request {
    pub fn request_id(&self) -> Option<&RequestId> {
        match self {
            Request::SignIn { request_id, .. }
            | Request::Sale { request_id, .. }
            | Request::Balance { request_id, .. }
            | Request::Void { request_id, .. }
            | Request::Refund { request_id, .. }
            | Request::Settle { request_id }
            | Request::Freeze { request_id, .. }
            | Request::Reprint { request_id, .. }
            | Request::Recall { request_id }
            | Request::SignOn { request_id, .. }
            | Request::SignOff { request_id }
            | Request::Pair { request_id, .. } => Some(request_id),
            Request::Heartbeat { .. } => None,
        }
    }
}

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
    pub currency: String,
    pub masked_pan: MaskedPan,
    pub brand: Brand,
    pub entry_mode: EntryMode,
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
    pub response_code: String,
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
        /// The cashier still signed on here from before.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cashier: Option<Cashier>,
        /// The store's time zone (IANA name) for the checkout's clock.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        time_zone: Option<String>,
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
        refused: Option<String>,
    },
    /// The terminal was frozen (`reason`) or unfrozen (no reason): sent when
    /// it changes, and as the answer to a `freeze` request.
    Frozen {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        request_id: Option<RequestId>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    Outcome(Outcome),
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
    /// The owner asked, on the troubleshooting page, for a test slip from
    /// this checkout's printer: news.
    TestSlip,
    /// The owner asked for this checkout's program to restart: news.
    Restart,
    /// A newer version of the checkout's program is on the hub: news. The
    /// signed bundle is at `path` on the hub's web server (`port`, on the
    /// host the checkout reaches the broker at).
    Update {
        version: String,
        port: u16,
        path: String,
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
            | Response::Settled { request_id, .. } => Some(request_id.as_str()),
            Response::Outcome(o) => Some(o.request_id.as_str()),
            Response::Frozen { request_id, .. } => request_id.as_ref().map(RequestId::as_str),
            Response::Print { .. }
            | Response::TestSlip
            | Response::Restart
            | Response::Update { .. }
            | Response::TimeZone { .. } => None,
            Response::Error { request_id, .. } => request_id.as_deref(),
        }
    }
}

/// A cashier (收银员) as a checkout shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cashier {
    /// 1 to 4 digits, unique in the store.
    pub no: String,
    pub name: String,
}

/// Retained `status` of the hub and of each terminal; the broker publishes the
/// offline form as the client's last will.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "status")]
pub struct Status {
    pub online: bool,
    pub version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Payload over [`MAX_PAYLOAD`].
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

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ProtocolError {
    pub code: ErrorCode,
    pub message: String,
    /// The request id, when it could be read, so the error can be correlated.
    pub request_id: Option<String>,
}

impl ProtocolError {
    pub fn into_response(self) -> Response {
        Response::Error {
            request_id: self.request_id,
            code: self.code,
            message: self.message,
        }
    }
}

/// Puts `"v": 1` into a message's JSON object.
pub fn encode<T: Serialize>(message: &T) -> Vec<u8> {
    let mut value = serde_json::to_value(message).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut value {
        map.insert("v".into(), Value::from(VERSION));
    }
    serde_json::to_vec(&value).unwrap_or_default()
}

/// The `"type"` of every request a terminal sends.
pub const REQUEST_TYPES: &[&str] = &[
    "sign_in",
    "sale",
    "balance",
    "void",
    "refund",
    "settle",
    "freeze",
    "reprint",
    "recall",
    "heartbeat",
    "sign_on",
    "sign_off",
    "pair",
];

/// Checks size, JSON shape and version, then reads the message type `T`.
/// `known_types` lists the `"type"` tags `T` has, to tell "unknown type" from
/// "malformed".
fn decode<T: serde::de::DeserializeOwned>(payload: &[u8], known_types: &[&str]) -> Result<T, ProtocolError> {
    let fail = |code, message: String, request_id| ProtocolError {
        code,
        message,
        request_id,
    };
    if payload.len() > MAX_PAYLOAD {
        return Err(fail(
            ErrorCode::TooLarge,
            format!("payload is {} bytes; the limit is {MAX_PAYLOAD}", payload.len()),
            None,
        ));
    }
    let value: Value = serde_json::from_slice(payload)
        .map_err(|e| fail(ErrorCode::Malformed, format!("not JSON: {e}"), None))?;
    let Value::Object(mut map) = value else {
        return Err(fail(
            ErrorCode::Malformed,
            "payload is not a JSON object".into(),
            None,
        ));
    };
    let request_id = map.get("request_id").and_then(Value::as_str).map(str::to_string);
    match map.remove("v") {
        Some(v) if v.as_u64() == Some(u64::from(VERSION)) => {}
        Some(v) => {
            return Err(fail(
                ErrorCode::UnsupportedVersion,
                format!("protocol version {v} is not supported; this side speaks v{VERSION}"),
                request_id,
            ))
        }
        None => {
            return Err(fail(
                ErrorCode::UnsupportedVersion,
                format!("\"v\" is missing; this side speaks v{VERSION}"),
                request_id,
            ))
        }
    }
    match map.get("type").and_then(Value::as_str) {
        Some(t) if known_types.contains(&t) => {}
        Some(t) => {
            return Err(fail(
                ErrorCode::UnknownType,
                format!("unknown message type '{t}'"),
                request_id,
            ))
        }
        None => {
            return Err(fail(
                ErrorCode::Malformed,
                "\"type\" is missing or not a string".into(),
                request_id,
            ))
        }
    }
    serde_json::from_value(Value::Object(map))
        .map_err(|e| fail(ErrorCode::Malformed, format!("bad message: {e}"), request_id))
}

pub fn decode_request(payload: &[u8]) -> Result<Request, ProtocolError> {
    decode(payload, REQUEST_TYPES)
}

pub fn decode_response(payload: &[u8]) -> Result<Response, ProtocolError> {
    decode(payload, RESPONSE_TYPES)
}

/// The `"type"` of every message the hub sends a terminal.
pub const RESPONSE_TYPES: &[&str] = &[
    "signed_in",
    "paired",
    "time_zone",
    "cashier",
    "outcome",
    "reprint",
    "print",
    "test_slip",
    "restart",
    "update",
    "settled",
    "frozen",
    "error",
];

pub fn decode_status(payload: &[u8]) -> Result<Status, ProtocolError> {
    decode(payload, &["status"])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::card::test_cards;

    /// A request of every kind; the match makes a new kind fail to compile
    /// here until it is added.
    fn one_of_each() -> Vec<Request> {
        let id = || RequestId::parse("0123456789abcdef").unwrap();
        let card = || test_cards::by_name("approved").unwrap().read(EntryMode::Swipe);
        let all = vec![
            Request::SignIn {
                request_id: id(),
                version: "1".into(),
            },
            sale(),
            Request::Balance {
                request_id: id(),
                card: card(),
                pin_block: None,
            },
            Request::Void {
                request_id: id(),
                trace_no: 1,
                card: card(),
                supervisor_pin: "1234".into(),
            },
            Request::Refund {
                request_id: id(),
                trace_no: 1,
                amount: Amount::from_minor(1).unwrap(),
                card: card(),
                supervisor_pin: "1234".into(),
            },
            Request::Settle { request_id: id() },
            Request::Freeze {
                request_id: id(),
                supervisor_pin: "1234".into(),
            },
            Request::Reprint {
                request_id: id(),
                trace_no: None,
            },
            Request::Recall { request_id: id() },
            Request::SignOn {
                request_id: id(),
                cashier: "7".into(),
                pin: "2468".into(),
            },
            Request::SignOff { request_id: id() },
            Request::Pair {
                request_id: id(),
                message: "QUJD".into(),
            },
            Request::Heartbeat {
                uptime_s: 1,
                devices: None,
            },
        ];
        for r in &all {
            match r {
                Request::SignIn { .. }
                | Request::Sale { .. }
                | Request::Balance { .. }
                | Request::Void { .. }
                | Request::Refund { .. }
                | Request::Settle { .. }
                | Request::Freeze { .. }
                | Request::Reprint { .. }
                | Request::Recall { .. }
                | Request::SignOn { .. }
                | Request::SignOff { .. }
                | Request::Pair { .. }
                | Request::Heartbeat { .. } => {}
            }
        }
        all
    }

    #[test]
    fn every_response_kind_is_known_to_the_decoder() {
        let tags: Vec<String> = [
            Response::SignedIn {
                request_id: RequestId::new(),
                store_name: "S".into(),
                merchant_id: "M".into(),
                batch_no: 1,
                frozen: None,
                cashier: None,
                time_zone: Some("Asia/Shanghai".into()),
            },
            Response::TimeZone {
                time_zone: "UTC".into(),
            },
            Response::Cashier {
                request_id: RequestId::new(),
                cashier: None,
                refused: Some("XK".into()),
            },
            Response::Frozen {
                request_id: None,
                reason: None,
            },
            Response::TestSlip,
            Response::Restart,
            Response::Update {
                version: "0.2.0".into(),
                port: 80,
                path: "/updates/terminal.update".into(),
            },
            Response::Settled {
                request_id: RequestId::new(),
                batch_no: 1,
                balanced: true,
                report: vec![],
            },
        ]
        .iter()
        .map(|r| {
            let bytes = encode(r);
            assert_eq!(&decode_response(&bytes).unwrap(), r);
            let value: Value = serde_json::from_slice(&bytes).unwrap();
            value["type"].as_str().unwrap().to_string()
        })
        .collect();
        for tag in tags {
            assert!(RESPONSE_TYPES.contains(&tag.as_str()), "{tag}");
        }
    }

    #[test]
    fn every_request_kind_is_known_to_the_decoder_and_round_trips() {
        let all = one_of_each();
        assert_eq!(all.len(), REQUEST_TYPES.len());
        for request in all {
            let bytes = encode(&request);
            assert_eq!(decode_request(&bytes).unwrap(), request);
        }
    }

    fn sale() -> Request {
        Request::Sale {
            request_id: RequestId::parse("0123456789abcdef").unwrap(),
            amount: Amount::from_minor(1250).unwrap(),
            currency: "CNY".into(),
            card: test_cards::by_name("approved").unwrap().read(EntryMode::Swipe),
            pin_block: None,
            supervisor_pin: None,
        }
    }

    #[test]
    fn requests_round_trip_with_version() {
        let bytes = encode(&sale());
        let text = String::from_utf8(bytes.clone()).unwrap();
        assert!(text.contains("\"v\":1"), "{text}");
        assert!(text.contains("\"type\":\"sale\""), "{text}");
        assert_eq!(decode_request(&bytes).unwrap(), sale());
    }

    #[test]
    fn bad_payloads_get_typed_errors_with_the_request_id() {
        let code = |p: &[u8]| decode_request(p).unwrap_err().code;
        assert_eq!(code(b"{nope"), ErrorCode::Malformed);
        assert_eq!(code(b"[1,2]"), ErrorCode::Malformed);
        assert_eq!(code(br#"{"type":"sale"}"#), ErrorCode::UnsupportedVersion);
        assert_eq!(code(br#"{"v":2,"type":"sale"}"#), ErrorCode::UnsupportedVersion);
        assert_eq!(code(br#"{"v":1,"type":"teleport"}"#), ErrorCode::UnknownType);
        assert_eq!(code(br#"{"v":1}"#), ErrorCode::Malformed);
        assert_eq!(code(&vec![b' '; MAX_PAYLOAD + 1]), ErrorCode::TooLarge);
        let err =
            decode_request(br#"{"v":1,"type":"sale","request_id":"abcdefgh1","amount":-5,"currency":"CNY"}"#)
                .unwrap_err();
        assert_eq!(err.code, ErrorCode::Malformed);
        assert_eq!(err.request_id.as_deref(), Some("abcdefgh1"));
    }

    #[test]
    fn a_bad_card_number_is_malformed_not_a_panic() {
        let mut v = serde_json::to_value(sale()).unwrap();
        v["v"] = 1.into();
        v["card"]["pan"] = "6222021000000006".into();
        let err = decode_request(&serde_json::to_vec(&v).unwrap()).unwrap_err();
        assert_eq!(err.code, ErrorCode::Malformed);
        assert!(err.message.contains("check digit"), "{}", err.message);
    }

    #[test]
    fn topics_parse_back() {
        let topics = Topics::new("shop1");
        let tid = TerminalId::parse("T2").unwrap();
        let topic = topics.req(&tid);
        let (back, leaf) = topics.parse_term_topic(&topic).unwrap();
        assert_eq!((back, leaf), (tid, "req"));
        assert!(topics.parse_term_topic("tallybox/v1/other/term/T2/req").is_none());
        assert!(topics
            .parse_term_topic("tallybox/v1/shop1/term/bad id/req")
            .is_none());
    }
}

#[cfg(test)]
mod documented_examples {
    use super::*;

    /// Every JSON example in PROTOCOL.md decodes as the message it shows.
    #[test]
    fn protocol_md_examples_decode() {
        let doc = include_str!("../PROTOCOL.md");
        let mut count = 0;
        for block in doc.split("```json").skip(1) {
            let json = block.split("```").next().unwrap_or_default();
            let value: Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"));
            let bytes = json.as_bytes();
            let decoded = match value["type"].as_str() {
                Some(t)
                    if REQUEST_TYPES.contains(&t)
                        && value.get("receipt").is_none()
                        && value.get("store_name").is_none() =>
                {
                    decode_request(bytes).map(|_| ())
                }
                Some("status") => decode_status(bytes).map(|_| ()),
                Some("sealed") => {
                    assert!(crate::seal::is_sealed(bytes), "{json}");
                    count += 1;
                    continue;
                }
                _ => decode_response(bytes).map(|_| ()),
            };
            decoded.unwrap_or_else(|e| panic!("{e:?}: {json}"));
            count += 1;
        }
        assert!(count >= 17, "only {count} examples found");
    }
}
