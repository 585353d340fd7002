//! Checks a day's code payments against each provider's bill (对账): by
//! hand from the page, and every morning for the day before, once the
//! providers have written it (Alipay's and WeChat Pay's bills of a day are
//! ready the next morning, Beijing time). What each check found is kept;
//! a difference is shown, never acted on.

use std::sync::{Arc, Mutex};

use chrono::{Duration, NaiveDate, TimeZone, Utc};

use crate::payments::bill::compare;
use crate::payments::{beijing, Codes};
use crate::store::bills::BillCheck;
use crate::store::Store;

/// When, Beijing time, the morning's check of the day before runs.
pub const MORNING_CHECK: (u32, u32) = (10, 30);

/// Checks `day` (Beijing time) with every provider the shop takes codes
/// of, keeps and returns what each check found.
pub async fn check_day(codes: &Codes, store: &Arc<Mutex<Store>>, day: NaiveDate) -> Vec<BillCheck> {
    let from = beijing()
        .from_local_datetime(&day.and_hms_opt(0, 0, 0).expect("midnight"))
        .single()
        .expect("a fixed offset has one midnight")
        .with_timezone(&Utc);
    let to = from + Duration::days(1);
    // A buyer confirming in the app may be paid minutes after the sale began.
    let margin = Duration::from_std(codes.wait).unwrap_or_default() + Duration::minutes(2);
    let mut checks = Vec::new();
    for (provider, client) in codes.each() {
        let bill = client.bill(day).await;
        let store = Arc::clone(store);
        let check = tokio::task::spawn_blocking(move || {
            let store = store.lock().unwrap_or_else(|e| e.into_inner());
            let (error, result) = match (bill, store.code_orders(provider, from, to, margin)) {
                (Err(why), _) => (Some(why), None),
                (_, Err(e)) => (Some(format!("the hub's records: {e}")), None),
                (Ok(Some(lines)), Ok(orders)) => (None, Some(compare(&orders, &lines))),
                // No bill, and nothing to find in one.
                (Ok(None), Ok(orders)) if orders.iter().all(|o| !o.inside) => (None, Some(compare(&[], &[]))),
                (Ok(None), Ok(_)) => (
                    Some(format!(
                        "{} has no bill of {day} yet: a day's bill is written the next morning",
                        provider.as_str()
                    )),
                    None,
                ),
            };
            if let Some(found) = &result {
                if !found.differences.is_empty() {
                    tracing::warn!(provider = provider.as_str(), %day, differences = found.differences.len(),
                        "the provider's bill differs from the hub's records");
                }
            }
            let check = BillCheck {
                day: day.format("%Y-%m-%d").to_string(),
                provider: provider.as_str().to_string(),
                checked_at: Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
                error,
                result: result.map(|r| serde_json::to_value(r).expect("a comparison is JSON")),
            };
            if let Err(e) = store.save_bill_check(&check) {
                tracing::error!(error = %e, "could not keep the bill's check");
            }
            check
        })
        .await;
        match check {
            Ok(check) => checks.push(check),
            Err(e) => tracing::error!(error = %e, "the bill's check stopped"),
        }
    }
    checks
}

/// Checks the day before each morning from [`MORNING_CHECK`] on; a check
/// that found no bill (no internet, the bill not ready) is tried again
/// every [`RETRY`].
pub async fn every_morning(
    codes: Codes,
    store: Arc<Mutex<Store>>,
    stop: tokio_util::sync::CancellationToken,
) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
    let mut tried: Option<std::time::Instant> = None;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = every.tick() => {}
        }
        let now = Utc::now().with_timezone(&beijing());
        let (hour, minute) = MORNING_CHECK;
        let due = now.time() >= chrono::NaiveTime::from_hms_opt(hour, minute, 0).expect("a time");
        let waited = tried.is_none_or(|at| at.elapsed() >= RETRY);
        // The owner may set a provider up on the page at any time.
        if !due || !waited || codes.is_empty() {
            continue;
        }
        let yesterday = now.date_naive() - Duration::days(1);
        let store2 = Arc::clone(&store);
        let done = tokio::task::spawn_blocking(move || {
            let checks = store2
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .bill_checks(Some(yesterday));
            checks.map(|c| !c.is_empty() && c.iter().all(|c| c.error.is_none()))
        })
        .await;
        if matches!(done, Ok(Ok(false))) {
            tried = Some(std::time::Instant::now());
            check_day(&codes, &store, yesterday).await;
        }
    }
}

/// How long after a check that found no bill the next try waits.
pub const RETRY: std::time::Duration = std::time::Duration::from_secs(30 * 60);
