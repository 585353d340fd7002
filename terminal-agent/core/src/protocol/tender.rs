//! How a customer paid (the tender): by card, in cash, or by the payment
//! code (付款码) the customer shows in a wallet app. A receipt and a stored
//! transaction carry it as [`Paid`], whose JSON is flat beside the receipt's
//! other fields (`"tender": "card"` with the masked PAN, brand and entry
//! mode, `"tender": "cash"` with what was handed over, or `"tender": "code"`
//! with the provider and the buyer's masked account), so a card receipt
//! reads as it always did, with one field more.

use serde::{Deserialize, Serialize};

use crate::card::{Brand, EntryMode, MaskedPan};
use crate::money::Amount;

/// The kinds of tender, as the wire, the store and the page name them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tender {
    Card,
    Cash,
    /// A payment code scanned from the customer's wallet app.
    Code,
}

impl Tender {
    pub const ALL: [Tender; 3] = [Tender::Card, Tender::Cash, Tender::Code];

    pub const fn as_str(self) -> &'static str {
        match self {
            Tender::Card => "card",
            Tender::Cash => "cash",
            Tender::Code => "code",
        }
    }

    pub fn parse(s: &str) -> Option<Tender> {
        Tender::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// Who takes a payment code: the wallet the customer pays from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    /// 支付宝
    Alipay,
    /// 微信支付
    WechatPay,
    /// 银联二维码 (云闪付 and the banks' apps)
    UnionPay,
}

impl Provider {
    pub const ALL: [Provider; 3] = [Provider::Alipay, Provider::WechatPay, Provider::UnionPay];

    pub const fn as_str(self) -> &'static str {
        match self {
            Provider::Alipay => "alipay",
            Provider::WechatPay => "wechat_pay",
            Provider::UnionPay => "union_pay",
        }
    }

    pub fn parse(s: &str) -> Option<Provider> {
        Provider::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// The wallet a payment code belongs to, from its digits as the
    /// providers number them: Alipay 25-30, WeChat Pay 10-15 (18 digits
    /// each, Alipay up to 24), UnionPay 62 (19 digits).
    pub fn of_code(code: &str) -> Option<Provider> {
        if !code.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let head: u8 = code.get(..2)?.parse().ok()?;
        match (head, code.len()) {
            (25..=30, 16..=24) => Some(Provider::Alipay),
            (10..=15, 18) => Some(Provider::WechatPay),
            (62, 19) => Some(Provider::UnionPay),
            _ => None,
        }
    }

    /// The name on a slip: Chinese, then English.
    pub const fn slip_name(self) -> &'static str {
        match self {
            Provider::Alipay => "支付宝 ALIPAY",
            Provider::WechatPay => "微信支付 WECHAT PAY",
            Provider::UnionPay => "银联二维码 UNIONPAY QR",
        }
    }
}

/// What a receipt shows of the card: never more than the masked PAN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardPaid {
    pub masked_pan: MaskedPan,
    pub brand: Brand,
    pub entry_mode: EntryMode,
}

/// How one transaction was paid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "PaidFields", into = "PaidFields")]
pub enum Paid {
    Card(CardPaid),
    /// Cash; `tendered` is what the customer handed over (the change is
    /// `tendered` less the amount).
    Cash {
        tendered: Amount,
    },
    /// A payment code; `buyer` is the account the provider names, masked
    /// by the provider (`159****5620`), once it is known.
    Code {
        provider: Provider,
        buyer: Option<String>,
    },
}

impl Paid {
    pub fn tender(&self) -> Tender {
        match self {
            Paid::Card(_) => Tender::Card,
            Paid::Cash { .. } => Tender::Cash,
            Paid::Code { .. } => Tender::Code,
        }
    }

    pub fn card(&self) -> Option<&CardPaid> {
        match self {
            Paid::Card(card) => Some(card),
            Paid::Cash { .. } | Paid::Code { .. } => None,
        }
    }

    /// The change given back from `amount`, for cash.
    pub fn change(&self, amount: Amount) -> Option<Amount> {
        match self {
            Paid::Cash { tendered } => tendered.checked_sub(amount),
            Paid::Card(_) | Paid::Code { .. } => None,
        }
    }
}

/// [`Paid`] as JSON fields. A receipt without `tender` is a card's (what
/// hubs sent before there were other tenders).
#[derive(Serialize, Deserialize)]
struct PaidFields {
    #[serde(default = "card")]
    tender: Tender,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    masked_pan: Option<MaskedPan>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    brand: Option<Brand>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    entry_mode: Option<EntryMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tendered: Option<Amount>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    provider: Option<Provider>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    buyer: Option<String>,
}

