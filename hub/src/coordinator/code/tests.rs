//! The code-payment rules against a scripted provider: what the hub does
//! with every answer a provider can give, including none.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use tallybox_core::protocol::{requests, Provider, Request, RequestId, Response, TerminalId, TxnStatus};
use tallybox_core::reason;

use crate::acquirer::sim::SimAcquirer;
use crate::coordinator::Coordinator;
use crate::payments::{Answer, CodeProvider, Codes, Order, RefundOrder};
use crate::store::{Store, StoreHandle};

/// A provider that answers each kind of call from its script (then keeps
/// giving the last answer) and counts the calls.
#[derive(Default)]
struct Scripted {
    pay: Mutex<VecDeque<Result<Answer, String>>>,
    query: Mutex<VecDeque<Result<Answer, String>>>,
    cancel: Mutex<VecDeque<Result<(), String>>>,
    refund: Mutex<VecDeque<Result<Answer, String>>>,
    calls: Mutex<Vec<String>>,
}

fn next<T: Clone>(script: &Mutex<VecDeque<T>>) -> T {
    let mut s = script.lock().unwrap();
    match s.len() {
        0 => panic!("no answer scripted"),
        1 => s[0].clone(),
        _ => s.pop_front().unwrap(),
    }
}

impl Scripted {
    fn with(
        pay: Vec<Result<Answer, String>>,
        query: Vec<Result<Answer, String>>,
        cancel: Vec<Result<(), String>>,
    ) -> Scripted {
        Scripted {
            pay: Mutex::new(pay.into()),
            query: Mutex::new(query.into()),
            cancel: Mutex::new(cancel.into()),
            ..Default::default()
        }
    }

    fn count(&self, call: &str) -> usize {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.starts_with(call))
            .count()
    }
}

impl CodeProvider for Scripted {
    fn pay<'a>(&'a self, order: &'a Order) -> BoxFuture<'a, Result<Answer, String>> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("pay {}", order.out_trade_no));
        Box::pin(async move { next(&self.pay) })
    }
    fn query<'a>(&'a self, out_trade_no: &'a str) -> BoxFuture<'a, Result<Answer, String>> {
        self.calls.lock().unwrap().push(format!("query {out_trade_no}"));
        Box::pin(async move { next(&self.query) })
    }
    fn cancel<'a>(&'a self, out_trade_no: &'a str) -> BoxFuture<'a, Result<(), String>> {
        self.calls.lock().unwrap().push(format!("cancel {out_trade_no}"));
        Box::pin(async move { next(&self.cancel) })
    }
    fn refund<'a>(&'a self, refund: &'a RefundOrder) -> BoxFuture<'a, Result<Answer, String>> {
        self.calls.lock().unwrap().push(format!(
            "refund {} {}",
            refund.out_request_no,
            refund.amount.minor()
        ));
        Box::pin(async move { next(&self.refund) })
    }
    fn bill<'a>(
        &'a self,
        _day: chrono::NaiveDate,
    ) -> BoxFuture<'a, Result<Option<Vec<crate::payments::bill::BillLine>>, String>> {
        Box::pin(async { Err("no bill in these tests".to_string()) })
    }
    fn check(&self) -> BoxFuture<'_, Result<(), crate::payments::CallError>> {
        Box::pin(async { Ok(()) })
    }
}

fn paid() -> Result<Answer, String> {
    Ok(Answer::Paid {
        trade_no: "2026120522001".into(),
        buyer: Some("159****5620".into()),
        amount: None,
    })
}

#[tokio::test]
async fn a_payment_for_another_amount_is_not_taken_and_the_order_is_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let other_amount = Ok(Answer::Paid {
        trade_no: "2026120522002".into(),
        buyer: None,
        amount: Some(tallybox_core::money::Amount::from_minor(1).unwrap()),
    });
    let provider = Arc::new(Scripted::with(
        vec![other_amount.clone()],
        vec![other_amount],
        vec![Ok(())],
    ));
    let c = coordinator(dir.path(), Arc::clone(&provider), Duration::from_millis(100));
    let (_, request) = code_sale(1000);
    let answer = c.handle(&t("T1"), request).await;
    assert_eq!(
        status(&answer),
        (TxnStatus::Reversed, reason::CODE_CANCELLED.to_string())
    );
    assert_eq!(provider.count("cancel"), 1);
}

fn coordinator(dir: &std::path::Path, provider: Arc<Scripted>, wait: Duration) -> Coordinator<SimAcquirer> {
    let store = StoreHandle::spawn(Store::open(dir).unwrap()).unwrap();
    let codes = Codes::new(wait, Duration::from_millis(20)).with(Provider::Alipay, provider);
    let settings = crate::coordinator::Settings {
        codes,
        ..super::super::tests::settings()
    };
    Coordinator::new(store, SimAcquirer::default(), settings)
}

fn code_sale(amount: u64) -> (RequestId, Request) {
    let id = RequestId::new();
    let request = Request::CodeSale(requests::CodeSale {
        request_id: id.clone(),
        amount: tallybox_core::money::Amount::from_minor(amount).unwrap(),
        currency: "CNY".into(),
        code: "281234567890120000".into(),
        supervisor_pin: None,
        split: None,
    });
    (id, request)
}

fn t(id: &str) -> TerminalId {
    TerminalId::parse(id).unwrap()
}

fn status(answer: &Option<Response>) -> (TxnStatus, String) {
    match answer {
        Some(Response::Outcome(o)) => (o.status, o.response_code.to_string()),
        other => panic!("not an outcome: {other:?}"),
    }
}

