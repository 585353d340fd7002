//! The coordinator's money rules, with the simulated acquirer and a real store.

use super::*;
use crate::acquirer::sim::SimAcquirer;
use crate::acquirer::{AuthResponse, BatchTotals, Reversal};
use tallybox_core::card::{test_cards, EntryMode};
use tallybox_core::protocol::requests;

fn coordinator(dir: &std::path::Path) -> Coordinator<SimAcquirer> {
    coordinator_with(dir, SimAcquirer::default())
}

fn coordinator_with<A: Acquirer>(dir: &std::path::Path, acquirer: A) -> Coordinator<A> {
    let store = StoreHandle::spawn(Store::open(dir).unwrap()).unwrap();
    Coordinator::new(store, acquirer, settings())
}

/// The store's settings in these tests: supervisor PIN 8888, CNY.
pub(super) fn settings() -> Settings {
    {
        Settings {
            shop: std::sync::Arc::new(std::sync::RwLock::new(crate::shop::Shop {
                name: "Corner Shop".into(),
                address: String::new(),
                slip_header: Vec::new(),
                slip_footer: Vec::new(),
                supervisor_pin_hash: Some(crate::passwords::hash("8888").unwrap()),
                cashier_sign_on: false,
                pairing_required: false,
                managers_unfreeze: false,
                time_zone: None,
                merchant_id: "898000000000001".into(),
                public_url: "http://tallybox.local".into(),
            })),
            currency: tallybox_core::money::Currency::CNY,
            max_sale: Amount::from_minor(5_000_000).unwrap(),
            acquirer_timeout: Duration::from_millis(4_000),
            fraud: fraud::SharedRules::new(Default::default()),
            // T1 is paired; the others are not.
            pin_keys: PinKeys(std::sync::Arc::new(|t: &TerminalId| {
                (t.as_str() == "T1").then_some(T1_PIN_KEY)
            })),
            orders: Default::default(),
            codes: crate::payments::Codes::new(Duration::from_secs(60), Duration::from_millis(3_000)),
            news: None,
        }
    }
}

/// The PIN key T1 derives from its pairing key.
const T1_PIN_KEY: tallybox_core::card::pin_block::PinKey = [0x5A; 16];

fn sale(card: &str, minor: u64) -> Request {
    Request::Sale(requests::Sale {
        request_id: RequestId::new(),
        amount: Amount::from_minor(minor).unwrap(),
        currency: "CNY".into(),
        card: test_cards::by_name(card).unwrap().read(EntryMode::Swipe),
        pin_block: None,
        supervisor_pin: None,
        split: None,
    })
}

fn t1() -> TerminalId {
    TerminalId::parse("T1").unwrap()
}

fn outcome(r: Option<Response>) -> Outcome {
    match r {
        Some(Response::Outcome(o)) => o,
        other => panic!("expected an outcome, got {other:?}"),
    }
}

/// Every transaction, read back through a connection of its own.
fn rows(dir: &std::path::Path) -> Vec<Txn> {
    Store::open(dir).unwrap().list(&Default::default()).unwrap().items
}

#[tokio::test]
async fn an_approved_sale_answers_with_its_receipt_and_a_repeat_gets_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let c = coordinator(dir.path());
    let request = sale("approved", 1250);
    let first = outcome(c.handle(&t1(), request.clone()).await);
    assert_eq!(first.status, TxnStatus::Approved);
    let receipt = first.receipt.clone().unwrap();
    assert_eq!(receipt.merchant_name, "Corner Shop");
    assert_eq!(receipt.amount.minor(), 1250);
    assert_eq!(receipt.auth_code.len(), 6);
    let again = outcome(c.handle(&t1(), request).await);
    assert_eq!(again, first);
    assert_eq!(rows(dir.path()).len(), 1);
}

