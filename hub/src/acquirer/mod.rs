//! The link to the acquirer (收单机构), which asks the card's issuer and answers
//! approve or decline. A trait, so the coordinator does not care whether it is
//! the built-in simulator ([`sim`]) or an ISO 8583 host over TCP ([`iso8583`]);
//! [`AnyAcquirer`] is the one the settings chose.

pub mod iso8583;
pub mod sim;

use chrono::{DateTime, Utc};
use std::future::Future;
use tallybox_core::code::ResponseCode;

use tallybox_core::card::pin_block::PinKey;
use tallybox_core::card::CardRead;
use tallybox_core::money::Amount;
use tallybox_core::protocol::TxnKind;

/// An authorization request (ISO 8583 0200 in spirit).
#[derive(Debug, Clone)]
pub struct AuthRequest {
    pub kind: TxnKind,
    pub terminal_id: String,
    pub trace_no: u32,
    /// The batch it belongs to (China UnionPay's field 60 names it).
    pub batch_no: u32,
    pub amount: Amount,
    pub card: CardRead,
    /// Field 52, under the acquirer's PIN key for this terminal.
    pub pin_block: Option<String>,
    /// That key's check value: a block made under a key that has since
    /// been replaced (the terminal signed in again) is not sent.
    pub pin_key_check: Option<String>,
    /// For a void or refund: the sale it undoes.
    pub original: Option<OriginalRef>,
    /// When the hub recorded it: its transmission time on the link (field
    /// 7), which its reversal names again (field 90).
    pub at: DateTime<Utc>,
}

/// What identifies a sale to the acquirer when it is voided or refunded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginalRef {
    pub trace_no: u32,
    pub batch_no: u32,
    pub reference_no: String,
    pub auth_code: String,
    /// When it was recorded.
    pub at: DateTime<Utc>,
}

/// The acquirer's answer (0210).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthResponse {
    /// Approved (`00`) or why not.
    pub response_code: ResponseCode,
    pub auth_code: String,
    pub reference_no: String,
    /// For a balance inquiry.
    pub balance: Option<Amount>,
}

impl AuthResponse {
    pub fn approved(&self) -> bool {
        self.response_code.is_approved()
    }
}

/// Cancels an authorization whose answer never arrived (0400; 0401 when
/// one may have gone out before).
#[derive(Debug, Clone)]
pub struct Reversal {
    pub terminal_id: String,
    pub trace_no: u32,
    /// The original's batch.
    pub batch_no: u32,
    pub amount: Amount,
    /// What is reversed (the original's processing code).
    pub kind: TxnKind,
    /// The original's [`AuthRequest::at`].
    pub original_at: DateTime<Utc>,
    /// A reversal of it may have been sent before.
    pub repeat: bool,
}

/// One transaction of a batch, as a batch upload names it (no card data:
/// the hub keeps none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchItem {
    pub kind: TxnKind,
    pub trace_no: u32,
    pub amount: Amount,
    pub reference_no: String,
    pub auth_code: String,
}

/// One terminal's totals for the batch being settled (0500).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchTotals {
    pub terminal_id: String,
    pub batch_no: u32,
    /// The settlement message's own trace number (field 11).
    pub trace_no: u32,
    /// Approved sales less the voided ones.
    pub sales_count: u32,
    pub sales_minor: u64,
    pub refunds_count: u32,
    pub refunds_minor: u64,
}

