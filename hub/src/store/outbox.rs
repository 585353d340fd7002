//! The outbox a head office reads ([`crate::chain`]): while the shop is in a
//! chain, every commit of the store writer appends what it changed — a
//! transaction as it now stands, a settlement, a fraud hit, a freeze — in
//! the same SQLite transaction, so an entry exists exactly when its change
//! does. Entries are numbered from 1 and chained by hash
//! ([`crate::chain::wire::entry_hash`]). Entries head office has
//! acknowledged are pruned once [`KEEP_ACKED`] newer ones exist; an entry
//! not yet acknowledged is never pruned, however long the uplink is down.

use rusqlite::{params, OptionalExtension};

use super::{exec, now_utc, Change, Store, StoreError};
use crate::chain::wire::{entry_hash, Entry, GENESIS};

/// Acknowledged entries kept, for a head office that restored a backup and
/// asks again.
pub const KEEP_ACKED: u64 = 1_000;

impl Store {
    /// Whether this store keeps an outbox (the shop is in a chain).
    pub fn keep_outbox(&mut self, on: bool) {
        self.outbox = on;
    }

    /// Runs `f` as one transaction of this connection's own (the page's, the
    /// checks', a `tallybox` command's), appending the outbox entries of what
    /// it changed before it commits; inside the store writer's transaction
    /// `f` just runs (the writer appends at its commit).
    pub(super) fn on_own<R>(
        &mut self,
        f: impl FnOnce(&mut Store) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        if self.changes.collecting() {
            return f(self);
        }
        exec(&self.conn, "BEGIN IMMEDIATE", [])?;
        self.changes.start();
        let done = f(self).and_then(|r| {
            self.append_outbox()?;
            exec(&self.conn, "COMMIT", [])?;
            Ok(r)
        });
        self.changes.stop();
        if done.is_err() && !self.conn.is_autocommit() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        done
    }

    /// Appends what the open transaction changed; the writer calls it before
    /// each commit. Prunes what head office holds beyond [`KEEP_ACKED`].
    pub(super) fn append_outbox(&mut self) -> Result<(), StoreError> {
        if !self.outbox {
            return Ok(());
        }
        let mut changes = self.changes.peek().to_vec();
        // A transaction or a checkout changed twice in one commit is one
        // entry: as it now stands.
        let (mut txns, mut terminals) = (std::collections::HashSet::new(), std::collections::HashSet::new());
        changes.retain(|c| match c {
            Change::Txn { id, .. } => txns.insert(*id),
            Change::TerminalSeen {
                terminal,
                changed: true,
            } => terminals.insert(terminal.clone()),
            _ => true,
        });
        let mut kept = Vec::with_capacity(changes.len());
        for change in &changes {
            if let Some(entry) = self.outbox_body(change)? {
                kept.push(entry);
            }
        }
        if kept.is_empty() {
            return Ok(());
        }
        let (mut seq, mut prev) = self.outbox_head()?;
        let at = now_utc();
        for (kind, body) in kept {
            seq += 1;
            let hash = entry_hash(&prev, seq, kind, &at, &body);
            exec(
                &self.conn,
                "INSERT INTO outbox (seq, kind, at, body, hash) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![seq as i64, kind, at, body, hash.as_slice()],
            )?;
            prev = hash;
        }
        let prune_to = self.chain_acked()?.min(seq.saturating_sub(KEEP_ACKED));
        if prune_to > 0 {
            exec(
                &self.conn,
                "DELETE FROM outbox WHERE seq <= ?1",
                [prune_to as i64],
            )?;
        }
        Ok(())
    }

