//! The checkouts' own records against the store's: each checkout keeps the
//! approvals it told its cashier of, and sends those of the hub's open
//! batch and later after each sign-in ([`Request::Printed`]). An approval
//! the database does not hold was lost below it (a cut WAL, an old backup
//! put back): it is brought back from the checkout's record, as printed,
//! with its own audit record (`recovered`, naming the checkout), so the
//! day's report and the batch's settlement count it again.
//!
//! Only a paired checkout's record is taken (the MQTT link drops one in
//! clear), only its own approvals, only for this merchant, and never over
//! a trace number the store holds for another transaction.
//!
//! [`Request::Printed`]: tallybox_core::protocol::Request::Printed

use rusqlite::{params, OptionalExtension};
use tallybox_core::protocol::requests::PrintedEntry;
use tallybox_core::protocol::{Paid, TerminalId, TxnKind, TxnStatus};

use super::{audit, changes::Change, enum_text, exec, now_utc, one_row, receipt_token, Store, StoreError};

/// The audit event of an approval brought back from a checkout's record.
pub const RECOVERED: &str = "recovered";

/// What a checkout's record told the store.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Reconciled {
    /// Approvals the store already held.
    pub known: usize,
    /// Approvals it had lost, now brought back: their trace numbers.
    pub brought_back: Vec<u32>,
    /// Entries not taken, each with why.
    pub refused: Vec<String>,
}

