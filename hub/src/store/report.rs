//! Totals for the owner's page: today's, and a day's, week's or month's by
//! hour or day, by terminal and by card brand. A report by hour (a day's) is
//! one indexed range scan over `local_time`, grouped in SQL by (hour,
//! terminal, brand, kind, status, cashier, tender) and folded here. A report
//! by day (a week's, a month's) reads the same groups per day from
//! `daily_totals`, which triggers keep in the transaction that writes each
//! sale and verdict (migration 23): a few rows a day, whatever the takings.
//!
//! Money rules: takings are approved sales; approved voids and refunds are
//! subtracted for the net; declines are counted, never summed.

use std::collections::BTreeMap;

use chrono::{Datelike, Duration, NaiveDate};
use serde::Serialize;
use tallybox_core::card::Brand;
use tallybox_core::protocol::{Tender, TxnKind, TxnStatus};

use super::{parse_enum, Store, StoreError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Day,
    Week,
    Month,
}

impl Period {
    pub fn parse(text: &str) -> Option<Period> {
        match text {
            "day" => Some(Period::Day),
            "week" => Some(Period::Week),
            "month" => Some(Period::Month),
            _ => None,
        }
    }

    /// The first day of the period holding `date` and the day after its last
    /// (weeks start on Monday).
    pub fn range(self, date: NaiveDate) -> (NaiveDate, NaiveDate) {
        match self {
            Period::Day => (date, date + Duration::days(1)),
            Period::Week => {
                let monday = date - Duration::days(i64::from(date.weekday().num_days_from_monday()));
                (monday, monday + Duration::days(7))
            }
            Period::Month => {
                let first = date.with_day(1).unwrap_or(date);
                let next = if first.month() == 12 {
                    NaiveDate::from_ymd_opt(first.year() + 1, 1, 1)
                } else {
                    NaiveDate::from_ymd_opt(first.year(), first.month() + 1, 1)
                };
                (first, next.unwrap_or(first + Duration::days(31)))
            }
        }
    }
}

/// Counts and sums in minor units.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Totals {
    pub sales: u32,
    pub sales_minor: i64,
    pub voids: u32,
    pub voids_minor: i64,
    pub refunds: u32,
    pub refunds_minor: i64,
    /// Takings less voids and refunds.
    pub net_minor: i64,
    pub declined: u32,
}

impl Totals {
    fn add(&mut self, kind: TxnKind, status: TxnStatus, count: u32, minor: i64) {
        match (status, kind) {
            (TxnStatus::Approved, TxnKind::Sale) => {
                self.sales += count;
                self.sales_minor += minor;
                self.net_minor += minor;
            }
            (TxnStatus::Approved, TxnKind::Void) => {
                self.voids += count;
                self.voids_minor += minor;
                self.net_minor -= minor;
            }
            (TxnStatus::Approved, TxnKind::Refund) => {
                self.refunds += count;
                self.refunds_minor += minor;
                self.net_minor -= minor;
            }
            (TxnStatus::Declined, _) => self.declined += count,
            _ => {}
        }
    }
}

/// One row of a breakdown: an hour (`09`), a day (`2026-11-25`), a terminal
/// id, a card brand or a cashier, with its totals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Line {
    pub key: String,
    #[serde(flatten)]
    pub totals: Totals,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// First local day included, and the day after the last.
    pub from: String,
    pub to: String,
    pub totals: Totals,
    /// By hour for a day, by day for a week or month; every bucket present,
    /// empty ones included, so a chart needs no gap-filling.
    pub buckets: Vec<Line>,
    pub by_terminal: Vec<Line>,
    /// Card sales by the card's brand.
    pub by_brand: Vec<Line>,
    /// By how the customer paid: `card`, `cash`.
    pub by_tender: Vec<Line>,
    /// By the cashier signed on: `07 Ann`; empty for sales with no cashier.
    pub by_cashier: Vec<Line>,
}

/// A day's groups by hour, from the transactions themselves.
const BY_HOUR: &str =
    "SELECT substr(local_time, 12, 2), terminal_id, brand, kind, status, count(*), sum(amount), \
     coalesce(cashier, ''), tender FROM transactions \
     WHERE local_time >= ?1 AND local_time < ?2 AND status IN ('approved', 'declined') \
     GROUP BY 1, 2, 3, 4, 5, 8, 9";

/// The groups by day, from the totals the triggers keep.
const BY_DAY: &str = "SELECT day, terminal_id, brand, kind, status, count, minor, cashier, tender \
     FROM daily_totals WHERE day >= ?1 AND day < ?2 AND count != 0";

/// The same groups by day, from the transactions themselves: what
/// `daily_totals` must always agree with.
#[cfg(test)]
const BY_DAY_FROM_ROWS: &str = "SELECT substr(local_time, 1, 10), terminal_id, brand, kind, status, count(*), \
     sum(amount), coalesce(cashier, ''), tender FROM transactions \
     WHERE local_time >= ?1 || ' 00:00:00' AND local_time < ?2 || ' 00:00:00' AND status IN ('approved', 'declined') \
     GROUP BY 1, 2, 3, 4, 5, 8, 9";

