//! The cash drawer's records: each time the supervisor opened it without a
//! sale, and each count at a shift's end with the cash it should have held
//! (the checkout's cash sales since its last count, less the cash it gave
//! back) — each once per
//! request, with its audit record, in one SQLite transaction.

use rusqlite::{params, OptionalExtension};
use serde::Serialize;
use tallybox_core::money::Amount;
use tallybox_core::protocol::{DrawerCount, RequestId, TerminalId};

use super::{audit, exec, now_utc, one_row, Store, StoreError};

/// One count of one checkout's drawer, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Count {
    pub id: i64,
    pub terminal_id: String,
    pub cashier: Option<String>,
    pub local_time: String,
    /// When the count before it was made; none for the checkout's first.
    pub since: Option<String>,
    /// Cash sales since that count: how many and their sum (minor units),
    /// the cash given back for voids and refunds, and the drawer openings
    /// without a sale.
    pub cash_sales: u32,
    pub cash_taken: u64,
    pub cash_given_back: u64,
    pub no_sales: u32,
    #[serde(flatten)]
    pub count: DrawerCount,
}

impl Store {
    /// Records that the supervisor opened `terminal`'s drawer without a
    /// sale; false when this request was recorded before (a repeat).
    pub fn no_sale(&mut self, request_id: &RequestId, terminal: &TerminalId) -> Result<bool, StoreError> {
        let tx = self.conn.savepoint()?;
        let (utc, local) = (now_utc(), local_now());
        let added = exec(
            &tx,
            "INSERT OR IGNORE INTO drawer_events (request_id, terminal_id, kind, cashier, local_time, created_at) \
             VALUES (?1, ?2, 'no_sale', (SELECT cashier FROM terminals WHERE id = ?2), ?3, ?4)",
            params![request_id.as_str(), terminal.as_str(), local, utc],
        )? == 1;
        if added {
            let detail =
                serde_json::json!({"request_id": request_id.as_str(), "terminal": terminal.as_str()});
            audit::append(&tx, &utc, "no_sale", None, &detail.to_string())?;
        }
        tx.commit()?;
        Ok(added)
    }

    /// Records the count of `terminal`'s drawer (`counted`) against the
    /// cash sales since its last count; a repeat of the request gets the
    /// count recorded the first time.
    pub fn count_drawer(
        &mut self,
        request_id: &RequestId,
        terminal: &TerminalId,
        counted: Amount,
    ) -> Result<Count, StoreError> {
        let tx = self.conn.savepoint()?;
        let known: Option<i64> = tx
            .prepare_cached("SELECT id FROM drawer_events WHERE request_id = ?1 AND kind = 'count'")?
            .query_row([request_id.as_str()], |r| r.get(0))
            .optional()?;
        let id = match known {
            Some(id) => id,
            None => {
                let (utc, local) = (now_utc(), local_now());
                let upto: i64 = one_row(&tx, "SELECT coalesce(max(id), 0) FROM transactions", [], |r| {
                    r.get(0)
                })?;
                let previous = previous_count(&tx, terminal.as_str(), i64::MAX)?;
                let expected =
                    cash_between(&tx, terminal.as_str(), previous.map_or(0, |p| p.1), upto)?.expected();
                exec(
                    &tx,
                    "INSERT INTO drawer_events (request_id, terminal_id, kind, cashier, local_time, created_at, \
                     expected, counted, upto_txn) \
                     VALUES (?1, ?2, 'count', (SELECT cashier FROM terminals WHERE id = ?2), ?3, ?4, ?5, ?6, ?7)",
                    params![
                        request_id.as_str(),
                        terminal.as_str(),
                        local,
                        utc,
                        expected as i64,
                        counted.minor() as i64,
                        upto
                    ],
                )?;
                let id = tx.last_insert_rowid();
                let detail = serde_json::json!({
                    "request_id": request_id.as_str(), "terminal": terminal.as_str(),
                    "expected": expected, "counted": counted.minor(),
                });
                audit::append(&tx, &utc, "drawer_count", None, &detail.to_string())?;
                id
            }
        };
        let count = count_of(&tx, id)?;
        tx.commit()?;
        Ok(count)
    }

