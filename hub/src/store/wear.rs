//! Each checkout's odometers. A checkout counts swipes, taps and printed
//! paper since its program started and sends the totals with each heartbeat;
//! the hub adds what is new since the last heartbeat (all of it after a
//! restart, which the uptime shows), so the counts the owner's reminders use
//! — swipes since the reader was cleaned, paper since the roll was changed —
//! survive restarts. Every start is kept for a week: a checkout that keeps
//! restarting has a power or software problem.

use chrono::{DateTime, Duration, Utc};
use rusqlite::{params, OptionalExtension};
use serde::Serialize;
use tallybox_core::protocol::PrinterProblem;
use tallybox_core::protocol::{DeviceHealth, TerminalId};

use super::{audit, exec, now_utc, Store, StoreError};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Wear {
    pub terminal_id: String,
    /// When its program started (UTC).
    pub started_at: String,
    /// Since the hub first heard from it.
    pub swipes: u32,
    pub swipe_errors: u32,
    pub taps: u32,
    pub tap_errors: u32,
    pub swipes_since_clean: u32,
    /// When the owner last said the reader was cleaned (UTC).
    pub cleaned_at: Option<String>,
    /// Paper printed since the roll was last changed, in millimetres.
    pub paper_mm_since_roll: u64,
    pub roll_at: Option<String>,
    /// Program starts in the last hour.
    pub starts_last_hour: u32,
}

/// What the owner did that resets an odometer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    ReaderCleaned,
    NewRoll,
}

