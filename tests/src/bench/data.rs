//! A store with a million transactions, made quickly by SQL in one
//! transaction, and the raw-SQL baseline for the receipts query.

use std::path::Path;
use std::time::Instant;

use chrono::NaiveDate;
use hdrhistogram::Histogram;
use rusqlite::{params, Connection};
use tallybox::store::Store;

use super::{histogram, record};

/// Fills the store in `dir` with `rows` transactions over 100 days from
/// 2026-07-01, 8 terminals.
pub fn fill(dir: &Path, rows: u64) -> anyhow::Result<()> {
    drop(Store::open(dir)?); // schema and key
    let first = NaiveDate::from_ymd_opt(2026, 7, 1).expect("a date");
    insert(dir, 0..rows, rows / 100 + 1, first)
}

/// Sales a day in a store of years of sales: a busy shop's.
pub const DAY_ROWS: u64 = 10_000;

/// The first day of a store of years of sales.
fn years_start() -> NaiveDate {
    NaiveDate::from_ymd_opt(2017, 1, 1).expect("a date")
}

/// Adds transactions `from..to` to the store in `dir`, [`DAY_ROWS`] a day
/// from 2017-01-01 on: a store grown to years of sales, a step at a time.
pub fn grow(dir: &Path, from: u64, to: u64) -> anyhow::Result<()> {
    drop(Store::open(dir)?);
    insert(dir, from..to, DAY_ROWS, years_start())
}

/// The local date (`YYYY-MM-DD`) of row `i` of a store made by [`grow`].
pub fn grown_day(i: u64) -> String {
    (years_start() + chrono::Days::new(i / DAY_ROWS)).to_string()
}

/// Inserts transactions `rows`, `per_day` a day from `first` on, by SQL in
/// one transaction (through the schema's triggers, as a sale would).
fn insert(dir: &Path, rows: std::ops::Range<u64>, per_day: u64, first: NaiveDate) -> anyhow::Result<()> {
    let mut conn = Connection::open(dir.join("tallybox.db"))?;
    conn.pragma_update(None, "synchronous", "OFF")?;
    let tx = conn.transaction()?;
    {
        let mut insert = tx.prepare(
            "INSERT INTO transactions (request_id, terminal_id, kind, status, amount, currency, masked_pan, last4, \
             brand, entry_mode, pan_hash, batch_no, trace_no, reference_no, auth_code, response_code, local_time, \
             created_at, updated_at) VALUES (?1, ?2, 'sale', ?3, ?4, 'CNY', ?5, ?6, 'union_pay', 'swipe', ?7, ?8, ?9, \
             ?10, ?11, ?12, ?13, ?14, ?14)",
        )?;
        for i in rows {
            let day = i / per_day;
            let second = (i % per_day) * 86_400 / per_day;
            let local = format!(
                "{} {:02}:{:02}:{:02}",
                first + chrono::Days::new(day),
                second / 3600,
                (second / 60) % 60,
                second % 60
            );
            let approved = i % 10 != 0;
            let last4 = format!("{:04}", i % 10_000);
            insert.execute(params![
                format!("bench-{i:012}"),
                format!("T{}", i % 8),
                if approved { "approved" } else { "declined" },
                (i % 50_000 + 1) as i64,
                format!("622202******{last4}"),
                last4,
                format!("{i:064x}"),
                1 + day as i64,
                (i % 999_999 + 1) as i64,
                format!("{:012}", i),
                // A thousand codes, so a search by one fills a page.
                if approved {
                    format!("{:06}", i % 1000)
                } else {
                    String::new()
                },
                if approved { "00" } else { "51" },
                local,
                format!("{}Z", local.replace(' ', "T")),
            ])?;
        }
    }
    tx.commit()?;
    Ok(())
}

/// The page of 50 the API serves for `where_sql`, straight from SQLite: a
/// prepared statement, every column of every row read into an owned value.
pub fn raw_page(dir: &Path, where_sql: &str, rounds: usize) -> anyhow::Result<Histogram<u64>> {
    let conn = Connection::open(dir.join("tallybox.db"))?;
    let sql = format!("SELECT * FROM transactions {where_sql} ORDER BY local_time DESC, id DESC LIMIT 51");
    let mut stmt = conn.prepare(&sql)?;
    let columns = stmt.column_count();
    let mut h = histogram();
    for _ in 0..rounds {
        let started = Instant::now();
        let n = stmt
            .query_map([], |r| {
                (0..columns)
                    .map(|i| r.get::<_, rusqlite::types::Value>(i))
                    .collect::<Result<Vec<_>, _>>()
            })?
            .count();
        record(&mut h, started.elapsed());
        anyhow::ensure!(n > 0, "the raw query found nothing: {sql}");
    }
    Ok(h)
}

/// The daily report's query straight from SQLite, the floor of the report:
/// the day's rows by the time index, grouped by hour, terminal, brand, kind
/// and status, every group read.
pub fn raw_day_report(dir: &Path, day: &str, rounds: usize) -> anyhow::Result<Histogram<u64>> {
    let conn = Connection::open(dir.join("tallybox.db"))?;
    let mut stmt = conn.prepare(
        "SELECT substr(local_time, 12, 2), terminal_id, brand, kind, status, count(*), sum(amount) \
         FROM transactions WHERE local_time >= ?1 || ' 00:00:00' AND local_time < ?1 || ' 24:00:00' \
         AND status IN ('approved', 'declined') GROUP BY 1, 2, 3, 4, 5",
    )?;
    let mut h = histogram();
    for _ in 0..rounds {
        let started = Instant::now();
        let n = stmt
            .query_map([day], |r| {
                (0..7)
                    .map(|i| r.get::<_, rusqlite::types::Value>(i))
                    .collect::<Result<Vec<_>, _>>()
            })?
            .count();
        record(&mut h, started.elapsed());
        anyhow::ensure!(n > 0, "no rows on {day}");
    }
    Ok(h)
}

/// A month's report as the hub made it before it kept daily totals: one
/// grouped pass over the month's rows by the time index, every group read.
/// The baseline the report from `daily_totals` is measured against.
pub fn raw_month_report(dir: &Path, month: &str, rounds: usize) -> anyhow::Result<Histogram<u64>> {
    let conn = Connection::open(dir.join("tallybox.db"))?;
    let mut stmt = conn.prepare(
        "SELECT substr(local_time, 1, 10), terminal_id, brand, kind, status, count(*), sum(amount), \
         coalesce(cashier, ''), tender FROM transactions \
         WHERE local_time >= ?1 || '-01 00:00:00' AND local_time < ?1 || '-32' \
         AND status IN ('approved', 'declined') GROUP BY 1, 2, 3, 4, 5, 8, 9",
    )?;
    let mut h = histogram();
    for _ in 0..rounds {
        let started = Instant::now();
        let n = stmt
            .query_map([month], |r| {
                (0..9)
                    .map(|i| r.get::<_, rusqlite::types::Value>(i))
                    .collect::<Result<Vec<_>, _>>()
            })?
            .count();
        record(&mut h, started.elapsed());
        anyhow::ensure!(n > 0, "no rows in {month}");
    }
    Ok(h)
}