#[tokio::test]
async fn a_reused_id_for_another_amount_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let c = coordinator(dir.path());
    let request = sale("approved", 1250);
    c.handle(&t1(), request.clone()).await;
    let Request::Sale(requests::Sale {
        request_id,
        currency,
        card,
        ..
    }) = request
    else {
        unreachable!()
    };
    let other = Request::Sale(requests::Sale {
        request_id,
        amount: Amount::from_minor(99).unwrap(),
        currency,
        card,
        pin_block: None,
        supervisor_pin: None,
        split: None,
    });
    match c.handle(&t1(), other).await {
        Some(Response::Error {
            code: ErrorCode::DuplicateRequestId,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(rows(dir.path()).len(), 1);
}

#[tokio::test]
async fn declines_are_stored_with_their_code() {
    let dir = tempfile::tempdir().unwrap();
    let c = coordinator(dir.path());
    for (card, code) in [
        ("lost", "41"),
        ("frozen", "43"),
        ("expired", "54"),
        ("invalid", "14"),
        ("pin", "55"),
    ] {
        let o = outcome(c.handle(&t1(), sale(card, 100)).await);
        assert_eq!(
            (o.status, o.response_code.as_str()),
            (TxnStatus::Declined, code),
            "{card}"
        );
        assert!(o.receipt.is_none());
    }
    assert!(rows(dir.path()).iter().all(|t| t.status == TxnStatus::Declined));
}

#[tokio::test(start_paused = true)]
async fn a_silent_acquirer_ends_reversed_and_not_charged() {
    let dir = tempfile::tempdir().unwrap();
    let c = coordinator(dir.path());
    let o = outcome(c.handle(&t1(), sale("no-answer", 100)).await);
    assert_eq!(
        (o.status, o.response_code),
        (TxnStatus::Reversed, reason::NOT_CHARGED)
    );
    assert_eq!(rows(dir.path())[0].status, TxnStatus::Reversed);
}

#[tokio::test(start_paused = true)]
async fn a_copy_arriving_while_the_first_is_in_flight_is_not_answered_twice() {
    let dir = tempfile::tempdir().unwrap();
    let c = coordinator(dir.path());
    let request = sale("slow", 100);
    let tid = t1();
    let (a, b) = tokio::join!(c.handle(&tid, request.clone()), c.handle(&tid, request.clone()));
    let answered: Vec<_> = [a, b].into_iter().flatten().collect();
    assert_eq!(answered.len(), 1, "{answered:?}");
    assert_eq!(rows(dir.path()).len(), 1);
    // After it finished, a copy gets the stored answer.
    assert_eq!(
        outcome(c.handle(&t1(), request).await).status,
        TxnStatus::Approved
    );
}

#[tokio::test]
async fn bad_amounts_are_refused_before_anything_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let c = coordinator(dir.path());
    for minor in [0, 5_000_001] {
        match c.handle(&t1(), sale("approved", minor)).await {
            Some(Response::Error {
                code: ErrorCode::InvalidAmount,
                ..
            }) => {}
            other => panic!("{minor}: {other:?}"),
        }
    }
    assert!(rows(dir.path()).is_empty());
}

#[tokio::test]
async fn a_recalled_id_that_never_arrived_can_never_charge_later() {
    let dir = tempfile::tempdir().unwrap();
    let c = coordinator(dir.path());
    let request = sale("approved", 100);
    let request_id = request.request_id().unwrap().clone();
    let o = outcome(
        c.handle(&t1(), Request::Recall(requests::Recall { request_id }))
            .await,
    );
    assert_eq!(
        (o.status, o.response_code),
        (TxnStatus::Failed, reason::NOT_RECEIVED)
    );
    let late = outcome(c.handle(&t1(), request).await);
    assert_eq!(late.status, TxnStatus::Failed);
    assert!(rows(dir.path()).is_empty());
}

#[tokio::test]
async fn a_recall_of_a_finished_sale_returns_its_receipt() {
    let dir = tempfile::tempdir().unwrap();
    let c = coordinator(dir.path());
    let request = sale("approved", 100);
    let request_id = request.request_id().unwrap().clone();
    let first = outcome(c.handle(&t1(), request).await);
    let recalled = outcome(
        c.handle(&t1(), Request::Recall(requests::Recall { request_id }))
            .await,
    );
    assert_eq!(recalled.receipt, first.receipt);
}

/// A card sale of `minor` on T1 written `pending`, as the coordinator
/// writes one before it asks the acquirer.
fn begin_pending(store: &mut Store, minor: u64) -> Result<Txn, StoreError> {
    let card = test_cards::by_name("approved").unwrap().read(EntryMode::Swipe);
    store.begin(&NewTxn {
        request_id: &RequestId::new(),
        terminal_id: &t1(),
        kind: TxnKind::Sale,
        amount: Amount::from_minor(minor).unwrap(),
        currency: "CNY",
        card: &card,
        original_id: None,
        split: None,
    })
}

#[tokio::test]
async fn pending_rows_left_by_a_crash_are_reversed_at_start() {
    let dir = tempfile::tempdir().unwrap();
    {
        begin_pending(&mut Store::open(dir.path()).unwrap(), 100).unwrap();
    }
    let c = coordinator(dir.path());
    assert_eq!(c.reverse_leftovers().await.unwrap(), 1);
    assert_eq!(rows(dir.path())[0].status, TxnStatus::Reversed);
    assert_eq!(c.reverse_leftovers().await.unwrap(), 0);
    assert_eq!(Store::open(dir.path()).unwrap().verify_audit().unwrap(), 2);
}

/// A card that lost the history below the database kept a sale's pending
/// row: it waits for the checkouts' records (which may hold it approved and
/// printed) and is reversed only once the owner accepts the loss.
#[tokio::test]
async fn a_pending_row_is_not_reversed_while_the_history_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let old = dir.path().join("old.db");
    {
        let c = coordinator(dir.path());
        c.store(|s| begin_pending(s, 100)).await.unwrap();
        Store::open(dir.path())
            .unwrap()
            .connection()
            .execute("VACUUM INTO ?1", [old.display().to_string()])
            .unwrap();
        // A later sale the card then loses, its witness kept.
        let later = outcome(c.handle(&t1(), sale("approved", 200)).await);
        assert_eq!(later.status, TxnStatus::Approved);
    }
    for gone in ["tallybox.db-wal", "tallybox.db-shm"] {
        let _ = std::fs::remove_file(dir.path().join(gone));
    }
    std::fs::rename(&old, dir.path().join("tallybox.db")).unwrap();

    let c = coordinator(dir.path());
    assert_eq!(c.reverse_leftovers().await.unwrap(), 0);
    assert_eq!(rows(dir.path())[0].status, TxnStatus::Pending);
    assert!(c.store(|s| s.accept_history_loss("owner")).await.unwrap());
    assert_eq!(c.reverse_leftovers().await.unwrap(), 1);
    assert_eq!(rows(dir.path())[0].status, TxnStatus::Reversed);
}

#[tokio::test]
async fn three_wrong_pins_and_the_card_is_refused_for_the_day() {
    let dir = tempfile::tempdir().unwrap();
    let c = coordinator(dir.path());
    let card = test_cards::by_name("pin").unwrap().read(EntryMode::Swipe);
    let with_pin = |pin: &str| {
        Request::Sale(requests::Sale {
            request_id: RequestId::new(),
            amount: Amount::from_minor(100).unwrap(),
            currency: "CNY".into(),
            card: card.clone(),
            pin_block: Some(
                tallybox_core::card::pin_block::encrypt(pin, card.pan.digits(), &T1_PIN_KEY).unwrap(),
            ),
            supervisor_pin: None,
            split: None,
        })
    };
    for _ in 0..3 {
        let o = outcome(c.handle(&t1(), with_pin("9999")).await);
        assert_eq!(o.response_code, ResponseCode::WRONG_PIN);
    }
    // Even the right PIN now: refused at the hub, never sent to the acquirer.
    let o = outcome(c.handle(&t1(), with_pin("1234")).await);
    assert_eq!(
        (o.status, o.response_code),
        (TxnStatus::Failed, reason::PIN_TRIES)
    );
    assert_eq!(rows(dir.path()).len(), 3, "the refused try is not a transaction");
    // Other cards are not affected.
    let o = outcome(c.handle(&t1(), sale("approved", 100)).await);
    assert_eq!(o.status, TxnStatus::Approved);
}

