//! Totals for the owner's page: today's, and a day's, week's or month's by
//! hour or day, by terminal and by card brand. One indexed range scan over
//! `local_time` per report, grouped in SQL by (bucket, terminal, brand, kind,
//! status) and folded here, so a busy month costs one pass over its rows.
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

fn lines(map: BTreeMap<String, Totals>) -> Vec<Line> {
    map.into_iter()
        .map(|(key, totals)| Line { key, totals })
        .collect()
}

impl Store {
    /// The report of local days `from` up to (not including) `to`; `hourly`
    /// buckets by hour, otherwise by day.
    pub fn report(&self, from: NaiveDate, to: NaiveDate, hourly: bool) -> Result<Report, StoreError> {
        // local_time is 'YYYY-MM-DD HH:MM:SS': the hour is characters 12-13.
        let bucket = if hourly {
            "substr(local_time, 12, 2)"
        } else {
            "substr(local_time, 1, 10)"
        };
        let sql = format!(
            "SELECT {bucket}, terminal_id, brand, kind, status, count(*), sum(amount), coalesce(cashier, ''), tender \
             FROM transactions \
             WHERE local_time >= ?1 AND local_time < ?2 AND status IN ('approved', 'declined') \
             GROUP BY 1, 2, 3, 4, 5, 8, 9"
        );
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
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let mut rows = stmt.query([
            from.format("%Y-%m-%d 00:00:00").to_string(),
            to.format("%Y-%m-%d 00:00:00").to_string(),
        ])?;
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
