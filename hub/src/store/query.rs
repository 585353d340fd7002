//! Searching receipts: the filters the owner's phone sends, checked, turned
//! into one indexed SQL query, newest first by local time, and paged by keyset
//! (`before` = the last id seen; the page continues below that row's time and
//! id) so page 100 costs what page 1 costs.

use chrono::{NaiveDate, NaiveDateTime};
use rusqlite::types::Value;
use serde::{Deserialize, Serialize};
use tallybox_core::money::Currency;
use tallybox_core::protocol::{Tender, TerminalId, TxnKind, TxnStatus};

use super::{Store, StoreError, Txn};

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 200;

/// The query string as it arrives; every field optional.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filter {
    /// Local date `YYYY-MM-DD` or date-time `YYYY-MM-DD HH:MM:SS`, inclusive.
    pub from: Option<String>,
    /// Same forms; a bare date includes the whole day.
    pub to: Option<String>,
    pub terminal: Option<String>,
    pub status: Option<String>,
    pub last4: Option<String>,
    /// Exact amount as written on the slip, e.g. `12.50`.
    pub amount: Option<String>,
    /// The currency `amount` is written in: the store's (not part of the query).
    #[serde(skip)]
    pub currency: Currency,
    /// The issuer's approval code (6 characters).
    pub auth_code: Option<String>,
    /// The acquirer's reference number (12 characters).
    pub reference_no: Option<String>,
    /// sale, void, refund or balance.
    pub kind: Option<String>,
    /// card or cash.
    pub tender: Option<String>,
    /// The number of the cashier signed on.
    pub cashier: Option<String>,
    /// Keyset cursor: only transactions with a smaller id.
    pub before: Option<i64>,
    pub limit: Option<u32>,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FilterError {
    pub field: &'static str,
    pub message: String,
}

#[derive(Debug, Serialize)]
pub struct Page {
    pub items: Vec<Txn>,
    /// Pass as `before` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_before: Option<i64>,
}

fn bad(field: &'static str, message: &str) -> FilterError {
    FilterError {
        field,
        message: message.to_string(),
    }
}

fn local_time(field: &'static str, text: &str, end_of_day: bool) -> Result<String, FilterError> {
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        let day = if end_of_day {
            date.succ_opt().unwrap_or(date)
        } else {
            date
        };
        return Ok(day.format("%Y-%m-%d 00:00:00").to_string());
    }
    for form in ["%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(text, form) {
            return Ok(t.format("%Y-%m-%d %H:%M:%S").to_string());
        }
    }
    Err(bad(field, "use a date YYYY-MM-DD or a time YYYY-MM-DD HH:MM:SS"))
}

impl Filter {
    /// The SQL `WHERE … ORDER BY … LIMIT` and its parameters.
    /// Whether the filter is one the store can run (its first bad field).
    pub fn check(&self) -> Result<(), FilterError> {
        self.to_sql().map(|_| ())
    }