#[tokio::test]
async fn a_card_testing_burst_is_blocked_and_freezes_that_terminal_only() {
    let dir = tempfile::tempdir().unwrap();
    let c = coordinator(dir.path());
    // Someone tries numbers: ten declines in a row at T1.
    for _ in 0..10 {
        let o = outcome(c.handle(&t1(), sale("invalid", 100)).await);
        assert_eq!(o.status, TxnStatus::Declined);
    }
    let o = outcome(c.handle(&t1(), sale("invalid", 100)).await);
    assert_eq!(
        (o.status, o.response_code),
        (TxnStatus::Failed, reason::FRAUD_BLOCKED),
        "the eleventh try is refused"
    );
    // T1 is now frozen, even for a good card; T2 sells.
    let o = outcome(c.handle(&t1(), sale("approved", 100)).await);
    assert_eq!(o.response_code, reason::FROZEN);
    let t2 = TerminalId::parse("T2").unwrap();
    assert_eq!(
        outcome(c.handle(&t2, sale("approved", 100)).await).status,
        TxnStatus::Approved
    );
    let mut store = Store::open(dir.path()).unwrap();
    assert!(store.frozen(&t1()).unwrap().unwrap().contains("declines"));
    let hits = store.fraud_hits("0000", "9999").unwrap();
    let action = |rule: &str| hits.iter().find(|h| h.rule == rule).map(|h| h.action.clone());
    assert_eq!(action("card_testing").as_deref(), Some("blocked"));
    // The same number five times is also noted, and only noted by default.
    assert_eq!(action("same_card").as_deref(), Some("allowed"));
    // The owner unfreezes it; the chain records all of it.
    assert!(store.unfreeze("T1").unwrap());
    drop(store);
    assert_eq!(
        outcome(c.handle(&t1(), sale("approved", 100)).await).status,
        TxnStatus::Approved
    );
    assert!(Store::open(dir.path()).unwrap().verify_audit().is_ok());
}

#[tokio::test]
async fn a_rule_set_to_ask_the_supervisor_lets_the_sale_through_only_with_their_pin() {
    let dir = tempfile::tempdir().unwrap();
    let store = StoreHandle::spawn(Store::open(dir.path()).unwrap()).unwrap();
    let mut settings = coordinator(dir.path()).settings().clone();
    settings.fraud = fraud::SharedRules::new(fraud::FraudRules {
        same_card_max: 1,
        same_card_action: fraud::Action::AskSupervisor,
        ..Default::default()
    });
    let c = Coordinator::new(store, SimAcquirer::default(), settings);
    assert_eq!(
        outcome(c.handle(&t1(), sale("approved", 100)).await).status,
        TxnStatus::Approved
    );
    let held = outcome(c.handle(&t1(), sale("approved", 200)).await);
    assert_eq!(
        (held.status, held.response_code.as_str()),
        (TxnStatus::Failed, "XV")
    );
    let with = |pin: &str| match sale("approved", 200) {
        Request::Sale(requests::Sale {
            request_id,
            amount,
            currency,
            card,
            pin_block,
            ..
        }) => Request::Sale(requests::Sale {
            request_id,
            amount,
            currency,
            card,
            pin_block,
            supervisor_pin: Some(pin.into()),
            split: None,
        }),
        _ => unreachable!(),
    };
    assert_eq!(
        outcome(c.handle(&t1(), with("1111")).await).response_code,
        reason::SUPERVISOR_PIN
    );
    assert_eq!(
        outcome(c.handle(&t1(), with("8888")).await).status,
        TxnStatus::Approved
    );
}

#[tokio::test]
async fn refunds_above_the_days_sales_are_a_fraud_hit_and_can_be_blocked() {
    let dir = tempfile::tempdir().unwrap();
    let store = StoreHandle::spawn(Store::open(dir.path()).unwrap()).unwrap();
    let mut settings = coordinator(dir.path()).settings().clone();
    settings.fraud = fraud::SharedRules::new(fraud::FraudRules {
        refunds_over_sales_action: fraud::Action::Block,
        ..Default::default()
    });
    let c = Coordinator::new(store, SimAcquirer::default(), settings);
    let sold = outcome(c.handle(&t1(), sale("approved", 10_000)).await);
    let trace = sold.receipt.expect("approved").trace_no;
    let refund = |minor: u64| {
        Request::Refund(requests::Refund {
            request_id: RequestId::new(),
            trace_no: trace,
            amount: Amount::from_minor(minor).unwrap(),
            card: Some(test_cards::by_name("approved").unwrap().read(EntryMode::Swipe)),
            supervisor_pin: Some("8888".into()),
            order: None,
        })
    };
    // Today's sales cover a partial refund.
    assert_eq!(
        outcome(c.handle(&t1(), refund(1_000)).await).status,
        TxnStatus::Approved
    );
    // The sale was yesterday's: today has no takings to refund against.
    rusqlite::Connection::open(dir.path().join("tallybox.db"))
        .unwrap()
        .execute(
            "UPDATE transactions SET local_time = '2000-01-01 12:00:00' WHERE kind = 'sale'",
            [],
        )
        .unwrap();
    let refused = outcome(c.handle(&t1(), refund(2_000)).await);
    assert_eq!(refused.response_code, reason::FRAUD_BLOCKED);
    let hits = Store::open(dir.path())
        .unwrap()
        .fraud_hits("0000", "9999")
        .unwrap();
    assert!(
        hits.iter()
            .any(|h| h.rule == fraud::REFUNDS_OVER_SALES && h.action == "blocked"),
        "{hits:?}"
    );
}

