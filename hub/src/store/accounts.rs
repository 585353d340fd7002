//! Who may open the owner's web page: the owner and any managers, each with
//! an argon2 password hash (hashing happens in `web::auth`; the store only
//! keeps the PHC string), and every login attempt — when, from where, how it
//! went — so the owner can see who tried and the page can lock an account
//! that keeps failing.

use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};

use super::{audit, exec, now_utc, Store, StoreError};

/// The owner's account name; there is exactly one owner.
pub const OWNER: &str = "owner";

/// Login attempts kept (the newest).
pub const KEPT_LOGINS: i64 = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, settings included.
    Owner,
    /// Everything but settings and accounts.
    Manager,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Manager => "manager",
        }
    }

    fn parse(text: &str) -> Option<Role> {
        match text {
            "owner" => Some(Role::Owner),
            "manager" => Some(Role::Manager),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Account {
    pub name: String,
    pub role: Role,
    #[serde(skip)]
    pub password_hash: String,
    pub created_at: String,
}

/// One login attempt as the owner sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Login {
    pub at: String,
    pub account: String,
    pub ip: String,
    pub ok: bool,
}

impl Store {
    pub fn account(&self, name: &str) -> Result<Option<Account>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT name, role, password_hash, created_at FROM accounts WHERE name = ?1",
                [name],
                |r| {
                    Ok(Account {
                        name: r.get(0)?,
                        role: Role::parse(&r.get::<_, String>(1)?).unwrap_or(Role::Manager),
                        password_hash: r.get(2)?,
                        created_at: r.get(3)?,
                    })
                },
            )
            .optional()?)
    }

    pub fn has_owner(&self) -> Result<bool, StoreError> {
        Ok(self.account(OWNER)?.is_some())
    }

    pub fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT name, role, created_at FROM accounts ORDER BY role DESC, name")?;
        let rows = stmt.query_map([], |r| {
            Ok(Account {
                name: r.get(0)?,
                role: Role::parse(&r.get::<_, String>(1)?).unwrap_or(Role::Manager),
                password_hash: String::new(),
                created_at: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Creates the account or gives it a new password (and role); audited.
    pub fn set_account(&mut self, name: &str, role: Role, password_hash: &str) -> Result<(), StoreError> {
        let utc = now_utc();
        let tx = self.conn.savepoint()?;
        exec(
            &tx,
            "INSERT INTO accounts (name, role, password_hash, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?4) \
             ON CONFLICT (name) DO UPDATE SET role = ?2, password_hash = ?3, updated_at = ?4",
            params![name, role.as_str(), password_hash, utc],
        )?;
        let detail = serde_json::json!({"account": name, "role": role.as_str()});
        audit::append(&tx, &utc, "account_password_set", None, &detail.to_string())?;
        tx.commit()?;
        Ok(())
    }

    /// Removes a manager; the owner cannot be removed. False when there was none.
    pub fn delete_account(&mut self, name: &str) -> Result<bool, StoreError> {
        let utc = now_utc();
        let tx = self.conn.savepoint()?;
        let removed = exec(
            &tx,
            "DELETE FROM accounts WHERE name = ?1 AND role <> 'owner'",
            [name],
        )?;
        if removed > 0 {
            let detail = serde_json::json!({"account": name});
            audit::append(&tx, &utc, "account_removed", None, &detail.to_string())?;
        }
        tx.commit()?;
        Ok(removed > 0)
    }

    /// Keeps the newest [`KEPT_LOGINS`] attempts, so a guesser on the LAN
    /// cannot fill the disk with them.
    /// Removes the owner's password, and with it the lock of past failures,
    /// so the next start makes a setup code; nothing else changes. False when
    /// there was no owner.
    pub fn reset_owner(&mut self) -> Result<bool, StoreError> {
        let utc = now_utc();
        let tx = self.conn.savepoint()?;
        let removed = exec(&tx, "DELETE FROM accounts WHERE role = 'owner'", [])?;
        if removed > 0 {
            // A success marker ends the run of failures the lock counts.
            exec(
                &tx,
                "INSERT INTO logins (at, account, ip, ok) VALUES (?1, ?2, 'reset on the hub', 1)",
                params![utc, OWNER],
            )?;
            audit::append(&tx, &utc, "owner_password_reset", None, "{}")?;
        }
        tx.commit()?;
        Ok(removed > 0)
    }

    /// Takes a sign-in attempt on `account` from `ip` before its password is
    /// checked, as a failure until [`Store::login_succeeded`] says otherwise;
    /// or, when this address's wrong passwords since its last success lock
    /// it (`lock_for` their count), the seconds left. One transaction on the
    /// page's connection, so parallel attempts are counted one by one: none
    /// is checked past the lock.
    pub fn begin_login(
        &mut self,
        account: &str,
        ip: &str,
        lock_for: impl Fn(u32) -> Option<std::time::Duration>,
    ) -> Result<Result<i64, u64>, StoreError> {
        // IMMEDIATE: it reads, then writes, on the page's own connection (see
        // `note_checks`: deferred, it fails at once when the store writer
        // commits in between).
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let (failures, last): (u32, Option<String>) = tx.query_row(
            "SELECT count(*), max(at) FROM logins WHERE account = ?1 AND ip = ?2 AND NOT ok AND id > \
             coalesce((SELECT max(id) FROM logins WHERE account = ?1 AND ok \
                       AND (ip = ?2 OR ip = 'reset on the hub')), 0)",
            params![account, ip],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let last = last.and_then(|l| chrono::DateTime::parse_from_rfc3339(&l).ok());
        if let (Some(lock), Some(last)) = (lock_for(failures), last) {
            let until = last.with_timezone(&chrono::Utc) + lock;
            let wait = (until - chrono::Utc::now()).num_seconds();
            if wait > 0 {
                return Ok(Err(wait as u64));
            }
        }
        exec(
            &tx,
            "INSERT INTO logins (at, account, ip, ok) VALUES (?1, ?2, ?3, 0)",
            params![now_utc(), account, ip],
        )?;
        let id = tx.last_insert_rowid();
        exec(
            &tx,
            "DELETE FROM logins WHERE id <= ?1 - ?2",
            params![id, KEPT_LOGINS],
        )?;
        tx.commit()?;
        Ok(Ok(id))
    }

    /// Failed attempts on `account` since its last successful login, from
    /// any address, and when the latest of them was (UTC).
    pub fn failures_since_success(&self, account: &str) -> Result<(u32, Option<String>), StoreError> {
        Ok(self.conn.query_row(
            "SELECT count(*), max(at) FROM logins WHERE account = ?1 AND NOT ok AND id > \
             coalesce((SELECT max(id) FROM logins WHERE account = ?1 AND ok), 0)",
            [account],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?)
    }

    /// The attempt `id` had the right password.
    pub fn login_succeeded(&mut self, id: i64) -> Result<(), StoreError> {
        exec(&self.conn, "UPDATE logins SET ok = 1 WHERE id = ?1", [id])?;
        Ok(())
    }

    /// The latest login attempts, newest first.
    pub fn logins(&self, limit: u32) -> Result<Vec<Login>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT at, account, ip, ok FROM logins ORDER BY id DESC LIMIT ?1")?;
        let rows = stmt.query_map([limit], |r| {
            Ok(Login {
                at: r.get(0)?,
                account: r.get(1)?,
                ip: r.get(2)?,
                ok: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_count_from_the_last_success_and_the_owner_stays() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        assert!(!s.has_owner().unwrap());
        s.set_account(OWNER, Role::Owner, "$argon2id$x").unwrap();
        s.set_account("ann", Role::Manager, "$argon2id$y").unwrap();
        assert!(s.has_owner().unwrap());
        // A second owner is refused by the schema.
        assert!(s.set_account("bob", Role::Owner, "$argon2id$z").is_err());

        let never = |_| None;
        for ok in [false, false, true, false, false, false] {
            let id = s.begin_login(OWNER, "192.0.2.7", never).unwrap().unwrap();
            if ok {
                s.login_succeeded(id).unwrap();
            }
        }
        let (failures, last) = s.failures_since_success(OWNER).unwrap();
        assert_eq!(failures, 3);
        assert!(last.is_some());
        assert_eq!(s.failures_since_success("ann").unwrap().0, 0);
        assert_eq!(s.logins(10).unwrap().len(), 6);

        // Locked after three from one address; another address is not.
        let after_three = |n: u32| (n >= 3).then_some(std::time::Duration::from_secs(60));
        let wait = s.begin_login(OWNER, "192.0.2.7", after_three).unwrap();
        assert!(matches!(wait, Err(59 | 60)), "{wait:?}");
        assert!(s.begin_login(OWNER, "192.0.2.8", after_three).unwrap().is_ok());
        assert_eq!(s.logins(10).unwrap().len(), 7, "a locked attempt is not taken");

        assert!(!s.delete_account(OWNER).unwrap());
        assert!(s.delete_account("ann").unwrap());
        assert_eq!(s.accounts().unwrap().len(), 1);
        assert_eq!(s.verify_audit().unwrap(), 3);
    }

    #[test]
    fn only_the_newest_login_attempts_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path()).unwrap();
        for _ in 0..KEPT_LOGINS + 5 {
            s.begin_login("guess", "192.0.2.9", |_| None).unwrap().unwrap();
        }
        let n: i64 = s
            .connection()
            .query_row("SELECT count(*) FROM logins", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, KEPT_LOGINS);
        assert_eq!(s.failures_since_success("guess").unwrap().0 as i64, KEPT_LOGINS);
    }
}
