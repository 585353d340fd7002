//! The link's rules with plain values and a clock passed in: no broker, no
//! network, no files.

use super::*;
use tallybox_core::protocol::requests;
use tallybox_core::protocol::{encode, Status};

const RETRY: Duration = Duration::from_secs(1);
const SILENT: Duration = Duration::from_secs(15);

fn link(key: Option<Key>) -> HubLink {
    HubLink::new("T1", "shop", key, RETRY, SILENT)
}

fn sign_in() -> Request {
    Request::SignIn(requests::SignIn {
        request_id: RequestId::parse("0123456789abcdef").unwrap(),
        version: "0.1.0".into(),
        trace_floor: None,
    })
}

fn restart() -> Vec<u8> {
    encode(&Response::Restart).unwrap()
}

/// What the hub sends this checkout, sealed with `key` and `counter`.
fn from_hub(key: &Key, counter: u64, response: &Response) -> Vec<u8> {
    seal::seal(
        key,
        Direction::ToTerminal,
        "T1",
        counter,
        &encode(response).unwrap(),
    )
}

#[test]
fn pairing_with_the_owners_code_gives_the_key_both_sides_hold() {
    let now = Instant::now();
    let mut link = link(None);
    let Ok(Request::Pair(requests::Pair { request_id, message })) = link.start_pairing("48219930", now)
    else {
        panic!("no pair request");
    };
    let (hub_key, answer, confirm) = seal::pair_answer("48219930", "T1", "shop", &message).unwrap();
    let paired = Response::Paired {
        request_id,
        message: answer,
        confirm,
    };
    // The pairing's answer comes unsealed and is taken.
    let response = link.incoming(&encode(&paired).unwrap()).unwrap();
    let key = link
        .finish_pairing(&response)
        .expect("it answers the pairing")
        .unwrap();
    assert_eq!(key, hub_key);
    assert!(!link.is_paired(), "not until the key is kept");
    link.paired(key);
    assert!(link.is_paired());
    // From now on what goes out is sealed and opens with the hub's key.
    let sealed = link.outgoing(&sign_in(), now, || 7).unwrap();
    assert_eq!(
        seal::open(&hub_key, Direction::ToHub, "T1", &sealed).unwrap(),
        (7, encode(&sign_in()).unwrap())
    );
}

#[test]
fn a_wrong_code_or_a_silent_hub_fails_the_pairing() {
    let now = Instant::now();
    let mut link = link(None);
    let Ok(Request::Pair(requests::Pair { request_id, message })) = link.start_pairing("11111111", now)
    else {
        panic!("no pair request");
    };
    let (_, answer, confirm) = seal::pair_answer("22222222", "T1", "shop", &message).unwrap();
    let wrong = Response::Paired {
        request_id,
        message: answer,
        confirm,
    };
    assert!(link.finish_pairing(&wrong).unwrap().is_err());
    assert!(!link.is_paired());

    assert!(link.start_pairing("11111111", now).is_ok());
    assert!(!link.pairing_expired(now + PAIRING_WAIT - Duration::from_millis(1)));
    assert!(link.pairing_expired(now + PAIRING_WAIT));
    assert!(!link.pairing_expired(now + PAIRING_WAIT * 2), "reported once");
    // A code of the wrong length fails at once.
    assert!(link.start_pairing("123", now).is_err());
    assert!(link.pairing_expired(now));
    // An answer to another request is not the pairing's.
    assert!(link.finish_pairing(&Response::Restart).is_none());
}

