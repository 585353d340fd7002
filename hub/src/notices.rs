//! What the hub's own checkout tells the owner on its screen: the one-time
//! setup code while no owner password is set (printed once too), and the
//! latest fraud rule hit of the last half hour, so an alert reaches the owner
//! at the counter as well as on the web page.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tallybox_terminal::agent::AgentHandle;
use tallybox_terminal::session::{Input, SetupNotice};
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

use crate::store::{Change, Store};

/// How long a fraud alert stays on the checkout's idle screen.
const ALERT_FOR: chrono::Duration = chrono::Duration::minutes(30);

/// Shows the setup code while there is one and goes back to the usual idle
/// screen once the owner has used it.
pub async fn setup_code(mut codes: watch::Receiver<Option<String>>, checkout: AgentHandle, page: String) {
    loop {
        let code = codes.borrow_and_update().clone();
        if let Some(code) = code.clone() {
            tracing::info!("the hub's own checkout shows and prints the setup code");
            checkout
                .send(Input::SetupCode(Some(SetupNotice {
                    code,
                    page: page.clone(),
                })))
                .await;
        } else {
            checkout.send(Input::SetupCode(None)).await;
        }
        if code.is_none() || codes.changed().await.is_err() {
            return;
        }
    }
}

/// A rule's name as it fits the OLED after a terminal id.
fn short(rule: &str) -> &str {
    match rule {
        "card_testing" => "card testing",
        "same_card" => "same card",
        "large_amount" => "large amount",
        "manual_entry_burst" => "keyed cards",
        "outside_hours" => "after hours",
        "refund_other_card" => "refund card",
        "refunds_over_sales" => "refunds>sales",
        other => other,
    }
}

/// The alert line for the latest hit since `since` (local time), if any.
fn latest_alert(store: &Store, since: &str) -> Option<String> {
    match store.fraud_hits(since, "9999") {
        Ok(hits) => hits
            .last()
            .map(|h| format!("{} {}", h.terminal_id, short(&h.rule))),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read fraud hits for the checkout's alert");
            None
        }
    }
}

/// The checkout's alert line, when it changed: read at start, at each fraud
/// hit the store writer commits, and once a minute (an alert grows old).
pub async fn fraud_alerts(
    store: Arc<Mutex<Store>>,
    mut changes: broadcast::Receiver<Change>,
    checkout: AgentHandle,
    stop: CancellationToken,
) {
    use broadcast::error::RecvError;
    let mut shown: Option<String> = None;
    let mut every = tokio::time::interval(Duration::from_secs(60));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = every.tick() => {}
            change = changes.recv() => match change {
                Ok(Change::FraudHit { .. }) | Err(RecvError::Lagged(_)) => {}
                Ok(_) => continue,
                Err(RecvError::Closed) => return,
            },
        }
        let since = (tallybox_platform::clock::now() - ALERT_FOR)
            .format("%Y-%m-%d %H:%M:%S")
            .to_string();
        let store = Arc::clone(&store);
        let Ok(alert) = tokio::task::spawn_blocking(move || {
            latest_alert(&store.lock().unwrap_or_else(|e| e.into_inner()), &since)
        })
        .await
        else {
            continue;
        };
        if alert != shown {
            if let Some(a) = &alert {
                tracing::warn!(alert = %a, "fraud alert on the hub's own checkout");
            }
            checkout.send(Input::Alert(alert.clone())).await;
            shown = alert;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_alert_fits_the_oled_after_a_terminal_id() {
        for rule in [
            "card_testing",
            "same_card",
            "large_amount",
            "manual_entry_burst",
            "outside_hours",
            "refund_other_card",
            crate::coordinator::fraud::REFUNDS_OVER_SALES,
            crate::coordinator::fraud::CARD_TESTING,
        ] {
            // 21 columns on the 128-pixel OLED; "T99 " takes 4.
            assert!(short(rule).len() <= 17, "{rule}");
        }
    }
}
