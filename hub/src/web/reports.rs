//! What the owner reads: today's totals, day / week / month reports, the
//! CSV export, and the live feed (server-sent events) that tells an open page
//! something changed so it can fetch what it shows.

use std::time::Duration;

use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::watch;
use tokio_stream::wrappers::WatchStream;
use tokio_stream::StreamExt;
use warp::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use warp::{Filter, Rejection, Reply};

use super::auth::{session, Session};
use super::error::{bad_filter, bad_request, internal, ApiError, Code};
use super::{read, WebState};
use crate::evidence::transactions_csv;
use crate::store::accounts::Role;
use crate::store::query::{Filter as TxnFilter, ListError};
use crate::store::report::Period;

/// The most rows one CSV export carries (a busy shop's quarter).
const MAX_EXPORT: usize = 200_000;

/// The longest custom range a report covers, in days.
const LONGEST_RANGE: i64 = 366;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportQuery {
    period: Option<String>,
    /// Any day of a day, week or month.
    date: Option<String>,
    /// A custom range's first and last day (`period=range`).
    from: Option<String>,
    to: Option<String>,
}

fn date(text: Option<&str>) -> Result<NaiveDate, Rejection> {
    match text {
        None => Ok(tallybox_platform::clock::now().date_naive()),
        Some(t) => NaiveDate::parse_from_str(t, "%Y-%m-%d")
            .map_err(|_| bad_request(Code::BadDate, "date: use YYYY-MM-DD")),
    }
}

/// The days a report covers (`to` excluded) and the period before it that
/// it is compared with: the day, week or month before, or as many days
/// just before a custom range.
#[derive(Debug, PartialEq)]
struct Span {
    from: NaiveDate,
    to: NaiveDate,
    before: (NaiveDate, NaiveDate),
    /// A day is shown by hour, anything longer by day.
    hourly: bool,
}

/// A range the report cannot take, said with its longest.
fn bad_range(message: impl Into<String>) -> Rejection {
    let refused = ApiError::new(warp::http::StatusCode::BAD_REQUEST, Code::BadRange, message);
    warp::reject::custom(refused.with("max", LONGEST_RANGE))
}

fn span(q: &ReportQuery) -> Result<Span, Rejection> {
    let period = q.period.as_deref().unwrap_or("day");
    if period == "range" {
        let (Some(from), Some(last)) = (q.from.as_deref(), q.to.as_deref()) else {
            return Err(bad_range("a range needs from and to (YYYY-MM-DD)"));
        };
        let (from, last) = (date(Some(from))?, date(Some(last))?);
        let days = (last - from).num_days() + 1;
        if !(1..=LONGEST_RANGE).contains(&days) {
            return Err(bad_range(format!(
                "a range runs from its first day to its last, at most {LONGEST_RANGE} days"
            )));
        }
        let to = last + chrono::Duration::days(1);
        let before = (from - chrono::Duration::days(days), from);
        return Ok(Span {
            from,
            to,
            before,
            hourly: false,
        });
    }
    let period = Period::parse(period)
        .ok_or_else(|| bad_request(Code::BadPeriod, "period: use day, week, month or range"))?;
    let (from, to) = period.range(date(q.date.as_deref())?);
    let before = period.range(from - chrono::Duration::days(1));
    Ok(Span {
        from,
        to,
        before,
        hourly: period == Period::Day,
    })
}

/// Local midnight of `day` in UTC, as settlements record their time.
fn utc_of(day: NaiveDate) -> String {
    let midnight = day.and_hms_opt(0, 0, 0).unwrap_or_default();
    tallybox_platform::clock::to_utc(midnight)
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string()
}

async fn report(_: Session, q: ReportQuery, state: WebState) -> Result<impl Reply, Rejection> {
    let Span {
        from,
        to,
        before,
        hourly,
    } = span(&q)?;
    let (report, previous, settlements, counts) = read(&state, move |s| {
        let report = s.report(from, to, hourly).map_err(internal)?;
        let previous = s.totals(before.0, before.1).map_err(internal)?;
        let settlements = s
            .settlements_between(&utc_of(from), &utc_of(to))
            .map_err(internal)?;
        let local = |d: chrono::NaiveDate| d.format("%Y-%m-%d 00:00:00").to_string();
        let counts = s
            .drawer_counts_between(&local(from), &local(to))
            .map_err(internal)?;
        Ok((report, previous, settlements, counts))
    })
    .await?;
    let mut body = serde_json::to_value(&report).map_err(internal)?;
    body["period"] = json!(q.period.as_deref().unwrap_or("day"));
    body["currency"] = json!(state.currency);
    body["minor_digits"] = json!(state.currency.exponent());
    body["previous"] = json!({"from": before.0, "to": before.1, "totals": previous});
    body["settlements"] = json!(settlements);
    body["drawer_counts"] = json!(counts);
    Ok(warp::reply::json(&body))
}