impl Store {
    /// Brings back the approvals in `terminal`'s record that the store does
    /// not hold, oldest first (a void after its sale), in one transaction.
    pub fn reconcile_printed(
        &mut self,
        terminal: &TerminalId,
        merchant_id: &str,
        entries: &[PrintedEntry],
    ) -> Result<Reconciled, StoreError> {
        let mut done = Reconciled::default();
        let utc = now_utc();
        let tx = self.conn.savepoint()?;
        let (mut added, mut newest_batch) = (Vec::new(), 0);
        for entry in entries {
            let r = &entry.receipt;
            let known: Option<Held> = one_row(
                &tx,
                "SELECT id, terminal_id, kind, status, amount, batch_no, trace_no FROM transactions WHERE request_id = ?1",
                [entry.request_id.as_str()],
                |row| {
                    Ok(Held {
                        id: row.get(0)?,
                        terminal: row.get(1)?,
                        kind: row.get(2)?,
                        status: row.get(3)?,
                        amount: row.get(4)?,
                        batch_no: row.get(5)?,
                        trace_no: row.get(6)?,
                    })
                },
            )
            .optional()?;
            if let Some(held) = known {
                let printed_approved = r.status == TxnStatus::Approved && fit(entry, merchant_id).is_ok();
                let same = held.terminal == terminal.as_str()
                    && held.kind == r.kind.as_str()
                    && held.amount == r.amount.minor() as i64
                    && (held.batch_no, held.trace_no) == (r.batch_no, r.trace_no);
                match held.status.as_str() {
                    // The approval reached the checkout, and the database
                    // lost it with the history: completed as printed.
                    "pending" if printed_approved && same => {
                        exec(
                            &tx,
                            "UPDATE transactions SET status = 'approved', reference_no = ?2, auth_code = ?3, \
                             response_code = '00', local_time = ?4, updated_at = ?5 WHERE id = ?1 AND status = 'pending'",
                            params![held.id, r.reference_no, r.auth_code, r.at, utc],
                        )?;
                        recovered(&tx, &utc, held.id, terminal, entry, "pending")?;
                        added.push(held.id);
                        done.brought_back.push(r.trace_no);
                        newest_batch = newest_batch.max(r.batch_no);
                    }
                    "reversed" | "failed" if printed_approved && same => done.refused.push(format!(
                        "{}: printed approved on the checkout (batch {} trace {}), but {} here: \
                         the customer was not charged for it",
                        entry.request_id, r.batch_no, r.trace_no, held.status
                    )),
                    _ => done.known += 1,
                }
                continue;
            }
            if let Err(why) = fit(entry, merchant_id) {
                done.refused.push(format!("{}: {why}", entry.request_id));
                continue;
            }
            let taken: bool = one_row(
                &tx,
                "SELECT count(*) > 0 FROM transactions WHERE terminal_id = ?1 AND batch_no = ?2 AND trace_no = ?3",
                params![terminal.as_str(), r.batch_no, r.trace_no],
                |row| row.get(0),
            )?;
            if taken {
                done.refused.push(format!(
                    "{}: batch {} trace {} is another transaction's here",
                    entry.request_id, r.batch_no, r.trace_no
                ));
                continue;
            }
            let original_id: Option<i64> = match entry.original_trace {
                Some(trace) => one_row(
                    &tx,
                    "SELECT id FROM transactions WHERE terminal_id = ?1 AND trace_no = ?2 AND kind = 'sale' \
                     ORDER BY id DESC LIMIT 1",
                    params![terminal.as_str(), trace],
                    |row| row.get(0),
                )
                .optional()?,
                None => None,
            };
            let (masked_pan, last4, brand, entry_mode) = match r.paid.card() {
                Some(card) => {
                    let masked = card.masked_pan.as_str().to_string();
                    let last4 = masked[masked.len().saturating_sub(4)..].to_string();
                    (masked, last4, enum_text(&card.brand), enum_text(&card.entry_mode))
                }
                None => Default::default(),
            };
            let (tendered, provider, buyer) = match &r.paid {
                Paid::Card(_) => (None, None, None),
                Paid::Cash { tendered } => (Some(tendered.minor() as i64), None, None),
                Paid::Code { provider, buyer } => (None, Some(provider.as_str()), buyer.clone()),
            };
            let token = r
                .link
                .as_deref()
                .and_then(|link| link.rsplit_once("/r/"))
                .map(|(_, token)| token.to_string())
                .filter(|t| !t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric()))
                .unwrap_or_else(receipt_token);
            exec(
                &tx,
                "INSERT INTO terminals (id, name, last_seen) VALUES (?1, ?1, ?2) ON CONFLICT(id) DO NOTHING",
                params![terminal.as_str(), utc],
            )?;
            exec(
                &tx,
                "INSERT INTO transactions (request_id, terminal_id, kind, status, amount, currency, masked_pan, last4, \
                 brand, entry_mode, pan_hash, batch_no, trace_no, reference_no, auth_code, response_code, local_time, \
                 created_at, updated_at, receipt_token, original_id, cashier, tender, tendered, provider, buyer) \
                 VALUES (?1, ?2, ?3, 'approved', ?4, ?5, ?6, ?7, ?8, ?9, '', ?10, ?11, ?12, ?13, '00', ?14, ?15, ?15, \
                 ?16, ?17, ?18, ?19, ?20, ?21, ?22)",
                params![
                    entry.request_id.as_str(),
                    terminal.as_str(),
                    r.kind.as_str(),
                    r.amount.minor() as i64,
                    r.currency.code(),
                    masked_pan,
                    last4,
                    brand,
                    entry_mode,
                    r.batch_no,
                    r.trace_no,
                    r.reference_no,
                    r.auth_code,
                    r.at,
                    utc,
                    token,
                    original_id,
                    r.cashier,
                    r.paid.tender().as_str(),
                    tendered,
                    provider,
                    buyer,
                ],
            )?;
            let id = tx.last_insert_rowid();
            recovered(&tx, &utc, id, terminal, entry, "missing")?;
            added.push(id);
            done.brought_back.push(r.trace_no);
            newest_batch = newest_batch.max(r.batch_no);
        }
        // A batch number moves on only at a settlement: an approval printed
        // in a later batch than the open one means the settlements between
        // were lost too, and its batch is the one still open.
        exec(
            &tx,
            "UPDATE settings SET value = CAST(max(CAST(value AS INTEGER), ?1) AS TEXT) WHERE key = 'batch_no'",
            [newest_batch],
        )?;
        tx.commit()?;
        for id in added {
            self.changes.note(Change::Txn {
                id,
                terminal: terminal.clone(),
                status: TxnStatus::Approved,
            });
        }
        Ok(done)
    }

    /// Approvals brought back from the checkouts' records in the last day,
    /// since the owner last accepted a loss of history.
    pub fn recently_recovered(&self) -> Result<i64, StoreError> {
        let day_ago = (chrono::Utc::now() - chrono::Duration::hours(24))
            .format("%Y-%m-%dT%H:%M:%S")
            .to_string();
        Ok(one_row(
            &self.conn,
            "SELECT count(*) FROM audit_log WHERE event = ?1 AND at >= ?3 AND seq > \
             coalesce((SELECT max(seq) FROM audit_log WHERE event = ?2), 0)",
            params![RECOVERED, super::witness::ACCEPTED, day_ago],
            |r| r.get(0),
        )?)
    }
}

