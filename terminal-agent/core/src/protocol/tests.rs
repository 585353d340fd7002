use super::requests;
use serde_json::Value;

use super::*;
use crate::card::{test_cards, EntryMode};
use crate::money::Amount;

/// A request of every kind; the match makes a new kind fail to compile
/// here until it is added.
fn one_of_each() -> Vec<Request> {
    let id = || RequestId::parse("0123456789abcdef").unwrap();
    let card = || test_cards::by_name("approved").unwrap().read(EntryMode::Swipe);
    let all = vec![
        Request::SignIn(requests::SignIn {
            request_id: id(),
            version: "1".into(),
            trace_floor: Some(128),
        }),
        sale(),
        Request::CashSale(requests::CashSale {
            request_id: id(),
            amount: Amount::from_minor(4250).unwrap(),
            currency: "CNY".into(),
            tendered: Amount::from_minor(5000).unwrap(),
            supervisor_pin: None,
            split: Some(requests::SplitPart {
                group: id(),
                total: Amount::from_minor(9000).unwrap(),
            }),
        }),
        Request::CodeSale(requests::CodeSale {
            request_id: id(),
            amount: Amount::from_minor(4250).unwrap(),
            currency: "CNY".into(),
            code: "287654321098765432".into(),
            supervisor_pin: None,
            split: None,
        }),
        Request::CancelCode(requests::CancelCode {
            request_id: id(),
            sale: id(),
        }),
        Request::Balance(requests::Balance {
            request_id: id(),
            card: card(),
            pin_block: None,
        }),
        Request::Void(requests::Void {
            request_id: id(),
            trace_no: 1,
            card: Some(card()),
            supervisor_pin: Some("1234".into()),
            order: None,
            split: None,
        }),
        Request::Refund(requests::Refund {
            request_id: id(),
            trace_no: 1,
            amount: Amount::from_minor(1).unwrap(),
            card: None,
            supervisor_pin: None,
            order: Some("4q9s0p2b".into()),
        }),
        Request::Settle(requests::Settle { request_id: id() }),
        Request::Freeze(requests::Freeze {
            request_id: id(),
            supervisor_pin: "1234".into(),
        }),
        Request::Reprint(requests::Reprint {
            request_id: id(),
            trace_no: None,
        }),
        Request::Recall(requests::Recall { request_id: id() }),
        Request::NoSale(requests::NoSale {
            request_id: id(),
            supervisor_pin: "1234".into(),
        }),
        Request::CountDrawer(requests::CountDrawer {
            request_id: id(),
            supervisor_pin: "1234".into(),
            counted: Amount::from_minor(104_250).unwrap(),
        }),
        Request::SignOn(requests::SignOn {
            request_id: id(),
            cashier: "7".into(),
            pin: "2468".into(),
        }),
        Request::SignOff(requests::SignOff { request_id: id() }),
        Request::Pair(requests::Pair {
            request_id: id(),
            message: "QUJD".into(),
        }),
        Request::Heartbeat(requests::Heartbeat {
            uptime_s: 1,
            devices: None,
        }),
        Request::Printed(requests::Printed {
            entries: vec![requests::PrintedEntry {
                request_id: id(),
                original_trace: None,
                receipt: crate::slip::tests::receipt(),
            }],
        }),
    ];
    for r in &all {
        match r {
            Request::SignIn(requests::SignIn { .. })
            | Request::Sale(requests::Sale { .. })
            | Request::CashSale(requests::CashSale { .. })
            | Request::CodeSale(requests::CodeSale { .. })
            | Request::CancelCode(requests::CancelCode { .. })
            | Request::Balance(requests::Balance { .. })
            | Request::Void(requests::Void { .. })
            | Request::Refund(requests::Refund { .. })
            | Request::Settle(requests::Settle { .. })
            | Request::Freeze(requests::Freeze { .. })
            | Request::Reprint(requests::Reprint { .. })
            | Request::Recall(requests::Recall { .. })
            | Request::NoSale(requests::NoSale { .. })
            | Request::CountDrawer(requests::CountDrawer { .. })
            | Request::SignOn(requests::SignOn { .. })
            | Request::SignOff(requests::SignOff { .. })
            | Request::Pair(requests::Pair { .. })
            | Request::Heartbeat(requests::Heartbeat { .. })
            | Request::Printed(requests::Printed { .. }) => {}
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
            frozen_zh: None,
            cashier: None,
            time_zone: Some("Asia/Shanghai".into()),
            currency: Some("JPY".into()),
            minor_digits: Some(0),
        },
        Response::TimeZone {
            time_zone: "UTC".into(),
        },
        Response::CodeWaiting {
            request_id: RequestId::new(),
            seconds_left: 55,
        },
        Response::Cashier {
            request_id: RequestId::new(),
            cashier: None,
            refused: Some(crate::reason::CASHIER_WRONG),
        },
        Response::Frozen {
            request_id: None,
            reason: None,
            reason_zh: None,
        },
        Response::UndoOrder {
            order: "0f6c1d2e".into(),
            kind: TxnKind::Refund,
            trace_no: 42,
            amount: Amount::from_minor(2000).unwrap(),
            tender: None,
        },
        Response::UndoOrder {
            order: "0f6c1d2e".into(),
            kind: TxnKind::Void,
            trace_no: 42,
            amount: Amount::from_minor(2000).unwrap(),
            tender: Some(Tender::Code),
        },
        Response::TestSlip,
        Response::Restart,
        Response::AreYouThere,
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
        Response::Drawer {
            request_id: RequestId::new(),
            refused: None,
            count: Some(DrawerCount {
                expected: Amount::from_minor(10_000).unwrap(),
                counted: Amount::from_minor(9_950).unwrap(),
            }),
            report: vec!["交班点钞 DRAWER COUNT".into()],
        },
    ]
    .iter()
    .map(|r| {
        let bytes = encode(r).unwrap();
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
        let bytes = encode(&request).unwrap();
        assert_eq!(decode_request(&bytes).unwrap(), request);
    }
}

fn sale() -> Request {
    Request::Sale(requests::Sale {
        request_id: RequestId::parse("0123456789abcdef").unwrap(),
        amount: Amount::from_minor(1250).unwrap(),
        currency: "CNY".into(),
        card: test_cards::by_name("approved").unwrap().read(EntryMode::Swipe),
        pin_block: None,
        supervisor_pin: None,
        split: None,
    })
}

#[test]
fn requests_round_trip_with_version() {
    let bytes = encode(&sale()).unwrap();
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(text.contains("\"v\":1"), "{text}");
    assert!(text.contains("\"type\":\"sale\""), "{text}");
    assert_eq!(decode_request(&bytes).unwrap(), sale());
}

#[test]
fn what_cannot_be_encoded_is_an_error_not_an_empty_payload() {
    assert!(matches!(encode(&5u32), Err(EncodeError::NotAnObject)));
    let not_json: std::collections::HashMap<(u8, u8), u8> = [((1, 2), 3)].into();
    assert!(matches!(encode(&not_json), Err(EncodeError::Json(_))));
    assert!(!encode(&sale()).unwrap().is_empty());
}

#[test]
fn a_request_with_a_field_it_does_not_have_is_malformed() {
    let extra = br#"{"v":1,"type":"settle","request_id":"abcdefgh1","amount":100}"#;
    let err = decode_request(extra).unwrap_err();
    assert_eq!(err.code, ErrorCode::Malformed, "{}", err.message);
    let ok = br#"{"v":1,"type":"settle","request_id":"abcdefgh1"}"#;
    assert_eq!(decode_request(ok).unwrap().kind(), RequestKind::Settle);
    assert_eq!(REQUEST_TYPES[1], "sale");
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

mod documented_examples {
    use super::*;

    /// Every JSON example in PROTOCOL.md decodes as the message it shows.
    #[test]
    fn protocol_md_examples_decode() {
        let doc = include_str!("../../PROTOCOL.md");
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

#[test]
fn request_ids_made_at_a_time_are_valid_and_sort_by_it() {
    let first = RequestId::made_at(1_796_601_600_000);
    let second = RequestId::made_at(1_796_601_600_001);
    let later = RequestId::made_at(1_796_601_601_000);
    assert_eq!(RequestId::parse(first.as_str()), Ok(first.clone()));
    assert!(first.as_str() < second.as_str(), "{first} {second}");
    assert!(second.as_str() < later.as_str(), "{second} {later}");
    assert_ne!(
        first,
        RequestId::made_at(1_796_601_600_000),
        "random after the time"
    );
}
