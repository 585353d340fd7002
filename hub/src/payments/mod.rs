//! Payment codes (付款码): the customer shows a code in a wallet app, the
//! checkout scans it, and the hub asks the code's provider to take the
//! money. Each provider is behind [`CodeProvider`], as the acquirer is
//! behind its trait; `alipay.rs` speaks Alipay's open platform, `wechat.rs`
//! WeChat Pay's API v2. The coordinator's `code.rs` holds the rules that keep the money right.
//!
//! Every call can end without an answer the hub may trust (the network,
//! a time-out, an answer whose signature is not the provider's): that is
//! `Err`, and means "not known", never "not paid". A payment or refund the
//! provider refused as a call, before looking at the order (the shop's app
//! id or key, the hub's clock: [`CallError::Refused`]), is declined: the
//! provider did nothing.

pub mod alipay;
pub mod bill;
pub mod https;
pub mod rsa2;
pub mod setup;
pub mod sim;
pub mod wechat;
pub mod zip;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use tallybox_core::code::ReasonCode;
use tallybox_core::money::Amount;
use tallybox_core::protocol::{Provider, RequestId};
use tallybox_core::secret::Secret;

/// Why a call to a provider brought no answer about the order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallError {
    /// The provider refused the call itself, before looking at the order:
    /// nothing was done. Why, as the cashier hears it, and the provider's
    /// own words.
    Refused(ReasonCode, String),
    /// No answer to trust: what became of the order is not known.
    Unknown(String),
}

impl From<String> for CallError {
    fn from(why: String) -> CallError {
        CallError::Unknown(why)
    }
}

impl From<&str> for CallError {
    fn from(why: &str) -> CallError {
        CallError::Unknown(why.to_string())
    }
}

impl From<CallError> for String {
    fn from(e: CallError) -> String {
        match e {
            CallError::Refused(_, why) | CallError::Unknown(why) => why,
        }
    }
}

/// The answer to a payment or refund call: a refused call is a decline
/// (the provider did nothing); anything else goes on as `f` reads it.
pub(crate) fn declined_if_refused<T>(
    called: Result<T, CallError>,
    f: impl FnOnce(T) -> Result<Answer, String>,
) -> Result<Answer, String> {
    match called {
        Ok(answer) => f(answer),
        Err(CallError::Refused(code, why)) => Ok(Answer::Declined(code, why)),
        Err(CallError::Unknown(why)) => Err(why),
    }
}

/// What the provider says of an order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Paid: the provider's trade number, and the buyer's account as the
    /// provider masks it.
    Paid {
        trade_no: String,
        buyer: Option<String>,
        /// What the provider says was paid, when its answer says it (the
        /// hub takes a payment only for the order's own amount).
        amount: Option<Amount>,
    },
    /// The buyer is confirming in the app: ask again.
    Waiting,
    /// Not paid, and it will not be: why, as the cashier hears it, and the
    /// provider's own words for the log.
    Declined(ReasonCode, String),
    /// The provider has no such order, or closed it: nothing was charged.
    Closed,
}

/// A code payment as the hub asks it.
#[derive(Debug, Clone)]
pub struct Order {
    /// The hub's order number at the provider ([`order_no`]).
    pub out_trade_no: String,
    pub code: Secret<String>,
    pub amount: Amount,
    /// What the buyer's app shows as bought: the shop's name.
    pub subject: String,
    /// The checkout, for the provider's store reports.
    pub terminal: String,
}

/// Money back to the wallet that paid `out_trade_no`.
#[derive(Debug, Clone)]
pub struct RefundOrder {
    pub out_trade_no: String,
    /// This refund's own number: a repeat of it refunds once.
    pub out_request_no: String,
    pub amount: Amount,
    /// What the sale was (WeChat Pay asks for it with each refund).
    pub sale_amount: Amount,
}