#[tokio::test]
async fn a_refund_the_owner_ordered_needs_no_pin_goes_through_once_at_the_checkout_ordered() {
    let dir = tempfile::tempdir().unwrap();
    let c = coordinator(dir.path());
    let sold = outcome(c.handle(&t1(), sale("approved", 5_000)).await);
    let sale = sold.receipt.expect("approved");
    let t2 = TerminalId::parse("T2").unwrap();
    let amount = Amount::from_minor(2_000).unwrap();
    let refund = |request_id: RequestId, order: &str| {
        Request::Refund(requests::Refund {
            request_id,
            trace_no: sale.trace_no,
            amount,
            card: Some(test_cards::by_name("approved").unwrap().read(EntryMode::Swipe)),
            supervisor_pin: None,
            order: Some(order.into()),
        })
    };
    // An order nobody placed is refused, with nothing written.
    let forged = outcome(c.handle(&t2, refund(RequestId::new(), "k2v7q0xm")).await);
    assert_eq!(
        (forged.status, forged.response_code),
        (TxnStatus::Failed, reason::ORDER_GONE)
    );
    // The owner orders it at T2 (another checkout than the sale's).
    let sale_id = Store::open(dir.path())
        .unwrap()
        .list(&Default::default())
        .unwrap()
        .items[0]
        .id;
    let order = c.settings().orders.place(
        t2.clone(),
        TxnKind::Refund,
        t1(),
        sale.trace_no,
        sale_id,
        amount,
        "owner",
    );
    // Not at T1, whose sale it is: the order was for T2.
    let elsewhere = outcome(c.handle(&t1(), refund(RequestId::new(), &order)).await);
    assert_eq!(elsewhere.response_code, reason::ORDER_GONE);
    let id = RequestId::new();
    let done = outcome(c.handle(&t2, refund(id.clone(), &order)).await);
    assert_eq!((done.status, done.kind), (TxnStatus::Approved, TxnKind::Refund));
    // The same request again gets the same answer; another one is refused.
    let again = outcome(c.handle(&t2, refund(id, &order)).await);
    assert_eq!(again.status, TxnStatus::Approved);
    let second = outcome(c.handle(&t2, refund(RequestId::new(), &order)).await);
    assert_eq!(second.response_code, reason::ORDER_GONE);
    let store = Store::open(dir.path()).unwrap();
    let (_, refunded) = store.undone(sale_id).unwrap();
    assert_eq!(refunded, 2_000, "refunded once");
}

fn sign_on(no: &str, pin: &str) -> Request {
    Request::SignOn(requests::SignOn {
        request_id: RequestId::new(),
        cashier: no.into(),
        pin: pin.into(),
    })
}

#[tokio::test]
async fn a_signed_on_cashier_is_stamped_on_sales_and_a_required_sign_on_refuses_without() {
    let dir = tempfile::tempdir().unwrap();
    let c = coordinator(dir.path());
    let hash = crate::passwords::hash("2468").unwrap();
    Store::open(dir.path())
        .unwrap()
        .set_cashier("7", "Ann", Some(&hash), "owner")
        .unwrap();
    c.settings().shop.write().unwrap().cashier_sign_on = true;

    let refused = outcome(c.handle(&t1(), sale("approved", 100)).await);
    assert_eq!(refused.response_code, reason::SIGN_ON_FIRST);
    match c.handle(&t1(), sign_on("7", "1357")).await {
        Some(Response::Cashier {
            cashier: None,
            refused: Some(code),
            ..
        }) => assert_eq!(code, reason::CASHIER_WRONG),
        other => panic!("{other:?}"),
    }
    match c.handle(&t1(), sign_on("7", "2468")).await {
        Some(Response::Cashier {
            cashier: Some(ann), ..
        }) => assert_eq!(ann.name, "Ann"),
        other => panic!("{other:?}"),
    }
    let sold = outcome(c.handle(&t1(), sale("approved", 1250)).await);
    assert_eq!(sold.receipt.unwrap().cashier.as_deref(), Some("7"));
    // A restart of the checkout: the sign-in says who is still on.
    let signed_in = c
        .handle(
            &t1(),
            Request::SignIn(requests::SignIn {
                request_id: RequestId::new(),
                version: "t".into(),
                trace_floor: None,
            }),
        )
        .await;
    assert!(matches!(
        signed_in,
        Some(Response::SignedIn { cashier: Some(_), .. })
    ));
    c.handle(
        &t1(),
        Request::SignOff(requests::SignOff {
            request_id: RequestId::new(),
        }),
    )
    .await;
    let refused = outcome(c.handle(&t1(), sale("approved", 100)).await);
    assert_eq!(refused.response_code, reason::SIGN_ON_FIRST);
    let stamped: Vec<_> = rows(dir.path()).into_iter().map(|t| t.cashier).collect();
    assert_eq!(stamped, vec![Some("7".to_string())], "refusals write nothing");
}

/// A checkout's sign-in says how far its trace numbers went: a store that
/// lost some below it (its card did not keep them) goes on past them, and
/// a floor behind, out of range or from before a wrap moves nothing.
#[tokio::test]
async fn the_checkouts_trace_floor_moves_its_trace_numbers_on_and_never_back() {
    let dir = tempfile::tempdir().unwrap();
    let c = coordinator(dir.path());
    let trace = |o: Outcome| o.receipt.unwrap().trace_no;
    assert_eq!(trace(outcome(c.handle(&t1(), sale("approved", 100)).await)), 1);
    for (floor, next) in [(40, 40), (3, 41), (0, 42), (1_000_000, 43), (600_000, 44)] {
        let signed_in = c
            .handle(
                &t1(),
                Request::SignIn(requests::SignIn {
                    request_id: RequestId::new(),
                    version: "t".into(),
                    trace_floor: Some(floor),
                }),
            )
            .await;
        assert!(
            matches!(signed_in, Some(Response::SignedIn { .. })),
            "{signed_in:?}"
        );
        let sold = outcome(c.handle(&t1(), sale("approved", 100)).await);
        assert_eq!(trace(sold), next, "after a floor of {floor}");
    }
}

