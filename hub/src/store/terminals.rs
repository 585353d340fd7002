//! The checkouts the hub has heard from, as the owner's page lists them:
//! online or not, when last seen, version, device counters, the name the
//! owner gave it, and whether it is frozen.

use rusqlite::params;
use serde::Serialize;
use tallybox_core::protocol::{DeviceHealth, TerminalId};

use super::{audit, exec, now_utc, Store, StoreError};

#[derive(Debug, Clone, Serialize)]
pub struct TerminalRow {
    pub id: String,
    pub name: String,
    pub online: bool,
    pub version: String,
    /// UTC.
    pub last_seen: String,
    pub devices: Option<DeviceHealth>,
    /// Why it may not sell, when frozen (itself, or the whole store).
    pub frozen: Option<String>,
    /// The same in Chinese (as typed, when someone typed it).
    #[serde(rename = "frozen_zh-CN")]
    pub frozen_zh: Option<String>,
    /// The number of the cashier signed on there.
    pub cashier: Option<String>,
}

impl Store {
    pub fn terminals(&self) -> Result<Vec<TerminalRow>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT t.id, t.name, t.online, t.version, t.last_seen, t.devices, \
                    coalesce(f.reason, s.reason), t.cashier, \
                    CASE WHEN f.scope IS NOT NULL THEN coalesce(nullif(f.reason_zh, ''), f.reason) \
                         ELSE coalesce(nullif(s.reason_zh, ''), s.reason) END \
             FROM terminals t \
             LEFT JOIN freezes f ON f.scope = t.id \
             LEFT JOIN freezes s ON s.scope = 'store' \
             ORDER BY length(t.id), t.id",
        )?;
        let rows = stmt.query_map([], |r| {
            let devices: Option<String> = r.get(5)?;
            Ok(TerminalRow {
                id: r.get(0)?,
                name: r.get(1)?,
                online: r.get(2)?,
                version: r.get(3)?,
                last_seen: r.get(4)?,
                devices: devices.and_then(|j| serde_json::from_str(&j).ok()),
                frozen: r.get(6)?,
                cashier: r.get(7)?,
                frozen_zh: r.get(8)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Gives a terminal the name the owner knows it by; false when the hub
    /// has never heard from it.
    pub fn rename_terminal(&mut self, terminal: &TerminalId, name: &str) -> Result<bool, StoreError> {
        let utc = now_utc();
        let tx = self.conn.savepoint()?;
        let changed = exec(
            &tx,
            "UPDATE terminals SET name = ?2 WHERE id = ?1",
            params![terminal.as_str(), name],
        )?;
        if changed > 0 {
            let detail = serde_json::json!({"terminal": terminal.as_str(), "name": name});
            audit::append(&tx, &utc, "terminal_renamed", None, &detail.to_string())?;
        }
        tx.commit()?;
        Ok(changed > 0)
    }
}