/// A payment-code provider's API.
pub trait CodeProvider: Send + Sync {
    /// Takes `order`'s amount from the wallet of its code.
    fn pay<'a>(&'a self, order: &'a Order) -> BoxFuture<'a, Result<Answer, String>>;
    /// What became of the order `out_trade_no`.
    fn query<'a>(&'a self, out_trade_no: &'a str) -> BoxFuture<'a, Result<Answer, String>>;
    /// Closes the order (the provider gives the money back when it was paid
    /// meanwhile): `Ok` once the provider says nothing stays charged.
    fn cancel<'a>(&'a self, out_trade_no: &'a str) -> BoxFuture<'a, Result<(), String>>;
    /// Gives `refund.amount` back: [`Answer::Paid`] when the provider did,
    /// [`Answer::Declined`] when it will not.
    fn refund<'a>(&'a self, refund: &'a RefundOrder) -> BoxFuture<'a, Result<Answer, String>>;
    /// The provider's bill of `day` (its days are Beijing time's): each
    /// payment and refund it made for the shop that day; `None` when the
    /// provider says it has no bill of that day (no payments, or not
    /// written yet).
    fn bill<'a>(
        &'a self,
        day: chrono::NaiveDate,
    ) -> BoxFuture<'a, Result<Option<Vec<bill::BillLine>>, String>>;
    /// A call that touches no order (a query of an order never made):
    /// `Ok` once the provider took the shop's credentials and answered
    /// with its own signature; [`CallError::Refused`] when it refused them.
    fn check(&self) -> BoxFuture<'_, Result<(), CallError>>;
}

/// The order number the credentials' check asks about: never a sale's
/// (those are request ids).
pub const CHECK_ORDER: &str = "tallyboxcredentialscheck";

/// The providers this shop takes codes of, and how long a buyer may take.
/// Clones share the providers: one the owner sets up on the page is taken
/// by the next sale.
#[derive(Clone, Default)]
pub struct Codes {
    providers: Arc<std::sync::RwLock<HashMap<Provider, Arc<dyn CodeProvider>>>>,
    /// How long the hub waits for a buyer confirming in the app before it
    /// cancels the order.
    pub wait: Duration,
    /// How often it asks the provider meanwhile.
    pub poll: Duration,
}

impl std::fmt::Debug for Codes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<_> = self.each().iter().map(|(p, _)| p.as_str()).collect();
        write!(f, "Codes({names:?}, wait {:?})", self.wait)
    }
}

impl Codes {
    pub fn new(wait: Duration, poll: Duration) -> Codes {
        Codes {
            providers: Arc::default(),
            wait,
            poll,
        }
    }

    pub fn with(self, provider: Provider, client: Arc<dyn CodeProvider>) -> Codes {
        self.set(provider, Some(client));
        self
    }

    /// Takes `provider`'s codes through `client` from now on (`None`: no more).
    pub fn set(&self, provider: Provider, client: Option<Arc<dyn CodeProvider>>) {
        let mut providers = self.providers.write().unwrap_or_else(|e| e.into_inner());
        match client {
            Some(client) => providers.insert(provider, client),
            None => providers.remove(&provider),
        };
    }

    pub fn get(&self, provider: Provider) -> Option<Arc<dyn CodeProvider>> {
        let providers = self.providers.read().unwrap_or_else(|e| e.into_inner());
        providers.get(&provider).cloned()
    }

    /// Each provider the shop takes codes of, by name.
    pub fn each(&self) -> Vec<(Provider, Arc<dyn CodeProvider>)> {
        let providers = self.providers.read().unwrap_or_else(|e| e.into_inner());
        let mut all: Vec<_> = providers.iter().map(|(p, c)| (*p, Arc::clone(c))).collect();
        all.sort_by_key(|(p, _)| p.as_str());
        all
    }

    pub fn is_empty(&self) -> bool {
        self.providers
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .is_empty()
    }
}

/// What a test payment code makes the simulated provider
/// (`tallybox-provider-sim`) do: its last four digits say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TestBuyer {
    /// Pays at once.
    Pays,
    /// Confirms in the app after the simulator's `--confirm-after` seconds.
    ConfirmsLater,
    /// Never confirms: the order is cancelled, nothing charged.
    NeverConfirms,
    /// Too little money in the wallet.
    TooLittle,
    /// The code expired.
    Expired,
    /// The provider's risk control refuses it.
    Refused,
    /// Pays, but the provider answers the payment with a system error: the
    /// outcome must be asked for.
    PaysUnanswered,
}

