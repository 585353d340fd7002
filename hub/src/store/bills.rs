//! The code payments of a provider's day, as the hub recorded them, for
//! the comparison with the provider's bill (`payments/bill.rs`), and what
//! each comparison found, kept for the page and the troubleshooting check.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use rusqlite::params;
use serde::Serialize;
use tallybox_core::protocol::{Provider, RequestId};

use super::{Store, StoreError};
use crate::payments::bill::HubOrder;
use crate::payments::order_no;

/// One comparison of a day's bill, as kept.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BillCheck {
    /// The provider's day (Beijing time), `YYYY-MM-DD`.
    pub day: String,
    pub provider: String,
    /// When it was made (UTC).
    pub checked_at: String,
    /// Why there is no comparison (no bill, no answer).
    pub error: Option<String>,
    /// What was found: `payments::bill::Compared`.
    pub result: Option<serde_json::Value>,
}

impl Store {
    /// `provider`'s code sales, voids and refunds made from `from` to `to`
    /// and in the `margin` around them, by the provider's order number:
    /// what each took and gave back.
    pub fn code_orders(
        &self,
        provider: Provider,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        margin: Duration,
    ) -> Result<Vec<HubOrder>, StoreError> {
        let (start, end) = (from - margin, to + margin);
        // The time index is by local time: a day either side, then by the instant.
        let local = |at: DateTime<Utc>| {
            tallybox_platform::clock::to_local(at)
                .format("%Y-%m-%d %H:%M:%S")
                .to_string()
        };
        let mut stmt = self.conn.prepare_cached(
            "SELECT t.kind, t.status, t.amount, t.created_at, t.request_id, o.request_id \
             FROM transactions t LEFT JOIN transactions o ON o.id = t.original_id \
             WHERE t.tender = 'code' AND t.provider = ?1 AND t.local_time >= ?2 AND t.local_time < ?3",
        )?;
        let rows = stmt.query_map(
            params![
                provider.as_str(),
                local(start - Duration::days(1)),
                local(end + Duration::days(1))
            ],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, Option<String>>(5)?,
                ))
            },
        )?;
        let mut orders: BTreeMap<String, HubOrder> = BTreeMap::new();
        for row in rows {
            let (kind, status, amount, created_at, request_id, sale_id) = row?;
            let Ok(at) = DateTime::parse_from_rfc3339(&created_at).map(|t| t.with_timezone(&Utc)) else {
                continue;
            };
            if at < start || at >= end {
                continue;
            }
            let sale = if kind == "sale" {
                request_id
            } else {
                sale_id.unwrap_or(request_id)
            };
            let Ok(sale) = RequestId::parse(&sale) else {
                continue;
            };
            let no = order_no(&sale);
            let order = orders.entry(no.clone()).or_insert_with(|| HubOrder {
                out_trade_no: no,
                ..HubOrder::default()
            });
            let amount = u64::try_from(amount).unwrap_or(0);
            let approved = status == "approved";
            match kind.as_str() {
                "sale" => {
                    order.paid += if approved { amount } else { 0 };
                    order.sale_status = Some(status);
                }
                _ if approved => order.refunded += amount,
                _ => {}
            }
            order.inside |= at >= from && at < to;
            order.near_midnight |= (at - from).abs() < margin || (at - to).abs() < margin;
        }
        Ok(orders.into_values().collect())
    }

    /// Keeps `check` (a later check of the same day and provider replaces it).
    pub fn save_bill_check(&self, check: &BillCheck) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT OR REPLACE INTO bill_checks (day, provider, checked_at, error, result) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                check.day,
                check.provider,
                check.checked_at,
                check.error,
                check.result.as_ref().map(|r| r.to_string())
            ],
        )?;
        Ok(())
    }

    /// The checks of `day`, or the latest day's when `None`.
    pub fn bill_checks(&self, day: Option<NaiveDate>) -> Result<Vec<BillCheck>, StoreError> {
        let day = match day {
            Some(day) => day.format("%Y-%m-%d").to_string(),
            None => self
                .conn
                .query_row("SELECT coalesce(max(day), '') FROM bill_checks", [], |r| r.get(0))?,
        };
        let mut stmt = self.conn.prepare_cached(
            "SELECT day, provider, checked_at, error, result FROM bill_checks WHERE day = ?1 ORDER BY provider",
        )?;
        let checks = stmt
            .query_map([day], |r| {
                Ok(BillCheck {
                    day: r.get(0)?,
                    provider: r.get(1)?,
                    checked_at: r.get(2)?,
                    error: r.get(3)?,
                    result: r
                        .get::<_, Option<String>>(4)?
                        .and_then(|text| serde_json::from_str(&text).ok()),
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(checks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{NewCode, Verdict};
    use tallybox_core::code::ResponseCode;
    use tallybox_core::money::Amount;
    use tallybox_core::protocol::{TerminalId, TxnKind, TxnStatus};

    /// A code payment of `minor` written and decided as `status`.
    fn code(
        store: &mut Store,
        provider: Provider,
        kind: TxnKind,
        minor: u64,
        original: Option<i64>,
        status: TxnStatus,
    ) -> (i64, String) {
        let (rid, tid) = (RequestId::new(), TerminalId::parse("T1").unwrap());
        let new = NewCode {
            request_id: &rid,
            terminal_id: &tid,
            kind,
            amount: Amount::from_minor(minor).unwrap(),
            currency: "CNY",
            provider,
            original_id: original,
            split: None,
        };
        let id = store.begin_code(&new).unwrap().id;
        if status != TxnStatus::Pending {
            let verdict = Verdict {
                status,
                response_code: if status == TxnStatus::Approved {
                    ResponseCode::APPROVED
                } else {
                    tallybox_core::reason::CODE_CANCELLED
                },
                auth_code: "",
                reference_no: "",
            };
            store.finish(id, &verdict).unwrap();
        }
        (id, order_no(&rid))
    }

    #[test]
    fn a_days_code_orders_are_the_providers_own_with_refunds_counted_on_their_sale() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path()).unwrap();
        let (sale, paid) = code(
            &mut store,
            Provider::Alipay,
            TxnKind::Sale,
            4250,
            None,
            TxnStatus::Approved,
        );
        code(
            &mut store,
            Provider::Alipay,
            TxnKind::Refund,
            1250,
            Some(sale),
            TxnStatus::Approved,
        );
        code(
            &mut store,
            Provider::Alipay,
            TxnKind::Refund,
            500,
            Some(sale),
            TxnStatus::Declined,
        );
        let (_, cancelled) = code(
            &mut store,
            Provider::Alipay,
            TxnKind::Sale,
            300,
            None,
            TxnStatus::Declined,
        );
        let (_, asking) = code(
            &mut store,
            Provider::Alipay,
            TxnKind::Sale,
            200,
            None,
            TxnStatus::Pending,
        );
        code(
            &mut store,
            Provider::WechatPay,
            TxnKind::Sale,
            2500,
            None,
            TxnStatus::Approved,
        );

        let now = Utc::now();
        let margin = Duration::minutes(2);
        let orders = store
            .code_orders(
                Provider::Alipay,
                now - Duration::hours(1),
                now + Duration::hours(1),
                margin,
            )
            .unwrap();
        let found: BTreeMap<&str, &HubOrder> = orders.iter().map(|o| (o.out_trade_no.as_str(), o)).collect();
        assert_eq!(
            found.len(),
            3,
            "Alipay's three orders, WeChat Pay's not: {orders:?}"
        );
        let first = found[paid.as_str()];
        assert_eq!(
            (
                first.paid,
                first.refunded,
                first.sale_status.as_deref(),
                first.inside,
                first.near_midnight
            ),
            (4250, 1250, Some("approved"), true, false)
        );
        assert_eq!(
            (
                found[cancelled.as_str()].paid,
                found[cancelled.as_str()].sale_status.as_deref()
            ),
            (0, Some("declined"))
        );
        assert_eq!(found[asking.as_str()].sale_status.as_deref(), Some("pending"));

        // A day that ends a minute from now: near its midnight.
        let ending = store
            .code_orders(
                Provider::Alipay,
                now - Duration::hours(1),
                now + Duration::minutes(1),
                margin,
            )
            .unwrap();
        assert!(ending.iter().all(|o| o.inside && o.near_midnight), "{ending:?}");
        // The next day, in its first minute: only around it, not of it.
        let next = store
            .code_orders(
                Provider::Alipay,
                now + Duration::minutes(1),
                now + Duration::hours(24),
                margin,
            )
            .unwrap();
        assert!(
            next.iter().all(|o| !o.inside && o.near_midnight) && next.len() == 3,
            "{next:?}"
        );
        // A day long before: nothing.
        let before = store
            .code_orders(
                Provider::Alipay,
                now - Duration::days(3),
                now - Duration::days(2),
                margin,
            )
            .unwrap();
        assert!(before.is_empty(), "{before:?}");
    }

    #[test]
    fn a_later_check_of_a_day_replaces_the_earlier_and_the_latest_day_is_read_by_default() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let check = |day: &str, error: Option<&str>| BillCheck {
            day: day.into(),
            provider: "alipay".into(),
            checked_at: "2026-12-07T02:30:00Z".into(),
            error: error.map(str::to_string),
            result: error.is_none().then(|| serde_json::json!({ "matched": 1 })),
        };
        assert_eq!(store.bill_checks(None).unwrap(), vec![]);
        store.save_bill_check(&check("2026-12-05", None)).unwrap();
        store
            .save_bill_check(&check("2026-12-06", Some("no answer")))
            .unwrap();
        store.save_bill_check(&check("2026-12-06", None)).unwrap();
        assert_eq!(store.bill_checks(None).unwrap(), vec![check("2026-12-06", None)]);
        let day = NaiveDate::from_ymd_opt(2026, 12, 5).unwrap();
        assert_eq!(
            store.bill_checks(Some(day)).unwrap(),
            vec![check("2026-12-05", None)]
        );
    }
}
