//! A store with a million transactions, made quickly by SQL in one
//! transaction, and the raw-SQL baseline for the receipts query.

use std::path::Path;
use std::time::Instant;

use hdrhistogram::Histogram;
use rusqlite::{params, Connection};
use tallybox::store::Store;

use super::{histogram, record};

/// Fills the store in `dir` with `rows` transactions over 100 days, 8 terminals.
pub fn fill(dir: &Path, rows: u64) -> anyhow::Result<()> {
    drop(Store::open(dir)?); // schema and key
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
        let per_day = rows / 100 + 1;
        for i in 0..rows {
            let day = i / per_day;
            let second = (i % per_day) * 86_400 / per_day;
            let local = format!(
                "2026-{:02}-{:02} {:02}:{:02}:{:02}",
                7 + day / 30,
                1 + day % 30,
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