#[tokio::test]
async fn a_full_database_refuses_with_not_charged_and_a_late_copy_stays_refused() {
    let dir = tempfile::tempdir().unwrap();
    let c = coordinator(dir.path());
    assert_eq!(
        outcome(c.handle(&t1(), sale("approved", 100)).await).status,
        TxnStatus::Approved
    );
    // The database may grow no more: SQLite answers "database or disk is full".
    c.store(|s| {
        let pages: i64 = s.connection().query_row("PRAGMA page_count", [], |r| r.get(0))?;
        s.connection()
            .query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()))?;
        Ok(())
    })
    .await
    .unwrap();
    let mut refused = None;
    for _ in 0..500 {
        let request = sale("approved", 200);
        let o = outcome(c.handle(&t1(), request.clone()).await);
        if o.status != TxnStatus::Approved {
            refused = Some((request, o));
            break;
        }
    }
    let (request, o) = refused.expect("the full database refused a sale");
    assert_eq!(
        (o.status, o.response_code),
        (TxnStatus::Failed, reason::HUB_STORAGE)
    );
    assert!(o.receipt.is_none());
    // Room again: the same request (a late copy) stays refused, a new one sells.
    c.store(|s| {
        Ok(s.connection()
            .query_row("PRAGMA max_page_count = 1000000", [], |_| Ok(()))?)
    })
    .await
    .unwrap();
    let again = outcome(c.handle(&t1(), request.clone()).await);
    assert_eq!(again.response_code, reason::HUB_STORAGE);
    // Written pending before the disk gave out (then reversed at the acquirer),
    // or never written: never approved, and nothing pending once swept.
    c.reverse_leftovers().await.unwrap();
    let id = request.request_id().unwrap();
    let row = rows(dir.path()).into_iter().find(|t| t.request_id == *id);
    assert!(
        row.as_ref().is_none_or(|t| t.status == TxnStatus::Reversed),
        "{row:?}"
    );
    assert_eq!(
        outcome(c.handle(&t1(), sale("approved", 300)).await).status,
        TxnStatus::Approved
    );
}

#[tokio::test]
async fn a_clock_behind_the_last_transaction_refuses_until_it_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let c = coordinator(dir.path());
    assert_eq!(
        outcome(c.handle(&t1(), sale("approved", 100)).await).status,
        TxnStatus::Approved
    );
    // As if the last sale was written an hour from now: the clock went back.
    let stamp = |offset: chrono::Duration| {
        let at = (chrono::Utc::now() + offset)
            .format("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string();
        c.store(move |s| {
            Ok(s.connection()
                .execute("UPDATE transactions SET created_at = ?1", [at])?)
        })
    };
    stamp(chrono::Duration::hours(1)).await.unwrap();
    let o = outcome(c.handle(&t1(), sale("approved", 200)).await);
    assert_eq!(
        (o.status, o.response_code),
        (TxnStatus::Failed, reason::HUB_CLOCK)
    );
    assert_eq!(rows(dir.path()).len(), 1, "nothing written");
    // Within the slack (a few minutes) sales go on.
    stamp(chrono::Duration::minutes(3)).await.unwrap();
    assert_eq!(
        outcome(c.handle(&t1(), sale("approved", 300)).await).status,
        TxnStatus::Approved
    );
}

fn settle(request_id: &RequestId) -> Request {
    Request::Settle(requests::Settle {
        request_id: request_id.clone(),
    })
}

#[tokio::test]
async fn a_settlement_cut_short_by_a_crash_is_asked_again_and_gets_the_acquirers_first_answer() {
    let dir = tempfile::tempdir().unwrap();
    let c = coordinator(dir.path());
    let t2 = TerminalId::parse("T2").unwrap();
    for (t, minor) in [(t1(), 1000), (t1(), 250), (t2.clone(), 700)] {
        let o = outcome(c.handle(&t, sale("approved", minor)).await);
        assert_eq!(o.status, TxnStatus::Approved);
    }
    // The hub noted the settlement and T1's totals reached the acquirer,
    // which settled them; then the hub died before recording anything.
    let asked = RequestId::new();
    let rid = asked.to_string();
    c.store(move |s| s.start_settlement(1, &rid)).await.unwrap();
    let rows = c.store(|s| s.batch_rows(1)).await.unwrap();
    let t1_totals = settle::totals(1, &rows).remove(0);
    assert!(c.acquirer.settle(t1_totals).await.unwrap());

    // Sales wait meanwhile: batch 1's figures must not move.
    let o = outcome(c.handle(&t1(), sale("approved", 300)).await);
    assert_eq!(
        (o.status, o.response_code),
        (TxnStatus::Failed, tallybox_core::reason::SETTLING)
    );
    // The checkout asks again with the same request: T1 gets the acquirer's
    // first answer (it forgot T1's approvals when it settled them), T2 is
    // settled now, and the batch closes balanced, once.
    let Some(Response::Settled {
        batch_no, balanced, ..
    }) = c.handle(&t1(), settle(&asked)).await
    else {
        panic!("settled");
    };
    assert_eq!((batch_no, balanced), (1, true));
    let again = c.handle(&t1(), settle(&asked)).await;
    assert!(
        matches!(
            again,
            Some(Response::Settled {
                batch_no: 1,
                balanced: true,
                ..
            })
        ),
        "{again:?}"
    );
    assert_eq!(c.store(|s| s.batch_no()).await.unwrap(), 2, "one settlement");
    let o = outcome(c.handle(&t1(), sale("approved", 300)).await);
    assert_eq!(o.status, TxnStatus::Approved, "sales go on in batch 2");
    assert_eq!(rows_in_batch(dir.path(), 2), 1);
}

fn rows_in_batch(dir: &std::path::Path, batch_no: u32) -> usize {
    rows(dir).iter().filter(|t| t.batch_no == batch_no).count()
}

#[tokio::test]
async fn the_sweep_never_reverses_a_sale_that_finished_after_it_read_the_pending_list() {
    let dir = tempfile::tempdir().unwrap();
    let c = coordinator(dir.path());
    // The sweep reads the pending list while a sale is being authorized...
    let stale = c.store(|s| begin_pending(s, 1000)).await.unwrap();
    let pending_then = vec![stale.clone()];
    // ...the acquirer approves it and the hub records it (the customer is told)...
    let auth = AuthRequest {
        kind: TxnKind::Sale,
        terminal_id: "T1".into(),
        trace_no: stale.trace_no,
        batch_no: 1,
        amount: stale.amount,
        card: test_cards::by_name("approved").unwrap().read(EntryMode::Swipe),
        pin_block: None,
        pin_key_check: None,
        original: None,
        at: chrono::Utc::now(),
    };
    let answer = c.acquirer.authorize(auth).await.unwrap();
    assert!(answer.approved());
    c.end_here(stale.id, TxnStatus::Approved, answer.response_code)
        .await
        .unwrap();
    // ...then the sweep gets to it: nothing is reversed at the acquirer.
    assert_eq!(c.reverse_each(pending_then).await.unwrap(), 0);
    let rows = c.store(|s| s.batch_rows(1)).await.unwrap();
    let totals = settle::totals(1, &rows).remove(0);
    assert!(
        c.acquirer.settle(totals).await.unwrap(),
        "the acquirer still has the approval the hub recorded"
    );
}

