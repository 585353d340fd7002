//! The checkout core driven as the runtime drives it, with plain values: keys
//! and the hub's answers in, a clock passed in, bytes and files out. No
//! broker, no network, no disk.

use super::*;
use std::time::Duration;
use tallybox_core::card::{test_cards, EntryMode};
use tallybox_core::code::ResponseCode;
use tallybox_core::money::{Amount, Currency};
use tallybox_core::protocol::{decode_request, encode, Outcome, TxnKind, TxnStatus};
use tallybox_core::seal::{self, Direction};

use crate::session::{Key as Keypad, Lang};

const RETRY: Duration = Duration::from_secs(1);
const SILENT: Duration = Duration::from_secs(15);
const KEY: Key = [9; 32];

/// The hub's end of the link: opens what the checkout sent, seals answers.
struct Hub {
    key: Option<Key>,
    counter: u64,
}

impl Hub {
    fn new(key: Option<Key>) -> Hub {
        Hub { key, counter: 0 }
    }

    /// The requests among `outputs`, opened.
    fn requests(&self, outputs: &[Output]) -> Vec<Request> {
        outputs
            .iter()
            .filter_map(|o| match o {
                Output::Publish(bytes) => Some(bytes),
                _ => None,
            })
            .map(|bytes| {
                let plain = match (&self.key, seal::is_sealed(bytes)) {
                    (Some(key), true) => seal::open(key, Direction::ToHub, "T1", bytes).unwrap().1,
                    (None, true) => panic!("sealed without a key"),
                    (_, false) => bytes.clone(),
                };
                decode_request(&plain).unwrap()
            })
            .collect()
    }

    /// `response`, as this hub sends it.
    fn says(&mut self, response: &Response) -> Event {
        let plain = encode(response).unwrap();
        Event::Message(match &self.key {
            Some(key) => {
                self.counter += 1;
                seal::seal(key, Direction::ToTerminal, "T1", self.counter, &plain)
            }
            None => plain,
        })
    }
}

fn config() -> SessionConfig {
    SessionConfig {
        currency: Currency::CNY,
        slip_columns: tallybox_core::slip::WIDTH,
        lang: Lang::En,
        terminal: "T1".into(),
    }
}

fn checkout(key: Option<Key>, in_flight: Option<InFlight>, now: Instant) -> Checkout {
    let link = HubLink::new("T1", "shop", key, RETRY, SILENT);
    let mut counter = 100;
    let next = Box::new(move || {
        counter += 1;
        counter
    });
    let mut c = Checkout::new(config(), link, next, "0.1.0", in_flight, None, now);
    c.handle(
        Event::Clock {
            hhmm: "10:00".into(),
            today: (2026, 12),
        },
        now,
    );
    c
}

/// What the checkout asks for, less the replay marks it keeps (see
/// `a_sealed_command_is_obeyed_once_even_across_a_restart`).
fn drain(c: &mut Checkout) -> Vec<Output> {
    std::iter::from_fn(|| c.poll_action())
        .filter(|o| !matches!(o, Output::KeepSeen(_)))
        .collect()
}

fn screen(outputs: &[Output]) -> String {
    outputs
        .iter()
        .rev()
        .find_map(|o| match o {
            Output::Show(s) => Some(s.text()),
            _ => None,
        })
        .unwrap_or_default()
}

fn press(c: &mut Checkout, typed: &str, now: Instant) -> Vec<Output> {
    for ch in typed.chars() {
        c.handle(Event::Input(Input::Key(Keypad::from_char(ch).unwrap())), now);
    }
    drain(c)
}

fn swipe(c: &mut Checkout, now: Instant) -> Vec<Output> {
    let read = test_cards::by_name("approved").unwrap().read(EntryMode::Swipe);
    c.handle(Event::Input(Input::Card(Ok(read))), now);
    drain(c)
}

fn signed_in(request: &Request) -> Response {
    crate::session::tests::signed_in(request.request_id().unwrap().clone(), "Shop", None, None)
}

fn approved(request: &Request) -> Response {
    Response::Outcome(Outcome {
        request_id: request.request_id().unwrap().clone(),
        kind: TxnKind::Sale,
        status: TxnStatus::Approved,
        response_code: ResponseCode::APPROVED,
        receipt: Some(crate::session::tests::receipt(Amount::from_minor(1250).unwrap())),
        balance: None,
    })
}

