//! The checkout session driven key by key, as a cashier would.

use super::*;
use tallybox_core::card::test_cards;
use tallybox_core::card::EntryMode;
use tallybox_core::protocol::requests;
use tallybox_core::protocol::{Outcome, Receipt, Tender, TxnKind, TxnStatus};

const TODAY: (u16, u8) = (2026, 11);
/// The key a pairing gave this checkout.
const PAIRING_KEY: tallybox_core::seal::Key = [5; 32];

/// A checkout's settings: CNY, 58 mm paper, English, T1.
fn config() -> SessionConfig {
    SessionConfig {
        currency: Currency::CNY,
        slip_columns: tallybox_core::slip::WIDTH,
        lang: crate::session::Lang::En,
        terminal: "T1".into(),
    }
}

/// An unpaired checkout whose hub serves unpaired checkouts: signed in, in clear.
fn unpaired_signed_in() -> Session {
    let mut s = Session::new(config());
    let sign_in = sent(&s.start("test")).unwrap();
    s.handle(
        answer(signed_in(
            sign_in.request_id().unwrap().clone(),
            "Shop",
            None,
            None,
        )),
        TODAY,
    );
    s
}

fn session() -> Session {
    let mut s = Session::new(config());
    // A paired checkout: it may sell before the hub has answered its sign-in.
    s.set_pairing(Some(&PAIRING_KEY));
    s.start("test");
    s
}

fn keys(s: &mut Session, typed: &str) -> Vec<Action> {
    typed
        .chars()
        .flat_map(|c| s.handle(Input::Key(Key::from_char(c).unwrap()), TODAY))
        .collect()
}

fn card(s: &mut Session, name: &str) -> Vec<Action> {
    let read = test_cards::by_name(name).unwrap().read(EntryMode::Swipe);
    s.handle(Input::Card(Ok(read)), TODAY)
}

fn answer(response: Response) -> Input {
    Input::Answer(Box::new(response))
}

fn last_screen(actions: &[Action]) -> String {
    actions
        .iter()
        .rev()
        .find_map(|a| match a {
            Action::Show(s) => Some(s.text()),
            _ => None,
        })
        .unwrap_or_default()
}

fn sent(actions: &[Action]) -> Option<Request> {
    actions.iter().find_map(|a| match a {
        Action::Send(r) => Some(r.clone()),
        _ => None,
    })
}

/// An approved sale's receipt for `amount` (the checkout core's tests use it too).
pub(crate) fn receipt(amount: Amount) -> Receipt {
    Receipt {
        merchant_name: "Shop".into(),
        merchant_address: String::new(),
        header: Vec::new(),
        footer: Vec::new(),
        merchant_id: "M1".into(),
        terminal_id: "T1".into(),
        kind: TxnKind::Sale,
        status: TxnStatus::Approved,
        amount,
        currency: Currency::CNY,
        paid: tallybox_core::protocol::Paid::Card(tallybox_core::protocol::CardPaid {
            masked_pan: tallybox_core::card::Pan::parse("6222021000000005")
                .unwrap()
                .masked(),
            brand: tallybox_core::card::Brand::UnionPay,
            entry_mode: EntryMode::Swipe,
        }),
        batch_no: 1,
        trace_no: 7,
        reference_no: "000000000007".into(),
        auth_code: "123456".into(),
        cashier: None,
        at: "2026-11-25 10:00:00".into(),
        link: None,
    }
}

/// The hub's answer to a sign-in.
pub(crate) fn signed_in(
    request_id: RequestId,
    store: &str,
    frozen: Option<String>,
    cashier: Option<Cashier>,
) -> Response {
    Response::SignedIn {
        request_id,
        store_name: store.into(),
        merchant_id: "M1".into(),
        batch_no: 1,
        frozen,
        frozen_zh: None,
        cashier,
        time_zone: None,
        currency: None,
        minor_digits: None,
    }
}

fn outcome(request: &Request, status: TxnStatus, code: &str, receipt: Option<Receipt>) -> Response {
    let kind = match request {
        Request::Balance(requests::Balance { .. }) => TxnKind::Balance,
        _ => TxnKind::Sale,
    };
    Response::Outcome(Outcome {
        request_id: request.request_id().unwrap().clone(),
        kind,
        status,
        response_code: tallybox_core::code::ResponseCode::parse(code).unwrap(),
        receipt,
        balance: None,
    })
}

/// The hub's receipt of a cash sale of `minor`, `tendered` handed over.
fn cash_receipt(minor: u64, tendered: u64) -> Receipt {
    Receipt {
        paid: tallybox_core::protocol::Paid::Cash {
            tendered: Amount::from_minor(tendered).unwrap(),
        },
        reference_no: String::new(),
        auth_code: String::new(),
        ..receipt(Amount::from_minor(minor).unwrap())
    }
}

