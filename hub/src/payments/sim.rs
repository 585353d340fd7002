//! The demo's payment-code provider, in the process: it acts on the test
//! codes ([`TEST_CODES`](super::TEST_CODES)) as `tallybox-provider-sim`
//! does, so that `tallybox demo` takes Alipay and WeChat Pay codes with no
//! credentials and no network. No setting turns it on; only the demo does,
//! and only for providers the settings do not name.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use tallybox_core::money::Amount;
use tallybox_core::reason;

use chrono::{DateTime, Utc};

use super::bill::BillLine;
use super::{test_buyer, Answer, CodeProvider, Order, RefundOrder, TestBuyer};

/// How long a `…0001` buyer takes to confirm in the app.
pub const CONFIRMS_AFTER: Duration = Duration::from_secs(8);

/// The buyer's account as the demo's wallet masks it.
const BUYER: &str = "159****5620";

struct SimOrder {
    amount: Amount,
    buyer: TestBuyer,
    at: Instant,
    /// When it was placed, by the wall clock (for the bill).
    placed: DateTime<Utc>,
    closed: bool,
    /// When a cancel gave back what the buyer had paid.
    given_back: Option<DateTime<Utc>>,
    /// Minor units given back so far.
    refunded: u64,
    /// Refunds by their own number, and when: a repeat gives back once.
    refunds: HashMap<String, (Amount, DateTime<Utc>)>,
}

impl SimOrder {
    fn paid(&self) -> bool {
        !self.closed
            && match self.buyer {
                TestBuyer::Pays | TestBuyer::PaysUnanswered => true,
                TestBuyer::ConfirmsLater => self.at.elapsed() >= CONFIRMS_AFTER,
                _ => false,
            }
    }
}

/// One simulated provider; `prefix` starts its trade numbers.
pub struct SimCodes {
    prefix: &'static str,
    orders: Mutex<HashMap<String, SimOrder>>,
}

impl SimCodes {
    pub fn new(prefix: &'static str) -> SimCodes {
        SimCodes {
            prefix,
            orders: Mutex::new(HashMap::new()),
        }
    }

    fn answer(&self, out_trade_no: &str, order: &SimOrder) -> Answer {
        if order.paid() {
            return Answer::Paid {
                trade_no: format!("{}{out_trade_no}", self.prefix),
                buyer: Some(BUYER.into()),
                amount: Some(order.amount),
            };
        }
        match order.buyer {
            _ if order.closed => Answer::Closed,
            TestBuyer::ConfirmsLater | TestBuyer::NeverConfirms => Answer::Waiting,
            TestBuyer::TooLittle => Answer::Declined(reason::CODE_BALANCE, "NOT_ENOUGH_BALANCE".into()),
            TestBuyer::Expired => Answer::Declined(reason::CODE_EXPIRED, "CODE_EXPIRED".into()),
            _ => Answer::Declined(reason::CODE_REFUSED, "RISK_CONTROL".into()),
        }
    }

