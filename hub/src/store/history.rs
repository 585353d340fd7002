//! The troubleshooting checks' history: each time a check's status changes
//! it is noted with its evidence, and once a local day the whole self-check
//! is summed up in one line, so the owner sees when a problem started, how
//! often it comes back, and that the hub looked every day.

use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use super::{exec, now_utc, Change, Store, StoreError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Entry {
    /// UTC.
    pub at: String,
    /// A check's id, or `self_check` for the daily summary.
    pub check: String,
    pub status: String,
    pub evidence: String,
    /// The same in Chinese (empty in entries from before it was kept).
    #[serde(rename = "evidence_zh-CN")]
    pub evidence_zh: String,
}

/// A check's result as the history notes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Noted {
    pub id: String,
    pub status: String,
    pub evidence: String,
    pub evidence_zh: String,
}

/// The daily summary's id in the history.
pub const SELF_CHECK: &str = "self_check";
/// Entries kept; older ones go.
const KEPT: i64 = 5000;

impl Store {
    /// Notes each check whose status is not the one last noted for it, and
    /// `summary` (status, evidence in English and Chinese) when no self-check
    /// was noted on the local day `today` yet. How many entries were written.
    pub fn note_checks(
        &mut self,
        checks: &[Noted],
        today: &str,
        summary: (&str, &str, &str),
    ) -> Result<usize, StoreError> {
        // One IMMEDIATE transaction ([`Store::on_own`]): this runs on the
        // page's own connection and reads before it writes. A deferred
        // transaction would fail at once with "database is locked" (no busy
        // wait) when the store writer committed between the read and the
        // write; taking the write lock first waits instead.
        self.on_own(|s| s.note_checks_now(checks, today, summary))
    }

    fn note_checks_now(
        &mut self,
        checks: &[Noted],
        today: &str,
        summary: (&str, &str, &str),
    ) -> Result<usize, StoreError> {
        let at = now_utc();
        let tx = &self.conn;
        let mut written = 0;
        for Noted {
            id,
            status,
            evidence,
            evidence_zh,
        } in checks
        {
            let last: Option<String> = tx
                .prepare_cached(
                    "SELECT status FROM check_history WHERE check_id = ?1 ORDER BY id DESC LIMIT 1",
                )?
                .query_row([id], |r| r.get(0))
                .optional()?;
            if last.as_deref() != Some(status.as_str()) {
                exec(
                    tx,
                    "INSERT INTO check_history (at, check_id, status, evidence, evidence_zh) VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![at, id, status, evidence, evidence_zh],
                )?;
                written += 1;
                self.changes.note(Change::Check {
                    id: id.clone(),
                    status: status.clone(),
                    evidence: evidence.clone(),
                    evidence_zh: evidence_zh.clone(),
                });
            }
        }
        let noted_day: Option<String> = tx
            .query_row(
                "SELECT value FROM settings WHERE key = 'self_check_day'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        if noted_day.as_deref() != Some(today) {
            exec(
                tx,
                "INSERT INTO check_history (at, check_id, status, evidence, evidence_zh) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![at, SELF_CHECK, summary.0, summary.1, summary.2],
            )?;
            exec(
                tx,
                "INSERT INTO settings (key, value) VALUES ('self_check_day', ?1) \
                 ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [today],
            )?;
            written += 1;
            // The last day the hub looked at is over: its totals are final.
            if let Some(day) = noted_day {
                self.changes.note(Change::DayClosed { day });
            }
        }
        if written > 0 {
            exec(
                &self.conn,
                "DELETE FROM check_history WHERE id <= (SELECT max(id) FROM check_history) - ?1",
                [KEPT],
            )?;
        }
        Ok(written)
    }

    /// The newest `limit` history entries, newest first.
    pub fn check_history(&self, limit: u32) -> Result<Vec<Entry>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT at, check_id, status, evidence, evidence_zh FROM check_history ORDER BY id DESC LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit], |r| {
            Ok(Entry {
                at: r.get(0)?,
                check: r.get(1)?,
                status: r.get(2)?,
                evidence: r.get(3)?,
                evidence_zh: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(id: &str, status: &str, evidence: &str) -> Noted {
        Noted {
            id: id.into(),
            status: status.into(),
            evidence: evidence.into(),
            evidence_zh: format!("{evidence}（中文）"),
        }
    }

    #[test]
    fn only_changes_are_noted_and_one_self_check_a_day() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let day1 = "2026-11-26";
        let first = [
            c("terminal.T1.online", "ok", "T1 is online"),
            c("store.disk", "ok", "9 GiB free"),
        ];
        assert_eq!(
            store
                .note_checks(&first, day1, ("ok", "2 ok", "2 项正常"))
                .unwrap(),
            3
        );
        // Same statuses (other numbers): nothing new.
        let same = [
            c("terminal.T1.online", "ok", "T1 is online"),
            c("store.disk", "ok", "8 GiB free"),
        ];
        assert_eq!(
            store
                .note_checks(&same, day1, ("ok", "2 ok", "2 项正常"))
                .unwrap(),
            0
        );
        let down = [
            c("terminal.T1.online", "fail", "T1 is offline"),
            c("store.disk", "ok", "8 GiB free"),
        ];
        assert_eq!(
            store
                .note_checks(&down, day1, ("fail", "1 ok, 1 fail", "1 项正常，1 项故障"))
                .unwrap(),
            1
        );
        assert_eq!(
            store
                .note_checks(&first, "2026-11-27", ("ok", "2 ok", "2 项正常"))
                .unwrap(),
            2
        );
        let history = store.check_history(10).unwrap();
        let seen: Vec<(&str, &str)> = history
            .iter()
            .map(|e| (e.check.as_str(), e.status.as_str()))
            .collect();
        assert_eq!(
            seen,
            [
                (SELF_CHECK, "ok"),
                ("terminal.T1.online", "ok"),
                ("terminal.T1.online", "fail"),
                (SELF_CHECK, "ok"),
                ("store.disk", "ok"),
                ("terminal.T1.online", "ok"),
            ]
        );
        assert_eq!(history[2].evidence, "T1 is offline");
    }
}