/// The simulated acquirer, changed as a test needs: answers to sales the
/// link refuses (another amount, a wrong MAC: the simulated acquirer decides
/// and charges, the hub never sees it), or a settlement that counts at most
/// a few transactions a terminal (China UnionPay's counts 999).
#[derive(Default)]
struct Tweaked {
    inner: SimAcquirer,
    refuse_answers: bool,
    batch_limit: Option<u32>,
}

impl Acquirer for Tweaked {
    async fn pin_key(
        &self,
        terminal_id: &str,
    ) -> Result<tallybox_core::card::pin_block::PinKey, AcquirerError> {
        self.inner.pin_key(terminal_id).await
    }

    async fn authorize(&self, request: AuthRequest) -> Result<AuthResponse, AcquirerError> {
        let answer = self.inner.authorize(request).await?;
        if !self.refuse_answers {
            return Ok(answer);
        }
        Err(AcquirerError::BadAnswer(
            "the answer to 0200 trace 000001 was refused: its amount (field 4) is 000000000001, the request's 000000001000".into(),
        ))
    }

    async fn reverse(&self, reversal: Reversal) -> Result<(), AcquirerError> {
        self.inner.reverse(reversal).await
    }

    async fn settle(&self, totals: BatchTotals) -> Result<bool, AcquirerError> {
        self.inner.settle(totals).await
    }

    fn batch_limit(&self) -> Option<u32> {
        self.batch_limit
    }
}

#[tokio::test]
async fn a_refused_answer_is_reversed_and_the_cashier_told_not_charged() {
    let dir = tempfile::tempdir().unwrap();
    let c = coordinator_with(
        dir.path(),
        Tweaked {
            refuse_answers: true,
            ..Tweaked::default()
        },
    );
    let o = outcome(c.handle(&t1(), sale("approved", 1000)).await);
    assert_eq!(
        (o.status, o.response_code),
        (TxnStatus::Reversed, reason::NOT_CHARGED)
    );
    assert!(
        o.receipt.is_none_or(|r| r.auth_code.is_empty()),
        "no approval to print"
    );
    // The acquirer charged it and then took the reversal: the batch is empty on both sides.
    let rows = c.store(|s| s.batch_rows(1)).await.unwrap();
    let totals = settle::totals(1, &rows).into_iter().next();
    let totals = totals.unwrap_or(BatchTotals {
        terminal_id: "T1".into(),
        batch_no: 1,
        ..Default::default()
    });
    assert_eq!((totals.sales_count, totals.sales_minor), (0, 0));
    assert!(
        c.acquirer.settle(totals).await.unwrap(),
        "the acquirer holds no charge either"
    );
}

#[tokio::test]
async fn a_pin_reaches_the_acquirer_under_its_key_and_only_from_a_paired_checkout() {
    let dir = tempfile::tempdir().unwrap();
    let c = coordinator(dir.path());
    let card = test_cards::by_name("pin").unwrap().read(EntryMode::Swipe);
    let with_pin = |key: &tallybox_core::card::pin_block::PinKey| {
        Request::Sale(requests::Sale {
            request_id: RequestId::new(),
            amount: Amount::from_minor(100).unwrap(),
            currency: "CNY".into(),
            card: card.clone(),
            pin_block: Some(tallybox_core::card::pin_block::encrypt("1234", card.pan.digits(), key).unwrap()),
            supervisor_pin: None,
            split: None,
        })
    };
    // The simulated acquirer reads PINs under its own random key: the right
    // PIN approves only because the hub translated it.
    let o = outcome(c.handle(&t1(), with_pin(&T1_PIN_KEY)).await);
    assert_eq!(o.status, TxnStatus::Approved, "{o:?}");
    // A block under any other key does not open: refused at the hub, not sent.
    let o = outcome(c.handle(&t1(), with_pin(&[0x11; 16])).await);
    assert_eq!(
        (o.status, o.response_code),
        (TxnStatus::Failed, reason::PIN_UNSECURED)
    );
    // An unpaired checkout has no PIN key: nothing goes out.
    let t2 = TerminalId::parse("T2").unwrap();
    let o = outcome(c.handle(&t2, with_pin(&T1_PIN_KEY)).await);
    assert_eq!(
        (o.status, o.response_code),
        (TxnStatus::Failed, reason::PIN_UNSECURED)
    );
}

#[tokio::test]
async fn a_batch_as_large_as_the_acquirer_counts_is_settled_by_itself() {
    let dir = tempfile::tempdir().unwrap();
    let c = std::sync::Arc::new(coordinator_with(
        dir.path(),
        Tweaked {
            batch_limit: Some(3),
            ..Tweaked::default()
        },
    ));
    let stop = tokio_util::sync::CancellationToken::new();
    tokio::spawn(crate::jobs::full_batches(std::sync::Arc::clone(&c), stop.clone()));
    for minor in [100, 200] {
        let o = outcome(c.handle(&t1(), sale("approved", minor)).await);
        assert_eq!(o.status, TxnStatus::Approved);
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        c.store(|s| s.batch_no()).await.unwrap(),
        1,
        "two sales: the batch stays open"
    );
    let o = outcome(c.handle(&t1(), sale("approved", 300)).await);
    assert_eq!(o.status, TxnStatus::Approved);
    let mut batch = 1;
    for _ in 0..50 {
        batch = c.store(|s| s.batch_no()).await.unwrap();
        if batch == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        batch, 2,
        "the third sale filled the batch: settled, a new one open"
    );
    let settled = c.store(|s| s.batch_rows(1)).await.unwrap();
    assert_eq!(settled.iter().map(|r| r.count).sum::<u32>(), 3);
    stop.cancel();
}

fn cash_sale(minor: u64, tendered: u64) -> requests::CashSale {
    requests::CashSale {
        request_id: RequestId::new(),
        amount: Amount::from_minor(minor).unwrap(),
        currency: "CNY".into(),
        tendered: Amount::from_minor(tendered).unwrap(),
        supervisor_pin: None,
        split: None,
    }
}