/// A transaction the store holds under a checkout record's request id.
struct Held {
    id: i64,
    terminal: String,
    kind: String,
    status: String,
    amount: i64,
    batch_no: u32,
    trace_no: u32,
}

/// Notes transaction `id` brought back from `terminal`'s record (`was`: the
/// store lacked it, or held it pending) in the audit chain, and moves the
/// checkout's trace numbers on past it.
fn recovered(
    tx: &rusqlite::Savepoint,
    utc: &str,
    id: i64,
    terminal: &TerminalId,
    entry: &PrintedEntry,
    was: &str,
) -> Result<(), StoreError> {
    let r = &entry.receipt;
    exec(
        tx,
        "UPDATE terminals SET next_trace = max(next_trace, ?2) WHERE id = ?1",
        params![terminal.as_str(), (r.trace_no % 999_999) + 1],
    )?;
    let detail = serde_json::json!({
        "request_id": entry.request_id.as_str(), "terminal": terminal.as_str(),
        "kind": r.kind.as_str(), "amount": r.amount.minor(), "trace_no": r.trace_no,
        "batch_no": r.batch_no, "at": r.at, "from": "the checkout's record", "was": was,
    });
    audit::append(tx, utc, RECOVERED, Some(id), &detail.to_string())?;
    Ok(())
}