impl BatchTotals {
    /// The totals of a terminal's approved transactions, given as (kind,
    /// count, amount) in any order: voids come off the sales they undo once
    /// everything is summed (taking them off as they come would clip at zero
    /// whenever a void came before its sale, and count the voided sale).
    pub fn of(
        terminal_id: &str,
        batch_no: u32,
        approved: impl IntoIterator<Item = (TxnKind, u32, u64)>,
    ) -> BatchTotals {
        let (mut sales, mut voids, mut refunds) = ((0u32, 0u64), (0u32, 0u64), (0u32, 0u64));
        for (kind, count, minor) in approved {
            let sum = match kind {
                TxnKind::Sale => &mut sales,
                TxnKind::Void => &mut voids,
                TxnKind::Refund => &mut refunds,
                TxnKind::Balance => continue,
            };
            sum.0 += count;
            sum.1 += minor;
        }
        BatchTotals {
            terminal_id: terminal_id.to_string(),
            batch_no,
            trace_no: 0,
            sales_count: sales.0.saturating_sub(voids.0),
            sales_minor: sales.1.saturating_sub(voids.1),
            refunds_count: refunds.0,
            refunds_minor: refunds.1,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AcquirerError {
    #[error("the acquirer link is down: {0}")]
    Link(String),
    #[error("the acquirer did not answer within {0:?}")]
    TimedOut(std::time::Duration),
    /// An answer came but was refused (it does not match the request, or its
    /// MAC is wrong): it approves nothing, and the request counts as unanswered.
    #[error("{0}")]
    BadAnswer(String),
    /// The request cannot be put on the link (a field the acquirer cannot
    /// take): it was never sent, so nothing was charged.
    #[error("the acquirer cannot take this request, so it was not sent: {why}")]
    NotSent {
        /// The ISO 8583 field it could not carry, when that was the reason.
        field: Option<u8>,
        why: String,
    },
}

/// The link to an acquirer host, for the troubleshooting page.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LinkHealth {
    /// `HOST:PORT`.
    pub addr: String,
    /// Connected and signed in.
    pub up: bool,
    /// Over TLS; plain TCP (a dedicated line) when not.
    pub tls: bool,
    /// The message layout (`iso8583-1987`, `cup-pos`).
    pub dialect: String,
    /// The acquirer terminal ids signed in on this connection, each with
    /// its working MAC key's check value (to compare with the acquirer's).
    pub signed_in: Vec<String>,
    /// Down because the acquirer answered the sign-in but refused it (or
    /// its MAC was wrong), not because it cannot be reached.
    pub sign_in_refused: bool,
    /// Since when it is up (or down), UTC.
    pub since: Option<String>,
    pub last_error: Option<String>,
    /// Times the link dropped or could not be made in the last hour.
    pub drops_last_hour: u32,
    /// The slowest of the last 5 answers, in ms.
    pub max_round_trip_ms: Option<u32>,
    /// How long the hub waits for an answer before it reverses the sale, in ms.
    pub timeout_ms: u32,
    /// Answers refused in the last hour (they did not match their request,
    /// or their MAC was wrong); each such sale was reversed.
    pub refused_answers_last_hour: u32,
    /// Why the last of them was refused.
    pub last_refused: Option<String>,
}

/// The acquirer the settings name.
pub enum AnyAcquirer {
    Sim(sim::SimAcquirer),
    Iso(iso8583::client::IsoAcquirer),
}

impl Acquirer for AnyAcquirer {
    async fn pin_key(&self, terminal_id: &str) -> Result<PinKey, AcquirerError> {
        match self {
            AnyAcquirer::Sim(a) => a.pin_key(terminal_id).await,
            AnyAcquirer::Iso(a) => a.pin_key(terminal_id).await,
        }
    }

    async fn authorize(&self, request: AuthRequest) -> Result<AuthResponse, AcquirerError> {
        match self {
            AnyAcquirer::Sim(a) => a.authorize(request).await,
            AnyAcquirer::Iso(a) => a.authorize(request).await,
        }
    }

    async fn reverse(&self, reversal: Reversal) -> Result<(), AcquirerError> {
        match self {
            AnyAcquirer::Sim(a) => a.reverse(reversal).await,
            AnyAcquirer::Iso(a) => a.reverse(reversal).await,
        }
    }

    async fn settle(&self, totals: BatchTotals) -> Result<bool, AcquirerError> {
        match self {
            AnyAcquirer::Sim(a) => a.settle(totals).await,
            AnyAcquirer::Iso(a) => a.settle(totals).await,
        }
    }

    fn batch_limit(&self) -> Option<u32> {
        match self {
            AnyAcquirer::Sim(a) => a.batch_limit(),
            AnyAcquirer::Iso(a) => a.batch_limit(),
        }
    }

    async fn upload_batch(&self, totals: &BatchTotals, items: &[BatchItem]) -> Result<usize, AcquirerError> {
        match self {
            AnyAcquirer::Sim(a) => a.upload_batch(totals, items).await,
            AnyAcquirer::Iso(a) => a.upload_batch(totals, items).await,
        }
    }
}

pub trait Acquirer: Send + Sync + 'static {
    /// The key PIN blocks of checkout `terminal_id` go to the acquirer
    /// under (the hub translates each checkout's into it): on an ISO 8583
    /// link, its acquirer terminal's working PIN key from its last sign-in.
    fn pin_key(&self, terminal_id: &str) -> impl Future<Output = Result<PinKey, AcquirerError>> + Send;

    /// Asks for an authorization. May never return: the caller times it out.
    fn authorize(
        &self,
        request: AuthRequest,
    ) -> impl Future<Output = Result<AuthResponse, AcquirerError>> + Send;

    /// Reverses an authorization; `Ok` once the acquirer acknowledged it.
    fn reverse(&self, reversal: Reversal) -> impl Future<Output = Result<(), AcquirerError>> + Send;

    /// Settles one terminal's batch; `Ok(true)` when the acquirer's totals
    /// agree with these, `Ok(false)` when they do not.
    fn settle(&self, totals: BatchTotals) -> impl Future<Output = Result<bool, AcquirerError>> + Send;

    /// After a settlement out of balance: sends the acquirer the batch's
    /// transactions one by one, then says the batch ends (China UnionPay's
    /// batch upload); how many it took. Nothing to do where the acquirer
    /// has no batch upload.
    fn upload_batch(
        &self,
        totals: &BatchTotals,
        items: &[BatchItem],
    ) -> impl Future<Output = Result<usize, AcquirerError>> + Send {
        let _ = (totals, items);
        async { Ok(0) }
    }

    /// The most transactions one terminal's batch may hold for the
    /// acquirer's settlement message to carry its count (China UnionPay's:
    /// 999); the hub settles a batch that reaches it. `None`: no limit a
    /// shop reaches.
    fn batch_limit(&self) -> Option<u32> {
        None
    }
}
