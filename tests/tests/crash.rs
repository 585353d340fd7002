//! The crash harness: three checkout processes sell without pause while the
//! hub is killed (`SIGKILL`) at random moments, hundreds of times, with the
//! broker killed and the checkouts' network links cut or stalled for seconds
//! in between, and the checkouts themselves killed mid-sale. Then the books are checked three ways
//! — what each cashier saw, what the hub's database says, and what the acquirer
//! (on a real ISO 8583 link) charged:
//!
//! - every sale a cashier saw approved is `approved` in the database exactly
//!   once, and charged exactly once at the acquirer;
//! - no sale the cashier saw "not charged" (or never saw answered) is charged;
//! - nothing is left `pending`: every sale a crash interrupted was reversed;
//! - no sale was authorized twice; the database's totals equal the acquirer's;
//! - the audit chain verifies and `PRAGMA integrity_check` passes.
//!
//! `TALLYBOX_CRASH_ROUNDS` sets the number of kills (default 200).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use tallybox_e2e::books::{self, Book, Cashiers, Pace};
use tallybox_e2e::procs::{AcquirerSim, Hub, Mosquitto, Terminal};
use tallybox_e2e::proxy::Proxy;
use tallybox_e2e::{strs, wait_for};

#[test]
fn hundreds_of_kills_lose_no_sale_and_charge_none_twice() {
    let rounds: usize = std::env::var("TALLYBOX_CRASH_ROUNDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200);
    let mut broker = Mosquitto::start();
    let acquirer = AcquirerSim::start();
    // The acquirer answers after 20 ms, so a kill often finds sales waiting on it.
    let bank_link = Proxy::start(acquirer.port);
    bank_link.delay(Duration::from_millis(20));
    let mut hub = Hub::start_with(Some(broker.port), &strs(&acquirer.hub_flags(bank_link.port)));
    // The checkouts reach the broker through a link that gets cut.
    let lan = Proxy::start(broker.port);
    let book = Arc::new(Mutex::new(Book::default()));
    let terminals = (1..=3)
        .map(|i| {
            let t = Terminal::start_with(&format!("T{i}"), lan.port, &["--heartbeat-secs", "5"]);
            t.wait_ready();
            t
        })
        .collect();
    let pace = Pace {
        kill_one_in: Some(20),
        outcome_within: Duration::from_secs(90),
    };
    let cashiers = Cashiers::start(terminals, pace, &book);

    let mut rng = rand::thread_rng();
    let (mut hub_kills, mut broker_kills, mut link_cuts, mut link_stalls) = (0, 0, 0, 0);
    let started = Instant::now();
    for _ in 0..rounds {
        if started.elapsed() > Duration::from_secs(420) {
            break;
        }
        std::thread::sleep(Duration::from_millis(rng.gen_range(50..600)));
        match rng.gen_range(0..100) {
            0..=79 => {
                hub.kill();
                hub.restart();
                hub_kills += 1;
            }
            80..=89 => {
                broker.restart(); // SIGKILL, then a new broker on the same port
                broker_kills += 1;
            }
            90..=94 => {
                lan.cut();
                link_cuts += 1;
            }
            _ => {
                // Seconds of silence on every checkout's link, then all at once.
                lan.stall(Duration::from_millis(rng.gen_range(1_000..8_000)));
                link_stalls += 1;
            }
        }
    }
    let terminals = cashiers.stop();
    let took = started.elapsed();

    // Sales a kill left pending are reversed by the hub's sweep.
    let settled = wait_for(Duration::from_secs(60), || {
        hub.transactions("status=pending&limit=1")
            .is_empty()
            .then_some(())
    });
    assert!(
        settled.is_some(),
        "sales still pending a minute after the last kill"
    );
    hub.stop();

    let book = book.lock().unwrap();
    let conn = rusqlite::Connection::open(hub.data_dir().join("tallybox.db")).unwrap();
    let books = books::compare(&book, &conn, &acquirer);

    eprintln!(
        "crash harness: {took:?}, {hub_kills} hub kills, {broker_kills} broker kills, {link_cuts} link cuts, \
         {link_stalls} link stalls, {} checkout kills; {books}",
        book.terminal_kills,
    );
    books.assert_agree(&terminals);
    // The harness reached the moments that matter: kills found sales between
    // "pending" and the acquirer's answer, and checkouts died mid-sale.
    assert!(hub_kills >= rounds / 2, "only {hub_kills} hub kills in {took:?}");
    assert!(
        books.reversed_rows > 0,
        "no kill landed while a sale waited on the acquirer"
    );
    assert!(book.sales.len() > rounds, "only {} sales", book.sales.len());
}