    fn to_sql(&self) -> Result<(String, Vec<Value>, u32), FilterError> {
        let mut clauses: Vec<&str> = Vec::new();
        let mut params: Vec<Value> = Vec::new();
        if let Some(from) = &self.from {
            clauses.push("local_time >= ?");
            params.push(Value::Text(local_time("from", from, false)?));
        }
        if let Some(to) = &self.to {
            let bare_date = NaiveDate::parse_from_str(to, "%Y-%m-%d").is_ok();
            clauses.push(if bare_date {
                "local_time < ?"
            } else {
                "local_time <= ?"
            });
            params.push(Value::Text(local_time("to", to, true)?));
        }
        if let Some(terminal) = &self.terminal {
            let t = TerminalId::parse(terminal).map_err(|m| bad("terminal", &m))?;
            clauses.push("terminal_id = ?");
            params.push(Value::Text(t.as_str().to_string()));
        }
        if let Some(status) = &self.status {
            let s = TxnStatus::parse(status)
                .ok_or_else(|| bad("status", "use pending, approved, declined, failed or reversed"))?;
            clauses.push("status = ?");
            params.push(Value::Text(s.as_str().to_string()));
        }
        if let Some(last4) = &self.last4 {
            if last4.len() != 4 || !last4.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad("last4", "give the card's last 4 digits"));
            }
            clauses.push("last4 = ?");
            params.push(Value::Text(last4.clone()));
        }
        if let Some(amount) = &self.amount {
            let a = self
                .currency
                .parse(amount)
                .map_err(|e| bad("amount", &e.to_string()))?;
            clauses.push("amount = ?");
            params.push(Value::Integer(a.minor() as i64));
        }
        if let Some(code) = &self.auth_code {
            if code.is_empty() || code.len() > 6 || !code.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(bad("auth_code", "give the 6-character auth code from the slip"));
            }
            // The partial index holds only rows with a code: say so to the planner.
            clauses.push("auth_code = ? AND auth_code <> ''");
            params.push(Value::Text(code.to_ascii_uppercase()));
        }
        if let Some(reference) = &self.reference_no {
            if reference.is_empty()
                || reference.len() > 12
                || !reference.bytes().all(|b| b.is_ascii_alphanumeric())
            {
                return Err(bad(
                    "reference_no",
                    "give the 12-character reference number from the slip",
                ));
            }
            clauses.push("reference_no = ? AND reference_no <> ''");
            params.push(Value::Text(reference.to_ascii_uppercase()));
        }
        if let Some(kind) = &self.kind {
            let k = super::parse_enum::<TxnKind>(kind)
                .ok_or_else(|| bad("kind", "use sale, void, refund or balance"))?;
            clauses.push("kind = ?");
            params.push(Value::Text(super::enum_text(&k)));
        }
        if let Some(tender) = &self.tender {
            let t = Tender::parse(tender).ok_or_else(|| bad("tender", "use card, cash or code"))?;
            clauses.push("tender = ?");
            params.push(Value::Text(t.as_str().to_string()));
        }
        if let Some(cashier) = &self.cashier {
            if !(1..=4).contains(&cashier.len()) || !cashier.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad("cashier", "give the cashier's number, 1 to 4 digits"));
            }
            clauses.push("cashier = ?");
            params.push(Value::Text(cashier.clone()));
        }
        if let Some(before) = self.before {
            clauses.push("(local_time, id) < (SELECT local_time, id FROM transactions WHERE id = ?)");
            params.push(Value::Integer(before));
        }
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(bad("limit", &format!("use 1 to {MAX_LIMIT}")));
        }
        let mut sql = String::new();
        if !clauses.is_empty() {
            sql = format!("WHERE {}", clauses.join(" AND "));
        }
        // One more than asked tells whether another page exists.
        sql.push_str(&format!(" ORDER BY local_time DESC, id DESC LIMIT {}", limit + 1));
        Ok((sql, params, limit))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ListError {
    #[error(transparent)]
    Filter(#[from] FilterError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Store {
    pub fn list(&self, filter: &Filter) -> Result<Page, ListError> {
        let (sql, params, limit) = filter.to_sql()?;
        let mut items = self.many(&sql, rusqlite::params_from_iter(params))?;
        let next_before = if items.len() > limit as usize {
            items.truncate(limit as usize);
            items.last().map(|t| t.id)
        } else {
            None
        };
        Ok(Page { items, next_before })
    }

    /// Every transaction `filter` matches (its `before` and `limit` are
    /// ignored), newest first, at most `max`.
    pub fn all(&self, mut filter: Filter, max: usize) -> Result<Vec<Txn>, ListError> {
        let mut out = Vec::new();
        filter.before = None;
        filter.limit = Some(MAX_LIMIT);
        loop {
            let page = self.list(&filter)?;
            out.extend(page.items);
            match page.next_before {
                Some(b) if out.len() < max => filter.before = Some(b),
                _ => {
                    out.truncate(max);
                    return Ok(out);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_filters_name_their_field() {
        let cases = [
            (
                Filter {
                    from: Some("yesterday".into()),
                    ..Default::default()
                },
                "from",
            ),
            (
                Filter {
                    status: Some("paid".into()),
                    ..Default::default()
                },
                "status",
            ),
            (
                Filter {
                    last4: Some("12a4".into()),
                    ..Default::default()
                },
                "last4",
            ),
            (
                Filter {
                    amount: Some("1.234".into()),
                    ..Default::default()
                },
                "amount",
            ),
            (
                Filter {
                    limit: Some(0),
                    ..Default::default()
                },
                "limit",
            ),
            (
                Filter {
                    terminal: Some("T 1".into()),
                    ..Default::default()
                },
                "terminal",
            ),
        ];
        for (filter, field) in cases {
            assert_eq!(filter.to_sql().unwrap_err().field, field);
        }
    }

    #[test]
    fn a_bare_to_date_covers_the_whole_day() {
        let f = Filter {
            to: Some("2026-11-25".into()),
            ..Default::default()
        };
        let (sql, params, _) = f.to_sql().unwrap();
        assert!(sql.contains("local_time < ?"));
        assert_eq!(params, vec![Value::Text("2026-11-26 00:00:00".into())]);
    }
}