fn card() -> Tender {
    Tender::Card
}

impl TryFrom<PaidFields> for Paid {
    type Error = String;

    fn try_from(f: PaidFields) -> Result<Paid, String> {
        match f.tender {
            Tender::Card => match (f.masked_pan, f.brand, f.entry_mode) {
                (Some(masked_pan), Some(brand), Some(entry_mode)) => Ok(Paid::Card(CardPaid {
                    masked_pan,
                    brand,
                    entry_mode,
                })),
                _ => Err("a card payment needs masked_pan, brand and entry_mode".into()),
            },
            Tender::Cash => f
                .tendered
                .map(|tendered| Paid::Cash { tendered })
                .ok_or_else(|| "a cash payment needs tendered".to_string()),
            Tender::Code => f
                .provider
                .map(|provider| Paid::Code {
                    provider,
                    buyer: f.buyer,
                })
                .ok_or_else(|| "a payment code needs provider".to_string()),
        }
    }
}

impl From<Paid> for PaidFields {
    fn from(paid: Paid) -> PaidFields {
        let mut f = PaidFields {
            tender: paid.tender(),
            masked_pan: None,
            brand: None,
            entry_mode: None,
            tendered: None,
            provider: None,
            buyer: None,
        };
        match paid {
            Paid::Card(card) => {
                f.masked_pan = Some(card.masked_pan);
                f.brand = Some(card.brand);
                f.entry_mode = Some(card.entry_mode);
            }
            Paid::Cash { tendered } => f.tendered = Some(tendered),
            Paid::Code { provider, buyer } => {
                f.provider = Some(provider);
                f.buyer = buyer;
            }
        }
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::card::Pan;

    #[test]
    fn a_receipt_of_a_hub_from_before_tenders_reads_as_a_card_payment() {
        let old = r#"{"masked_pan":"622202******0005","brand":"union_pay","entry_mode":"swipe"}"#;
        let paid: Paid = serde_json::from_str(old).unwrap();
        assert_eq!(paid.tender(), Tender::Card);
        let json = serde_json::to_value(&paid).unwrap();
        assert_eq!(json["tender"], "card");
        assert_eq!(json["masked_pan"], "622202******0005");
    }

    #[test]
    fn cash_carries_what_was_handed_over_and_gives_the_change() {
        let paid = Paid::Cash {
            tendered: Amount::from_minor(5000).unwrap(),
        };
        let json = serde_json::to_string(&paid).unwrap();
        assert_eq!(json, r#"{"tender":"cash","tendered":5000}"#);
        assert_eq!(serde_json::from_str::<Paid>(&json).unwrap(), paid);
        let change = paid.change(Amount::from_minor(4250).unwrap());
        assert_eq!(change, Some(Amount::from_minor(750).unwrap()));
    }

    #[test]
    fn a_payment_code_names_its_wallet_by_its_digits() {
        assert_eq!(Provider::of_code("287654321098765432"), Some(Provider::Alipay));
        assert_eq!(Provider::of_code("134567890123456789"), Some(Provider::WechatPay));
        assert_eq!(Provider::of_code("6212345678901234567"), Some(Provider::UnionPay));
        // A card number, a short code, letters: no wallet.
        assert_eq!(Provider::of_code("6222021000000005"), None);
        assert_eq!(Provider::of_code("28765"), None);
        assert_eq!(Provider::of_code("28765432109876543x"), None);
        let paid = Paid::Code {
            provider: Provider::Alipay,
            buyer: Some("159****5620".into()),
        };
        let json = serde_json::to_string(&paid).unwrap();
        assert_eq!(
            json,
            r#"{"tender":"code","provider":"alipay","buyer":"159****5620"}"#
        );
        assert_eq!(serde_json::from_str::<Paid>(&json).unwrap(), paid);
    }

    #[test]
    fn a_payment_missing_its_tenders_fields_is_refused() {
        assert!(serde_json::from_str::<Paid>(r#"{"tender":"cash"}"#).is_err());
        assert!(serde_json::from_str::<Paid>(r#"{"tender":"card","brand":"visa"}"#).is_err());
        assert!(serde_json::from_str::<Paid>(r#"{"tender":"cheque","tendered":1}"#).is_err());
        assert!(serde_json::from_str::<Paid>(r#"{"tender":"code"}"#).is_err());
        let card = Pan::parse("6222021000000005").unwrap();
        assert_eq!(card.masked().as_str(), "622202******0005");
    }
}