#[test]
fn a_cash_sale_keys_what_was_handed_over_then_opens_the_drawer_shows_the_change_and_prints_one_slip() {
    let mut s = session();
    keys(&mut s, "A4250#");
    let shown = keys(&mut s, "B");
    assert!(
        last_screen(&shown).contains("CASH CNY 42.50"),
        "{}",
        last_screen(&shown)
    );
    // Less than the amount is not taken.
    let short = keys(&mut s, "4000#");
    assert!(sent(&short).is_none());
    assert!(last_screen(&short).contains("Less than the amount"));
    let actions = keys(&mut s, "****5000#");
    let request = sent(&actions).expect("a cash sale request");
    let Request::CashSale(requests::CashSale { amount, tendered, .. }) = &request else {
        panic!("sent {request:?}")
    };
    assert_eq!((amount.minor(), tendered.minor()), (4250, 5000));
    assert!(s.in_flight().is_some(), "journalled like a card sale");
    let actions = s.handle(
        answer(outcome(
            &request,
            TxnStatus::Approved,
            "00",
            Some(cash_receipt(4250, 5000)),
        )),
        TODAY,
    );
    assert_eq!(actions.first(), Some(&Action::OpenDrawer));
    let slips = printed(&actions);
    assert_eq!(slips.len(), 1, "{slips:?}");
    assert!(slips[0].contains("CUSTOMER COPY") && slips[0].contains("CNY 7.50"));
    let screen = last_screen(&actions);
    assert!(
        screen.contains("PAID IN CASH") && screen.contains("CNY 7.50"),
        "{screen}"
    );
    // A drawer that does not open is told, with what to do.
    let shut = s.handle(Input::DrawerShut(PrinterProblem::PaperOut), TODAY);
    assert!(last_screen(&shut).contains("DRAWER NOT OPENED"));
}

#[test]
fn a_cash_sale_is_voided_with_b_instead_of_a_card_and_the_drawer_gives_the_money_back() {
    let mut s = session();
    keys(&mut s, "B18888#");
    let shown = keys(&mut s, "42#");
    assert!(last_screen(&shown).contains("B cash"), "{}", last_screen(&shown));
    let actions = keys(&mut s, "B");
    let Some(Request::Void(requests::Void {
        trace_no,
        card,
        supervisor_pin,
        ..
    })) = sent(&actions)
    else {
        panic!("no void sent: {actions:?}")
    };
    assert_eq!((trace_no, card, supervisor_pin.is_some()), (42, None, true));
    let request = sent(&actions).unwrap();
    let receipt = Receipt {
        kind: TxnKind::Void,
        ..cash_receipt(4250, 4250)
    };
    let Response::Outcome(mut answer) = outcome(&request, TxnStatus::Approved, "00", Some(receipt)) else {
        unreachable!()
    };
    answer.kind = TxnKind::Void;
    let actions = s.handle(answer_of(answer), TODAY);
    assert_eq!(actions.first(), Some(&Action::OpenDrawer));
    let screen = last_screen(&actions);
    assert!(
        screen.contains("CASH BACK") && screen.contains("CNY 42.50"),
        "{screen}"
    );
}

fn answer_of(outcome: Outcome) -> Input {
    answer(Response::Outcome(outcome))
}

#[test]
fn cash_with_nothing_keyed_is_the_exact_amount_and_c_cancels_it() {
    let mut s = session();
    keys(&mut s, "A990#B");
    let request = sent(&keys(&mut s, "#")).expect("sent");
    let Request::CashSale(requests::CashSale { tendered, .. }) = request else {
        panic!("sent {request:?}")
    };
    assert_eq!(tendered.minor(), 990);
    let mut s = session();
    keys(&mut s, "A990#B12");
    let actions = keys(&mut s, "C");
    assert!(sent(&actions).is_none());
    assert_eq!(s.state_name(), "idle");
}

#[test]
fn a_sale_from_keys_to_two_slips() {
    let mut s = session();
    let shown = keys(&mut s, "A1250");
    assert!(last_screen(&shown).contains("CNY 12.50"));
    assert!(last_screen(&keys(&mut s, "#")).contains("Swipe or tap"));
    let actions = card(&mut s, "approved");
    let request = sent(&actions).expect("a sale request");
    match &request {
        Request::Sale(requests::Sale {
            amount,
            card,
            pin_block,
            ..
        }) => {
            assert_eq!(amount.minor(), 1250);
            assert_eq!(card.pan.digits(), "6222021000000005");
            assert!(pin_block.is_none());
        }
        other => panic!("sent {other:?}"),
    }
    assert_eq!(s.in_flight().unwrap().request_id, *request.request_id().unwrap());
    let amount = Amount::from_minor(1250).unwrap();
    let actions = s.handle(
        answer(outcome(
            &request,
            TxnStatus::Approved,
            "00",
            Some(receipt(amount)),
        )),
        TODAY,
    );
    let slips = printed(&actions);
    assert_eq!(slips.len(), 2);
    assert!(slips[0].contains("MERCHANT COPY") && slips[1].contains("CARDHOLDER COPY"));
    assert!(last_screen(&actions).contains("APPROVED"));
    assert!(s.in_flight().is_none());
    // A late duplicate answer prints nothing twice.
    let again = s.handle(
        answer(outcome(
            &request,
            TxnStatus::Approved,
            "00",
            Some(receipt(amount)),
        )),
        TODAY,
    );
    assert!(again.is_empty());
}