fn utc_text(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// What is new in `now` since `before` (the same run's earlier totals).
fn since(now: &DeviceHealth, before: &DeviceHealth) -> DeviceHealth {
    DeviceHealth {
        swipes: now.swipes.saturating_sub(before.swipes),
        swipe_errors: now.swipe_errors.saturating_sub(before.swipe_errors),
        taps: now.taps.saturating_sub(before.taps),
        tap_errors: now.tap_errors.saturating_sub(before.tap_errors),
        paper_mm: now.paper_mm.saturating_sub(before.paper_mm),
        ..now.clone()
    }
}

impl Store {
    /// Records a heartbeat: the counters as the page shows them, and what is
    /// new added to the odometers.
    pub fn record_heartbeat(
        &mut self,
        terminal: &TerminalId,
        uptime_s: u64,
        health: &DeviceHealth,
    ) -> Result<(), StoreError> {
        self.heartbeat_at(Utc::now(), terminal, uptime_s, health)
    }

    fn heartbeat_at(
        &mut self,
        now: DateTime<Utc>,
        terminal: &TerminalId,
        uptime_s: u64,
        health: &DeviceHealth,
    ) -> Result<(), StoreError> {
        // (chrono's durations end at i64::MAX milliseconds.)
        let started = now - Duration::seconds(uptime_s.min(i64::MAX as u64 / 2000) as i64);
        let before = self.device_health(terminal)?.unwrap_or_default();
        let tx = self.conn.savepoint()?;
        // A restart is an uptime that went down: wall-clock times would call
        // every clock step one (a Pi without a clock battery jumps when NTP
        // syncs). A restart during a hub outage whose new uptime already passed
        // the old one is missed, and its counts are taken as a continuation.
        let last_uptime: Option<u64> = tx
            .query_row(
                "SELECT uptime_s FROM terminal_wear WHERE terminal_id = ?1",
                [terminal.as_str()],
                |r| Ok(r.get::<_, i64>(0)?.max(0) as u64),
            )
            .optional()?;
        let restarted = last_uptime.is_none_or(|last| uptime_s < last);
        let new = if restarted {
            exec(
                &tx,
                "INSERT INTO terminal_starts (terminal_id, at) VALUES (?1, ?2)",
                params![terminal.as_str(), utc_text(started)],
            )?;
            exec(
                &tx,
                "DELETE FROM terminal_starts WHERE terminal_id = ?1 AND at < ?2",
                params![terminal.as_str(), utc_text(now - Duration::days(7))],
            )?;
            health.clone()
        } else {
            since(health, &before)
        };
        // The roll was changed: the printer was out of paper (or nearly) and is not now.
        let new_roll = (before.printer == Some(PrinterProblem::PaperOut) && health.printer.is_none())
            || (before.paper_low && !health.paper_low);
        exec(
            &tx,
            "INSERT INTO terminal_wear (terminal_id, started_at) VALUES (?1, ?2) ON CONFLICT(terminal_id) DO NOTHING",
            params![terminal.as_str(), utc_text(started)],
        )?;
        exec(
            &tx,
            "UPDATE terminal_wear SET \
                 started_at = CASE WHEN ?2 THEN ?3 ELSE started_at END, uptime_s = ?11, \
                 swipes = swipes + ?4, swipe_errors = swipe_errors + ?5, \
                 taps = taps + ?6, tap_errors = tap_errors + ?7, \
                 swipes_since_clean = swipes_since_clean + ?4, \
                 paper_mm_since_roll = CASE WHEN ?9 THEN ?8 ELSE paper_mm_since_roll + ?8 END, \
                 roll_at = CASE WHEN ?9 THEN ?10 ELSE roll_at END \
             WHERE terminal_id = ?1",
            params![
                terminal.as_str(),
                restarted,
                utc_text(started),
                new.swipes,
                new.swipe_errors,
                new.taps,
                new.tap_errors,
                new.paper_mm as i64,
                new_roll,
                utc_text(now),
                uptime_s.min(i64::MAX as u64) as i64,
            ],
        )?;
        exec(
            &tx,
            "UPDATE terminals SET devices = ?2 WHERE id = ?1",
            params![
                terminal.as_str(),
                serde_json::to_string(health).unwrap_or_default()
            ],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Every checkout's odometers.
    pub fn wear(&self) -> Result<Vec<Wear>, StoreError> {
        let hour_ago = utc_text(Utc::now() - Duration::hours(1));
        let mut stmt = self.conn.prepare(
            "SELECT w.terminal_id, w.started_at, w.swipes, w.swipe_errors, w.taps, w.tap_errors, \
                    w.swipes_since_clean, w.cleaned_at, w.paper_mm_since_roll, w.roll_at, \
                    (SELECT count(*) FROM terminal_starts s WHERE s.terminal_id = w.terminal_id AND s.at >= ?1) \
             FROM terminal_wear w ORDER BY length(w.terminal_id), w.terminal_id",
        )?;
        let rows = stmt.query_map([hour_ago], |r| {
            Ok(Wear {
                terminal_id: r.get(0)?,
                started_at: r.get(1)?,
                swipes: r.get(2)?,
                swipe_errors: r.get(3)?,
                taps: r.get(4)?,
                tap_errors: r.get(5)?,
                swipes_since_clean: r.get(6)?,
                cleaned_at: r.get(7)?,
                paper_mm_since_roll: r.get::<_, i64>(8)?.max(0) as u64,
                roll_at: r.get(9)?,
                starts_last_hour: r.get(10)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The owner cleaned a reader or put in a new roll: that odometer starts
    /// again (and the audit log says who did it when). False for a checkout
    /// the hub has never heard from.
    pub fn serviced(
        &mut self,
        terminal: &TerminalId,
        service: Service,
        by: &str,
    ) -> Result<bool, StoreError> {
        let utc = now_utc();
        let (sql, event) = match service {
            Service::ReaderCleaned => (
                "UPDATE terminal_wear SET swipes_since_clean = 0, cleaned_at = ?2 WHERE terminal_id = ?1",
                "reader_cleaned",
            ),
            Service::NewRoll => (
                "UPDATE terminal_wear SET paper_mm_since_roll = 0, roll_at = ?2 WHERE terminal_id = ?1",
                "paper_roll_changed",
            ),
        };
        let tx = self.conn.savepoint()?;
        let changed = exec(&tx, sql, params![terminal.as_str(), utc])? > 0;
        if changed {
            let detail = serde_json::json!({"terminal": terminal.as_str(), "by": by});
            audit::append(&tx, &utc, event, None, &detail.to_string())?;
        }
        tx.commit()?;
        Ok(changed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn health(swipes: u32, paper_mm: u64) -> DeviceHealth {
        DeviceHealth {
            swipes,
            paper_mm,
            ..Default::default()
        }
    }

    #[test]
    fn odometers_add_up_across_restarts_and_reset_when_serviced() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let t1 = TerminalId::parse("T1").unwrap();
        store.touch_terminal(&t1, Some(true), Some("0.1.0")).unwrap();
        let t0 = Utc::now() - Duration::minutes(10);
        let beat = |store: &mut Store, at: i64, uptime: u64, h: DeviceHealth| {
            store
                .heartbeat_at(t0 + Duration::seconds(at), &t1, uptime, &h)
                .unwrap()
        };
        beat(&mut store, 0, 5, health(3, 100));
        beat(&mut store, 30, 35, health(10, 400));
        let w = &store.wear().unwrap()[0];
        assert_eq!(
            (w.swipes, w.swipes_since_clean, w.paper_mm_since_roll),
            (10, 10, 400)
        );
        assert_eq!(w.starts_last_hour, 1);

        // Restarted: its counters start from zero again; nothing is lost or counted twice.
        beat(&mut store, 60, 1, health(2, 50));
        let w = &store.wear().unwrap()[0];
        assert_eq!((w.swipes, w.paper_mm_since_roll), (12, 450));
        assert_eq!(w.starts_last_hour, 2);

        assert!(store.serviced(&t1, Service::ReaderCleaned, "owner").unwrap());
        beat(&mut store, 90, 31, health(5, 50));
        let w = &store.wear().unwrap()[0];
        assert_eq!((w.swipes, w.swipes_since_clean), (15, 3));
        assert!(w.cleaned_at.is_some());
        assert_eq!(w.paper_mm_since_roll, 450, "the roll was not changed");

        // Paper out, then paper back: a new roll went in.
        let out = DeviceHealth {
            printer: Some(PrinterProblem::PaperOut),
            ..health(5, 60)
        };
        beat(&mut store, 120, 61, out);
        beat(&mut store, 150, 91, health(5, 100));
        assert_eq!(store.wear().unwrap()[0].paper_mm_since_roll, 40);
        // The hub's clock jumps hours ahead (NTP at boot): not a restart, and
        // nothing is counted twice.
        beat(&mut store, 4 * 3600, 121, health(7, 100));
        let w = &store.wear().unwrap()[0];
        assert_eq!((w.swipes, w.starts_last_hour), (17, 2));
        let unknown = TerminalId::parse("T9").unwrap();
        assert!(!store.serviced(&unknown, Service::NewRoll, "owner").unwrap());
    }
}