/// Why an entry the store does not hold cannot be one of its approvals.
fn fit(entry: &PrintedEntry, merchant_id: &str) -> Result<(), String> {
    let r = &entry.receipt;
    if r.status != TxnStatus::Approved || r.kind == TxnKind::Balance {
        return Err(format!(
            "a {} {} is not an approval",
            r.status.as_str(),
            r.kind.as_str()
        ));
    }
    if r.merchant_id != merchant_id {
        return Err(format!("merchant {} is not this shop's", r.merchant_id));
    }
    if r.amount.minor() == 0 && r.kind == TxnKind::Sale {
        return Err("a sale of nothing".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::{sale, void};
    use tallybox_core::protocol::RequestId;

    fn shop() -> crate::shop::Shop {
        crate::shop::Shop {
            public_url: "http://tallybox.local/".into(),
            ..crate::shop::Shop::from_config(&crate::config::Config::default()).unwrap()
        }
    }

    /// The checkout's record of `txn`, as it printed it.
    fn printed(txn: &super::super::Txn, original_trace: Option<u32>) -> PrintedEntry {
        PrintedEntry {
            request_id: txn.request_id.clone(),
            original_trace,
            receipt: txn.receipt(&shop()),
        }
    }

    #[test]
    fn approvals_an_old_copy_lacks_come_back_from_the_checkouts_record_and_settle_the_same() {
        let (dir, old) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let mut store = Store::open(dir.path()).unwrap();
        let tid = TerminalId::parse("T1").unwrap();
        let first = sale(&mut store, 1000);
        // A copy of the database from here on is what a cut WAL leaves.
        store.backup_to(&old.path().join("tallybox.db")).unwrap();
        std::fs::copy(dir.path().join("pan-hash.key"), old.path().join("pan-hash.key")).unwrap();
        let second = sale(&mut store, 2000);
        let third = sale(&mut store, 3000);
        let void = void(&mut store, &second);
        let record = vec![
            printed(&first, None),
            printed(&second, None),
            printed(&third, None),
            printed(&void, Some(second.trace_no)),
        ];
        let merchant = shop().merchant_id;

        let mut behind = Store::open(old.path()).unwrap();
        let done = behind.reconcile_printed(&tid, &merchant, &record).unwrap();
        assert_eq!(done.known, 1);
        assert_eq!(done.brought_back, vec![2, 3, 4]);
        assert!(done.refused.is_empty(), "{:?}", done.refused);
        // The batch the acquirer holds, and the books, are the same again.
        assert_eq!(
            behind.batch_items(1, "T1").unwrap(),
            store.batch_items(1, "T1").unwrap()
        );
        let back = behind.by_request(third.request_id.as_str()).unwrap().unwrap();
        assert_eq!(
            (
                back.status,
                back.amount,
                back.trace_no,
                back.receipt_token.clone()
            ),
            (TxnStatus::Approved, third.amount, 3, third.receipt_token.clone()),
            "the customer's e-receipt link still works"
        );
        assert_eq!(behind.recently_recovered().unwrap(), 3);
        assert!(audit::verify(behind.connection()).is_ok());
        // Told again (the next sign-in): nothing more.
        let again = behind.reconcile_printed(&tid, &merchant, &record).unwrap();
        assert_eq!((again.known, again.brought_back.len()), (4, 0));
        // The checkout's next sale goes on past what it printed.
        assert_eq!(sale(&mut behind, 500).trace_no, 5);

        // Not taken: another shop's approval, a decline, a trace number the
        // store holds for another transaction.
        let mut foreign = printed(&third, None);
        foreign.request_id = RequestId::new();
        foreign.receipt.merchant_id = "999999999999999".into();
        let mut declined = printed(&third, None);
        declined.request_id = RequestId::new();
        declined.receipt.status = TxnStatus::Declined;
        let mut clash = printed(&third, None);
        clash.request_id = RequestId::new();
        let refused = behind
            .reconcile_printed(&tid, &merchant, &[foreign, declined, clash])
            .unwrap();
        assert!(refused.brought_back.is_empty());
        assert_eq!(refused.refused.len(), 3, "{:?}", refused.refused);
        assert!(
            refused.refused[2].contains("another transaction's"),
            "{:?}",
            refused.refused
        );
    }

    /// A power cut that kept a sale's pending row but not its approval: the
    /// checkout printed it approved, so it is completed as printed, never
    /// left to the reversal of what a crash left pending. One reversed
    /// already (the checkout signed in only after that) is named.
    #[test]
    fn a_sale_held_pending_that_the_checkout_printed_approved_is_completed_as_printed() {
        let (truth, behind) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let mut truth = Store::open(truth.path()).unwrap();
        let mut behind = Store::open(behind.path()).unwrap();
        let tid = TerminalId::parse("T1").unwrap();
        let card = tallybox_core::card::test_cards::by_name("approved")
            .unwrap()
            .read(tallybox_core::card::EntryMode::Swipe);
        let (kept, reversed) = (sale(&mut truth, 2000), sale(&mut truth, 3000));
        let begin = |store: &mut Store, txn: &super::super::Txn| {
            let new = crate::store::tests::new_txn(&txn.request_id, &tid, &card, txn.amount.minor());
            store.begin(&new).unwrap()
        };
        let pending = begin(&mut behind, &kept);
        let undone = begin(&mut behind, &reversed);
        behind
            .finish(
                undone.id,
                &super::super::Verdict {
                    status: TxnStatus::Reversed,
                    response_code: tallybox_core::reason::NOT_CHARGED,
                    auth_code: "",
                    reference_no: "",
                },
            )
            .unwrap();
        assert_eq!(pending.status, TxnStatus::Pending);

        let merchant = shop().merchant_id;
        let record = [printed(&kept, None), printed(&reversed, None)];
        let done = behind.reconcile_printed(&tid, &merchant, &record).unwrap();
        assert_eq!(done.brought_back, vec![1]);
        assert_eq!(done.refused.len(), 1, "{:?}", done.refused);
        assert!(
            done.refused[0].contains("printed approved on the checkout")
                && done.refused[0].contains("reversed here: the customer was not charged"),
            "{}",
            done.refused[0]
        );
        let now = behind.get(pending.id).unwrap().unwrap();
        assert_eq!(
            (now.status, now.auth_code.as_str(), now.trace_no),
            (TxnStatus::Approved, kept.auth_code.as_str(), kept.trace_no)
        );
        // Nothing is left pending for the reversal sweep, and the batch the
        // acquirer holds counts the sale.
        assert!(behind.pending().unwrap().is_empty());
        assert_eq!(behind.batch_items(1, "T1").unwrap().len(), 1);
        assert_eq!(behind.recently_recovered().unwrap(), 1);
        assert!(audit::verify(behind.connection()).is_ok());
        // Told again: nothing more.
        let again = behind.reconcile_printed(&tid, &merchant, &record[..1]).unwrap();
        assert_eq!((again.known, again.brought_back.len()), (1, 0));
    }
}