#[test]
fn a_pin_card_asks_for_the_pin_and_sends_only_a_block() {
    let mut s = session();
    keys(&mut s, "A500#");
    let actions = card(&mut s, "pin");
    assert!(last_screen(&actions).contains("Enter PIN"));
    assert!(sent(&actions).is_none());
    let shown = keys(&mut s, "1234");
    assert!(last_screen(&shown).contains("****"));
    assert!(!last_screen(&shown).contains("1234"));
    let state = format!("{:?}", s.state);
    assert!(state.contains("Pin(****)") && !state.contains("1234"), "{state}");
    assert!(format!("{:?}", s.pin_key).contains("***"));
    let request = sent(&keys(&mut s, "#")).unwrap();
    let Request::Sale(requests::Sale {
        pin_block: Some(block),
        card,
        ..
    }) = &request
    else {
        panic!("no PIN block in {request:?}");
    };
    assert!(!tallybox_core::protocol::encode(&request)
        .unwrap()
        .windows(4)
        .any(|w| w == b"1234"));
    // Under this checkout's own PIN key, which only it and the hub derive.
    let own = pin_block::checkout_key(&PAIRING_KEY);
    let pin = pin_block::decrypt(block, card.pan.digits(), &own).unwrap();
    assert_eq!(pin.as_deref(), Some("1234"));
    let other = pin_block::checkout_key(&[6; 32]);
    assert_ne!(
        pin_block::decrypt(block, card.pan.digits(), &other)
            .unwrap()
            .as_deref(),
        Some("1234")
    );
}

#[test]
fn an_unpaired_checkout_takes_no_pin_and_sends_nothing_for_a_pin_card() {
    // A hub that serves unpaired checkouts: it sells, but takes no PIN.
    let mut s = unpaired_signed_in();
    keys(&mut s, "A500#");
    let actions = card(&mut s, "pin");
    assert!(
        last_screen(&actions).contains("PIN needs pairing"),
        "{}",
        last_screen(&actions)
    );
    assert!(sent(&actions).is_none());
    assert_eq!(s.state_name(), "done");
    keys(&mut s, "C");
    assert_eq!(s.state_name(), "idle");
    keys(&mut s, "A500#");
    assert!(
        matches!(sent(&card(&mut s, "approved")), Some(Request::Sale(_))),
        "a card without a PIN sells"
    );
}

#[test]
fn declines_show_reason_and_hint() {
    let mut s = session();
    keys(&mut s, "A20000#");
    let request = sent(&card(&mut s, "low-balance")).unwrap();
    let actions = s.handle(answer(outcome(&request, TxnStatus::Declined, "51", None)), TODAY);
    let screen = last_screen(&actions);
    assert!(
        screen.contains("DECLINED") && screen.contains("Insufficient funds"),
        "{screen}"
    );
    assert!(screen.contains("Less, or another card"), "{screen}");
    assert!(!actions.iter().any(|a| matches!(a, Action::Print(_))));
}

#[test]
fn a_reversal_says_not_charged() {
    let mut s = session();
    keys(&mut s, "A100#");
    let request = sent(&card(&mut s, "no-answer")).unwrap();
    let actions = s.handle(answer(outcome(&request, TxnStatus::Reversed, "NC", None)), TODAY);
    assert!(last_screen(&actions).contains("NOT CHARGED"));
}

#[test]
fn an_expired_card_never_leaves_the_terminal() {
    let mut s = session();
    keys(&mut s, "A100#");
    let actions = card(&mut s, "past-expiry");
    assert!(sent(&actions).is_none());
    assert!(last_screen(&actions).contains("Card expired"));
    assert_eq!(s.state_name(), "card");
    let read = s.handle(Input::Card(Err(CardError::PanLuhn)), TODAY);
    assert!(last_screen(&read).contains("Card read error"));
}

#[test]
fn zero_amount_is_refused_and_cancel_goes_home() {
    let mut s = session();
    assert!(last_screen(&keys(&mut s, "A#")).contains("Wrong amount"));
    assert_eq!(s.state_name(), "amount");
    assert!(last_screen(&keys(&mut s, "12*3")).contains("CNY 0.13"));
    let shown = keys(&mut s, "C");
    assert_eq!(s.state_name(), "idle");
    assert!(last_screen(&shown).contains("A sale"));
}

#[test]
fn amount_entry_caps_at_nine_digits() {
    let mut s = session();
    let shown = keys(&mut s, "A99999999999");
    assert!(last_screen(&shown).contains("CNY 9999999.99"));
}