/// A paired checkout, connected and signed in, idle.
fn ready(hub: &mut Hub, now: Instant) -> Checkout {
    let mut c = checkout(hub.key, None, now);
    c.handle(Event::Connected, now);
    let out = drain(&mut c);
    let sign_in = hub.requests(&out).pop().expect("a sign-in");
    c.handle(hub.says(&signed_in(&sign_in)), now);
    drain(&mut c);
    assert_eq!(c.state_name(), "idle");
    c
}

/// A sale of CNY 12.50 sent and waited on: the request the hub got.
fn sale(c: &mut Checkout, hub: &Hub, now: Instant) -> Request {
    press(c, "A1250#", now);
    let out = swipe(c, now);
    let journaled = out.iter().position(|o| matches!(o, Output::Journal(Some(_))));
    let sent = out.iter().position(|o| matches!(o, Output::Publish(_)));
    assert!(
        journaled < sent && journaled.is_some(),
        "journaled before it goes out: {out:?}"
    );
    let request = hub.requests(&out).pop().expect("a sale");
    assert!(matches!(request, Request::Sale(_)), "{request:?}");
    request
}

#[test]
fn a_sale_goes_out_sealed_and_again_with_its_id_until_the_hub_answers() {
    let t0 = Instant::now();
    let mut hub = Hub::new(Some(KEY));
    let mut c = ready(&mut hub, t0);
    let request = sale(&mut c, &hub, t0);
    assert_eq!(c.poll_timeout(), Some(t0 + RETRY));
    // Early: nothing goes out again.
    c.handle(Event::Timeout, t0 + RETRY / 2);
    assert!(drain(&mut c).is_empty());
    c.handle(Event::Timeout, t0 + RETRY);
    assert_eq!(
        hub.requests(&drain(&mut c)),
        vec![request.clone()],
        "the same request"
    );
    // Disconnected, nothing is due; connected again, it goes out as soon
    // as the hub has answered the sign-in each connection starts with.
    c.handle(Event::Disconnected, t0 + RETRY * 2);
    assert_ne!(c.poll_timeout(), Some(t0 + RETRY * 2));
    c.handle(Event::Timeout, t0 + RETRY * 3);
    assert!(hub.requests(&drain(&mut c)).is_empty());
    c.handle(Event::Connected, t0 + RETRY * 4);
    let out = drain(&mut c);
    assert_eq!(out[0], Output::Online);
    let sign_in = match &hub.requests(&out)[..] {
        [sign_in @ Request::SignIn(_)] => sign_in.clone(),
        other => panic!("a sign-in alone first: {other:?}"),
    };
    c.handle(hub.says(&signed_in(&sign_in)), t0 + RETRY * 4);
    assert_eq!(
        hub.requests(&drain(&mut c)),
        vec![request.clone()],
        "the same request"
    );

    c.handle(hub.says(&approved(&request)), t0 + RETRY * 5);
    let out = drain(&mut c);
    assert!(screen(&out).contains("APPROVED"), "{out:?}");
    // Both slips reach the print queue on disk before the journal forgets.
    let queued = out.iter().position(|o| {
        matches!(o, Output::QueueSale { request_id, slips }
            if Some(request_id) == request.request_id() && slips.len() == 2)
    });
    let forgot = out.iter().position(|o| *o == Output::Journal(None));
    assert!(queued.is_some() && queued < forgot, "{out:?}");
    assert!(
        !out.iter().any(|o| matches!(o, Output::Print(_))),
        "printed once, from the queue"
    );
    assert_eq!(c.poll_timeout(), None, "nothing left to wait on");
}

#[test]
fn replayed_forged_or_unsealed_answers_do_not_end_a_sale() {
    let t0 = Instant::now();
    let mut hub = Hub::new(Some(KEY));
    let mut c = ready(&mut hub, t0);
    let request = sale(&mut c, &hub, t0);
    // The hub's last message again (the sign-in's answer): a replay.
    let replay = {
        let plain = encode(&approved(&request)).unwrap();
        seal::seal(&KEY, Direction::ToTerminal, "T1", hub.counter, &plain)
    };
    c.handle(Event::Message(replay), t0);
    let forged = seal::seal(
        &[1; 32],
        Direction::ToTerminal,
        "T1",
        99,
        &encode(&approved(&request)).unwrap(),
    );
    c.handle(Event::Message(forged), t0);
    c.handle(Event::Message(encode(&approved(&request)).unwrap()), t0);
    assert!(drain(&mut c).is_empty());
    assert_eq!(c.state_name(), "waiting");
    // The hub's real answer still ends it.
    c.handle(hub.says(&approved(&request)), t0);
    assert!(screen(&drain(&mut c)).contains("APPROVED"));
}