    fn orders(&self) -> std::sync::MutexGuard<'_, HashMap<String, SimOrder>> {
        self.orders.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl CodeProvider for SimCodes {
    fn pay<'a>(&'a self, order: &'a Order) -> BoxFuture<'a, Result<Answer, String>> {
        async move {
            let mut orders = self.orders();
            let o = orders
                .entry(order.out_trade_no.clone())
                .or_insert_with(|| SimOrder {
                    amount: order.amount,
                    buyer: test_buyer(order.code.expose()),
                    at: Instant::now(),
                    placed: Utc::now(),
                    closed: false,
                    given_back: None,
                    refunded: 0,
                    refunds: HashMap::new(),
                });
            if o.buyer == TestBuyer::PaysUnanswered {
                return Err("system error (the demo's test code ending 0006)".into());
            }
            Ok(self.answer(&order.out_trade_no, o))
        }
        .boxed()
    }

    fn query<'a>(&'a self, out_trade_no: &'a str) -> BoxFuture<'a, Result<Answer, String>> {
        async move {
            Ok(match self.orders().get(out_trade_no) {
                Some(o) => self.answer(out_trade_no, o),
                None => Answer::Closed,
            })
        }
        .boxed()
    }

    fn cancel<'a>(&'a self, out_trade_no: &'a str) -> BoxFuture<'a, Result<(), String>> {
        async move {
            if let Some(o) = self.orders().get_mut(out_trade_no) {
                // Closed; what was paid goes back to the wallet.
                if o.paid() {
                    o.given_back = Some(Utc::now());
                }
                o.closed = true;
            }
            Ok(())
        }
        .boxed()
    }

    fn refund<'a>(&'a self, refund: &'a RefundOrder) -> BoxFuture<'a, Result<Answer, String>> {
        async move {
            let mut orders = self.orders();
            let Some(o) = orders.get_mut(&refund.out_trade_no).filter(|o| o.paid()) else {
                return Ok(Answer::Declined(reason::CODE_REFUSED, "TRADE_NOT_EXIST".into()));
            };
            if !o.refunds.contains_key(&refund.out_request_no) {
                if o.refunded + refund.amount.minor() > o.amount.minor() {
                    return Ok(Answer::Declined(
                        reason::CODE_REFUSED,
                        "REFUND_AMT_NOT_EQUAL_TOTAL".into(),
                    ));
                }
                o.refunded += refund.amount.minor();
                o.refunds
                    .insert(refund.out_request_no.clone(), (refund.amount, Utc::now()));
            }
            Ok(Answer::Paid {
                trade_no: format!("{}{}", self.prefix, refund.out_trade_no),
                buyer: Some(BUYER.into()),
                amount: o.refunds.get(&refund.out_request_no).map(|(a, _)| *a),
            })
        }
        .boxed()
    }

    fn bill<'a>(&'a self, day: chrono::NaiveDate) -> BoxFuture<'a, Result<Option<Vec<BillLine>>, String>> {
        async move {
            let on_day = |at: DateTime<Utc>| at.with_timezone(&super::beijing()).date_naive() == day;
            let mut lines = Vec::new();
            for (no, o) in self.orders().iter() {
                let line = |paid: u64, refunded: u64| BillLine {
                    out_trade_no: no.clone(),
                    trade_no: format!("{}{no}", self.prefix),
                    paid,
                    refunded,
                };
                let paid_at = match o.buyer {
                    TestBuyer::Pays | TestBuyer::PaysUnanswered => Some(o.placed),
                    TestBuyer::ConfirmsLater => Some(o.placed + CONFIRMS_AFTER),
                    _ => None,
                };
                let was_paid = o.paid() || o.given_back.is_some();
                if paid_at.is_some_and(|at| was_paid && on_day(at)) {
                    lines.push(line(o.amount.minor(), 0));
                }
                if o.given_back.is_some_and(on_day) {
                    lines.push(line(0, o.amount.minor()));
                }
                for (amount, _) in o.refunds.values().filter(|(_, at)| on_day(*at)) {
                    lines.push(line(0, amount.minor()));
                }
            }
            Ok(Some(lines))
        }
        .boxed()
    }

    fn check(&self) -> BoxFuture<'_, Result<(), super::CallError>> {
        async { Ok(()) }.boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tallybox_core::secret::Secret;

    fn order(no: &str, code: &str, minor: u64) -> Order {
        Order {
            out_trade_no: no.into(),
            code: Secret::new(code.into()),
            amount: Amount::from_minor(minor).unwrap(),
            subject: "Demo".into(),
            terminal: "T1".into(),
        }
    }

    fn refund(no: &str, request: &str, minor: u64) -> RefundOrder {
        RefundOrder {
            out_trade_no: no.into(),
            out_request_no: request.into(),
            amount: Amount::from_minor(minor).unwrap(),
            sale_amount: Amount::from_minor(1000).unwrap(),
        }
    }

    #[tokio::test]
    async fn the_test_codes_act_as_their_endings_say() {
        let sim = SimCodes::new("2026");
        let paid = sim.pay(&order("a", "281234567890120000", 1000)).await.unwrap();
        assert!(matches!(paid, Answer::Paid { amount: Some(a), .. } if a.minor() == 1000));
        // A repeat of the same order is the same payment.
        assert_eq!(
            sim.pay(&order("a", "281234567890120000", 1000)).await.unwrap(),
            paid
        );
        assert_eq!(
            sim.pay(&order("b", "281234567890120001", 1000)).await.unwrap(),
            Answer::Waiting
        );
        assert!(matches!(
            sim.pay(&order("c", "281234567890120003", 1000)).await.unwrap(),
            Answer::Declined(r, _) if r == reason::CODE_BALANCE
        ));
        // Paid, but unanswered: asking tells.
        assert!(sim.pay(&order("d", "281234567890120006", 1000)).await.is_err());
        assert!(matches!(sim.query("d").await.unwrap(), Answer::Paid { .. }));
        // A never-confirming buyer's order, cancelled, is closed.
        sim.pay(&order("e", "281234567890120002", 1000)).await.unwrap();
        sim.cancel("e").await.unwrap();
        assert_eq!(sim.query("e").await.unwrap(), Answer::Closed);
        assert_eq!(sim.query("never-made").await.unwrap(), Answer::Closed);
    }

    #[tokio::test]
    async fn a_refund_gives_back_once_and_never_more_than_was_paid() {
        let sim = SimCodes::new("2026");
        sim.pay(&order("a", "281234567890120000", 1000)).await.unwrap();
        assert!(matches!(
            sim.refund(&refund("a", "r1", 600)).await.unwrap(),
            Answer::Paid { .. }
        ));
        assert!(matches!(
            sim.refund(&refund("a", "r1", 600)).await.unwrap(),
            Answer::Paid { .. }
        ));
        assert!(matches!(
            sim.refund(&refund("a", "r2", 600)).await.unwrap(),
            Answer::Declined(..)
        ));
        assert!(matches!(
            sim.refund(&refund("a", "r3", 400)).await.unwrap(),
            Answer::Paid { .. }
        ));
    }

    #[tokio::test]
    async fn the_demos_bill_holds_what_was_paid_and_given_back_today() {
        let sim = SimCodes::new("2026");
        sim.pay(&order("a", "281234567890120000", 1000)).await.unwrap();
        sim.refund(&refund("a", "r1", 400)).await.unwrap();
        sim.pay(&order("b", "281234567890120000", 700)).await.unwrap();
        sim.cancel("b").await.unwrap();
        // Not confirmed (yet), or never: nothing taken.
        sim.pay(&order("c", "281234567890120001", 500)).await.unwrap();
        sim.pay(&order("d", "281234567890120003", 500)).await.unwrap();
        let today = Utc::now().with_timezone(&super::super::beijing()).date_naive();
        let mut lines: Vec<_> = sim
            .bill(today)
            .await
            .unwrap()
            .unwrap()
            .into_iter()
            .map(|l| (l.out_trade_no, l.paid, l.refunded))
            .collect();
        lines.sort();
        assert_eq!(
            lines,
            vec![
                ("a".into(), 0, 400),
                ("a".into(), 1000, 0),
                ("b".into(), 0, 700),
                ("b".into(), 700, 0)
            ]
        );
        let yesterday = today - chrono::Duration::days(1);
        assert_eq!(sim.bill(yesterday).await.unwrap(), Some(vec![]));
    }
}