#[test]
fn keys_and_cards_while_waiting_change_nothing() {
    let mut s = session();
    keys(&mut s, "A100#");
    let request = sent(&card(&mut s, "approved")).unwrap();
    assert!(keys(&mut s, "C123#A").is_empty());
    assert!(card(&mut s, "visa").is_empty());
    assert_eq!(s.in_flight().unwrap().title, "SALE CNY 1.00");
    // Sent once; sent again only after the sign-in, which goes alone.
    let sign_in = match s.outstanding()[..] {
        [sign_in @ Request::SignIn(_)] => sign_in.request_id().unwrap().clone(),
        ref other => panic!("{other:?}"),
    };
    s.handle(
        Input::Answer(Box::new(signed_in(sign_in, "Shop", None, None))),
        TODAY,
    );
    assert_eq!(s.outstanding(), vec![&request]);
    assert_eq!(s.waiting_on(), request.request_id());
    // After the hub stays silent, C gives up with an honest screen.
    s.handle(Input::HubSilent, TODAY);
    assert!(last_screen(&keys(&mut s, "C")).contains("RESULT UNKNOWN"));
}

#[test]
fn sign_in_names_the_store_and_stops_being_outstanding() {
    let mut s = Session::new(config());
    let actions = s.start("1.0");
    let Some(Request::SignIn(requests::SignIn { request_id, .. })) = sent(&actions) else {
        panic!()
    };
    assert_eq!(s.outstanding().len(), 1);
    let shown = s.handle(answer(signed_in(request_id, "Corner Shop", None, None)), TODAY);
    assert!(last_screen(&shown).contains("Corner Shop"));
    assert!(s.outstanding().is_empty());
}

#[test]
fn after_a_restart_the_sale_is_recalled_and_its_slips_printed() {
    let mut s = session();
    keys(&mut s, "A100#");
    let request = sent(&card(&mut s, "approved")).unwrap();
    let entry = s.in_flight().unwrap();
    let mut restarted = session();
    let actions = restarted.resume(entry);
    let recall = sent(&actions).unwrap();
    assert_eq!(
        recall,
        Request::Recall(requests::Recall {
            request_id: request.request_id().unwrap().clone()
        })
    );
    assert!(last_screen(&actions).contains("SALE CNY 1.00"));
    let r = receipt(Amount::from_minor(100).unwrap());
    let done = restarted.handle(
        answer(outcome(&request, TxnStatus::Approved, "00", Some(r))),
        TODAY,
    );
    assert_eq!(done.iter().filter(|a| matches!(a, Action::Print(_))).count(), 2);
    assert!(restarted.in_flight().is_none());
}

#[test]
fn reprint_from_the_menu() {
    let mut s = session();
    let request = sent(&keys(&mut s, "D2")).unwrap();
    // Not a sale: nothing to journal, but still waited on (and cancellable once silent).
    assert!(s.in_flight().is_none());
    assert_eq!(s.waiting_on(), request.request_id());
    let Request::Reprint(requests::Reprint { request_id, .. }) = request else {
        panic!()
    };
    let r = receipt(Amount::from_minor(100).unwrap());
    let actions = s.handle(
        answer(Response::Reprint {
            request_id,
            receipt: Some(r),
        }),
        TODAY,
    );
    assert!(actions
        .iter()
        .any(|a| matches!(a, Action::Print(s) if s.lines.join("\n").contains("REPRINT"))));
}

#[test]
fn void_and_refund_need_the_supervisor_pin_the_trace_and_the_card() {
    let mut s = session();
    assert!(last_screen(&keys(&mut s, "B")).contains("1 Void  2 Refund"));
    assert!(last_screen(&keys(&mut s, "1")).contains("Supervisor PIN"));
    let typed = last_screen(&keys(&mut s, "8888"));
    assert!(typed.contains("****") && !typed.contains("8888"), "{typed}");
    assert!(last_screen(&keys(&mut s, "#")).contains("Trace no."));
    assert!(last_screen(&keys(&mut s, "42#")).contains("VOID TRACE 000042"));
    let actions = card(&mut s, "pin");
    // No cardholder PIN for a void, even on a PIN card: the supervisor authorised it.
    let Some(Request::Void(requests::Void {
        trace_no,
        supervisor_pin,
        ..
    })) = sent(&actions)
    else {
        panic!("no void sent: {actions:?}")
    };
    assert_eq!(
        (trace_no, supervisor_pin.unwrap().expose().as_str()),
        (42, "8888")
    );

    let mut s = session();
    keys(&mut s, "B2");
    keys(&mut s, "1234#");
    assert!(last_screen(&keys(&mut s, "7#")).contains("Refund amount"));
    assert!(keys(&mut s, "0").is_empty(), "no leading zero");
    assert!(last_screen(&keys(&mut s, "500#")).contains("REFUND CNY 5.00"));
    let Some(Request::Refund(requests::Refund { trace_no, amount, .. })) = sent(&card(&mut s, "approved"))
    else {
        panic!("no refund sent")
    };
    assert_eq!((trace_no, amount.minor()), (7, 500));

    // C leaves the flow from any step, forgetting the PIN.
    let mut s = session();
    keys(&mut s, "B11234#");
    assert!(last_screen(&keys(&mut s, "C")).contains("A sale"));
    assert!(s.supervisor_pin.is_none());
}