#[tokio::test]
async fn a_cash_sale_is_approved_without_the_acquirer_and_a_repeat_gets_the_same_receipt() {
    let dir = tempfile::tempdir().unwrap();
    // An acquirer whose every answer the link refuses: a card sale could
    // not be approved, so an approval here never went through it.
    let refusing = Tweaked {
        refuse_answers: true,
        ..Tweaked::default()
    };
    let c = coordinator_with(dir.path(), refusing);
    let sale = cash_sale(4_250, 5_000);
    let first = outcome(c.handle(&t1(), Request::CashSale(sale.clone())).await);
    assert_eq!(first.status, TxnStatus::Approved);
    let receipt = first.receipt.clone().expect("an approved cash sale has a slip");
    assert_eq!(
        receipt.paid.change(receipt.amount),
        Some(Amount::from_minor(750).unwrap())
    );
    let again = outcome(c.handle(&t1(), Request::CashSale(sale.clone())).await);
    assert_eq!(again, first, "a repeat is answered from the store");
    assert_eq!(rows(dir.path()).len(), 1, "recorded once");
    // The same id as a card sale, or for another amount, is another request.
    let reused = Request::CashSale(requests::CashSale {
        amount: Amount::from_minor(4_000).unwrap(),
        ..sale.clone()
    });
    assert!(matches!(
        c.handle(&t1(), reused).await,
        Some(Response::Error {
            code: ErrorCode::DuplicateRequestId,
            ..
        })
    ));
    let Request::Sale(card_sale) = self::sale("approved", 4_250) else {
        unreachable!()
    };
    let as_card = Request::Sale(requests::Sale {
        request_id: sale.request_id.clone(),
        ..card_sale
    });
    assert!(matches!(
        c.handle(&t1(), as_card).await,
        Some(Response::Error {
            code: ErrorCode::DuplicateRequestId,
            ..
        })
    ));
}

#[tokio::test]
async fn cash_short_of_the_amount_or_at_a_frozen_checkout_is_refused_and_nothing_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let c = coordinator(dir.path());
    match c.handle(&t1(), Request::CashSale(cash_sale(4_250, 4_000))).await {
        Some(Response::Error {
            code: ErrorCode::InvalidAmount,
            message,
            ..
        }) => {
            assert!(message.contains("less than the amount"), "{message}")
        }
        other => panic!("expected invalid_amount, got {other:?}"),
    }
    c.store(|s| s.freeze(t1().as_str(), "counted wrong"))
        .await
        .unwrap();
    let frozen = outcome(c.handle(&t1(), Request::CashSale(cash_sale(100, 100))).await);
    assert_eq!(
        (frozen.status, frozen.response_code),
        (TxnStatus::Failed, reason::FROZEN)
    );
    assert!(rows(dir.path()).is_empty());
}

fn drawer(
    r: Option<Response>,
) -> (
    Option<ReasonCode>,
    Option<tallybox_core::protocol::DrawerCount>,
    Vec<String>,
) {
    match r {
        Some(Response::Drawer {
            refused,
            count,
            report,
            ..
        }) => (refused, count, report),
        other => panic!("expected a drawer answer, got {other:?}"),
    }
}

#[tokio::test]
async fn the_drawer_counts_the_cash_sales_since_its_last_count_once_per_request() {
    let dir = tempfile::tempdir().unwrap();
    let c = coordinator(dir.path());
    let count = |pin: &str, minor: u64| {
        Request::CountDrawer(requests::CountDrawer {
            request_id: RequestId::new(),
            supervisor_pin: pin.into(),
            counted: Amount::from_minor(minor).unwrap(),
        })
    };
    // A card sale and another checkout's cash are not this drawer's.
    outcome(c.handle(&t1(), sale("approved", 9_999)).await);
    outcome(
        c.handle(
            &TerminalId::parse("T2").unwrap(),
            Request::CashSale(cash_sale(700, 700)),
        )
        .await,
    );
    for minor in [4_250, 1_000] {
        outcome(c.handle(&t1(), Request::CashSale(cash_sale(minor, minor))).await);
    }
    let (refused, _, _) = drawer(c.handle(&t1(), count("1111", 5_250)).await);
    assert_eq!(refused, Some(reason::SUPERVISOR_PIN));
    let no_sale = Request::NoSale(requests::NoSale {
        request_id: RequestId::new(),
        supervisor_pin: "8888".into(),
    });
    assert_eq!(drawer(c.handle(&t1(), no_sale.clone()).await).0, None);
    assert_eq!(
        drawer(c.handle(&t1(), no_sale).await).0,
        None,
        "a repeat is answered"
    );
    let first = count("8888", 5_200);
    let (refused, counted, report) = drawer(c.handle(&t1(), first.clone()).await);
    assert_eq!(refused, None);
    let counted = counted.unwrap();
    assert_eq!((counted.expected.minor(), counted.difference()), (5_250, -50));
    let report = report.join("\n");
    for needle in [
        "现金销售 CASH SALES 2",
        "开钱箱 NO SALE",
        "短款 SHORT 0.50",
        "CNY 52.00",
    ] {
        assert!(report.contains(needle), "{needle:?} missing:\n{report}");
    }
    assert!(
        report
            .lines()
            .any(|l| l.starts_with("开钱箱 NO SALE") && l.ends_with(" 1")),
        "one no sale:\n{report}"
    );
    // A repeat of the count is the same count, not a second one.
    let again = drawer(c.handle(&t1(), first).await).1.unwrap();
    assert_eq!(again, counted);
    // The next count starts where this one ended.
    outcome(c.handle(&t1(), Request::CashSale(cash_sale(300, 500))).await);
    let (_, next, _) = drawer(c.handle(&t1(), count("8888", 300)).await);
    assert_eq!(next.unwrap().expected.minor(), 300);
    let counts = Store::open(dir.path())
        .unwrap()
        .drawer_counts_between("2000-01-01 00:00:00", "2999-01-01 00:00:00")
        .unwrap();
    assert_eq!(counts.len(), 2);
    assert_eq!((counts[0].cash_sales, counts[0].no_sales), (2, 1));
    assert_eq!((counts[1].cash_sales, counts[1].no_sales), (1, 0));
    assert!(counts[1].since.is_some());
}

