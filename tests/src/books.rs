//! The three books of the crash and power-cut harnesses: what each cashier
//! saw, what the hub's database says, and what the acquirer (on a real ISO
//! 8583 link) charged. [`cashier`] sells on one checkout and writes the
//! first; [`compare`] reads the other two and says where they disagree.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::json;
use tallybox::acquirer::iso8583::codec::Message;
use tallybox::acquirer::iso8583::messages::terminal_field;

use crate::procs::{AcquirerSim, Terminal};
use crate::wait_for;

/// What the cashier saw at the end of one sale.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
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
pub struct Sale {
    pub terminal: String,
    pub amount: u64,
    pub seen: Seen,
}

#[derive(Default)]
pub struct Book {
    pub sales: Vec<Sale>,
    pub terminal_kills: usize,
}

/// How a cashier sells.
#[derive(Clone, Copy)]
pub struct Pace {
    /// One sale in this many pulls the checkout's own plug mid-sale.
    pub kill_one_in: Option<u32>,
    /// The longest a sale may take to end on the screen.
    pub outcome_within: Duration,
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
fn outcome(t: &Terminal, amount: u64, was_killed: bool, limit: Duration) -> Seen {
    let shown = format!("CNY {}.{:02}", amount / 100, amount % 100);
    let started = Instant::now();
    let mut idle_since: Option<Instant> = None;
    while started.elapsed() < limit {
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
    Seen::Other(format!("no outcome in {limit:?}; screen: {:?}", screen_text(t)))
}

/// One checkout's cashier: sells amounts `base + 1`, `base + 2`, … until
/// `stop`, writing what the screen said of each in `book`.
pub fn cashier(
    mut t: Terminal,
    base: u64,
    pace: Pace,
    stop: Arc<AtomicBool>,
    book: Arc<Mutex<Book>>,
) -> Terminal {
    let mut rng = rand::thread_rng();
    let cards = ["approved", "visa", "mastercard"];
    let mut n = 0;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        let amount = base + n;
        // Back at the idle screen (a previous restart may still be signing in).
        let ready = wait_for(pace.outcome_within, || {
            screen_text(&t).filter(|s| s.contains("Ready")).map(|_| ())
        });
        assert!(ready.is_some(), "{} never got ready:\n{}", t.id, t.log());
        let keyed = t.try_call(&json!({"cmd": "keys", "keys": format!("A{amount}#")}));
        let card = cards[rng.gen_range(0..cards.len())];
        let presented = keyed.and_then(|_| t.try_call(&json!({"cmd": "card", "name": card})));
        if presented.map(|a| a["ok"] != true).unwrap_or(true) {
            panic!("{} refused a sale's keys or card:\n{}", t.id, t.log());
        }
        let kill = pace.kill_one_in.is_some_and(|n| rng.gen_ratio(1, n));
        if kill {
            std::thread::sleep(Duration::from_millis(rng.gen_range(0..40)));
            t.restart();
        }
        let seen = outcome(&t, amount, kill, pace.outcome_within);
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

/// Cashiers selling at `terminals` (the first from 100 001, the next from
/// 200 001, …) on threads of their own, into `book`, until [`Cashiers::stop`].
pub struct Cashiers {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<Terminal>>,
}

impl Cashiers {
    pub fn start(terminals: Vec<Terminal>, pace: Pace, book: &Arc<Mutex<Book>>) -> Cashiers {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = terminals
            .into_iter()
            .zip(1u64..)
            .map(|(t, i)| {
                let (stop, book) = (Arc::clone(&stop), Arc::clone(book));
                std::thread::spawn(move || cashier(t, i * 100_000, pace, stop, book))
            })
            .collect();
        Cashiers { stop, threads }
    }

    /// Each cashier ends the sale in hand; their checkouts.
    pub fn stop(self) -> Vec<Terminal> {
        self.stop.store(true, Ordering::SeqCst);
        self.threads
            .into_iter()
            .map(|c| c.join().expect("a cashier thread failed"))
            .collect()
    }
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

/// Where the three books disagree, and what they hold.
#[derive(Debug, Default)]
pub struct Comparison {
    pub problems: Vec<String>,
    /// Sales a cashier saw approved that the database does not hold approved.
    pub lost_approvals: usize,
    /// How many sales ended each way on the screens.
    pub seen: BTreeMap<String, usize>,
    pub rows: usize,
    pub reversed_rows: usize,
    /// Minor units approved in the database.
    pub db_total: u64,
}

impl std::fmt::Display for Comparison {
    /// What the books hold, in one line for a harness's summary.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} sales seen {:?}; {} rows, {} reversed; {} minor approved; {} answered approvals lost",
            self.seen.values().sum::<usize>(),
            self.seen,
            self.rows,
            self.reversed_rows,
            self.db_total,
            self.lost_approvals
        )
    }
}

impl Comparison {
    /// Fails, with every disagreement and the checkouts' logs, unless the
    /// three books agree.
    pub fn assert_agree(&self, terminals: &[Terminal]) {
        assert!(
            self.problems.is_empty(),
            "{} problems:\n{}\ncheckout logs:\n{}",
            self.problems.len(),
            self.problems.join("\n"),
            terminals
                .iter()
                .map(|t| t.log())
                .collect::<Vec<_>>()
                .join("\n---\n")
        );
    }
}

/// Compares the cashiers' `book` with the hub's database `conn` and the
/// acquirer's message log:
///
/// - every sale a cashier saw approved is `approved` in the database exactly
///   once, and charged exactly once at the acquirer;
/// - no sale the cashier saw "not charged" (or never saw answered) is charged;
/// - nothing is left `pending`: every sale a crash interrupted was reversed;
/// - no sale was authorized twice; the database's totals equal the acquirer's;
/// - the audit chain verifies and `PRAGMA integrity_check` passes.
pub fn compare(book: &Book, conn: &rusqlite::Connection, acquirer: &AcquirerSim) -> Comparison {
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
    let charged = acquirer_books(acquirer);

    let mut c = Comparison::default();
    for sale in &book.sales {
        *c.seen.entry(format!("{:?}", sale.seen)).or_default() += 1;
        let key = (sale.terminal.clone(), sale.amount);
        let here = rows.get(&key).cloned().unwrap_or_default();
        if here.len() > 1 {
            c.problems.push(format!("{sale:?}: {} rows {here:?}", here.len()));
        }
        let approved = here.iter().filter(|(s, _)| s == "approved").count();
        match &sale.seen {
            Seen::Approved | Seen::SlipOnly if approved != 1 => {
                c.lost_approvals += usize::from(approved == 0);
                c.problems
                    .push(format!("{sale:?} seen approved, database {here:?}"))
            }
            Seen::NotCharged | Seen::NeverSent if approved != 0 => c
                .problems
                .push(format!("{sale:?} told not charged, database {here:?}")),
            Seen::Other(screen) => c.problems.push(format!("{sale:?}: unexpected screen {screen}")),
            _ => {}
        }
    }
    // Every row, against the acquirer: charged (approved and never reversed)
    // exactly when the database says approved, and never approved twice.
    let mut bank_total = 0u64;
    for ((terminal, amount), here) in &rows {
        for (status, trace) in here {
            c.rows += 1;
            let at = charged
                .get(&(terminal_field(terminal).unwrap(), trace.clone()))
                .map(|a| (a.approved, a.reversed, a.amount))
                .unwrap_or((0, 0, 0));
            let net = at.0 > 0 && at.1 == 0;
            if at.0 > 1 {
                c.problems
                    .push(format!("{terminal} {amount}: authorized {} times", at.0));
            }
            if net != (status == "approved") {
                c.problems.push(format!(
                    "{terminal} {amount} is {status} in the database; acquirer approved {} reversed {}",
                    at.0, at.1
                ));
            }
            match status.as_str() {
                "approved" => c.db_total += amount,
                "reversed" => c.reversed_rows += 1,
                "declined" => {}
                other => c.problems.push(format!("{terminal} {amount} left {other}")),
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
            c.problems
                .push(format!("{terminal} {amount}: a row no cashier keyed"));
        }
    }
    if c.db_total != bank_total {
        c.problems.push(format!(
            "database approved {}, acquirer charged {bank_total}",
            c.db_total
        ));
    }
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    if integrity != "ok" {
        c.problems.push(format!("integrity_check: {integrity}"));
    }
    if let Err(e) = tallybox::store::audit::verify(conn) {
        c.problems.push(format!("audit chain: {e:?}"));
    }
    c
}