#[test]
fn a_refund_the_owner_orders_on_the_page_asks_for_the_card_and_carries_the_order() {
    let order = |kind| {
        answer(Response::UndoOrder {
            order: "k2v7q0xm".into(),
            kind,
            trace_no: 12,
            amount: Amount::from_minor(2000).unwrap(),
            tender: Some(Tender::Card),
        })
    };
    let mut s = session();
    let shown = last_screen(&s.handle(order(TxnKind::Refund), TODAY));
    assert!(shown.contains("REFUND CNY 20.00"), "{shown}");
    let Some(Request::Refund(requests::Refund {
        trace_no,
        amount,
        supervisor_pin,
        order: carried,
        ..
    })) = sent(&card(&mut s, "approved"))
    else {
        panic!("no refund sent")
    };
    assert_eq!((trace_no, amount.minor()), (12, 2000));
    assert_eq!(carried.as_deref(), Some("k2v7q0xm"));
    assert!(supervisor_pin.is_none(), "the owner's order stands for the PIN");

    // A cashier in the middle of a sale is not interrupted.
    let mut s = session();
    keys(&mut s, "A500#");
    assert!(s.handle(order(TxnKind::Refund), TODAY).is_empty());
    assert!(matches!(s.state, State::Card { op: Op::Sale(_) }));

    // C at the card step drops the order: the next void keyed in needs the PIN.
    let mut s = session();
    s.handle(order(TxnKind::Void), TODAY);
    assert!(last_screen(&keys(&mut s, "C")).contains("A sale"));
    assert!(s.order.is_none());
}

#[test]
fn a_refund_the_owner_orders_of_a_code_sale_goes_back_to_the_wallet_at_once() {
    let mut s = session();
    let actions = s.handle(
        answer(Response::UndoOrder {
            order: "k2v7q0xm".into(),
            kind: TxnKind::Refund,
            trace_no: 12,
            amount: Amount::from_minor(2000).unwrap(),
            tender: Some(Tender::Code),
        }),
        TODAY,
    );
    let Some(Request::Refund(requests::Refund {
        trace_no,
        amount,
        card,
        supervisor_pin,
        order,
        ..
    })) = sent(&actions)
    else {
        panic!("no refund sent at once: {actions:?}")
    };
    assert_eq!((trace_no, amount.minor()), (12, 2000));
    assert!(card.is_none() && supervisor_pin.is_none());
    assert_eq!(order.as_deref(), Some("k2v7q0xm"));
    assert!(last_screen(&actions).contains("REFUND CNY 20.00"), "{actions:?}");
}

#[test]
fn a_frozen_checkout_says_why_and_starts_no_sale_until_unfrozen() {
    let mut s = session();
    let Some(Request::SignIn(requests::SignIn { request_id, .. })) =
        s.outstanding().first().cloned().cloned()
    else {
        panic!("no sign-in")
    };
    s.handle(
        answer(signed_in(request_id, "Shop", Some("card testing".into()), None)),
        TODAY,
    );
    for typed in ["A", "5", "B"] {
        let screen = last_screen(&keys(&mut s, typed));
        assert!(
            screen.contains("TERMINAL FROZEN") && screen.contains("card testing"),
            "{typed}: {screen}"
        );
    }
    assert!(
        last_screen(&keys(&mut s, "D")).contains("MENU"),
        "the menu still works"
    );
    keys(&mut s, "C");
    let shown = s.handle(
        answer(Response::Frozen {
            request_id: None,
            reason: None,
            reason_zh: None,
        }),
        TODAY,
    );
    assert!(last_screen(&shown).contains("A sale"), "unfrozen: {shown:?}");
    assert!(last_screen(&keys(&mut s, "A")).contains("Key amount"));
}

#[test]
fn the_supervisor_freezes_the_checkout_from_the_keypad() {
    let mut s = session();
    keys(&mut s, "B3");
    let actions = keys(&mut s, "8888#");
    let Some(Request::Freeze(requests::Freeze {
        supervisor_pin,
        request_id,
    })) = sent(&actions)
    else {
        panic!("no freeze sent: {actions:?}")
    };
    assert_eq!(supervisor_pin.expose(), "8888");
    let shown = s.handle(
        answer(Response::Frozen {
            request_id: Some(request_id),
            reason: Some("frozen by the supervisor".into()),
            reason_zh: None,
        }),
        TODAY,
    );
    assert!(last_screen(&shown).contains("TERMINAL FROZEN"), "{shown:?}");
}

#[test]
fn a_sale_a_rule_holds_goes_again_with_the_supervisors_pin() {
    let mut s = session();
    keys(&mut s, "A5000#");
    let first = sent(&card(&mut s, "approved")).unwrap();
    let shown = s.handle(answer(outcome(&first, TxnStatus::Failed, "XV", None)), TODAY);
    assert!(last_screen(&shown).contains("APPROVE SALE"), "{shown:?}");
    let again = sent(&keys(&mut s, "8888#")).expect("the sale again");
    let (
        Request::Sale(requests::Sale {
            request_id: a,
            amount: x,
            card: c1,
            ..
        }),
        Request::Sale(requests::Sale {
            request_id: b,
            amount: y,
            card: c2,
            supervisor_pin,
            ..
        }),
    ) = (&first, &again)
    else {
        panic!("not sales")
    };
    assert_ne!(a, b, "a new request id");
    assert_eq!((x, c1), (y, c2), "the same sale");
    assert_eq!(supervisor_pin.as_ref().map(|p| p.expose().as_str()), Some("8888"));
}

