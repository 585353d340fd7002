//! The hot paths of a hub and a checkout, each timed on its own, with no
//! network and no disk waits: built for the build machine and for the Pi
//! (aarch64), so `tallybox-bench pi` can run both in one run, the Pi's
//! under qemu user mode, and compare. Prints one JSON object a line:
//! `{"path": NAME, "us": MICROSECONDS_PER_ROUND, "rounds": N}`.
//!
//! `hotpaths [DIR]`: DIR holds the store (a tmpfs is best: the sale's
//! commits then cost their CPU, not the disk's sync).

use std::time::{Duration, Instant};

use tallybox::acquirer::sim::{Decision, SimIssuer};
use tallybox::acquirer::AuthRequest;
use tallybox::shop::Shop;
use tallybox::store::query::Filter;
use tallybox::store::{NewTxn, Store, Verdict};
use tallybox_core::card::{test_cards, EntryMode};
use tallybox_core::money::Amount;
use tallybox_core::protocol::{
    decode_request, encode, requests, Outcome, Request, RequestId, Response, TerminalId, TxnKind, TxnStatus,
};
use tallybox_core::seal::{open, seal, Direction, Key};

/// Runs `round` `rounds` times after a tenth as many to warm up: µs a round.
fn time(rounds: u32, mut round: impl FnMut(u32)) -> f64 {
    for i in 0..rounds.div_ceil(10) {
        round(i);
    }
    let started = Instant::now();
    for i in 0..rounds {
        round(i);
    }
    started.elapsed().as_secs_f64() * 1e6 / f64::from(rounds)
}

fn say(path: &str, us: f64, rounds: u32) {
    println!(
        "{}",
        serde_json::json!({ "path": path, "us": us, "rounds": rounds })
    );
}

/// The peak of this process's resident memory so far, in KiB.
fn peak_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

/// The hub's work for one sealed sale from a paired checkout: the request
/// opened and read, the pending row committed, the issuer's decision, the
/// verdict committed, the answer written and sealed.
fn sale(store: &mut Store, issuer: &mut SimIssuer, shop: &Shop, key: &Key, sealed: &[u8], n: u32) {
    let tid = TerminalId::parse(&format!("T{}", n % 8)).expect("an id");
    let (_, plain) = open(key, Direction::ToHub, "T1", sealed).expect("opens");
    let Ok(Request::Sale(sale)) = decode_request(&plain) else {
        panic!("a sale")
    };
    let request_id = RequestId::new();
    let new = NewTxn {
        request_id: &request_id,
        terminal_id: &tid,
        kind: TxnKind::Sale,
        amount: sale.amount,
        currency: "CNY",
        card: &sale.card,
        original_id: None,
        split: None,
    };
    let commit = |store: &mut Store, sql: &str| store.connection().execute_batch(sql).expect(sql);
    commit(store, "BEGIN IMMEDIATE");
    let txn = store.begin(&new).expect("pending");
    commit(store, "COMMIT");
    let request = AuthRequest {
        kind: TxnKind::Sale,
        terminal_id: tid.as_str().into(),
        trace_no: txn.trace_no,
        batch_no: txn.batch_no,
        amount: sale.amount,
        card: sale.card.clone(),
        pin_block: None,
        pin_key_check: None,
        original: None,
        at: chrono::Utc::now(),
    };
    let Decision::Answer { response, .. } = issuer.decide(&request) else {
        panic!("the issuer answers")
    };
    let verdict = Verdict {
        status: TxnStatus::Approved,
        response_code: response.response_code,
        auth_code: &response.auth_code,
        reference_no: &response.reference_no,
    };
    commit(store, "BEGIN IMMEDIATE");
    let done = store.finish(txn.id, &verdict).expect("verdict");
    commit(store, "COMMIT");
    let answer = encode(&Response::Outcome(Outcome {
        request_id: sale.request_id,
        kind: done.kind,
        status: done.status,
        response_code: verdict.response_code,
        receipt: Some(done.receipt(shop)),
        balance: None,
    }))
    .expect("an answer");
    std::hint::black_box(seal(key, Direction::ToTerminal, "T1", u64::from(n), &answer));
}