    /// The drawer counts made between two local times (`from` included).
    pub fn drawer_counts_between(&self, from: &str, to: &str) -> Result<Vec<Count>, StoreError> {
        let ids: Vec<i64> = self
            .conn
            .prepare_cached(
                "SELECT id FROM drawer_events WHERE kind = 'count' AND local_time >= ?1 AND local_time < ?2 ORDER BY id",
            )?
            .query_map([from, to], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        ids.into_iter().map(|id| count_of(&self.conn, id)).collect()
    }
}

fn local_now() -> String {
    tallybox_platform::clock::now()
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// The count of `terminal` before event `before`: its id, the last
/// transaction it took in, and when it was made.
fn previous_count(
    conn: &rusqlite::Connection,
    terminal: &str,
    before: i64,
) -> rusqlite::Result<Option<(i64, i64, String)>> {
    conn.prepare_cached(
        "SELECT id, upto_txn, local_time FROM drawer_events \
         WHERE terminal_id = ?1 AND kind = 'count' AND id < ?2 ORDER BY id DESC LIMIT 1",
    )?
    .query_row(params![terminal, before], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })
    .optional()
}

/// What `terminal`'s drawer took and gave back with transaction ids in
/// `(after, upto]`.
struct Takings {
    sales: u32,
    /// Cash sales, in minor units.
    taken: u64,
    /// Cash given back for voids and refunds, in minor units.
    given_back: u64,
}

impl Takings {
    /// What the drawer should hold of it (never below nothing).
    fn expected(&self) -> u64 {
        self.taken.saturating_sub(self.given_back)
    }
}

fn cash_between(
    conn: &rusqlite::Connection,
    terminal: &str,
    after: i64,
    upto: i64,
) -> rusqlite::Result<Takings> {
    conn.prepare_cached(
        "SELECT count(CASE WHEN kind = 'sale' THEN 1 END), \
                coalesce(sum(CASE WHEN kind = 'sale' THEN amount END), 0), \
                coalesce(sum(CASE WHEN kind <> 'sale' THEN amount END), 0) FROM transactions \
         WHERE terminal_id = ?1 AND tender = 'cash' AND kind IN ('sale', 'void', 'refund') AND status = 'approved' \
         AND id > ?2 AND id <= ?3",
    )?
    .query_row(params![terminal, after, upto], |r| {
        Ok(Takings {
            sales: r.get(0)?,
            taken: r.get::<_, i64>(1)?.max(0) as u64,
            given_back: r.get::<_, i64>(2)?.max(0) as u64,
        })
    })
}

/// Count `id` as recorded, with what it covered.
fn count_of(conn: &rusqlite::Connection, id: i64) -> Result<Count, StoreError> {
    let (terminal_id, cashier, local_time, expected, counted, upto): (String, Option<String>, String, i64, i64, i64) =
        one_row(
            conn,
            "SELECT terminal_id, cashier, local_time, expected, counted, upto_txn FROM drawer_events WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)),
        )?;
    let previous = previous_count(conn, &terminal_id, id)?;
    let takings = cash_between(conn, &terminal_id, previous.as_ref().map_or(0, |p| p.1), upto)?;
    let no_sales: u32 = one_row(
        conn,
        "SELECT count(*) FROM drawer_events WHERE terminal_id = ?1 AND kind = 'no_sale' AND id > ?2 AND id < ?3",
        params![terminal_id, previous.as_ref().map_or(0, |p| p.0), id],
        |r| r.get(0),
    )?;
    let amount = |column: usize, minor: i64| {
        u64::try_from(minor)
            .ok()
            .and_then(|m| Amount::from_minor(m).ok())
            .ok_or(rusqlite::Error::IntegralValueOutOfRange(column, minor))
    };
    Ok(Count {
        id,
        terminal_id,
        cashier,
        local_time,
        since: previous.map(|p| p.2),
        cash_sales: takings.sales,
        cash_taken: takings.taken,
        cash_given_back: takings.given_back,
        no_sales,
        count: DrawerCount {
            expected: amount(3, expected)?,
            counted: amount(4, counted)?,
        },
    })
}
