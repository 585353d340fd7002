//! What the fraud rules look at, what they found, and what is frozen. Card
//! numbers are compared by their keyed hash only.

use chrono::Duration;
use rusqlite::{params, OptionalExtension};
use tallybox_core::card::{CardRead, EntryMode};
use tallybox_core::protocol::TerminalId;

use super::{audit, exec, now_utc, Store, StoreError};

/// What the rules are judged on, read in the store job that would write the sale.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    /// The card's keyed hash.
    pub card: String,
    /// Transactions with this card in the same-card window (up to the limit).
    pub same_card: u32,
    /// Declines at this terminal in the card-testing window (up to the limit).
    pub declines: u32,
    /// Keyed-in cards at this terminal in the manual-entry window (up to the
    /// limit; counted only for a keyed-in card).
    pub manual: u32,
    /// The store's average approved sale (minor units) and how many it is over.
    pub usual_minor: u64,
    pub usual_of: u32,
}

/// What a rule does when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Let it through; record the hit and alert the owner.
    Allow,
    /// Only with the supervisor's PIN at the checkout.
    AskSupervisor,
    /// Refuse it; record the hit and alert the owner.
    Block,
}

impl Action {
    /// As recorded: what happened to the transaction.
    pub fn recorded(self) -> &'static str {
        match self {
            Action::Allow => "allowed",
            Action::AskSupervisor => "asked_supervisor",
            Action::Block => "blocked",
        }
    }
}

/// The windows (seconds) and limits of the counting rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FactLimits {
    pub same_card: (u64, u32),
    pub declines: (u64, u32),
    pub manual: (u64, u32),
}

/// A rule that fired.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Hit {
    pub rule: &'static str,
    pub action: Action,
    pub detail: String,
    #[serde(skip)]
    pub detail_zh: String,
    /// What it is about when not the terminal: the card's keyed hash.
    #[serde(skip)]
    pub card: Option<String>,
}

/// A rule that only notes records the same thing (rule and card or
/// terminal) once in this long: one alert per burst, not one per sale.
const NOTE_ONCE_IN_SECS: u64 = 600;

fn bump_generation(tx: &rusqlite::Savepoint<'_>) -> Result<(), StoreError> {
    exec(
        tx,
        "INSERT INTO settings (key, value) VALUES ('freeze_generation', '1') \
         ON CONFLICT (key) DO UPDATE SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT)",
        [],
    )?;
    Ok(())
}

/// A terminal, or `store`, that may not sell.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Frozen {
    pub scope: String,
    pub reason: String,
    /// The reason in Chinese when the hub gave it (an owner's is as typed).
    pub reason_zh: String,
    /// UTC time of the freeze.
    pub since: String,
}

/// Why a terminal may not sell, as its screen says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrozenWords {
    pub en: String,
    /// In Chinese: the hub's words for its own freezes, a typed reason as
    /// typed; none from a row older than the Chinese column.
    pub zh: Option<String>,
}

impl FrozenWords {
    /// A freeze (or none) as the protocol carries it: `reason`, `reason_zh`.
    pub fn split(words: Option<FrozenWords>) -> (Option<String>, Option<String>) {
        match words {
            Some(FrozenWords { en, zh }) => (Some(en), zh),
            None => (None, None),
        }
    }
}

/// A recorded rule hit.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct HitRow {
    pub local_time: String,
    pub terminal_id: String,
    pub rule: String,
    /// `blocked` or `allowed`.
    pub action: String,
    pub detail: String,
    #[serde(rename = "detail_zh-CN")]
    pub detail_zh: String,
}