fn main() {
    let dir = match std::env::args().nth(1) {
        Some(d) => tempfile::tempdir_in(d),
        None => tempfile::tempdir(),
    }
    .expect("a folder for the store");
    // A sign-in: the password checked against its argon2id hash. First, so
    // the peak memory it adds is its own.
    let before = peak_kib();
    let hash = tallybox::passwords::hash("correct horse battery").expect("a hash");
    let rounds = 5;
    say(
        "argon2: a sign-in's password check",
        time(rounds, |_| {
            assert!(tallybox::passwords::verify("correct horse battery", &hash))
        }),
        rounds,
    );
    let grew = peak_kib().saturating_sub(before);
    println!(
        "{}",
        serde_json::json!({ "path": "argon2: peak memory added, KiB", "kib": grew })
    );

    let mut store = Store::open(dir.path()).expect("a store");
    let mut issuer = SimIssuer::default();
    let shop = Shop::from_config(&tallybox::config::Config::default()).expect("a shop");
    let key: Key = [7; 32];
    let card = test_cards::by_name("approved")
        .expect("a test card")
        .read(EntryMode::Swipe);
    let request = encode(&Request::Sale(requests::Sale {
        request_id: RequestId::new(),
        amount: Amount::from_minor(1250).expect("an amount"),
        currency: "CNY".into(),
        card,
        pin_block: None,
        supervisor_pin: None,
        split: None,
    }))
    .expect("a request");
    let sealed = seal(&key, Direction::ToHub, "T1", 1, &request);
    let rounds = 2_000;
    say(
        "sale: the hub's work, sealed (store on tmpfs)",
        time(rounds, |n| sale(&mut store, &mut issuer, &shop, &key, &sealed, n)),
        rounds,
    );

    // The receipts page over the sales just made: one checkout's approvals.
    let filter = Filter {
        status: Some("approved".into()),
        terminal: Some("T3".into()),
        limit: Some(50),
        ..Filter::default()
    };
    let rounds = 2_000;
    say(
        "receipts: a page of 50 with filters",
        time(rounds, |_| {
            let page = store.list(&filter).expect("a page");
            assert_eq!(page.items.len(), 50);
        }),
        rounds,
    );

    // The OLED: two screens that differ almost everywhere, drawn and sent
    // to the SSD1306 model over the I2C bus model (its decoding included).
    {
        use tallybox_terminal::devices::model::{i2c::I2cBus, ssd1306::SharedSsd1306};
        use tallybox_terminal::devices::oled::{Oled, ADDRESS};
        use tallybox_terminal::session::{Lang, Screens};
        let frames = Screens { lang: Lang::Zh }.busiest_pair();
        let bus = I2cBus::default();
        bus.attach(ADDRESS, Box::new(SharedSsd1306::default()));
        let mut oled = Oled::new(bus, ADDRESS).expect("the display");
        let rounds = 1_000;
        say(
            "oled: a frame drawn and flushed (CPU)",
            time(rounds, |i| oled.try_show(&frames[i as usize % 2]).expect("shown")),
            rounds,
        );
    }

    // A raw F2F swipe of a whole track 2, decoded from its edge times.
    {
        use tallybox_terminal::devices::magstripe::swipe::{SwipeDecoder, SwipeOutcome};
        use tallybox_terminal::devices::model::magstripe::{f2f_swipe, SwipeStyle};
        let style = SwipeStyle {
            jitter: 0.1,
            speed_change: 0.3,
            seed: 5,
            ..SwipeStyle::default()
        };
        let track = ";6222021000000005=28121010000012345678?";
        let events =
            f2f_swipe(track, &style, Duration::from_micros(400), Duration::from_secs(10)).expect("a swipe");
        let rounds = 2_000;
        say(
            "f2f: a track 2 swipe decoded",
            time(rounds, |_| {
                let mut decoder = SwipeDecoder::new(Duration::from_secs(15));
                let read = events.iter().find_map(|e| decoder.feed(*e));
                assert!(matches!(read, Some(SwipeOutcome::Read(_))), "{read:?}");
            }),
            rounds,
        );
    }
}