#[test]
fn pairing_seals_only_once_the_key_is_kept() {
    let t0 = Instant::now();
    let mut hub = Hub::new(None);
    let mut c = ready(&mut hub, t0);
    let out = press(&mut c, "D548219930#", t0);
    let Some(Request::Pair(requests::Pair { request_id, message })) = hub.requests(&out).pop() else {
        panic!("no pairing request: {out:?}");
    };
    assert_eq!(c.poll_timeout(), Some(t0 + link::PAIRING_WAIT));
    let (hub_key, answer, confirm) = seal::pair_answer("48219930", "T1", "shop", &message).unwrap();
    c.handle(
        hub.says(&Response::Paired {
            request_id,
            message: answer,
            confirm,
        }),
        t0,
    );
    assert_eq!(drain(&mut c), vec![Output::KeepKey(hub_key)]);
    assert!(!c.is_paired(), "not until the key is on disk");
    c.handle(Event::KeyKept(Ok(())), t0);
    let out = drain(&mut c);
    assert!(screen(&out).contains("PAIRED"), "{out:?}");
    // The new sign-in goes out sealed with the key both sides hold.
    hub.key = Some(hub_key);
    assert!(matches!(hub.requests(&out).pop(), Some(Request::SignIn(_))));
    assert!(c.is_paired());
}

#[test]
fn a_pairing_fails_when_the_key_cannot_be_kept_or_the_hub_stays_silent() {
    let t0 = Instant::now();
    let mut hub = Hub::new(None);
    let mut c = ready(&mut hub, t0);
    let out = press(&mut c, "D548219930#", t0);
    let Some(Request::Pair(requests::Pair { request_id, message })) = hub.requests(&out).pop() else {
        panic!("no pairing request");
    };
    let (_, answer, confirm) = seal::pair_answer("48219930", "T1", "shop", &message).unwrap();
    let paired = Response::Paired {
        request_id,
        message: answer,
        confirm,
    };
    c.handle(hub.says(&paired), t0);
    drain(&mut c);
    c.handle(Event::KeyKept(Err("disk full".into())), t0);
    let shown = screen(&drain(&mut c));
    assert!(shown.contains("PAIRING FAILED"), "{shown}");
    assert!(!c.is_paired());

    press(&mut c, "C", t0);
    press(&mut c, "D548219930#", t0);
    c.handle(Event::Timeout, t0 + link::PAIRING_WAIT - Duration::from_millis(1));
    assert!(drain(&mut c).is_empty());
    c.handle(Event::Timeout, t0 + link::PAIRING_WAIT);
    assert!(screen(&drain(&mut c)).contains("PAIRING FAILED"));
}

#[test]
fn the_cashier_hears_once_that_the_hub_is_silent_and_the_sale_still_ends() {
    let t0 = Instant::now();
    let mut hub = Hub::new(Some(KEY));
    let mut c = ready(&mut hub, t0);
    let request = sale(&mut c, &hub, t0);
    let mut now = t0;
    let mut told = 0;
    while now < t0 + SILENT * 2 {
        now = c.poll_timeout().expect("a deadline while waiting");
        c.handle(Event::Timeout, now);
        let now_told = drain(&mut c)
            .iter()
            .filter(|o| matches!(o, Output::Show(s) if s.text().contains("NO ANSWER YET")))
            .count();
        if now_told > 0 {
            assert_eq!(now, t0 + SILENT, "told when the limit passed");
        }
        told += now_told;
    }
    assert_eq!(told, 1, "told once");
    c.handle(hub.says(&approved(&request)), now);
    assert!(screen(&drain(&mut c)).contains("APPROVED"));
}

#[test]
fn a_restart_the_owner_asks_for_waits_for_the_sale_to_end() {
    let t0 = Instant::now();
    let mut hub = Hub::new(Some(KEY));
    let mut c = ready(&mut hub, t0);
    let request = sale(&mut c, &hub, t0);
    c.handle(hub.says(&Response::Restart), t0);
    assert!(!drain(&mut c).iter().any(|o| matches!(o, Output::Stop(_))));
    c.handle(hub.says(&approved(&request)), t0);
    assert!(
        !drain(&mut c).iter().any(|o| matches!(o, Output::Stop(_))),
        "the approval is on screen"
    );
    let out = press(&mut c, "C", t0);
    assert_eq!(out.last(), Some(&Output::Stop(Ending::Restart)), "{out:?}");
    // Said once.
    press(&mut c, "C", t0);
    assert!(!drain(&mut c).iter().any(|o| matches!(o, Output::Stop(_))));
}

