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

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::json;
use tallybox::acquirer::iso8583::codec::Message;
use tallybox::acquirer::iso8583::messages::terminal_field;
use tallybox_e2e::procs::{AcquirerSim, Hub, Mosquitto, Terminal};
use tallybox_e2e::proxy::Proxy;
use tallybox_e2e::{strs, wait_for};

/// What the cashier saw at the end of one sale.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    Approved,
    NotCharged,
    /// The checkout was killed at the end of the sale and came back idle,
    /// but its slips printed (before the kill, or from the queue after it).
    SlipOnly,
    /// The checkout was killed before the sale left it and came back idle.
    NeverSent,
    /// Anything else: a failure of the harness's expectations.
    Other(String),
}

#[derive(Debug, Clone)]
struct Sale {
    terminal: String,
    amount: u64,
    seen: Seen,
}

#[derive(Default)]
struct Book {
    sales: Vec<Sale>,
    terminal_kills: usize,
}

fn screen_text(t: &Terminal) -> Option<String> {
    let answer = t.try_call(&json!({"cmd": "screen"})).ok()?;
    let lines: Vec<&str> = answer["lines"]
        .as_array()?
        .iter()
        .filter_map(|l| l.as_str())
        .collect();
    Some(lines.join("\n"))
}

/// Waits for the end of the sale of `amount` on `t`'s screen.
fn outcome(t: &Terminal, amount: u64, was_killed: bool) -> Seen {
    let shown = format!("CNY {}.{:02}", amount / 100, amount % 100);
    let started = Instant::now();
    let mut idle_since: Option<Instant> = None;
    while started.elapsed() < Duration::from_secs(90) {
        let screen = screen_text(t).unwrap_or_default();
        if screen.contains("APPROVED") {
            return if screen.contains(&shown) {
                Seen::Approved
            } else {
                Seen::Other(format!("approved, but not {shown}: {screen}"))
            };
        }
        if screen.contains("NOT CHARGED") {
            return Seen::NotCharged;
        }
        if screen.contains("Any key") {
            return Seen::Other(screen);
        }
        // A checkout killed before its sale left comes back with nothing to
        // recall: idle, ready for the next sale.
        if was_killed && screen.contains("Ready") {
            let since = *idle_since.get_or_insert_with(Instant::now);
            if since.elapsed() > Duration::from_secs(3) {
                let paper = std::fs::read_to_string(t.state_dir().join("sim-paper.jsonl"));
                let slip = paper.unwrap_or_default().lines().any(|l| l.contains(&shown));
                return if slip { Seen::SlipOnly } else { Seen::NeverSent };
            }
        } else {
            idle_since = None;
        }
        std::thread::sleep(Duration::from_millis(15));
    }
    Seen::Other(format!("no outcome in 90 s; screen: {:?}", screen_text(t)))
}

/// One checkout's cashier: sells until `stop`, now and then pulling the
/// checkout's plug mid-sale.
fn cashier(mut t: Terminal, base: u64, stop: Arc<AtomicBool>, book: Arc<Mutex<Book>>) -> Terminal {
    let mut rng = rand::thread_rng();
    let cards = ["approved", "visa", "mastercard"];
    let mut n = 0;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        let amount = base + n;
        // Back at the idle screen (a previous restart may still be signing in).
        let ready = wait_for(Duration::from_secs(60), || {
            screen_text(&t).filter(|s| s.contains("Ready")).map(|_| ())
        });
        assert!(ready.is_some(), "{} never got ready:\n{}", t.id, t.log());
        let keyed = t.try_call(&json!({"cmd": "keys", "keys": format!("A{amount}#")}));
        let card = cards[rng.gen_range(0..cards.len())];
        let presented = keyed.and_then(|_| t.try_call(&json!({"cmd": "card", "name": card})));
        if presented.map(|a| a["ok"] != true).unwrap_or(true) {
            panic!("{} refused a sale's keys or card:\n{}", t.id, t.log());
        }
        let kill = rng.gen_ratio(1, 20);
        if kill {
            std::thread::sleep(Duration::from_millis(rng.gen_range(0..40)));
            t.restart();
        }
        let seen = outcome(&t, amount, kill);
        let _ = t.try_call(&json!({"cmd": "keys", "keys": "C"}));
        let mut book = book.lock().unwrap();
        book.terminal_kills += usize::from(kill);
        book.sales.push(Sale {
            terminal: t.id.clone(),
            amount,
            seen,
        });
    }
    t
}

/// Per (terminal field, trace number): authorizations the acquirer approved,
/// reversals it received, and the amount.
#[derive(Debug, Default)]
struct AtAcquirer {
    approved: usize,
    reversed: usize,
    amount: u64,
}

fn acquirer_books(acquirer: &AcquirerSim) -> HashMap<(String, String), AtAcquirer> {
    let log = std::fs::read_to_string(acquirer.messages_path()).expect("acquirer message log");
    let mut requests: HashMap<(String, String), u64> = HashMap::new();
    let mut books: HashMap<(String, String), AtAcquirer> = HashMap::new();
    for line in log.lines() {
        let (direction, hex) = line.split_once(' ').expect("`in|out HEX`");
        let message = Message::decode(&hex_bytes(hex)).expect("a message the codec reads");
        let key = (
            message.text(41).unwrap_or_default().to_string(),
            message.text(11).unwrap_or_default().to_string(),
        );
        let amount = message.text(4).and_then(|a| a.parse().ok()).unwrap_or(0);
        match (direction, message.mti.as_str()) {
            ("in", "0200") => {
                requests.insert(key, amount);
            }
            ("out", "0210") if message.text(39) == Some("00") => {
                let at = books.entry(key.clone()).or_default();
                at.approved += 1;
                at.amount = requests.get(&key).copied().unwrap_or(amount);
            }
            ("in", "0400") => books.entry(key).or_default().reversed += 1,
            _ => {}
        }
    }
    books
}

fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

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
    let stop = Arc::new(AtomicBool::new(false));
    let book = Arc::new(Mutex::new(Book::default()));
    let cashiers: Vec<_> = (1..=3u64)
        .map(|i| {
            let t = Terminal::start_with(&format!("T{i}"), lan.port, &["--heartbeat-secs", "5"]);
            t.wait_ready();
            let (stop, book) = (Arc::clone(&stop), Arc::clone(&book));
            std::thread::spawn(move || cashier(t, i * 100_000, stop, book))
        })
        .collect();

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
    stop.store(true, Ordering::SeqCst);
    let terminals: Vec<Terminal> = cashiers
        .into_iter()
        .map(|c| c.join().expect("a cashier thread failed"))
        .collect();
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
    let mut rows: BTreeMap<(String, u64), Vec<(String, String)>> = BTreeMap::new();
    let mut statement = conn
        .prepare("SELECT terminal_id, amount, status, trace_no FROM transactions WHERE kind = 'sale'")
        .unwrap();
    let all = statement
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)? as u64,
                r.get::<_, String>(2)?,
                r.get::<_, u32>(3)?,
            ))
        })
        .unwrap()
        .map(Result::unwrap);
    for (terminal, amount, status, trace) in all {
        let trace = format!("{:06}", trace % 1_000_000);
        rows.entry((terminal, amount)).or_default().push((status, trace));
    }
    let charged = acquirer_books(&acquirer);

    let mut problems = Vec::new();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for sale in &book.sales {
        *counts.entry(format!("{:?}", sale.seen)).or_default() += 1;
        let key = (sale.terminal.clone(), sale.amount);
        let here = rows.get(&key).cloned().unwrap_or_default();
        if here.len() > 1 {
            problems.push(format!("{sale:?}: {} rows {here:?}", here.len()));
        }
        let approved = here.iter().filter(|(s, _)| s == "approved").count();
        match &sale.seen {
            Seen::Approved | Seen::SlipOnly if approved != 1 => {
                problems.push(format!("{sale:?} seen approved, database {here:?}"))
            }
            Seen::NotCharged | Seen::NeverSent if approved != 0 => {
                problems.push(format!("{sale:?} told not charged, database {here:?}"))
            }
            Seen::Other(screen) => problems.push(format!("{sale:?}: unexpected screen {screen}")),
            _ => {}
        }
    }
    // Every row, against the acquirer: charged (approved and never reversed)
    // exactly when the database says approved, and never approved twice.
    let (mut db_total, mut bank_total, mut reversed_rows) = (0u64, 0u64, 0);
    for ((terminal, amount), here) in &rows {
        for (status, trace) in here {
            let at = charged
                .get(&(terminal_field(terminal).unwrap(), trace.clone()))
                .map(|a| (a.approved, a.reversed, a.amount))
                .unwrap_or((0, 0, 0));
            let net = at.0 > 0 && at.1 == 0;
            if at.0 > 1 {
                problems.push(format!("{terminal} {amount}: authorized {} times", at.0));
            }
            if net != (status == "approved") {
                problems.push(format!(
                    "{terminal} {amount} is {status} in the database; acquirer approved {} reversed {}",
                    at.0, at.1
                ));
            }
            match status.as_str() {
                "approved" => db_total += amount,
                "reversed" => reversed_rows += 1,
                "declined" => {}
                other => problems.push(format!("{terminal} {amount} left {other}")),
            }
            if net {
                bank_total += at.2;
            }
        }
        if !book
            .sales
            .iter()
            .any(|s| (&s.terminal, s.amount) == (terminal, *amount))
        {
            problems.push(format!("{terminal} {amount}: a row no cashier keyed"));
        }
    }
    if db_total != bank_total {
        problems.push(format!(
            "database approved {db_total}, acquirer charged {bank_total}"
        ));
    }
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    if integrity != "ok" {
        problems.push(format!("integrity_check: {integrity}"));
    }
    if let Err(e) = tallybox::store::audit::verify(&conn) {
        problems.push(format!("audit chain: {e:?}"));
    }

    eprintln!(
        "crash harness: {took:?}, {hub_kills} hub kills, {broker_kills} broker kills, {link_cuts} link cuts, \
         {link_stalls} link stalls, {} checkout kills; {} sales seen {counts:?}; {} rows, {reversed_rows} reversed; {db_total} minor approved",
        book.terminal_kills,
        book.sales.len(),
        rows.values().map(Vec::len).sum::<usize>(),
    );
    assert!(
        problems.is_empty(),
        "{} problems:\n{}\nterminal logs:\n{}",
        problems.len(),
        problems.join("\n"),
        terminals
            .iter()
            .map(|t| t.log())
            .collect::<Vec<_>>()
            .join("\n---\n")
    );
    // The harness reached the moments that matter: kills found sales between
    // "pending" and the acquirer's answer, and checkouts died mid-sale.
    assert!(hub_kills >= rounds / 2, "only {hub_kills} hub kills in {took:?}");
    assert!(
        reversed_rows > 0,
        "no kill landed while a sale waited on the acquirer"
    );
    assert!(book.sales.len() > rounds, "only {} sales", book.sales.len());
}