#[test]
fn a_new_hubs_setup_code_shows_at_idle_prints_once_and_goes_when_used() {
    let mut s = session();
    let notice = SetupNotice {
        code: "4821 9930".into(),
        page: "http://tallybox.local".into(),
    };
    let actions = s.handle(Input::SetupCode(Some(notice.clone())), TODAY);
    assert!(
        last_screen(&actions).contains("4821 9930"),
        "{}",
        last_screen(&actions)
    );
    let printed: Vec<&Slip> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Print(slip) => Some(slip),
            _ => None,
        })
        .collect();
    assert_eq!(printed.len(), 1);
    assert!(printed[0].lines.iter().any(|l| l == "4821 9930"));
    assert_eq!(printed[0].qr.as_deref(), Some("http://tallybox.local"));
    // Told again (a restart of the forwarder): no second slip.
    let again = s.handle(Input::SetupCode(Some(notice)), TODAY);
    assert!(!again.iter().any(|a| matches!(a, Action::Print(_))));
    // Used: the usual idle screen.
    let used = s.handle(Input::SetupCode(None), TODAY);
    let screen = last_screen(&used);
    assert!(!screen.contains("4821") && screen.contains("A sale"), "{screen}");
}

#[test]
fn a_cashier_signs_on_is_shown_at_idle_and_signs_off() {
    let mut s = session();
    let sign_in = s.outstanding()[0].request_id().unwrap().clone();
    s.handle(answer(signed_in(sign_in, "Shop", None, None)), TODAY);
    let actions = keys(&mut s, "D4");
    assert!(
        last_screen(&actions).contains("Cashier no."),
        "{}",
        last_screen(&actions)
    );
    keys(&mut s, "07#");
    let shown = keys(&mut s, "1234");
    assert!(last_screen(&shown).contains("****"));
    let request = sent(&keys(&mut s, "#")).expect("a sign-on");
    let Request::SignOn(requests::SignOn { cashier, pin, .. }) = &request else {
        panic!("sent {request:?}");
    };
    assert_eq!((cashier.as_str(), pin.expose().as_str()), ("07", "1234"));
    assert!(
        !format!("{request:?}").contains("1234"),
        "the PIN never prints: {request:?}"
    );
    assert!(s.outstanding().contains(&&request), "re-sent until answered");

    // A wrong PIN: said, and nobody signed on.
    let refused = Response::Cashier {
        request_id: request.request_id().unwrap().clone(),
        cashier: None,
        refused: Some(reason::CASHIER_WRONG),
    };
    let screen = last_screen(&s.handle(answer(refused), TODAY));
    assert!(
        screen.contains("SIGN-ON FAILED") && screen.contains("Wrong cashier or PIN"),
        "{screen}"
    );
    assert!(!last_screen(&keys(&mut s, "C")).contains("Cashier"));

    let request = sent(&keys(&mut s, "D407#1234#")).unwrap();
    let ann = Cashier {
        no: "07".into(),
        name: "Ann".into(),
    };
    let ok = Response::Cashier {
        request_id: request.request_id().unwrap().clone(),
        cashier: Some(ann.clone()),
        refused: None,
    };
    assert!(last_screen(&s.handle(answer(ok), TODAY)).contains("07 Ann"));
    assert!(last_screen(&keys(&mut s, "C")).contains("Ready  Cashier 07"));

    // Menu 4 again: who is on, and sign off.
    assert!(last_screen(&keys(&mut s, "D4")).contains("2 Sign off"));
    let off = sent(&keys(&mut s, "2")).unwrap();
    assert!(matches!(off, Request::SignOff(requests::SignOff { .. })));
    let done = Response::Cashier {
        request_id: off.request_id().unwrap().clone(),
        cashier: None,
        refused: None,
    };
    assert!(last_screen(&s.handle(answer(done), TODAY)).contains("SIGNED OFF"));
    let idle = last_screen(&keys(&mut s, "C"));
    assert!(idle.contains("Ready") && !idle.contains("Cashier"), "{idle}");

    // Locked by the hub: the locked screen, which names the owner.
    let request = sent(&keys(&mut s, "D407#9999#")).unwrap();
    let locked = Response::Cashier {
        request_id: request.request_id().unwrap().clone(),
        cashier: None,
        refused: Some(reason::CASHIER_LOCKED),
    };
    assert!(last_screen(&s.handle(answer(locked), TODAY)).contains("Owner can unlock"));
}

#[test]
fn the_cashier_signed_on_before_a_restart_is_back_after_sign_in() {
    let mut s = Session::new(config());
    let request = sent(&s.start("test")).unwrap();
    let bo = Cashier {
        no: "3".into(),
        name: "Bo".into(),
    };
    let back = signed_in(request.request_id().unwrap().clone(), "Shop", None, Some(bo));
    assert!(last_screen(&s.handle(answer(back), TODAY)).contains("Cashier 3"));
}