#[test]
fn an_installed_update_waits_for_idle_and_offers_go_to_the_runtime() {
    let t0 = Instant::now();
    let mut hub = Hub::new(Some(KEY));
    let mut c = ready(&mut hub, t0);
    c.handle(
        hub.says(&Response::Update {
            version: "0.2.0".into(),
            port: 8080,
            path: "/updates/terminal-0.2.0.tbx".into(),
        }),
        t0,
    );
    assert_eq!(
        drain(&mut c),
        vec![Output::UpdateOffered {
            version: "0.2.0".into(),
            port: 8080,
            path: "/updates/terminal-0.2.0.tbx".into()
        }]
    );
    press(&mut c, "A1", t0);
    c.handle(Event::Installed("0.2.0".into()), t0);
    assert!(
        !drain(&mut c).iter().any(|o| matches!(o, Output::Stop(_))),
        "mid-entry"
    );
    let out = press(&mut c, "C", t0);
    assert_eq!(out.last(), Some(&Output::Stop(Ending::Updated("0.2.0".into()))));
}

#[test]
fn a_sale_in_flight_at_the_last_stop_is_recalled_and_a_failed_journal_write_is_retried() {
    let t0 = Instant::now();
    let hub = Hub::new(Some(KEY));
    let entry = InFlight {
        request_id: RequestId::parse("sale-00000001").unwrap(),
        title: "SALE CNY 12.50".into(),
    };
    let mut c = checkout(Some(KEY), Some(entry.clone()), t0);
    c.handle(Event::Connected, t0);
    let recalls: Vec<Request> = hub.requests(&drain(&mut c));
    assert!(
        recalls.contains(&Request::Recall(requests::Recall {
            request_id: entry.request_id.clone()
        })),
        "{recalls:?}"
    );
    // The journal already holds it: not written again.
    c.handle(Event::Timeout, t0 + RETRY);
    assert!(!drain(&mut c).iter().any(|o| matches!(o, Output::Journal(_))));

    // A journal write that failed is asked for again at the next change.
    let mut hub = Hub::new(Some(KEY));
    let mut c = ready(&mut hub, t0);
    press(&mut c, "A1250#", t0);
    swipe(&mut c, t0);
    c.handle(Event::JournalFailed, t0);
    c.handle(
        Event::Clock {
            hhmm: "10:01".into(),
            today: (2026, 12),
        },
        t0,
    );
    let out = drain(&mut c);
    assert!(
        out.iter().any(|o| matches!(o, Output::Journal(Some(_)))),
        "{out:?}"
    );
}

#[test]
fn the_owners_test_slip_and_the_time_zone_go_to_the_runtime() {
    let t0 = Instant::now();
    let mut hub = Hub::new(Some(KEY));
    let mut c = ready(&mut hub, t0);
    c.handle(hub.says(&Response::TestSlip), t0);
    assert_eq!(drain(&mut c), vec![Output::PrintTestSlip]);
    let slip = c.test_slip("2026-12-02 10:00:00", "0.1.0").lines.join("\n");
    assert!(slip.contains("Shop") && slip.contains("T1"), "{slip}");
    c.handle(
        hub.says(&Response::TimeZone {
            time_zone: "Asia/Shanghai".into(),
        }),
        t0,
    );
    assert_eq!(
        drain(&mut c).first(),
        Some(&Output::TimeZone("Asia/Shanghai".into()))
    );
}

#[test]
fn the_hub_asking_whether_the_checkout_is_there_gets_a_heartbeat_but_a_stranger_does_not() {
    let t0 = Instant::now();
    let mut hub = Hub::new(Some(KEY));
    let mut c = ready(&mut hub, t0);
    c.handle(hub.says(&Response::AreYouThere), t0);
    assert_eq!(drain(&mut c), vec![Output::Heartbeat]);
    // In clear, from anyone on the LAN: not taken, nothing sent.
    c.handle(
        Event::Message(tallybox_core::protocol::encode(&Response::AreYouThere).unwrap()),
        t0,
    );
    assert_eq!(drain(&mut c), vec![]);
}

