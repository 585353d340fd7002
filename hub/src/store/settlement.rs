//! The open batch's totals and closing it: a settlement is recorded with its
//! report, the batch number moves on, and the audit log says so — in one
//! SQLite transaction.

use rusqlite::{params, OptionalExtension};
use tallybox_core::card::Brand;
use tallybox_core::protocol::{Tender, TxnKind};

use super::{audit, exec, now_utc, one_row, open_batch, parse_enum, take_trace, Store, StoreError};

/// Approved transactions of one kind, tender and brand at one terminal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchRow {
    pub terminal_id: String,
    pub kind: TxnKind,
    /// Only card rows go to the acquirer; cash is counted in the drawer.
    pub tender: Tender,
    /// The card's brand ([`Brand::Other`] for cash).
    pub brand: Brand,
    pub count: u32,
    pub minor: u64,
}

impl Store {
    /// How many approved card transactions (balance inquiries aside)
    /// terminal `terminal_id` has in batch `batch_no`: what the acquirer
    /// counts.
    pub fn batch_count(&self, batch_no: u32, terminal_id: &str) -> Result<u32, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT count(*) FROM transactions \
             WHERE batch_no = ?1 AND terminal_id = ?2 AND status = 'approved' AND kind != 'balance' \
             AND tender = 'card'",
            )?
            .query_row(params![batch_no, terminal_id], |r| r.get(0))?)
    }

    /// Terminal `terminal_id`'s card sales and refunds in batch `batch_no`
    /// that stand (approved, not voided): what a batch upload sends.
    pub fn batch_items(
        &self,
        batch_no: u32,
        terminal_id: &str,
    ) -> Result<Vec<crate::acquirer::BatchItem>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT kind, trace_no, amount, reference_no, auth_code FROM transactions t \
             WHERE batch_no = ?1 AND terminal_id = ?2 AND status = 'approved' AND kind IN ('sale', 'refund') \
             AND tender = 'card' AND NOT EXISTS (SELECT 1 FROM transactions v WHERE v.original_id = t.id \
                             AND v.kind = 'void' AND v.status = 'approved') \
             ORDER BY trace_no",
        )?;
        let rows = stmt.query_map(params![batch_no, terminal_id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, u32>(1)?,
                r.get::<_, i64>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, String>(4)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (kind, trace_no, minor, reference_no, auth_code) = row?;
            // The schema keeps amounts in range; one that is not is left out.
            let Some(amount) = u64::try_from(minor)
                .ok()
                .and_then(|m| tallybox_core::money::Amount::from_minor(m).ok())
            else {
                continue;
            };
            out.push(crate::acquirer::BatchItem {
                kind: parse_enum(&kind).unwrap_or(TxnKind::Sale),
                trace_no,
                amount,
                reference_no,
                auth_code,
            });
        }
        Ok(out)
    }

    /// The approved transactions of `batch_no`, grouped.
    pub fn batch_rows(&self, batch_no: u32) -> Result<Vec<BatchRow>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT terminal_id, kind, tender, brand, count(*), sum(amount) FROM transactions \
             WHERE batch_no = ?1 AND status = 'approved' AND kind != 'balance' \
             GROUP BY terminal_id, kind, tender, brand ORDER BY terminal_id, kind, tender, brand",
        )?;
        let rows = stmt.query_map([batch_no], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, u32>(4)?,
                r.get::<_, i64>(5)?,
            ))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (terminal_id, kind, tender, brand, count, minor) = row?;
            out.push(BatchRow {
                terminal_id,
                kind: parse_enum(&kind).unwrap_or(TxnKind::Sale),
                tender: Tender::parse(&tender).unwrap_or(Tender::Card),
                brand: parse_enum(&brand).unwrap_or(Brand::Other),
                count,
                minor: minor.max(0) as u64,
            });
        }
        Ok(out)
    }

    /// How many of `batch_no`'s transactions are still waiting for an answer.
    pub fn pending_in_batch(&self, batch_no: u32) -> Result<u32, StoreError> {
        Ok(one_row(
            &self.conn,
            "SELECT count(*) FROM transactions WHERE batch_no = ?1 AND status = 'pending'",
            [batch_no],
            |r| r.get(0),
        )?)
    }

    /// The settlement asked of the acquirer and not yet recorded, if any:
    /// its batch and the request that asked for it.
    pub fn settling(&self) -> Result<Option<(u32, String)>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT batch_no, request_id FROM settling LIMIT 1")?
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
    }

    /// Notes, before the acquirer is asked, that `request_id` settles the
    /// open batch `batch_no`: until it is recorded, new money requests wait
    /// and a restart asks again.
    pub fn start_settlement(&mut self, batch_no: u32, request_id: &str) -> Result<(), StoreError> {
        exec(
            &self.conn,
            "INSERT INTO settling (batch_no, request_id, at) VALUES (?1, ?2, ?3)",
            params![batch_no, request_id, now_utc()],
        )?;
        Ok(())
    }

    /// The trace number of `terminal`'s settlement message for batch
    /// `batch_no`: its next trace number the first time, the same after.
    pub fn settlement_trace(&mut self, batch_no: u32, terminal: &str) -> Result<u32, StoreError> {
        let tx = self.conn.savepoint()?;
        let taken: Option<u32> = tx
            .prepare_cached(
                "SELECT trace_no FROM settlement_traces WHERE batch_no = ?1 AND terminal_id = ?2",
            )?
            .query_row(params![batch_no, terminal], |r| r.get(0))
            .optional()?;
        if let Some(trace_no) = taken {
            return Ok(trace_no);
        }
        let trace_no = take_trace(&tx, terminal)?;
        exec(
            &tx,
            "INSERT INTO settlement_traces (batch_no, terminal_id, trace_no) VALUES (?1, ?2, ?3)",
            params![batch_no, terminal, trace_no],
        )?;
        tx.commit()?;
        Ok(trace_no)
    }

    /// The settlement `request_id` asked for, once recorded.
    pub fn settlement_by_request(&self, request_id: &str) -> Result<Option<SettlementRow>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT batch_no, at, balanced, report FROM settlements WHERE request_id = ?1")?
            .query_row([request_id], settlement_row)
            .optional()?)
    }

    /// Records batch `batch_no` as settled for `request_id` and opens the
    /// next; the new batch number. Fails when `batch_no` is no longer the
    /// open batch.
    pub fn close_batch(
        &mut self,
        batch_no: u32,
        balanced: bool,
        report: &[String],
        request_id: &str,
    ) -> Result<u32, StoreError> {
        let utc = now_utc();
        let tx = self.conn.savepoint()?;
        if open_batch(&tx)? != batch_no {
            return Err(StoreError::Commit(format!(
                "batch {batch_no} was already settled"
            )));
        }
        exec(
            &tx,
            "INSERT INTO settlements (batch_no, at, balanced, report, request_id) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![batch_no, utc, balanced, report.join("\n"), request_id],
        )?;
        exec(&tx, "DELETE FROM settling WHERE batch_no = ?1", [batch_no])?;
        exec(
            &tx,
            "UPDATE settings SET value = CAST(?1 AS TEXT) WHERE key = 'batch_no'",
            [batch_no + 1],
        )?;
        let detail = serde_json::json!({"batch_no": batch_no, "balanced": balanced});
        audit::append(&tx, &utc, "settled", None, &detail.to_string())?;
        tx.commit()?;
        self.changes.note(super::Change::Settled { batch_no });
        Ok(batch_no + 1)
    }

    /// Batches settled between two UTC times (`YYYY-MM-DDTHH:MM:SS`), oldest first.
    pub fn settlements_between(
        &self,
        from_utc: &str,
        to_utc: &str,
    ) -> Result<Vec<SettlementRow>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT batch_no, at, balanced, report FROM settlements WHERE at >= ?1 AND at < ?2 ORDER BY batch_no",
        )?;
        let rows = stmt.query_map([from_utc, to_utc], settlement_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

fn settlement_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<SettlementRow> {
    Ok(SettlementRow {
        batch_no: r.get(0)?,
        at: r.get(1)?,
        balanced: r.get(2)?,
        report: r.get::<_, String>(3)?.lines().map(str::to_string).collect(),
    })
}

/// One settled batch: when (UTC), whether the acquirer's totals agreed, and
/// the report as printed.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SettlementRow {
    pub batch_no: u32,
    pub at: String,
    pub balanced: bool,
    pub report: Vec<String>,
}