    /// The entry a change makes, if head office keeps that kind.
    fn outbox_body(&self, change: &Change) -> Result<Option<(&'static str, String)>, StoreError> {
        let json = |v: serde_json::Value| v.to_string();
        Ok(match change {
            Change::Txn { id, .. } => {
                let txn = self.get(*id)?.ok_or(StoreError::Vanished(*id))?;
                Some(("txn", serde_json::to_string(&txn).expect("plain data serializes")))
            }
            Change::Settled { batch_no } => {
                let row = self
                    .conn
                    .query_row(
                        "SELECT at, balanced FROM settlements WHERE batch_no = ?1",
                        [batch_no],
                        |r| Ok((r.get::<_, String>(0)?, r.get::<_, bool>(1)?)),
                    )
                    .optional()?;
                row.map(|(at, balanced)| {
                    (
                        "settled",
                        json(serde_json::json!({"batch_no": batch_no, "at": at, "balanced": balanced})),
                    )
                })
            }
            Change::FraudHit { terminal, rule } => Some((
                "fraud_hit",
                json(serde_json::json!({"terminal": terminal.as_str(), "rule": rule})),
            )),
            Change::Freeze { scope, frozen } => {
                let reason: Option<String> = self
                    .conn
                    .query_row("SELECT reason FROM freezes WHERE scope = ?1", [scope], |r| {
                        r.get(0)
                    })
                    .optional()?;
                Some((
                    "freeze",
                    json(serde_json::json!({"scope": scope, "frozen": frozen, "reason": reason})),
                ))
            }
            Change::Applied { .. } => applied_detail(change).map(|detail| ("applied", detail)),
            // Every heartbeat is heard; head office hears when a checkout
            // goes online or offline or runs another version.
            Change::TerminalSeen { changed: false, .. } => None,
            Change::TerminalSeen { terminal, .. } => {
                let row = self
                    .conn
                    .query_row(
                        "SELECT name, online, version, last_seen FROM terminals WHERE id = ?1",
                        [terminal.as_str()],
                        |r| {
                            Ok(serde_json::json!({"terminal": terminal.as_str(), "name": r.get::<_, String>(0)?,
                                "online": r.get::<_, bool>(1)?, "version": r.get::<_, String>(2)?,
                                "last_seen": r.get::<_, String>(3)?}))
                        },
                    )
                    .optional()?;
                row.map(|row| ("terminal", json(row)))
            }
            Change::Check {
                id,
                status,
                evidence,
                evidence_zh,
            } => Some((
                "check",
                json(
                    serde_json::json!({"check": id, "status": status, "evidence": evidence, "evidence_zh": evidence_zh}),
                ),
            )),
            Change::DayClosed { day } => {
                let Ok(date) = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d") else {
                    return Ok(None);
                };
                let report = self.report(date, date + chrono::Duration::days(1), false)?;
                Some((
                    "day",
                    json(
                        serde_json::json!({"day": day, "totals": report.totals, "by_tender": report.by_tender}),
                    ),
                ))
            }
        })
    }

    /// The last entry's number and hash (0 and the genesis hash when empty).
    fn outbox_head(&self) -> Result<(u64, [u8; 32]), StoreError> {
        let head = self
            .conn
            .prepare_cached("SELECT seq, hash FROM outbox ORDER BY seq DESC LIMIT 1")?
            .query_row([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)))
            .optional()?;
        Ok(match head {
            Some((seq, hash)) => (seq as u64, hash.try_into().unwrap_or(GENESIS)),
            None => (0, GENESIS),
        })
    }

    /// The newest entry's number (0 when none was ever appended).
    pub fn outbox_last(&self) -> Result<u64, StoreError> {
        Ok(self.outbox_head()?.0)
    }

    /// Up to `max` entries after `after`, oldest first.
    pub fn outbox_after(&self, after: u64, max: usize) -> Result<Vec<Entry>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT seq, kind, at, body, hash FROM outbox WHERE seq > ?1 ORDER BY seq LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![after as i64, max as i64], |r| {
            Ok(Entry {
                seq: r.get::<_, i64>(0)? as u64,
                kind: r.get(1)?,
                at: r.get(2)?,
                body: r.get(3)?,
                hash: hex::encode(r.get::<_, Vec<u8>>(4)?),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// A value of the `settings` table.
    pub(super) fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT value FROM settings WHERE key = ?1")?
            .query_row([key], |r| r.get(0))
            .optional()?)
    }

    pub(super) fn put_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        exec(
            &self.conn,
            "INSERT INTO settings (key, value) VALUES (?1, ?2)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            [key, value],
        )?;
        Ok(())
    }

    /// Head office's document of `kind` this store took: version and body.
    pub fn chain_doc(&self, kind: &str) -> Result<Option<(u64, serde_json::Value)>, StoreError> {
        Ok(self
            .setting(&format!("chain_doc.{kind}"))?
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| Some((v["version"].as_u64()?, v["body"].clone()))))
    }

    /// The newest version of head office's document `kind` this store took
    /// or refused (0 before the first).
    pub fn chain_doc_seen(&self, kind: &str) -> Result<u64, StoreError> {
        Ok(self
            .setting(&format!("chain_doc_seen.{kind}"))?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    /// Takes version `version` of head office's document `kind` (or records
    /// that it was `refused`), audited and told to head office; false when
    /// this version or a newer one was seen already.
    pub fn apply_chain_doc(
        &mut self,
        kind: &str,
        version: u64,
        body: &serde_json::Value,
        kept_local: Vec<String>,
        refused: Option<String>,
    ) -> Result<bool, StoreError> {
        if version <= self.chain_doc_seen(kind)? {
            return Ok(false);
        }
        self.put_setting(&format!("chain_doc_seen.{kind}"), &version.to_string())?;
        if refused.is_none() {
            let kept = serde_json::json!({"version": version, "body": body});
            self.put_setting(&format!("chain_doc.{kind}"), &kept.to_string())?;
        }
        let applied = Change::Applied {
            kind: kind.to_string(),
            version,
            kept_local,
            refused,
        };
        let detail = applied_detail(&applied).unwrap_or_default();
        super::audit::append(&self.conn, &now_utc(), "chain_document", None, &detail)?;
        self.changes.note(applied);
        Ok(true)
    }

    /// The last entry head office acknowledged (0 before the first).
    pub fn chain_acked(&self) -> Result<u64, StoreError> {
        Ok(self
            .setting("chain_acked")?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    /// Records that head office holds every entry up to `seq`; never moves back.
    pub fn set_chain_acked(&mut self, seq: u64) -> Result<(), StoreError> {
        if seq > self.chain_acked()? {
            self.put_setting("chain_acked", &seq.to_string())?;
        }
        Ok(())
    }
}

/// What head office is told (and the audit log keeps) of a document taken.
fn applied_detail(change: &Change) -> Option<String> {
    let Change::Applied {
        kind,
        version,
        kept_local,
        refused,
    } = change
    else {
        return None;
    };
    Some(
        serde_json::json!({"kind": kind, "version": version, "kept_local": kept_local, "refused": refused})
            .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::tests::sale;

    #[test]
    fn a_store_in_a_chain_appends_each_change_chained_and_prunes_only_what_was_acknowledged() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        // Not in a chain: nothing is kept.
        store.changes.start();
        sale(&mut store, 100);
        store.append_outbox().unwrap();
        store.changes.take();
        assert_eq!(store.outbox_last().unwrap(), 0);

        store.keep_outbox(true);
        // A sale's pending and final states, each in its own commit.
        let tid = tallybox_core::protocol::TerminalId::parse("T1").unwrap();
        let card = tallybox_core::card::test_cards::by_name("approved")
            .unwrap()
            .read(tallybox_core::card::EntryMode::Swipe);
        let rid = tallybox_core::protocol::RequestId::new();
        let pending = store
            .begin(&crate::store::tests::new_txn(&rid, &tid, &card, 4250))
            .unwrap();
        store.append_outbox().unwrap();
        crate::store::tests::approve(&mut store, pending.id);
        store.append_outbox().unwrap();
        store.changes.take();
        let states: Vec<serde_json::Value> = store
            .outbox_after(0, 9)
            .unwrap()
            .iter()
            .map(|e| serde_json::from_str(&e.body).unwrap())
            .collect();
        assert_eq!(states.len(), 2);
        assert_eq!(
            (&states[0]["status"], &states[1]["status"]),
            (&"pending".into(), &"approved".into())
        );
        assert_eq!(states[1]["amount"], 4250);
        assert_eq!(
            states[1]["masked_pan"].as_str().map(|p| p.contains('*')),
            Some(true),
            "{}",
            states[1]
        );

        // Many commits: a sale (one entry: as it stands at the commit) and a freeze.
        for minor in 1..=(KEEP_ACKED + 5) {
            sale(&mut store, minor);
            store.freeze("T9", "a test").unwrap();
            store.append_outbox().unwrap();
            store.changes.take();
        }
        let last = store.outbox_last().unwrap();
        assert_eq!(last, 2 + 2 * (KEEP_ACKED + 5));
        let all = store.outbox_after(0, usize::MAX).unwrap();
        assert_eq!(all.len() as u64, last, "nothing acknowledged, nothing pruned");
        let mut prev = GENESIS;
        for entry in &all {
            assert!(entry.follows(&prev), "entry {} is chained", entry.seq);
            prev = entry.hash_bytes().unwrap();
        }
        let kinds: Vec<&str> = all[2..4].iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(kinds, ["txn", "freeze"]);
        assert!(!all[2].body.contains("pan_hash"), "{}", all[2].body);

        store.set_chain_acked(last - 3).unwrap();
        store.set_chain_acked(5).unwrap();
        assert_eq!(store.chain_acked().unwrap(), last - 3, "acks never move back");
        sale(&mut store, 7);
        store.append_outbox().unwrap();
        let kept = store.outbox_after(0, usize::MAX).unwrap();
        assert_eq!(kept.len() as u64, KEEP_ACKED, "the newest {KEEP_ACKED} are kept");
        assert_eq!(kept.first().unwrap().seq, last + 2 - KEEP_ACKED);
        assert_eq!(kept.last().unwrap().seq, last + 1);
    }

    fn bodies(store: &Store, after: u64) -> Vec<(String, serde_json::Value)> {
        store
            .outbox_after(after, usize::MAX)
            .unwrap()
            .into_iter()
            .map(|e| (e.kind, serde_json::from_str(&e.body).unwrap()))
            .collect()
    }

    #[test]
    fn freezes_checks_closed_days_and_checkouts_coming_and_going_reach_the_outbox() {
        use crate::store::history::Noted;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(crate::chain::FILE), "{}").unwrap();
        // The page's or a command's own connection, in a chain.
        let mut store = Store::open(dir.path()).unwrap();
        store.freeze("T1", "card skimmer found").unwrap();
        assert!(store.unfreeze("T1").unwrap());
        assert!(!store.unfreeze("T1").unwrap(), "nothing to lift: nothing told");
        let told = bodies(&store, 0);
        assert_eq!(told.len(), 2, "{told:?}");
        assert_eq!(told[0].0, "freeze");
        assert_eq!(told[0].1["frozen"], true);
        assert_eq!(told[0].1["reason"], "card skimmer found");
        assert_eq!(told[1].1["frozen"], false);

        // A check's status, when it changes; the day's totals once it is over.
        sale(&mut store, 4250);
        let today = tallybox_platform::clock::now().date_naive();
        let paper = |status: &str| Noted {
            id: "terminal.T1.printer".into(),
            status: status.into(),
            evidence: format!("printer {status}"),
            evidence_zh: "打印机".into(),
        };
        let summary = ("ok", "daily self-check", "每日自检");
        let day = |d: chrono::NaiveDate| d.format("%Y-%m-%d").to_string();
        store.note_checks(&[paper("fail")], &day(today), summary).unwrap();
        store.note_checks(&[paper("fail")], &day(today), summary).unwrap();
        let told = bodies(&store, 2);
        assert_eq!(told.len(), 1, "a status told once: {told:?}");
        assert_eq!(told[0].0, "check");
        assert_eq!(told[0].1["check"], "terminal.T1.printer");
        assert_eq!(told[0].1["status"], "fail");
        let tomorrow = today + chrono::Duration::days(1);
        store
            .note_checks(&[paper("ok")], &day(tomorrow), summary)
            .unwrap();
        let told = bodies(&store, 3);
        let kinds: Vec<&str> = told.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(kinds, ["check", "day"]);
        assert_eq!(told[1].1["day"], day(today));
        assert_eq!(told[1].1["totals"]["sales"], 1);
        assert_eq!(told[1].1["totals"]["sales_minor"], 4250);
        assert_eq!(told[1].1["by_tender"][0]["key"], "card");

        // A checkout: its first word, going offline; a heartbeat alone tells nothing.
        let tid = tallybox_core::protocol::TerminalId::parse("T1").unwrap();
        let last = store.outbox_last().unwrap();
        store.changes.start();
        store.touch_terminal(&tid, Some(true), Some("1.4.0")).unwrap();
        store.append_outbox().unwrap();
        store.changes.take();
        store.touch_terminal(&tid, None, None).unwrap();
        assert!(store.note_status(&tid, false, "1.4.0").unwrap());
        store.append_outbox().unwrap();
        store.changes.take();
        let told = bodies(&store, last);
        let online: Vec<(&str, &serde_json::Value)> =
            told.iter().map(|(k, b)| (k.as_str(), &b["online"])).collect();
        assert_eq!(online, [("terminal", &true.into()), ("terminal", &false.into())]);
        assert_eq!(told[0].1["version"], "1.4.0");
    }
}