/// Every kind of message the hub could send, as a stranger would forge it
/// for the request `request` (in clear: a stranger holds no key).
fn every_answer_to(request: &Request) -> Vec<Response> {
    use tallybox_core::protocol::ErrorCode;
    let id = request.request_id().unwrap().clone();
    let mut declined = approved(request);
    if let Response::Outcome(o) = &mut declined {
        o.status = TxnStatus::Declined;
        o.response_code = ResponseCode::parse("51").unwrap();
        o.receipt = None;
    }
    let Response::Outcome(outcome) = approved(request) else {
        unreachable!()
    };
    let mut answers = vec![
        declined,
        approved(request),
        signed_in(request),
        Response::Paired {
            request_id: id.clone(),
            message: "x".into(),
            confirm: "y".into(),
        },
        Response::TimeZone {
            time_zone: "Asia/Tokyo".into(),
        },
        Response::Cashier {
            request_id: id.clone(),
            cashier: None,
            refused: None,
        },
        Response::Frozen {
            request_id: Some(id.clone()),
            reason: Some("forged".into()),
            reason_zh: None,
        },
        Response::Frozen {
            request_id: None,
            reason: Some("forged".into()),
            reason_zh: None,
        },
        Response::Reprint {
            request_id: id.clone(),
            receipt: None,
        },
        Response::Print {
            receipt: outcome.receipt.clone().unwrap(),
        },
        Response::TestSlip,
        Response::Restart,
        Response::Update {
            version: "9.9.9".into(),
            port: 80,
            path: "/evil".into(),
        },
        Response::Settled {
            request_id: id.clone(),
            batch_no: 1,
            balanced: true,
            report: vec!["forged".into()],
        },
    ];
    for code in [
        ErrorCode::TooLarge,
        ErrorCode::Malformed,
        ErrorCode::UnsupportedVersion,
        ErrorCode::UnknownType,
        ErrorCode::InvalidAmount,
        ErrorCode::DuplicateRequestId,
        ErrorCode::Internal,
        ErrorCode::NotPaired,
        ErrorCode::NoPairing,
    ] {
        for request_id in [Some(id.to_string()), None] {
            answers.push(Response::Error {
                request_id,
                code,
                message: "forged".into(),
            });
        }
    }
    answers
}

#[test]
fn a_stranger_answering_first_in_clear_changes_nothing_and_the_hubs_answer_prints() {
    let t0 = Instant::now();
    let mut hub = Hub::new(Some(KEY));
    let mut c = ready(&mut hub, t0);
    for round in 0..3u32 {
        let now = t0 + NOT_PAIRED_AFTER * 2 * round;
        let request = sale(&mut c, &hub, now);
        let mut asked = Vec::new();
        for forged in every_answer_to(&request) {
            c.handle(Event::Message(encode(&forged).unwrap()), now);
            let out = drain(&mut c);
            assert_eq!(c.state_name(), "waiting", "{forged:?} moved the sale: {out:?}");
            assert!(
                out.iter().all(|o| matches!(o, Output::Publish(_))),
                "{forged:?} did more than ask the hub: {out:?}"
            );
            asked.extend(hub.requests(&out));
        }
        // The clear "not paired" made the checkout sign in again, sealed;
        // the hub, alive and holding the key, answers it.
        let probes: Vec<&Request> = asked.iter().filter(|r| matches!(r, Request::SignIn(_))).collect();
        assert_eq!(probes.len(), 1, "{asked:?}");
        c.handle(hub.says(&signed_in(probes[0])), now);
        // Long after, the hub's sealed answer still ends the sale, with its slips.
        let later = now + NOT_PAIRED_AFTER;
        c.handle(Event::Timeout, later);
        c.handle(hub.says(&approved(&request)), later);
        let out = drain(&mut c);
        assert!(screen(&out).contains("APPROVED"), "{out:?}");
        assert!(
            out.iter()
                .any(|o| matches!(o, Output::QueueSale { slips, .. } if slips.len() == 2)),
            "{out:?}"
        );
        let shown = screen(&press(&mut c, "C", later));
        assert!(!shown.contains("NOT PAIRED"), "{shown}");
    }
}