async fn today(_: Session, state: WebState) -> Result<impl Reply, Rejection> {
    let now = tallybox_platform::clock::now();
    let day = now.date_naive();
    let (from, to) = Period::Day.range(day);
    // The same weekday a week ago, to this hour of the day.
    let (week_ago, week_ago_end) = Period::Day.range(day - chrono::Duration::days(7));
    let (report, then, terminals, alerts) = read(&state, move |s| {
        Ok((
            s.report(from, to, true).map_err(internal)?,
            s.report(week_ago, week_ago_end, true).map_err(internal)?,
            s.terminals().map_err(internal)?,
            s.fraud_hits(&format!("{from} 00:00:00"), &format!("{from} 23:59:59"))
                .map_err(internal)?,
        ))
    })
    .await?;
    let hour = now.format("%H").to_string();
    let (mut then_net, mut then_sales) = (0i64, 0u32);
    for b in then.buckets.iter().filter(|b| b.key <= hour) {
        then_net += b.totals.net_minor;
        then_sales += b.totals.sales;
    }
    Ok(warp::reply::json(&json!({
        "date": report.from,
        "currency": state.currency,
        "minor_digits": state.currency.exponent(),
        "totals": report.totals,
        "buckets": report.buckets,
        "by_terminal": report.by_terminal,
        "by_brand": report.by_brand,
        "by_tender": report.by_tender,
        "terminals": terminals,
        "alerts": alerts,
        "week_ago": {"date": then.from, "until_hour": hour, "net_minor": then_net, "sales": then_sales},
    })))
}

/// The filtered transactions as a CSV Excel opens right: UTF-8 with a byte
/// order mark (or Chinese turns to mojibake), CRLF line ends, oldest first.
async fn export(
    _: Session,
    mut filter: TxnFilter,
    state: WebState,
) -> Result<warp::reply::Response, Rejection> {
    filter.currency = state.currency;
    let name = super::download_name(&format!(
        "tallybox-{}-{}.csv",
        filter.from.as_deref().unwrap_or("start"),
        filter.to.as_deref().unwrap_or("now")
    ));
    let rows = read(&state, move |s| {
        s.all(filter, MAX_EXPORT).map_err(|e| match e {
            ListError::Filter(f) => bad_filter(&f),
            ListError::Store(e) => internal(e),
        })
    })
    .await?;
    let out = transactions_csv(&rows);
    let reply = warp::reply::with_header(out, CONTENT_TYPE, "text/csv; charset=utf-8");
    let reply = warp::reply::with_header(
        reply,
        CONTENT_DISPOSITION,
        format!("attachment; filename=\"{name}\""),
    );
    Ok(reply.into_response())
}

/// `change` whenever the store changed (at most four a second), and a
/// comment every 15 s so proxies and phones keep the connection.
async fn events(_: Session, state: WebState) -> Result<impl Reply, Rejection> {
    // Changes from now on: the page fetches what it shows as it opens, so
    // the version at connection time would only make it fetch it twice.
    let mut now = state.changes.clone();
    now.borrow_and_update();
    let changes = WatchStream::from_changes(now).map(|version| {
        Ok::<_, std::convert::Infallible>(
            warp::sse::Event::default()
                .event("change")
                .data(version.to_string()),
        )
    });
    let throttled = changes.throttle(Duration::from_millis(250));
    Ok(warp::sse::reply(
        warp::sse::keep_alive()
            .interval(Duration::from_secs(15))
            .stream(throttled),
    ))
}

