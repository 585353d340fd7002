//! What a checkout asks the hub, on `term/{tid}/req`.

use serde::{Deserialize, Serialize};

use super::{DeviceHealth, RequestId};
use crate::card::CardRead;
use crate::money::Amount;
use crate::secret::Secret;

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
        supervisor_pin: Option<Secret<String>>,
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
        supervisor_pin: Secret<String>,
    },
    /// Refunds `amount` of this terminal's sale `trace_no`, to the card
    /// presented; needs the supervisor PIN.
    Refund {
        request_id: RequestId,
        trace_no: u32,
        amount: Amount,
        card: CardRead,
        supervisor_pin: Secret<String>,
    },
    /// Settle (结算) the store's open batch with the acquirer and open a new one.
    Settle {
        request_id: RequestId,
    },
    /// The supervisor stops this terminal from selling (only the owner unfreezes).
    Freeze {
        request_id: RequestId,
        supervisor_pin: Secret<String>,
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
        pin: Secret<String>,
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