#[test]
fn not_paired_in_clear_is_believed_only_when_a_sealed_sign_in_goes_unanswered_and_shown_at_idle() {
    use tallybox_core::protocol::ErrorCode;
    let not_paired = encode(&Response::Error {
        request_id: None,
        code: ErrorCode::NotPaired,
        message: "pair again".into(),
    })
    .unwrap();
    let t0 = Instant::now();
    let mut hub = Hub::new(Some(KEY));

    // The hub answers the sealed sign-in it prompts: a stranger's lie.
    let mut c = ready(&mut hub, t0);
    c.handle(Event::Message(not_paired.clone()), t0);
    let out = drain(&mut c);
    let Some(probe @ Request::SignIn(_)) = hub.requests(&out).pop() else {
        panic!("no sealed sign-in: {out:?}");
    };
    assert_eq!(c.poll_timeout().map(|at| at <= t0 + NOT_PAIRED_AFTER), Some(true));
    c.handle(hub.says(&signed_in(&probe)), t0 + RETRY);
    c.handle(Event::Timeout, t0 + NOT_PAIRED_AFTER * 2);
    let shown = screen(&drain(&mut c));
    assert!(!shown.contains("NOT PAIRED"), "{shown}");

    // The hub holds no key any more (revoked): it answers nothing sealed.
    let mut c = ready(&mut hub, t0);
    c.handle(Event::Message(not_paired.clone()), t0);
    c.handle(Event::Timeout, t0 + NOT_PAIRED_AFTER - Duration::from_millis(1));
    assert!(!screen(&drain(&mut c)).contains("NOT PAIRED"));
    c.handle(Event::Timeout, t0 + NOT_PAIRED_AFTER);
    let shown = screen(&drain(&mut c));
    assert!(shown.contains("NOT PAIRED") && shown.contains("D 5"), "{shown}");

    // Mid-sale, a hub that answers nothing sealed ends the wait as
    // unconfirmed (it may have charged before the revocation), never as
    // "not charged"; the sale's slips are not printed from a guess.
    let mut c = ready(&mut hub, t0);
    sale(&mut c, &hub, t0);
    c.handle(Event::Message(not_paired), t0);
    c.handle(Event::Timeout, t0 + NOT_PAIRED_AFTER - Duration::from_millis(1));
    assert_eq!(c.state_name(), "waiting");
    c.handle(Event::Timeout, t0 + NOT_PAIRED_AFTER);
    let out = drain(&mut c);
    let shown = screen(&out);
    assert!(
        shown.contains("Sale unconfirmed") && shown.contains("D 5"),
        "{shown}"
    );
    assert!(!shown.to_lowercase().contains("not charged"), "{shown}");
    assert!(out
        .iter()
        .all(|o| !matches!(o, Output::QueueSale { slips, .. } if !slips.is_empty())));
}

#[test]
fn a_sealed_command_is_obeyed_once_even_across_a_restart() {
    let t0 = Instant::now();
    let mut hub = Hub::new(Some(KEY));
    let mut c = ready(&mut hub, t0);
    let restart = hub.says(&Response::Restart);
    let Event::Message(captured) = &restart else {
        unreachable!()
    };
    let captured = captured.clone();
    c.handle(restart, t0);
    let out: Vec<Output> = std::iter::from_fn(|| c.poll_action()).collect();
    assert!(out.contains(&Output::Stop(Ending::Restart)), "{out:?}");
    let kept = out.iter().find_map(|o| match o {
        Output::KeepSeen(seen) => Some(*seen),
        _ => None,
    });
    assert_eq!(kept, Some(hub.counter), "the mark is kept before the stop");
    let keep_at = out.iter().position(|o| matches!(o, Output::KeepSeen(_)));
    let stop_at = out.iter().position(|o| matches!(o, Output::Stop(_)));
    assert!(keep_at < stop_at, "{out:?}");

    // Started again with the mark kept: the captured restart, published
    // again (retained, say), is dropped; the hub's next message is taken.
    let link = HubLink::new("T1", "shop", Some(KEY), RETRY, SILENT).remembering(hub.counter);
    let mut c = Checkout::new(config(), link, Box::new(|| 500), "0.1.0", None, None, t0);
    c.handle(Event::Message(captured), t0);
    c.handle(Event::Input(Input::Key(Keypad::C)), t0);
    assert!(
        !std::iter::from_fn(|| c.poll_action()).any(|o| matches!(o, Output::Stop(_))),
        "restarted again by a replay"
    );
    c.handle(hub.says(&Response::Restart), t0);
    assert!(std::iter::from_fn(|| c.poll_action()).any(|o| o == Output::Stop(Ending::Restart)));
}