#[test]
fn a_paired_checkout_takes_sealed_answers_once_and_refuses_the_unsealed() {
    let key: Key = [9; 32];
    let mut link = link(Some(key));
    assert_eq!(
        link.incoming(&from_hub(&key, 10, &Response::Restart)),
        Ok(Response::Restart)
    );
    // The same message again, or an older one: a replay.
    assert!(matches!(
        link.incoming(&from_hub(&key, 10, &Response::Restart)),
        Err(Refused::Seal(SealError::Replayed { .. }))
    ));
    assert!(link.incoming(&from_hub(&key, 9, &Response::Restart)).is_err());
    assert_eq!(
        link.incoming(&from_hub(&key, 11, &Response::Restart)),
        Ok(Response::Restart)
    );
    // Another key: forged.
    assert_eq!(
        link.incoming(&from_hub(&[1; 32], 12, &Response::Restart)),
        Err(Refused::Seal(SealError::Forged))
    );
    // Anyone on the LAN can publish in clear: refused once paired ...
    assert_eq!(link.incoming(&restart()), Err(Refused::Unsealed));
    // ... and the hub saying in clear this checkout is not paired (its key
    // was revoked, or a stranger says so) is told apart, to be checked.
    let revoked = Response::Error {
        request_id: None,
        code: ErrorCode::NotPaired,
        message: "pair again".into(),
    };
    assert_eq!(
        link.incoming(&encode(&revoked).unwrap()),
        Err(Refused::UnsealedNotPaired)
    );
    assert!(matches!(link.incoming(b"{nope"), Err(Refused::Unreadable(_))));
}

#[test]
fn an_unpaired_checkout_takes_clear_answers_and_cannot_open_sealed_ones() {
    let mut link = link(None);
    assert_eq!(link.incoming(&restart()), Ok(Response::Restart));
    assert_eq!(
        link.incoming(&from_hub(&[9; 32], 1, &Response::Restart)),
        Err(Refused::NotPaired)
    );
    // What goes out is in clear.
    let out = link
        .outgoing(&sign_in(), Instant::now(), || unreachable!("no counter"))
        .unwrap();
    assert_eq!(out, encode(&sign_in()).unwrap());
    let status = Status {
        online: true,
        version: "0.1.0".into(),
        detail: None,
    };
    assert!(!status.payload().is_empty());
}

#[test]
fn the_pairing_request_goes_out_unsealed_even_when_paired() {
    let mut link = link(Some([9; 32]));
    let now = Instant::now();
    let pair = link.start_pairing("48219930", now).unwrap();
    let out = link.outgoing(&pair, now, || unreachable!("not sealed")).unwrap();
    assert!(!seal::is_sealed(&out));
}

#[test]
fn unanswered_requests_are_sent_again_every_retry_interval() {
    let start = Instant::now();
    let mut link = link(None);
    assert!(link.resend_due(start), "nothing sent yet");
    link.outgoing(&sign_in(), start, || 0).unwrap();
    assert!(!link.resend_due(start + RETRY / 2));
    assert!(link.resend_due(start + RETRY));
}

#[test]
fn the_cashier_hears_of_a_silent_hub_once_per_sale() {
    let start = Instant::now();
    let mut link = link(None);
    let sale = RequestId::parse("sale-00000001").unwrap();
    let next = RequestId::parse("sale-00000002").unwrap();
    assert!(!link.hub_silent(Some(&sale), start));
    assert!(!link.hub_silent(Some(&sale), start + SILENT - Duration::from_millis(1)));
    assert!(link.hub_silent(Some(&sale), start + SILENT));
    assert!(!link.hub_silent(Some(&sale), start + SILENT * 2), "told once");
    // The next sale has its own clock.
    assert!(!link.hub_silent(Some(&next), start + SILENT * 2));
    assert!(link.hub_silent(Some(&next), start + SILENT * 3));
    // Answered: nothing waited on.
    assert!(!link.hub_silent(None, start + SILENT * 4));
}

#[test]
fn a_restart_or_an_update_waits_until_the_checkout_is_idle() {
    let mut link = link(None);
    assert_eq!(link.stop_now(true), None);
    link.stop_when_idle(Ending::Restart);
    assert_eq!(link.stop_now(false), None, "never in the middle of a sale");
    assert_eq!(link.stop_now(true), Some(&Ending::Restart));
    link.stop_when_idle(Ending::Updated("0.2.0".into()));
    assert_eq!(link.stop_now(true), Some(&Ending::Updated("0.2.0".into())));
}
