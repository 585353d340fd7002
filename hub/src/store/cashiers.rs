//! Cashiers (收银员): a number, a name and an argon2 hash of their PIN
//! (hashing happens off the store thread; the store keeps the PHC string).
//! A cashier signs on at a checkout; the checkout's cashier is kept in
//! `terminals.cashier` and stamped on each transaction as it is written.
//! Wrong PINs are counted: after [`MAX_FAILURES`] in a row the cashier is
//! locked until the owner unlocks them. Every change is audited.

use rusqlite::{params, OptionalExtension};
use serde::Serialize;
use tallybox_core::protocol::{Cashier, TerminalId};

use super::{audit, exec, now_utc, Store, StoreError};

/// Wrong PINs in a row that lock a cashier.
pub const MAX_FAILURES: u32 = 5;

/// One cashier as the owner's page lists them (never their PIN).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CashierRow {
    pub no: String,
    pub name: String,
    /// Wrong PINs since their last good one.
    pub failures: u32,
    /// When they were locked (UTC), while they are.
    pub locked_at: Option<String>,
    /// The checkouts they are signed on at.
    pub signed_on_at: Vec<String>,
}

/// What a sign-on attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignOn {
    /// Signed on; the terminal's sales are theirs from now on.
    Done(Cashier),
    /// Unknown number, removed cashier or wrong PIN: all look the same to
    /// the checkout.
    Wrong,
    /// Locked, now or before: the owner must unlock them.
    Locked,
}