fn since(seconds: u64) -> String {
    (tallybox_platform::clock::now() - Duration::seconds(seconds as i64))
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

impl Store {
    /// The facts the rules need. Each count stops at its rule's limit (a rule
    /// only asks "at least so many?"), so a busy terminal or a much-used card
    /// costs no more than a quiet one on the sale path.
    pub fn fraud_facts(
        &self,
        terminal: &TerminalId,
        card: &CardRead,
        limits: &FactLimits,
    ) -> Result<Facts, StoreError> {
        let count = |sql: &str, p: &[&dyn rusqlite::ToSql]| -> Result<u32, StoreError> {
            Ok(self.conn.prepare_cached(sql)?.query_row(p, |r| r.get(0))?)
        };
        let pan_hash = self.hasher.hash(card.pan.digits());
        // Declines before the owner last unfroze the terminal were dealt with:
        // only transactions after that point (by id) count.
        let unfrozen_after: i64 = self
            .conn
            .prepare_cached("SELECT CAST(value AS INTEGER) FROM settings WHERE key = ?1")?
            .query_row([format!("unfrozen:{terminal}")], |r| r.get(0))
            .optional()?
            .unwrap_or(0);
        let (usual_minor, usual_of) = self.usual_sale()?;
        let (same_secs, same_max) = limits.same_card;
        let (declines_secs, declines_max) = limits.declines;
        let (manual_secs, manual_max) = limits.manual;
        Ok(Facts {
            card: pan_hash.clone(),
            same_card: count(
                "SELECT count(*) FROM (SELECT 1 FROM transactions WHERE pan_hash = ?1 AND local_time >= ?2 LIMIT ?3)",
                &[&pan_hash, &since(same_secs), &same_max],
            )?,
            declines: count(
                "SELECT count(*) FROM (SELECT 1 FROM transactions \
                 WHERE terminal_id = ?1 AND status = 'declined' AND local_time >= ?2 AND id > ?3 LIMIT ?4)",
                &[&terminal.as_str(), &since(declines_secs), &unfrozen_after, &declines_max],
            )?,
            // Only a keyed-in card is judged on keyed-in bursts.
            manual: if card.entry_mode == EntryMode::Manual {
                count(
                    "SELECT count(*) FROM (SELECT 1 FROM transactions \
                     WHERE terminal_id = ?1 AND entry_mode = 'manual' AND local_time >= ?2 LIMIT ?3)",
                    &[&terminal.as_str(), &since(manual_secs), &manual_max],
                )?
            } else {
                0
            },
            usual_minor,
            usual_of,
        })
    }

    /// What the rules look at for a sale without a card (cash): the usual
    /// sale only; the card rules have no card to count.
    pub fn cash_fraud_facts(&self) -> Result<Facts, StoreError> {
        let (usual_minor, usual_of) = self.usual_sale()?;
        Ok(Facts {
            usual_minor,
            usual_of,
            ..Facts::default()
        })
    }

    /// The average of the last 200 approved sales and how many there were.
    /// "Usual" moves slowly: read at most once a minute, not on every sale.
    fn usual_sale(&self) -> Result<(u64, u32), StoreError> {
        if let Some((at, minor, of)) = self.usual_sale.get() {
            if at.elapsed() < std::time::Duration::from_secs(60) {
                return Ok((minor, of));
            }
        }
        let (avg, of): (Option<f64>, u32) = self
            .conn
            .prepare_cached(
                // NOT INDEXED: walk back from the newest row and stop at 200; through
                // the status index SQLite would sort every approved sale first.
                "SELECT avg(amount), count(*) FROM (SELECT amount FROM transactions NOT INDEXED \
                 WHERE kind = 'sale' AND status = 'approved' ORDER BY id DESC LIMIT 200)",
            )?
            .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        let minor = avg.unwrap_or(0.0) as u64;
        self.usual_sale.set(Some((std::time::Instant::now(), minor, of)));
        Ok((minor, of))
    }

    /// Records a rule hit, in the audit log too; false when it was a note
    /// already recorded for the same rule and subject lately.
    pub fn record_hit(&mut self, terminal: &TerminalId, hit: &Hit) -> Result<bool, StoreError> {
        let utc = now_utc();
        let local = tallybox_platform::clock::now()
            .format("%Y-%m-%d %H:%M:%S")
            .to_string();
        let action = hit.action.recorded();
        let subject = hit.card.as_deref().unwrap_or(terminal.as_str());
        if hit.action == Action::Allow {
            let noted: bool = self
                .conn
                .prepare_cached(
                    "SELECT EXISTS (SELECT 1 FROM fraud_hits WHERE rule = ?1 AND subject = ?2 AND local_time >= ?3)",
                )?
                .query_row(params![hit.rule, subject, since(NOTE_ONCE_IN_SECS)], |r| r.get(0))?;
            if noted {
                return Ok(false);
            }
        }
        let tx = self.conn.savepoint()?;
        exec(
            &tx,
            "INSERT INTO fraud_hits (at, local_time, terminal_id, rule, action, detail, subject, detail_zh) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                utc,
                local,
                terminal.as_str(),
                hit.rule,
                action,
                hit.detail,
                subject,
                hit.detail_zh
            ],
        )?;
        let detail = serde_json::json!({"terminal": terminal.as_str(), "rule": hit.rule, "action": action, "detail": hit.detail});
        audit::append(&tx, &utc, "fraud_rule", None, &detail.to_string())?;
        tx.commit()?;
        self.changes.note(super::Change::FraudHit {
            terminal: terminal.clone(),
            rule: hit.rule.to_string(),
        });
        Ok(true)
    }

    /// Stops `scope` (a terminal id, or `store`) from selling, with a reason
    /// as someone typed it.
    pub fn freeze(&mut self, scope: &str, reason: &str) -> Result<(), StoreError> {
        self.freeze_said(scope, reason, reason)
    }

    /// [`Store::freeze`] with a reason the hub gives, in English and Chinese.
    pub fn freeze_said(&mut self, scope: &str, reason: &str, reason_zh: &str) -> Result<(), StoreError> {
        self.on_own(|s| s.put_freeze(scope, reason, reason_zh))
    }

    fn put_freeze(&mut self, scope: &str, reason: &str, reason_zh: &str) -> Result<(), StoreError> {
        let utc = now_utc();
        let tx = self.conn.savepoint()?;
        exec(
            &tx,
            "INSERT INTO freezes (scope, reason, at, reason_zh) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (scope) DO UPDATE SET reason = ?2, at = ?3, reason_zh = ?4",
            params![scope, reason, utc, reason_zh],
        )?;
        let detail = serde_json::json!({"scope": scope, "reason": reason});
        audit::append(&tx, &utc, "frozen", None, &detail.to_string())?;
        bump_generation(&tx)?;
        tx.commit()?;
        self.changes.note(super::Change::Freeze {
            scope: scope.to_string(),
            frozen: true,
        });
        Ok(())
    }

    /// Lets `scope` sell again; false when it was not frozen.
    pub fn unfreeze(&mut self, scope: &str) -> Result<bool, StoreError> {
        self.on_own(|s| s.lift_freeze(scope))
    }

    fn lift_freeze(&mut self, scope: &str) -> Result<bool, StoreError> {
        let utc = now_utc();
        let tx = self.conn.savepoint()?;
        let removed = exec(&tx, "DELETE FROM freezes WHERE scope = ?1", [scope])?;
        if removed > 0 {
            exec(
                &tx,
                "INSERT INTO settings (key, value) SELECT ?1, CAST(coalesce(max(id), 0) AS TEXT) FROM transactions WHERE true \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [format!("unfrozen:{scope}")],
            )?;
            let detail = serde_json::json!({"scope": scope});
            audit::append(&tx, &utc, "unfrozen", None, &detail.to_string())?;
            bump_generation(&tx)?;
        }
        tx.commit()?;
        if removed > 0 {
            self.changes.note(super::Change::Freeze {
                scope: scope.to_string(),
                frozen: false,
            });
        }
        Ok(removed > 0)
    }

    /// Everything frozen now: (scope, reason, since when, UTC).
    pub fn freezes(&self) -> Result<Vec<Frozen>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT scope, reason, at, reason_zh FROM freezes ORDER BY scope")?;
        let rows = stmt.query_map([], |r| {
            let reason: String = r.get(1)?;
            let reason_zh: String = r.get(3)?;
            Ok(Frozen {
                scope: r.get(0)?,
                reason_zh: if reason_zh.is_empty() {
                    reason.clone()
                } else {
                    reason_zh
                },
                reason,
                since: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// How many freezes and unfreezes there have been: a change means the
    /// terminals must hear their state again.
    pub fn freeze_generation(&self) -> Result<i64, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT CAST(value AS INTEGER) FROM settings WHERE key = 'freeze_generation'")?
            .query_row([], |r| r.get(0))
            .optional()?
            .unwrap_or(0))
    }

    /// For every terminal the hub knows: why it may not sell, if it may not.
    pub fn frozen_terminals(&self) -> Result<Vec<(String, Option<FrozenWords>)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT t.id, coalesce(s.reason, f.reason), \
                    CASE WHEN s.scope IS NOT NULL THEN nullif(s.reason_zh, '') ELSE nullif(f.reason_zh, '') END \
             FROM terminals t \
             LEFT JOIN freezes s ON s.scope = 'store' LEFT JOIN freezes f ON f.scope = t.id ORDER BY t.id",
        )?;
        let rows = stmt.query_map([], |r| {
            let reason: Option<String> = r.get(1)?;
            let zh: Option<String> = r.get(2)?;
            Ok((r.get(0)?, reason.map(|en| FrozenWords { en, zh })))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Why `terminal` may not sell, in English and, where the hub has it,
    /// in Chinese: what its screen says.
    pub fn frozen_said(&self, terminal: &TerminalId) -> Result<Option<FrozenWords>, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT reason, nullif(reason_zh, '') FROM freezes WHERE scope IN ('store', ?1) \
                 ORDER BY scope = 'store' DESC LIMIT 1",
            )?
            .query_row([terminal.as_str()], |r| {
                Ok(FrozenWords {
                    en: r.get(0)?,
                    zh: r.get(1)?,
                })
            })
            .optional()?)
    }

    /// Why `terminal` may not sell: the store's freeze or its own.
    pub fn frozen(&self, terminal: &TerminalId) -> Result<Option<String>, StoreError> {
        Ok(self.frozen_said(terminal)?.map(|words| words.en))
    }

    /// Rule hits between two local times, oldest first.
    /// Today's approved sales and approved refunds, store-wide, in minor units.
    pub fn takings_today(&self) -> Result<(u64, u64), StoreError> {
        let today = tallybox_platform::clock::now()
            .format("%Y-%m-%d 00:00:00")
            .to_string();
        let mut stmt = self.conn.prepare_cached(
            "SELECT coalesce(sum(CASE WHEN kind = 'sale' THEN amount END), 0), \
                    coalesce(sum(CASE WHEN kind = 'refund' THEN amount END), 0) \
             FROM transactions WHERE local_time >= ?1 AND status = 'approved'",
        )?;
        Ok(stmt.query_row([today], |r| {
            Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64))
        })?)
    }

    pub fn fraud_hits(&self, from: &str, to: &str) -> Result<Vec<HitRow>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT local_time, terminal_id, rule, action, detail, detail_zh FROM fraud_hits \
             WHERE local_time >= ?1 AND local_time <= ?2 ORDER BY id",
        )?;
        let rows = stmt.query_map([from, to], |r| {
            let detail: String = r.get(4)?;
            let detail_zh: String = r.get(5)?;
            Ok(HitRow {
                local_time: r.get(0)?,
                terminal_id: r.get(1)?,
                rule: r.get(2)?,
                action: r.get(3)?,
                detail_zh: if detail_zh.is_empty() {
                    detail.clone()
                } else {
                    detail_zh
                },
                detail,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}