/// The test payment codes: Alipay's (`28…`) and WeChat Pay's (`13…`), 18
/// digits, the last four picking the buyer's behaviour.
pub const TEST_CODES: [(&str, TestBuyer, &str); 7] = [
    ("0000", TestBuyer::Pays, "pays at once"),
    (
        "0001",
        TestBuyer::ConfirmsLater,
        "the buyer confirms in the app after --confirm-after seconds",
    ),
    (
        "0002",
        TestBuyer::NeverConfirms,
        "the buyer never confirms: cancelled, not charged",
    ),
    ("0003", TestBuyer::TooLittle, "too little in the wallet"),
    (
        "0004",
        TestBuyer::Expired,
        "the code expired: the buyer refreshes it",
    ),
    (
        "0005",
        TestBuyer::Refused,
        "refused by the provider's risk control",
    ),
    (
        "0006",
        TestBuyer::PaysUnanswered,
        "pays, but the answer is a system error: the hub asks",
    ),
];

/// The test buyer a code's last four digits name (any other ending pays).
pub fn test_buyer(code: &str) -> TestBuyer {
    let ending = code.get(code.len().saturating_sub(4)..).unwrap_or("");
    TEST_CODES
        .iter()
        .find(|(e, _, _)| *e == ending)
        .map_or(TestBuyer::Pays, |(_, buyer, _)| *buyer)
}

/// The hub's order number for the request `id` at a provider: the request
/// id's letters and digits (32 for the checkouts' UUIDs: WeChat Pay takes
/// at most 32, Alipay 64), so a repeat of the request after a crash or a
/// restart names the same order, and the provider takes the money once.
pub fn order_no(id: &RequestId) -> String {
    let mut no: String = id
        .as_str()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    no.truncate(32);
    no
}

/// Beijing time (UTC+8), the providers' clock: their timestamps and the
/// days of their bills.
pub fn beijing() -> chrono::FixedOffset {
    chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8 is an offset")
}

/// `"42.50"` (yuan, two decimals) as an amount; `None` when it is not that.
pub fn from_yuan(text: &str) -> Option<Amount> {
    let (whole, cents) = text.split_once('.')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || cents.len() != 2 || !digits(cents) {
        return None;
    }
    let minor = whole.parse::<u64>().ok()?.checked_mul(100)? + cents.parse::<u64>().ok()?;
    Amount::from_minor(minor).ok()
}

/// `amount` in yuan with two decimals, as the providers' APIs write money
/// (`"42.50"`); the caller checked the store's currency has two.
pub fn yuan(amount: Amount) -> String {
    format!("{}.{:02}", amount.minor() / 100, amount.minor() % 100)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_order_number_is_the_request_id_so_a_repeat_names_the_same_order() {
        let id = RequestId::parse("6f1c2e9a-0b7d-4c3e-9f21-7a5b8c9d0e1f").unwrap();
        assert_eq!(order_no(&id), "6f1c2e9a0b7d4c3e9f217a5b8c9d0e1f");
        assert_eq!(order_no(&id), order_no(&id.clone()));
        let long = RequestId::parse(&"a".repeat(64)).unwrap();
        assert_eq!(order_no(&long).len(), 32);
    }

    #[test]
    fn money_goes_to_the_provider_in_yuan_with_two_decimals() {
        assert_eq!(yuan(Amount::from_minor(4250).unwrap()), "42.50");
        assert_eq!(yuan(Amount::from_minor(7).unwrap()), "0.07");
        assert_eq!(yuan(Amount::from_minor(100_000_000).unwrap()), "1000000.00");
        assert_eq!(from_yuan("42.50"), Amount::from_minor(4250).ok());
        assert_eq!(
            from_yuan(&yuan(Amount::from_minor(7).unwrap())),
            Amount::from_minor(7).ok()
        );
        for bad in ["42.5", "42", ".50", "4x.50", "-1.00", ""] {
            assert_eq!(from_yuan(bad), None, "{bad:?}");
        }
    }
}