#[tokio::test]
async fn a_cash_sale_is_voided_or_refunded_in_cash_never_to_a_card_and_the_drawer_count_nets_it() {
    let dir = tempfile::tempdir().unwrap();
    let c = coordinator(dir.path());
    let cash_trace = |o: Outcome| o.receipt.expect("approved").trace_no;
    let paid = cash_trace(outcome(
        c.handle(&t1(), Request::CashSale(cash_sale(5_000, 5_000))).await,
    ));
    let other = cash_trace(outcome(
        c.handle(&t1(), Request::CashSale(cash_sale(1_200, 2_000))).await,
    ));
    let by_card = outcome(c.handle(&t1(), sale("approved", 3_000)).await)
        .receipt
        .unwrap()
        .trace_no;
    let refund = |trace_no, minor, card: Option<&str>| {
        Request::Refund(requests::Refund {
            request_id: RequestId::new(),
            trace_no,
            amount: Amount::from_minor(minor).unwrap(),
            card: card.map(|c| test_cards::by_name(c).unwrap().read(EntryMode::Swipe)),
            supervisor_pin: Some("8888".into()),
            order: None,
        })
    };
    // Cash back for part of the cash sale: recorded at once, cash.
    let back = outcome(c.handle(&t1(), refund(paid, 2_000, None)).await);
    assert_eq!(back.status, TxnStatus::Approved);
    let receipt = back.receipt.unwrap();
    assert_eq!(
        (receipt.kind, receipt.paid.tender()),
        (TxnKind::Refund, Tender::Cash)
    );
    // Not more than is left; not to a card; a card sale not in cash.
    let too_much = outcome(c.handle(&t1(), refund(paid, 3_001, None)).await);
    assert_eq!(too_much.response_code, reason::REFUND_TOO_LARGE);
    let to_card = outcome(c.handle(&t1(), refund(paid, 100, Some("approved"))).await);
    assert_eq!(to_card.response_code, reason::OTHER_CARD);
    let card_in_cash = outcome(c.handle(&t1(), refund(by_card, 100, None)).await);
    assert_eq!(card_in_cash.response_code, reason::OTHER_CARD);
    // A void of the other cash sale, without a card, and a wrong PIN.
    let void = |pin: &str| {
        Request::Void(requests::Void {
            request_id: RequestId::new(),
            trace_no: other,
            card: None,
            supervisor_pin: Some(pin.into()),
            order: None,
            split: None,
        })
    };
    let wrong = outcome(c.handle(&t1(), void("1111")).await);
    assert_eq!(wrong.response_code, reason::SUPERVISOR_PIN);
    let voided = outcome(c.handle(&t1(), void("8888")).await);
    assert_eq!(
        (voided.status, voided.receipt.unwrap().amount.minor()),
        (TxnStatus::Approved, 1_200)
    );
    // The drawer took 50.00 + 12.00, gave back 20.00 and 12.00.
    let (_, count, _) = drawer(
        c.handle(
            &t1(),
            Request::CountDrawer(requests::CountDrawer {
                request_id: RequestId::new(),
                supervisor_pin: "8888".into(),
                counted: Amount::from_minor(3_000).unwrap(),
            }),
        )
        .await,
    );
    assert_eq!(count.unwrap().expected.minor(), 3_000);
    // The acquirer's batch holds the card sale alone.
    let rows = c.store(|s| s.batch_rows(1)).await.unwrap();
    let totals = settle::totals(1, &rows);
    assert_eq!(
        (totals.len(), totals[0].sales_minor, totals[0].refunds_minor),
        (1, 3_000, 0)
    );
}

#[tokio::test]
async fn a_split_sale_takes_no_part_beyond_what_is_owed_and_its_cash_part_is_undone_without_the_supervisor_only_while_unfinished(
) {
    let dir = tempfile::tempdir().unwrap();
    let c = coordinator(dir.path());
    let group = RequestId::new();
    let part = |minor: u64| requests::CashSale {
        split: Some(requests::SplitPart {
            group: group.clone(),
            total: Amount::from_minor(4_250).unwrap(),
        }),
        ..cash_sale(minor, minor)
    };
    let first = outcome(c.handle(&t1(), Request::CashSale(part(3_000))).await);
    assert_eq!(first.status, TxnStatus::Approved);
    let trace = first.receipt.unwrap().trace_no;
    // 12.50 is owed: 20.00 more is refused, nothing recorded.
    let over = outcome(c.handle(&t1(), Request::CashSale(part(2_000))).await);
    assert_eq!(over.response_code, reason::WRONG_AMOUNT);
    let void = |group: &RequestId| {
        Request::Void(requests::Void {
            request_id: RequestId::new(),
            trace_no: trace,
            card: None,
            supervisor_pin: None,
            order: None,
            split: Some(group.clone()),
        })
    };
    // Another group's name does not open it.
    let stranger = outcome(c.handle(&t1(), void(&RequestId::new())).await);
    assert_eq!(stranger.response_code, reason::SUPERVISOR_PIN);
    // Unfinished: the cashier undoes it without a PIN.
    let undone = outcome(c.handle(&t1(), void(&group)).await);
    assert_eq!(undone.status, TxnStatus::Approved, "{undone:?}");
    // Paid in full afterwards (30.00 + 12.50): no more undoing without the supervisor.
    let again = outcome(c.handle(&t1(), Request::CashSale(part(3_000))).await);
    let last = outcome(c.handle(&t1(), Request::CashSale(part(1_250))).await);
    assert_eq!(
        (again.status, last.status),
        (TxnStatus::Approved, TxnStatus::Approved)
    );
    let trace = again.receipt.unwrap().trace_no;
    let late = outcome(
        c.handle(
            &t1(),
            Request::Void(requests::Void {
                request_id: RequestId::new(),
                trace_no: trace,
                card: None,
                supervisor_pin: None,
                order: None,
                split: Some(group.clone()),
            }),
        )
        .await,
    );
    assert_eq!(late.response_code, reason::SUPERVISOR_PIN);
}
