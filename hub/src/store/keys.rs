//! Terminal keys as the store keeps them: the key a paired terminal shares
//! with the hub, the key a pairing in progress would give it (until the
//! terminal's first sealed message proves it holds the same), and revoked
//! terminals. Every change is audited; no key ever reaches the audit log.

use rusqlite::params;
use tallybox_core::seal::Key;

use super::{audit, exec, now_utc, Store, StoreError};

/// One terminal's keys as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRow {
    pub terminal_id: String,
    pub key: Option<Key>,
    pub pending: Option<Key>,
    pub revoked: bool,
    /// The highest message counter accepted from it, as last saved.
    pub rx_seen: u64,
}

fn parse(text: Option<String>) -> Option<Key> {
    text.and_then(|t| hex::decode(t).ok())
        .and_then(|b| b.try_into().ok())
}

impl Store {
    pub fn terminal_keys(&self) -> Result<Vec<KeyRow>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT terminal_id, key, pending_key, state, rx_seen FROM terminal_keys")?;
        let rows = stmt.query_map([], |r| {
            Ok(KeyRow {
                terminal_id: r.get(0)?,
                key: parse(r.get(1)?),
                pending: parse(r.get(2)?),
                revoked: r.get::<_, String>(3)? == "revoked",
                rx_seen: r.get::<_, i64>(4)? as u64,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Saves the highest counters accepted, one `(terminal, counter)` each, in
    /// one transaction.
    pub fn save_rx_seen(&mut self, marks: &[(String, u64)]) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        for (terminal, seen) in marks {
            tx.prepare_cached("UPDATE terminal_keys SET rx_seen = ?2 WHERE terminal_id = ?1")?
                .execute(rusqlite::params![terminal, *seen as i64])?;
        }
        tx.commit()?;
        Ok(())
    }

    /// A pairing answered: `key` waits for the terminal's first sealed
    /// message; the terminal's current key (if any) stays until then.
    pub fn set_pending_key(&mut self, terminal: &str, key: &Key) -> Result<(), StoreError> {
        let utc = now_utc();
        exec(
            &self.conn,
            "INSERT INTO terminal_keys (terminal_id, pending_key, state, changed_at) VALUES (?1, ?2, 'pairing', ?3) \
             ON CONFLICT (terminal_id) DO UPDATE SET pending_key = ?2, changed_at = ?3",
            params![terminal, hex::encode(key), utc],
        )?;
        Ok(())
    }

    /// The terminal proved it holds its pending key: that key is its key now.
    pub fn activate_key(&mut self, terminal: &str) -> Result<(), StoreError> {
        let utc = now_utc();
        let tx = self.conn.savepoint()?;
        let changed = exec(
            &tx,
            "UPDATE terminal_keys SET key = pending_key, pending_key = NULL, state = 'paired', changed_at = ?2 \
             WHERE terminal_id = ?1 AND pending_key IS NOT NULL",
            params![terminal, utc],
        )?;
        if changed > 0 {
            let detail = serde_json::json!({"terminal": terminal});
            audit::append(&tx, &utc, "terminal_paired", None, &detail.to_string())?;
        }
        tx.commit()?;
        Ok(())
    }

    /// A key the hub made itself for one of its own in-process checkouts.
    pub fn set_own_key(&mut self, terminal: &str, key: &Key) -> Result<(), StoreError> {
        let utc = now_utc();
        let tx = self.conn.savepoint()?;
        exec(
            &tx,
            "INSERT INTO terminal_keys (terminal_id, key, state, changed_at) VALUES (?1, ?2, 'paired', ?3) \
             ON CONFLICT (terminal_id) DO UPDATE SET key = ?2, pending_key = NULL, state = 'paired', changed_at = ?3",
            params![terminal, hex::encode(key), utc],
        )?;
        let detail = serde_json::json!({"terminal": terminal, "by": "the hub (its own checkout)"});
        audit::append(&tx, &utc, "terminal_paired", None, &detail.to_string())?;
        tx.commit()?;
        Ok(())
    }

    /// The terminal's key is withdrawn: it is refused until paired again.
    pub fn revoke_key(&mut self, terminal: &str, by: &str) -> Result<(), StoreError> {
        let utc = now_utc();
        let tx = self.conn.savepoint()?;
        exec(
            &tx,
            "INSERT INTO terminal_keys (terminal_id, state, changed_at) VALUES (?1, 'revoked', ?2) \
             ON CONFLICT (terminal_id) DO UPDATE SET key = NULL, pending_key = NULL, state = 'revoked', changed_at = ?2",
            params![terminal, utc],
        )?;
        let detail = serde_json::json!({"terminal": terminal, "by": by});
        audit::append(&tx, &utc, "terminal_revoked", None, &detail.to_string())?;
        tx.commit()?;
        Ok(())
    }

    /// The owner entered the master key of an acquirer terminal: recorded by
    /// its check value (the key itself is never in the database).
    pub fn note_master_key(&mut self, terminal: &str, check_value: &str, by: &str) -> Result<(), StoreError> {
        let utc = now_utc();
        let tx = self.conn.savepoint()?;
        let detail = serde_json::json!({"acquirer_terminal": terminal, "check_value": check_value, "by": by});
        audit::append(
            &tx,
            &utc,
            "acquirer_master_key_entered",
            None,
            &detail.to_string(),
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The owner entered (`id`: the app or merchant id taken) or forgot
    /// (`None`) a payment-code provider's credentials: where the shop's code
    /// payments go is in the audit log (the keys never are).
    pub fn note_code_credentials(
        &mut self,
        provider: &str,
        id: Option<&str>,
        by: &str,
    ) -> Result<(), StoreError> {
        match id {
            Some(id) => self.note_access(
                "code_credentials_entered",
                serde_json::json!({"provider": provider, "id": id, "by": by}),
            ),
            None => self.note_access(
                "code_credentials_forgotten",
                serde_json::json!({"provider": provider, "by": by}),
            ),
        }
    }

    /// Notes in the audit log that `by` entered the off-site bucket (its
    /// address and access key id; never the secret) or forgot it (`None`).
    pub fn note_offsite(&mut self, entered: Option<(&str, &str)>, by: &str) -> Result<(), StoreError> {
        match entered {
            Some((url, access_key_id)) => self.note_access(
                "offsite_entered",
                serde_json::json!({"url": url, "access_key_id": access_key_id, "by": by}),
            ),
            None => self.note_access("offsite_forgotten", serde_json::json!({"by": by})),
        }
    }

    /// An audit record of a change to the shop's access to an outside party.
    fn note_access(&mut self, event: &str, detail: serde_json::Value) -> Result<(), StoreError> {
        let utc = now_utc();
        let tx = self.conn.savepoint()?;
        audit::append(&tx, &utc, event, None, &detail.to_string())?;
        tx.commit()?;
        Ok(())
    }

    /// Notes in the audit log that `by` ordered a void or refund of `sale`
    /// from the web page, to be made at `terminal`.
    pub fn note_undo_order(
        &mut self,
        order: &str,
        kind: &str,
        sale: i64,
        amount_minor: u64,
        terminal: &str,
        by: &str,
    ) -> Result<(), StoreError> {
        let utc = now_utc();
        let tx = self.conn.savepoint()?;
        let detail = serde_json::json!({
            "order": order, "kind": kind, "sale": sale, "amount": amount_minor, "terminal": terminal, "by": by,
        });
        audit::append(&tx, &utc, "undo_ordered", Some(sale), &detail.to_string())?;
        tx.commit()?;
        Ok(())
    }
}