/// A hub whose store lost trace numbers (a card that did not keep what it
/// was told to) learns from the sign-in how far this checkout's went, and
/// only then gets the sale it left unanswered again.
#[test]
fn the_sign_in_after_a_reconnection_carries_the_trace_floor_and_goes_before_the_unanswered_sale() {
    let t0 = Instant::now();
    let mut hub = Hub::new(Some(KEY));
    let mut c = ready(&mut hub, t0);
    let first = sale(&mut c, &hub, t0);
    c.handle(hub.says(&approved(&first)), t0);
    press(&mut c, "C", t0);
    drain(&mut c);
    let second = sale(&mut c, &hub, t0);
    c.handle(Event::Disconnected, t0);
    c.handle(Event::Connected, t0 + RETRY);
    let sent = hub.requests(&drain(&mut c));
    let Some(Request::SignIn(sign_in)) = sent.first() else {
        panic!("{sent:?}")
    };
    assert_eq!(sent.len(), 1, "the sale waits for the sign-in: {sent:?}");
    // Trace 7 was on the approval's receipt; the hub may have given the
    // unanswered sale 8.
    assert_eq!(sign_in.trace_floor, Some(9));
    // Re-sent on time, the sign-in still goes alone.
    c.handle(Event::Timeout, t0 + RETRY * 2);
    assert!(matches!(&hub.requests(&drain(&mut c))[..], [Request::SignIn(_)]));
    c.handle(hub.says(&signed_in(&sent[0])), t0 + RETRY * 2);
    let out = drain(&mut c);
    let record = out.iter().position(|o| matches!(o, Output::SendPrinted { .. }));
    assert!(record.is_some(), "{out:?}");
    assert_eq!(hub.requests(&out), vec![second.clone()]);

    c.handle(hub.says(&approved(&second)), t0 + RETRY * 2);
    press(&mut c, "C", t0 + RETRY * 2);
    drain(&mut c);

    // A sign-in left unanswered goes again with the floor as it is when it
    // goes, not as it was when it was made.
    c.handle(Event::Disconnected, t0 + RETRY * 3);
    c.handle(Event::Connected, t0 + RETRY * 3);
    let floor = |sent: &[Request]| match sent {
        [Request::SignIn(s)] => s.trace_floor,
        other => panic!("{other:?}"),
    };
    assert_eq!(floor(&hub.requests(&drain(&mut c))), Some(8));
    let third = sale(&mut c, &hub, t0 + RETRY * 3);
    c.handle(Event::Timeout, t0 + RETRY * 4);
    assert_eq!(
        floor(&hub.requests(&drain(&mut c))),
        Some(9),
        "the sale unanswered"
    );
    let mut with_trace = approved(&third);
    if let Response::Outcome(Outcome { receipt: Some(r), .. }) = &mut with_trace {
        r.trace_no = 30;
    }
    c.handle(hub.says(&with_trace), t0 + RETRY * 4);
    c.handle(Event::Timeout, t0 + RETRY * 5);
    assert_eq!(floor(&hub.requests(&drain(&mut c))), Some(31));

    // Started again, the checkout takes its floor from its record.
    let link = HubLink::new("T1", "shop", Some(KEY), RETRY, SILENT);
    let mut c = Checkout::new(config(), link, Box::new(|| 900), "0.1.0", None, Some(41), t0);
    let sent = hub.requests(&drain(&mut c));
    assert!(
        matches!(&sent[..], [Request::SignIn(s)] if s.trace_floor == Some(42)),
        "{sent:?}"
    );
}