#[tokio::test]
async fn a_payment_without_an_answer_is_asked_about_and_paid_once() {
    let dir = tempfile::tempdir().unwrap();
    let provider = Arc::new(Scripted::with(
        vec![Err("connection reset".into())],
        vec![Err("timed out".into()), paid()],
        vec![Ok(())],
    ));
    let c = coordinator(dir.path(), Arc::clone(&provider), Duration::from_secs(5));
    let (id, request) = code_sale(4250);
    let answer = c.handle(&t("T1"), request.clone()).await;
    assert_eq!(status(&answer), (TxnStatus::Approved, "00".into()));
    assert_eq!((provider.count("pay"), provider.count("cancel")), (1, 0));
    // A repeat of the request gets the stored sale, and the provider hears nothing.
    let again = c.handle(&t("T1"), request).await;
    assert_eq!(status(&again), (TxnStatus::Approved, "00".into()));
    assert_eq!(provider.count("pay"), 1);
    let Some(Response::Outcome(o)) = again else {
        unreachable!()
    };
    assert_eq!(o.request_id, id);
}

#[tokio::test]
async fn a_failed_cancel_leaves_it_pending_unanswered_until_the_sweep_settles_it() {
    let dir = tempfile::tempdir().unwrap();
    let provider = Arc::new(Scripted::with(
        vec![Ok(Answer::Waiting)],
        vec![Ok(Answer::Waiting)],
        vec![Err("gateway down".into())],
    ));
    let c = coordinator(dir.path(), Arc::clone(&provider), Duration::from_millis(100));
    let (_, request) = code_sale(1000);
    assert!(
        c.handle(&t("T1"), request).await.is_none(),
        "no answer while nobody knows: never 'not charged'"
    );
    // The provider comes back: the sweep asks, the order is still open, it cancels.
    *provider.cancel.lock().unwrap() = vec![Ok(())].into();
    assert_eq!(c.reverse_leftovers().await.unwrap(), 1);
    let txns = c.store(|s| s.pending()).await.unwrap();
    assert!(txns.is_empty(), "settled: {txns:?}");
    assert_eq!(provider.count("pay"), 1, "never paid again");
}

#[tokio::test]
async fn a_cancel_from_another_checkout_is_ignored_and_the_cashiers_own_stops_the_wait() {
    let dir = tempfile::tempdir().unwrap();
    let provider = Arc::new(Scripted::with(
        vec![Ok(Answer::Waiting)],
        vec![Ok(Answer::Waiting)],
        vec![Ok(())],
    ));
    let c = Arc::new(coordinator(
        dir.path(),
        Arc::clone(&provider),
        Duration::from_secs(30),
    ));
    let (id, request) = code_sale(1000);
    let sale = tokio::spawn({
        let c = Arc::clone(&c);
        async move { c.handle(&t("T1"), request).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let cancel = |from: &str| {
        let request = Request::CancelCode(requests::CancelCode {
            request_id: RequestId::new(),
            sale: id.clone(),
        });
        (t(from), request)
    };
    let (other, request) = cancel("T2");
    assert!(c.handle(&other, request).await.is_none());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!sale.is_finished(), "T2 cannot stop T1's sale");
    let (own, request) = cancel("T1");
    c.handle(&own, request).await;
    let answer = tokio::time::timeout(Duration::from_secs(5), sale)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        status(&answer),
        (TxnStatus::Reversed, reason::CODE_CANCELLED.to_string())
    );
    assert_eq!(provider.count("cancel"), 1);
}

#[tokio::test]
async fn the_buyer_paying_as_the_cancel_fails_is_paid_not_a_silent_charge() {
    let dir = tempfile::tempdir().unwrap();
    let provider = Arc::new(Scripted::with(
        vec![Ok(Answer::Waiting)],
        vec![Ok(Answer::Waiting), Ok(Answer::Waiting), paid()],
        vec![Err("ACQ.TRADE_STATUS_ERROR".into())],
    ));
    let c = coordinator(dir.path(), Arc::clone(&provider), Duration::from_millis(50));
    let (_, request) = code_sale(1000);
    let answer = c.handle(&t("T1"), request).await;
    assert_eq!(status(&answer), (TxnStatus::Approved, "00".into()));
}

#[tokio::test]
async fn a_refund_without_an_answer_is_asked_again_with_the_same_number_and_refunds_once() {
    let dir = tempfile::tempdir().unwrap();
    let provider = Arc::new(Scripted::with(vec![paid()], vec![paid()], vec![Ok(())]));
    *provider.refund.lock().unwrap() = vec![Err("timed out".into()), paid()].into();
    let c = coordinator(dir.path(), Arc::clone(&provider), Duration::from_secs(5));
    let (_, request) = code_sale(4250);
    c.handle(&t("T1"), request).await;
    let refund = Request::Refund(requests::Refund {
        request_id: RequestId::new(),
        trace_no: 1,
        amount: tallybox_core::money::Amount::from_minor(2000).unwrap(),
        card: None,
        supervisor_pin: Some("8888".into()),
        order: None,
    });
    assert!(c.handle(&t("T1"), refund).await.is_none(), "not known yet");
    assert_eq!(c.reverse_leftovers().await.unwrap(), 1);
    let calls = provider.calls.lock().unwrap().clone();
    let refunds: Vec<_> = calls.iter().filter(|c| c.starts_with("refund")).collect();
    assert_eq!(refunds.len(), 2);
    assert_eq!(
        refunds[0], refunds[1],
        "the same refund number and amount both times"
    );
    assert!(refunds[0].ends_with(" 2000"));
}