#[test]
fn not_paired_shows_at_idle_until_the_hub_serves_this_terminal_again() {
    let mut s = session();
    let sign_in = s.outstanding()[0].request_id().unwrap().clone();
    let refused = Response::Error {
        request_id: None,
        code: tallybox_core::protocol::ErrorCode::NotPaired,
        message: "not paired".into(),
    };
    let screen = last_screen(&s.handle(answer(refused), TODAY));
    assert!(
        screen.contains("NOT PAIRED") && screen.contains("D 5"),
        "{screen}"
    );
    assert_eq!(s.outstanding().len(), 1, "the sign-in is still asked");
    // Refused until paired: no sale starts, no card is wanted, none goes out.
    for typed in ["A500#", "5", "B"] {
        let actions = keys(&mut s, typed);
        assert!(sent(&actions).is_none(), "{typed}: {actions:?}");
        assert_eq!(s.card_wanted(), None, "{typed}");
        assert!(
            last_screen(&actions).contains("NOT PAIRED"),
            "{typed}: {actions:?}"
        );
    }
    assert!(
        sent(&card(&mut s, "approved")).is_none(),
        "a card read anyway is not sent"
    );
    let back = signed_in(sign_in, "Shop", None, None);
    let screen = last_screen(&s.handle(answer(back), TODAY));
    assert!(
        screen.contains("Ready") && !screen.contains("NOT PAIRED"),
        "{screen}"
    );

    // Pairing at the keypad: eight digits, then the runtime's word on it.
    let actions = keys(&mut s, "D512345678#");
    assert!(actions.contains(&Action::Pair("12345678".into())), "{actions:?}");
    let failed = s.handle(Input::Paired(Err("wrong pairing code".into())), TODAY);
    assert!(last_screen(&failed).contains("PAIRING FAILED"));
    keys(&mut s, "C");
    keys(&mut s, "D512345678#");
    let done = s.handle(Input::Paired(Ok(())), TODAY);
    assert!(last_screen(&done).contains("PAIRED"));
    assert!(
        matches!(sent(&done), Some(Request::SignIn(requests::SignIn { .. }))),
        "signs in again, sealed now"
    );
}

#[test]
fn the_menus_self_test_asks_the_runtime_and_any_key_goes_home() {
    let mut s = session();
    assert!(last_screen(&keys(&mut s, "D")).contains("6 Self-test"));
    let actions = keys(&mut s, "6");
    assert!(matches!(actions.as_slice(), [Action::SelfTest]), "{actions:?}");
    assert_eq!(s.state_name(), "done");
    keys(&mut s, "C");
    assert_eq!(s.state_name(), "idle");
}

#[test]
fn a_checkout_without_a_key_starts_no_sale_until_the_hub_has_answered_its_sign_in() {
    let mut s = Session::new(config());
    let sign_in = sent(&s.start("test")).unwrap();
    let actions = keys(&mut s, "A500#");
    assert!(
        sent(&actions).is_none() && s.card_wanted().is_none(),
        "{actions:?}"
    );
    assert!(last_screen(&actions).contains("Connecting"), "{actions:?}");
    // The hub serves it unpaired (pairing not required): it sells, in clear.
    s.handle(
        answer(signed_in(
            sign_in.request_id().unwrap().clone(),
            "Shop",
            None,
            None,
        )),
        TODAY,
    );
    keys(&mut s, "A500#");
    assert!(matches!(sent(&card(&mut s, "approved")), Some(Request::Sale(_))));
}

/// The slips among `actions`, as text.
fn printed(actions: &[Action]) -> Vec<String> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Print(slip) => Some(slip.lines.join("\n")),
            _ => None,
        })
        .collect()
}

/// A split sale of 42.50 started: 30.00 in cash taken as a part and approved.
fn cash_part_paid(s: &mut Session) -> (requests::SplitPart, Vec<Action>) {
    keys(s, "A4250#B");
    let request = sent(&keys(s, "3000A")).expect("the cash part");
    let Request::CashSale(requests::CashSale {
        amount,
        tendered,
        split: Some(part),
        ..
    }) = &request
    else {
        panic!("sent {request:?}")
    };
    assert_eq!(
        (amount.minor(), tendered.minor(), part.total.minor()),
        (3000, 3000, 4250)
    );
    let part = part.clone();
    let mut cash = cash_receipt(3000, 3000);
    cash.trace_no = 6;
    let actions = s.handle(
        answer(outcome(&request, TxnStatus::Approved, "00", Some(cash))),
        TODAY,
    );
    (part, actions)
}