/// Watches the database file for commits by other connections (the page's
/// own edits, `tallybox freeze`; the writer's also show, and are told at once
/// besides) with SQLite's `data_version`, once a second.
pub fn watch_changes(db: std::path::PathBuf, tx: watch::Sender<u64>) {
    std::thread::Builder::new()
        .name("web-changes".into())
        .spawn(move || {
            let conn = match rusqlite::Connection::open_with_flags(
                &db,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
            ) {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(error = %e, "cannot watch the database; the page will not update live");
                    return;
                }
            };
            let mut last = None;
            while !tx.is_closed() {
                let now: Option<i64> = conn.query_row("PRAGMA data_version", [], |r| r.get(0)).ok();
                if now.is_some() && last.is_some() && now != last {
                    tx.send_modify(|v| *v += 1);
                }
                last = now;
                std::thread::sleep(Duration::from_secs(1));
            }
        })
        .map(|_| ())
        .unwrap_or_else(|e| tracing::error!(error = %e, "cannot start the change watcher"));
}

pub fn routes(state: WebState) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    let with_state = {
        let state = state.clone();
        warp::any().map(move || state.clone())
    };
    let signed_in = session(state, Role::Manager);
    let today = warp::path!("api" / "v1" / "today")
        .and(warp::get())
        .and(signed_in.clone())
        .and(with_state.clone())
        .and_then(today);
    let report = warp::path!("api" / "v1" / "reports")
        .and(warp::get())
        .and(signed_in.clone())
        .and(super::query::<ReportQuery>())
        .and(with_state.clone())
        .and_then(report);
    let export = warp::path!("api" / "v1" / "transactions.csv")
        .and(warp::get())
        .and(signed_in.clone())
        .and(super::api::filter_query())
        .and(with_state.clone())
        .and_then(export);
    let events = warp::path!("api" / "v1" / "events")
        .and(warp::get())
        .and(signed_in)
        .and(with_state)
        .and_then(events);
    today.or(report).or(export).or(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    fn asked(
        period: &str,
        date: Option<&str>,
        from: Option<&str>,
        to: Option<&str>,
    ) -> Result<Span, Rejection> {
        span(&ReportQuery {
            period: Some(period.into()),
            date: date.map(Into::into),
            from: from.map(Into::into),
            to: to.map(Into::into),
        })
    }

    #[test]
    fn each_period_is_compared_with_the_one_before_it() {
        let d = asked("day", Some("2026-03-01"), None, None).unwrap();
        assert_eq!(
            (d.from, d.to, d.before, d.hourly),
            (
                day("2026-03-01"),
                day("2026-03-02"),
                (day("2026-02-28"), day("2026-03-01")),
                true
            )
        );
        let w = asked("week", Some("2026-12-03"), None, None).unwrap();
        assert_eq!(
            (w.from, w.before),
            (day("2026-11-30"), (day("2026-11-23"), day("2026-11-30")))
        );
        // March against the whole of February, January against December.
        let m = asked("month", Some("2026-03-15"), None, None).unwrap();
        assert_eq!(m.before, (day("2026-02-01"), day("2026-03-01")));
        let j = asked("month", Some("2027-01-31"), None, None).unwrap();
        assert_eq!(j.before, (day("2026-12-01"), day("2027-01-01")));
        // Ten days against the ten days just before; the last day included.
        let r = asked("range", None, Some("2026-11-11"), Some("2026-11-20")).unwrap();
        assert_eq!(
            (r.from, r.to, r.hourly),
            (day("2026-11-11"), day("2026-11-21"), false)
        );
        assert_eq!(r.before, (day("2026-11-01"), day("2026-11-11")));
        let one = asked("range", None, Some("2026-11-11"), Some("2026-11-11")).unwrap();
        assert_eq!(one.before, (day("2026-11-10"), day("2026-11-11")));
    }

    #[test]
    fn a_range_backwards_too_long_or_half_given_is_refused() {
        assert!(asked("range", None, Some("2026-11-20"), Some("2026-11-11")).is_err());
        // A leap year is the longest: 366 days, its last day included.
        assert!(asked("range", None, Some("2024-01-01"), Some("2024-12-31")).is_ok());
        assert!(asked("range", None, Some("2024-01-01"), Some("2025-01-01")).is_err());
        assert!(asked("range", None, Some("2026-11-11"), None).is_err());
        assert!(asked("range", None, Some("2026-11-11"), Some("11/20/2026")).is_err());
        assert!(asked("year", Some("2026-11-11"), None, None).is_err());
    }
}