fn lines(map: BTreeMap<String, Totals>) -> Vec<Line> {
    map.into_iter()
        .map(|(key, totals)| Line { key, totals })
        .collect()
}

impl Store {
    /// The report of local days `from` up to (not including) `to`; `hourly`
    /// buckets by hour, otherwise by day.
    pub fn report(&self, from: NaiveDate, to: NaiveDate, hourly: bool) -> Result<Report, StoreError> {
        let (sql, from_key, to_key) = if hourly {
            // local_time is 'YYYY-MM-DD HH:MM:SS': the hour is characters 12-13.
            (
                BY_HOUR,
                from.format("%Y-%m-%d 00:00:00"),
                to.format("%Y-%m-%d 00:00:00"),
            )
        } else {
            (BY_DAY, from.format("%Y-%m-%d"), to.format("%Y-%m-%d"))
        };
        self.fold(sql, &from_key.to_string(), &to_key.to_string(), from, to, hourly)
    }

    /// The totals of local days `from` up to (not including) `to`, from the
    /// daily totals.
    pub fn totals(&self, from: NaiveDate, to: NaiveDate) -> Result<Totals, StoreError> {
        Ok(self.report(from, to, false)?.totals)
    }

    /// Folds the groups `sql` gives for `from_key..to_key` into a report.
    fn fold(
        &self,
        sql: &str,
        from_key: &str,
        to_key: &str,
        from: NaiveDate,
        to: NaiveDate,
        hourly: bool,
    ) -> Result<Report, StoreError> {
        let mut totals = Totals::default();
        let mut buckets: BTreeMap<String, Totals> = if hourly {
            (0..24).map(|h| (format!("{h:02}"), Totals::default())).collect()
        } else {
            from.iter_days()
                .take_while(|d| *d < to)
                .map(|d| (d.format("%Y-%m-%d").to_string(), Totals::default()))
                .collect()
        };
        let mut by_terminal: BTreeMap<String, Totals> = BTreeMap::new();
        let mut by_brand: BTreeMap<String, Totals> = BTreeMap::new();
        let mut by_tender: BTreeMap<String, Totals> = BTreeMap::new();
        let mut by_cashier: BTreeMap<String, Totals> = BTreeMap::new();
        let names = self.cashier_names()?;
        let mut stmt = self.conn.prepare_cached(sql)?;
        let mut rows = stmt.query([from_key, to_key])?;
        while let Some(row) = rows.next()? {
            let key: String = row.get(0)?;
            let terminal: String = row.get(1)?;
            let brand: String = row.get(2)?;
            // The card's brand as printed on slips ("UnionPay", not "union_pay").
            let brand = parse_enum::<Brand>(&brand).map_or(brand, |b| b.label().to_string());
            let (Some(kind), Some(status)) = (
                parse_enum::<TxnKind>(&row.get::<_, String>(3)?),
                parse_enum::<TxnStatus>(&row.get::<_, String>(4)?),
            ) else {
                continue;
            };
            let count: u32 = row.get(5)?;
            let minor: i64 = row.get(6)?;
            totals.add(kind, status, count, minor);
            buckets.entry(key).or_default().add(kind, status, count, minor);
            by_terminal
                .entry(terminal)
                .or_default()
                .add(kind, status, count, minor);
            let tender: String = row.get(8)?;
            if tender == Tender::Card.as_str() {
                by_brand.entry(brand).or_default().add(kind, status, count, minor);
            }
            by_tender
                .entry(tender)
                .or_default()
                .add(kind, status, count, minor);
            let cashier: String = row.get(7)?;
            let cashier = match names.get(&cashier) {
                Some(name) => format!("{cashier} {name}"),
                None => cashier,
            };
            by_cashier
                .entry(cashier)
                .or_default()
                .add(kind, status, count, minor);
        }
        Ok(Report {
            from: from.format("%Y-%m-%d").to_string(),
            to: to.format("%Y-%m-%d").to_string(),
            totals,
            buckets: lines(buckets),
            by_terminal: lines(by_terminal),
            by_brand: lines(by_brand),
            by_tender: lines(by_tender),
            by_cashier: lines(by_cashier),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_cover_whole_days_weeks_from_monday_and_months() {
        let d = NaiveDate::from_ymd_opt(2026, 12, 31).unwrap();
        let ymd = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        assert_eq!(Period::Day.range(d), (d, ymd(2027, 1, 1)));
        // 2026-12-31 is a Thursday.
        assert_eq!(Period::Week.range(d), (ymd(2026, 12, 28), ymd(2027, 1, 4)));
        assert_eq!(Period::Month.range(d), (ymd(2026, 12, 1), ymd(2027, 1, 1)));
        assert_eq!(
            Period::Month.range(ymd(2028, 2, 10)),
            (ymd(2028, 2, 1), ymd(2028, 3, 1))
        );
    }

    /// A shop's week: card sales approved, declined and reversed (each
    /// pending first), a void, a refund, cash, on two checkouts and three
    /// days, some with a cashier.
    fn a_week(store: &mut Store) {
        use crate::store::tests::{new_txn, sale, void};
        use crate::store::{NewCash, Verdict};
        use tallybox_core::card::{test_cards, EntryMode};
        use tallybox_core::money::Amount;
        use tallybox_core::protocol::{RequestId, TerminalId};
        let card = test_cards::by_name("approved").unwrap().read(EntryMode::Tap);
        let (t1, t2) = (TerminalId::parse("T1").unwrap(), TerminalId::parse("T2").unwrap());
        let sold = sale(store, 1250);
        for (n, (tid, verdict)) in [
            (&t2, TxnStatus::Approved),
            (&t2, TxnStatus::Declined),
            (&t1, TxnStatus::Reversed),
            (&t1, TxnStatus::Approved),
        ]
        .into_iter()
        .enumerate()
        {
            let rid = RequestId::new();
            let id = store
                .begin(&new_txn(&rid, tid, &card, 300 + n as u64))
                .unwrap()
                .id;
            let code = match verdict {
                TxnStatus::Declined => tallybox_core::code::ResponseCode::parse("51").unwrap(),
                _ => tallybox_core::code::ResponseCode::APPROVED,
            };
            let verdict = Verdict {
                status: verdict,
                response_code: code,
                auth_code: "",
                reference_no: "",
            };
            store.finish(id, &verdict).unwrap();
        }
        void(store, &sold);
        let rid = RequestId::new();
        store
            .record_cash(&NewCash {
                request_id: &rid,
                terminal_id: &t2,
                kind: TxnKind::Sale,
                amount: Amount::from_minor(4250).unwrap(),
                currency: "CNY",
                tendered: Amount::from_minor(5000).unwrap(),
                original_id: None,
                split: None,
            })
            .unwrap();
        // Two more days, as another hub wrote them (a row inserted whole).
        for (day, minor, status) in [("2026-11-30", 990, "approved"), ("2026-12-02", 120, "declined")] {
            store
                .conn
                .execute(
                    "INSERT INTO transactions (request_id, terminal_id, kind, status, amount, currency, masked_pan, last4, \
                     brand, entry_mode, pan_hash, batch_no, trace_no, local_time, created_at, updated_at, cashier) \
                     VALUES (?1, 'T2', 'sale', ?2, ?3, 'CNY', '', '', 'visa', 'tap', '', 1, ?4, ?5, ?5, ?5, '07')",
                    rusqlite::params![RequestId::new().as_str(), status, minor, minor, format!("{day} 10:00:00")],
                )
                .unwrap();
        }
    }

    #[test]
    fn a_months_report_from_the_daily_totals_is_the_one_its_transactions_make() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        a_week(&mut store);
        let today = tallybox_platform::clock::now().date_naive();
        let (from, to) = Period::Month.range(today);
        let (from, to) = (
            from.min(NaiveDate::from_ymd_opt(2026, 11, 1).unwrap()),
            to.max(today + Duration::days(1)),
        );
        let from_rows = |store: &Store| {
            store
                .fold(
                    BY_DAY_FROM_ROWS,
                    &from.format("%Y-%m-%d").to_string(),
                    &to.format("%Y-%m-%d").to_string(),
                    from,
                    to,
                    false,
                )
                .unwrap()
        };
        let report = store.report(from, to, false).unwrap();
        assert_eq!(report, from_rows(&store));
        assert_eq!(report.totals.sales, 5, "{report:#?}");
        assert_eq!(report.totals.declined, 2);
        assert_eq!(report.totals.voids, 1);

        // A store from before the totals (and the bills checks after them):
        // the upgrade fills them from its rows.
        store
            .conn
            .execute_batch(
                "DROP INDEX transactions_terminal_declines; \
                 CREATE INDEX transactions_terminal_status ON transactions (terminal_id, status, local_time); \
                 DROP TRIGGER daily_totals_insert; DROP TRIGGER daily_totals_leave; DROP TRIGGER daily_totals_enter; \
                 DROP TRIGGER daily_totals_delete; DROP TABLE daily_totals; DROP TABLE bill_checks; PRAGMA user_version = 22;",
            )
            .unwrap();
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.report(from, to, false).unwrap(), report);
    }

    #[test]
    fn net_is_sales_less_voids_and_refunds_and_declines_only_count() {
        let mut t = Totals::default();
        t.add(TxnKind::Sale, TxnStatus::Approved, 3, 3000);
        t.add(TxnKind::Void, TxnStatus::Approved, 1, 1000);
        t.add(TxnKind::Refund, TxnStatus::Approved, 1, 500);
        t.add(TxnKind::Sale, TxnStatus::Declined, 2, 9999);
        t.add(TxnKind::Sale, TxnStatus::Reversed, 1, 700);
        assert_eq!((t.sales, t.sales_minor), (3, 3000));
        assert_eq!(t.net_minor, 1500);
        assert_eq!(t.declined, 2);
    }
}