#[test]
fn an_approval_is_recorded_before_its_slips_and_the_record_goes_to_the_hub_sealed_after_each_sign_in() {
    let t0 = Instant::now();
    let mut hub = Hub::new(Some(KEY));
    let mut c = checkout(hub.key, None, t0);
    c.handle(Event::Connected, t0);
    let sign_in = hub.requests(&drain(&mut c)).pop().expect("a sign-in");
    c.handle(hub.says(&signed_in(&sign_in)), t0);
    let asks = |out: &[Output]| {
        out.iter()
            .filter(|o| matches!(o, Output::SendPrinted { .. }))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(asks(&drain(&mut c)), vec![Output::SendPrinted { from_batch: 1 }]);
    // The same answer again is not a new sign-in.
    c.handle(hub.says(&signed_in(&sign_in)), t0);
    assert!(asks(&drain(&mut c)).is_empty());
    // A sign-in a stranger's "not paired" in clear prompts: the record went
    // once on this connection already.
    let claim = Response::Error {
        request_id: None,
        code: tallybox_core::protocol::ErrorCode::NotPaired,
        message: "not paired".into(),
    };
    c.handle(Event::Message(encode(&claim).unwrap()), t0);
    let again = hub.requests(&drain(&mut c)).pop().expect("a sealed sign-in");
    c.handle(hub.says(&signed_in(&again)), t0);
    assert!(asks(&drain(&mut c)).is_empty());

    let request = sale(&mut c, &hub, t0);
    c.handle(hub.says(&approved(&request)), t0);
    let out = drain(&mut c);
    let kept = out.iter().position(|o| {
        matches!(o, Output::KeepPrinted(e)
            if Some(&e.request_id) == request.request_id() && e.receipt.amount.minor() == 1250)
    });
    let queued = out.iter().position(|o| matches!(o, Output::QueueSale { .. }));
    assert!(kept.is_some() && kept < queued, "{out:?}");
    press(&mut c, "C", t0);
    // A decline is no approval.
    let request = sale(&mut c, &hub, t0);
    let Response::Outcome(mut declined) = approved(&request) else {
        unreachable!()
    };
    (declined.status, declined.receipt) = (TxnStatus::Declined, None);
    c.handle(hub.says(&Response::Outcome(declined)), t0);
    assert!(!drain(&mut c).iter().any(|o| matches!(o, Output::KeepPrinted(_))));

    // What the runtime reads back goes out sealed, as many to a message as
    // fit the protocol's limit, the longest receipts too.
    let mut long = PrintedEntry {
        request_id: RequestId::new(),
        original_trace: None,
        receipt: crate::session::tests::receipt(Amount::from_minor(1250).unwrap()),
    };
    long.receipt.merchant_name = "便利店".repeat(20);
    long.receipt.link = Some(format!("http://tallybox.local/r/{}", "A".repeat(26)));
    long.receipt.cashier = Some("9999".into());
    c.send_printed(vec![long; 60], t0);
    let out = drain(&mut c);
    let sizes: Vec<usize> = hub
        .requests(&out)
        .iter()
        .map(|r| match r {
            Request::Printed(p) => p.entries.len(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert!(sizes.len() > 1 && sizes.iter().sum::<usize>() == 60, "{sizes:?}");
    for payload in &out {
        let Output::Publish(bytes) = payload else { continue };
        assert!(
            bytes.len() <= tallybox_core::protocol::MAX_PAYLOAD,
            "{}",
            bytes.len()
        );
    }

    // An unpaired checkout's record stays on it: it would go out in clear.
    let mut clear = Hub::new(None);
    let mut c = checkout(None, None, t0);
    c.handle(Event::Connected, t0);
    let sign_in = clear.requests(&drain(&mut c)).pop().expect("a sign-in");
    c.handle(clear.says(&signed_in(&sign_in)), t0);
    assert!(asks(&drain(&mut c)).is_empty());
}

#[test]
fn a_hub_back_online_on_the_same_broker_gets_a_sign_in_at_most_every_few_seconds() {
    let t0 = Instant::now();
    let mut hub = Hub::new(Some(KEY));
    let mut c = ready(&mut hub, t0);
    let sign_ins = |hub: &Hub, c: &mut Checkout| {
        hub.requests(&drain(c))
            .into_iter()
            .filter(|r| matches!(r, Request::SignIn(_)))
            .count()
    };
    // Online as it was: nothing to do.
    c.handle(Event::HubStatus { online: true }, t0);
    assert_eq!(sign_ins(&hub, &mut c), 0);
    // Offline, then back: a sign-in, answered, then the record goes out.
    c.handle(Event::HubStatus { online: false }, t0);
    c.handle(Event::HubStatus { online: true }, t0);
    let out = drain(&mut c);
    let sign_in = hub.requests(&out).pop().expect("a sign-in");
    assert!(matches!(sign_in, Request::SignIn(_)), "{sign_in:?}");
    c.handle(hub.says(&signed_in(&sign_in)), t0);
    assert!(drain(&mut c).contains(&Output::SendPrinted { from_batch: 1 }));
    // Flipped again at once (anyone may publish the status): not again yet.
    c.handle(Event::HubStatus { online: false }, t0 + Duration::from_secs(1));
    c.handle(Event::HubStatus { online: true }, t0 + Duration::from_secs(1));
    assert_eq!(sign_ins(&hub, &mut c), 0);
    c.handle(Event::HubStatus { online: false }, t0 + Duration::from_secs(11));
    c.handle(Event::HubStatus { online: true }, t0 + Duration::from_secs(11));
    assert_eq!(sign_ins(&hub, &mut c), 1);

    // An unpaired checkout takes no sale while a sign-in is out: it stays put.
    let mut clear = Hub::new(None);
    let mut c = ready(&mut clear, t0);
    c.handle(Event::HubStatus { online: false }, t0);
    c.handle(Event::HubStatus { online: true }, t0);
    assert_eq!(sign_ins(&clear, &mut c), 0);
}