impl Store {
    /// Every cashier not removed, by number.
    pub fn cashiers(&self) -> Result<Vec<CashierRow>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT c.no, c.name, c.failures, c.locked_at, \
                    (SELECT group_concat(t.id, ' ') FROM terminals t WHERE t.cashier = c.no) \
             FROM cashiers c WHERE c.removed_at IS NULL ORDER BY length(c.no), c.no",
        )?;
        let rows = stmt.query_map([], |r| {
            let at: Option<String> = r.get(4)?;
            Ok(CashierRow {
                no: r.get(0)?,
                name: r.get(1)?,
                failures: r.get(2)?,
                locked_at: r.get(3)?,
                signed_on_at: at
                    .map(|a| a.split(' ').map(str::to_string).collect())
                    .unwrap_or_default(),
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The PIN hash of a cashier who may sign on, and whether they are locked;
    /// `None` for an unknown or removed number.
    pub fn cashier_pin_hash(&self, no: &str) -> Result<Option<(String, bool)>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT pin_hash, locked_at IS NOT NULL FROM cashiers WHERE no = ?1 AND removed_at IS NULL",
                [no],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    /// Adds a cashier or changes their name and, when given, PIN (a new one
    /// needs a PIN). A removed number comes back as a new cashier. False when
    /// a new cashier came without a PIN.
    pub fn set_cashier(
        &mut self,
        no: &str,
        name: &str,
        pin_hash: Option<&str>,
        by: &str,
    ) -> Result<bool, StoreError> {
        let utc = now_utc();
        let tx = self.conn.savepoint()?;
        let existing: Option<bool> = tx
            .query_row(
                "SELECT removed_at IS NULL FROM cashiers WHERE no = ?1",
                [no],
                |r| r.get(0),
            )
            .optional()?;
        let written = match (existing, pin_hash) {
            (Some(true), None) => exec(
                &tx,
                "UPDATE cashiers SET name = ?2, updated_at = ?3 WHERE no = ?1",
                params![no, name, utc],
            )?,
            (Some(true), Some(hash)) => exec(
                &tx,
                "UPDATE cashiers SET name = ?2, pin_hash = ?3, failures = 0, locked_at = NULL, updated_at = ?4 \
                 WHERE no = ?1",
                params![no, name, hash, utc],
            )?,
            (_, None) => 0,
            (_, Some(hash)) => exec(
                &tx,
                "INSERT INTO cashiers (no, name, pin_hash, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4) \
                 ON CONFLICT (no) DO UPDATE SET name = ?2, pin_hash = ?3, failures = 0, locked_at = NULL, \
                 removed_at = NULL, created_at = ?4, updated_at = ?4",
                params![no, name, hash, utc],
            )?,
        };
        if written > 0 {
            // The audit record says what changed, never the PIN.
            let detail =
                serde_json::json!({"by": by, "cashier": no, "name": name, "pin_set": pin_hash.is_some()});
            audit::append(&tx, &utc, "cashier_set", None, &detail.to_string())?;
        }
        tx.commit()?;
        Ok(written > 0)
    }

    /// Removes a cashier: signed off everywhere, their past sales keep their
    /// number and name. False when there was none.
    pub fn remove_cashier(&mut self, no: &str, by: &str) -> Result<bool, StoreError> {
        let utc = now_utc();
        let tx = self.conn.savepoint()?;
        let removed = exec(
            &tx,
            "UPDATE cashiers SET removed_at = ?2, updated_at = ?2 WHERE no = ?1 AND removed_at IS NULL",
            params![no, utc],
        )?;
        if removed > 0 {
            exec(
                &tx,
                "UPDATE terminals SET cashier = NULL WHERE cashier = ?1",
                [no],
            )?;
            let detail = serde_json::json!({"by": by, "cashier": no});
            audit::append(&tx, &utc, "cashier_removed", None, &detail.to_string())?;
        }
        tx.commit()?;
        Ok(removed > 0)
    }

    /// The owner lets a locked cashier try again. False when there was none.
    pub fn unlock_cashier(&mut self, no: &str, by: &str) -> Result<bool, StoreError> {
        let utc = now_utc();
        let tx = self.conn.savepoint()?;
        let changed = exec(
            &tx,
            "UPDATE cashiers SET failures = 0, locked_at = NULL, updated_at = ?2 WHERE no = ?1 AND removed_at IS NULL",
            params![no, utc],
        )?;
        if changed > 0 {
            let detail = serde_json::json!({"by": by, "cashier": no});
            audit::append(&tx, &utc, "cashier_unlocked", None, &detail.to_string())?;
        }
        tx.commit()?;
        Ok(changed > 0)
    }

    /// Records a sign-on attempt at `terminal` whose PIN was checked
    /// (`pin_ok`): signs the cashier on, or counts the failure and locks
    /// them at [`MAX_FAILURES`]. A locked cashier stays locked even with the
    /// right PIN.
    pub fn sign_on(&mut self, terminal: &TerminalId, no: &str, pin_ok: bool) -> Result<SignOn, StoreError> {
        let utc = now_utc();
        let new_checkout = self.outbox && self.terminal_state(terminal)?.is_none();
        let tx = self.conn.savepoint()?;
        let found: Option<(String, bool, u32)> = tx
            .query_row(
                "SELECT name, locked_at IS NOT NULL, failures FROM cashiers WHERE no = ?1 AND removed_at IS NULL",
                [no],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()?;
        let detail =
            |event: &str| serde_json::json!({"terminal": terminal.as_str(), "cashier": no, "event": event});
        let result = match found {
            None => SignOn::Wrong,
            Some((_, true, _)) => SignOn::Locked,
            Some((name, false, _)) if pin_ok => {
                exec(&tx, "UPDATE cashiers SET failures = 0 WHERE no = ?1", [no])?;
                exec(
                    &tx,
                    "INSERT INTO terminals (id, name, last_seen, cashier) VALUES (?1, ?1, ?2, ?3) \
                     ON CONFLICT (id) DO UPDATE SET cashier = ?3",
                    params![terminal.as_str(), utc, no],
                )?;
                audit::append(
                    &tx,
                    &utc,
                    "cashier_signed_on",
                    None,
                    &detail("signed_on").to_string(),
                )?;
                SignOn::Done(Cashier {
                    no: no.to_string(),
                    name,
                })
            }
            Some((_, false, failures)) => {
                let locks = failures + 1 >= MAX_FAILURES;
                exec(
                    &tx,
                    "UPDATE cashiers SET failures = failures + 1, \
                     locked_at = CASE WHEN ?2 THEN ?3 ELSE locked_at END WHERE no = ?1",
                    params![no, locks, utc],
                )?;
                let event = if locks { "locked" } else { "wrong_pin" };
                audit::append(
                    &tx,
                    &utc,
                    "cashier_sign_on_failed",
                    None,
                    &detail(event).to_string(),
                )?;
                if locks {
                    SignOn::Locked
                } else {
                    SignOn::Wrong
                }
            }
        };
        tx.commit()?;
        if new_checkout && matches!(result, SignOn::Done(_)) {
            self.changes.note(super::Change::TerminalSeen {
                terminal: terminal.clone(),
                changed: true,
            });
        }
        Ok(result)
    }

    /// Nobody is signed on at `terminal` any more.
    pub fn sign_off(&mut self, terminal: &TerminalId) -> Result<(), StoreError> {
        let utc = now_utc();
        let tx = self.conn.savepoint()?;
        let was: Option<String> = tx
            .query_row(
                "SELECT cashier FROM terminals WHERE id = ?1",
                [terminal.as_str()],
                |r| r.get(0),
            )
            .optional()?
            .flatten();
        if let Some(no) = was {
            exec(
                &tx,
                "UPDATE terminals SET cashier = NULL WHERE id = ?1",
                [terminal.as_str()],
            )?;
            let detail = serde_json::json!({"terminal": terminal.as_str(), "cashier": no});
            audit::append(&tx, &utc, "cashier_signed_off", None, &detail.to_string())?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The cashier signed on at `terminal`, if any.
    pub fn terminal_cashier(&self, terminal: &TerminalId) -> Result<Option<Cashier>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT c.no, c.name FROM terminals t JOIN cashiers c ON c.no = t.cashier WHERE t.id = ?1",
            )?
            .query_row([terminal.as_str()], |r| {
                Ok(Cashier {
                    no: r.get(0)?,
                    name: r.get(1)?,
                })
            })
            .optional()?)
    }

    /// The names of cashiers by number, removed ones included (for reports).
    pub fn cashier_names(&self) -> Result<std::collections::HashMap<String, String>, StoreError> {
        let mut stmt = self.conn.prepare("SELECT no, name FROM cashiers")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        (dir, s)
    }

    #[test]
    fn five_wrong_pins_lock_until_the_owner_unlocks() {
        let (_d, mut s) = store();
        let t1 = TerminalId::parse("T1").unwrap();
        assert!(
            !s.set_cashier("7", "Ann", None, "owner").unwrap(),
            "a new cashier needs a PIN"
        );
        assert!(s.set_cashier("7", "Ann", Some("$argon2id$x"), "owner").unwrap());
        for _ in 1..MAX_FAILURES {
            assert_eq!(s.sign_on(&t1, "7", false).unwrap(), SignOn::Wrong);
        }
        assert_eq!(s.sign_on(&t1, "7", false).unwrap(), SignOn::Locked);
        assert_eq!(
            s.sign_on(&t1, "7", true).unwrap(),
            SignOn::Locked,
            "the right PIN does not unlock"
        );
        assert!(s.cashiers().unwrap()[0].locked_at.is_some());
        assert!(s.unlock_cashier("7", "owner").unwrap());
        let ann = Cashier {
            no: "7".into(),
            name: "Ann".into(),
        };
        assert_eq!(s.sign_on(&t1, "7", true).unwrap(), SignOn::Done(ann.clone()));
        assert_eq!(s.terminal_cashier(&t1).unwrap(), Some(ann));
        assert_eq!(s.cashiers().unwrap()[0].signed_on_at, vec!["T1".to_string()]);
        assert_eq!(
            s.sign_on(&t1, "8", true).unwrap(),
            SignOn::Wrong,
            "unknown number"
        );
    }

    #[test]
    fn a_removed_cashier_is_signed_off_and_keeps_their_name_for_old_sales() {
        let (_d, mut s) = store();
        let t1 = TerminalId::parse("T1").unwrap();
        s.set_cashier("7", "Ann", Some("$argon2id$x"), "owner").unwrap();
        s.sign_on(&t1, "7", true).unwrap();
        assert!(s.remove_cashier("7", "owner").unwrap());
        assert_eq!(s.terminal_cashier(&t1).unwrap(), None);
        assert!(s.cashiers().unwrap().is_empty());
        assert_eq!(s.cashier_pin_hash("7").unwrap(), None);
        assert_eq!(s.cashier_names().unwrap()["7"], "Ann");
        assert!(
            !s.set_cashier("7", "Bo", None, "owner").unwrap(),
            "back only with a PIN"
        );
        assert!(s.set_cashier("7", "Bo", Some("$argon2id$y"), "owner").unwrap());
        assert_eq!(s.cashiers().unwrap()[0].name, "Bo");
    }
}