#[test]
fn cash_then_a_card_for_the_rest_prints_one_receipt_with_both_parts() {
    let mut s = session();
    let (part, actions) = cash_part_paid(&mut s);
    assert_eq!(actions.first(), Some(&Action::OpenDrawer));
    let screen = last_screen(&actions);
    assert!(
        screen.contains("Still owed") && screen.contains("CNY 12.50"),
        "{screen}"
    );
    assert!(
        printed(&actions).is_empty(),
        "nothing printed before the sale is paid"
    );
    let actions = card(&mut s, "approved");
    let request = sent(&actions).expect("the card part");
    let Request::Sale(requests::Sale { amount, split, .. }) = &request else {
        panic!("sent {request:?}")
    };
    assert_eq!((amount.minor(), split.as_ref()), (1250, Some(&part)));
    let actions = s.handle(
        answer(outcome(
            &request,
            TxnStatus::Approved,
            "00",
            Some(receipt(Amount::from_minor(1250).unwrap())),
        )),
        TODAY,
    );
    let slips = printed(&actions);
    assert_eq!(slips.len(), 2, "{slips:?}");
    assert!(slips[0].contains("MERCHANT COPY") && slips[0].contains("SIGNATURE"));
    assert!(
        slips[1].contains("PAID IN PARTS")
            && slips[1].contains("合计 TOTAL")
            && slips[1].contains("CNY 42.50")
    );
    assert!(last_screen(&actions).contains("PAID IN FULL"));
    assert!(
        !actions.contains(&Action::OpenDrawer),
        "the card part opens no drawer"
    );
}

#[test]
fn a_declined_card_after_cash_lets_the_cashier_undo_the_cash_without_the_supervisor() {
    let mut s = session();
    let (part, _) = cash_part_paid(&mut s);
    let request = sent(&card(&mut s, "low-balance")).expect("the card part");
    let actions = s.handle(answer(outcome(&request, TxnStatus::Declined, "51", None)), TODAY);
    let screen = last_screen(&actions);
    assert!(
        screen.contains("NOT PAID") && screen.contains("Owed 12.50") && screen.contains("2 undo"),
        "{screen}"
    );
    assert_eq!(s.state_name(), "split_choice");
    // Any other key leaves the choice on the screen: the money is not walked away from.
    assert!(keys(&mut s, "C").is_empty());
    let request = sent(&keys(&mut s, "2")).expect("the void");
    let Request::Void(requests::Void {
        trace_no,
        card,
        supervisor_pin,
        split,
        ..
    }) = &request
    else {
        panic!("sent {request:?}")
    };
    assert_eq!((*trace_no, card, supervisor_pin.is_none()), (6, &None, true));
    assert_eq!(split.as_ref(), Some(&part.group));
    let back = Receipt {
        kind: TxnKind::Void,
        ..cash_receipt(3000, 3000)
    };
    let Response::Outcome(mut answered) = outcome(&request, TxnStatus::Approved, "00", Some(back)) else {
        unreachable!()
    };
    answered.kind = TxnKind::Void;
    let actions = s.handle(answer_of(answered), TODAY);
    assert_eq!(actions.first(), Some(&Action::OpenDrawer));
    let screen = last_screen(&actions);
    assert!(
        screen.contains("CASH BACK") && screen.contains("CNY 30.00"),
        "{screen}"
    );
    // The next sale is an ordinary one again.
    keys(&mut s, "C");
    let request = sent(&keys(&mut s, "A100#B#")).unwrap();
    assert!(matches!(
        request,
        Request::CashSale(requests::CashSale { split: None, .. })
    ));
}

#[test]
fn a_chinese_checkout_says_the_hubs_freeze_in_chinese_and_an_english_one_in_english() {
    let frozen = || {
        answer(Response::Frozen {
            request_id: None,
            reason: Some("card testing".into()),
            reason_zh: Some("疑似盗卡测试".into()),
        })
    };
    let mut zh = Session::new(SessionConfig {
        lang: crate::session::Lang::Zh,
        ..config()
    });
    zh.set_pairing(Some(&PAIRING_KEY));
    zh.start("test");
    let shown = last_screen(&zh.handle(frozen(), TODAY));
    assert!(
        shown.contains("疑似盗卡测试") && !shown.contains("card testing"),
        "{shown}"
    );
    let mut en = session();
    let shown = last_screen(&en.handle(frozen(), TODAY));
    assert!(shown.contains("card testing"), "{shown}");
    // From an older hub, English alone: shown as it came.
    let shown = last_screen(&zh.handle(
        answer(Response::Frozen {
            request_id: None,
            reason: Some("card testing".into()),
            reason_zh: None,
        }),
        TODAY,
    ));
    assert!(shown.contains("card testing"), "{shown}");
}

#[test]
fn a_scan_that_is_not_a_payment_code_says_so_and_the_next_scan_pays() {
    let mut s = session();
    keys(&mut s, "A4250#");
    let screen = last_screen(&s.handle(Input::NotACode, TODAY));
    assert!(
        screen.contains("Not a payment code") && screen.contains("Scan it again"),
        "{screen}"
    );
    let paid = s.handle(
        Input::Scanned(tallybox_core::secret::Secret::new("281234567890120000".into())),
        TODAY,
    );
    assert!(
        matches!(sent(&paid), Some(Request::CodeSale(_))),
        "the next scan pays: {paid:?}"
    );
    // Idle, a stray scan of anything changes nothing.
    let mut idle = session();
    assert!(idle.handle(Input::NotACode, TODAY).is_empty());
}
