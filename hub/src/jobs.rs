//! The hub's background jobs. Each is a loop that ends when its
//! cancellation token is cancelled; [`crate::hub::App::serve`] runs them on
//! its task tracker and waits for them at a stop.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::acquirer::Acquirer;
use crate::coordinator::Coordinator;
use crate::keys::Keys;
use crate::web::WebState;

/// Reverses, every `every`, what a timeout or a lost link left pending, and
/// finishes a settlement a crash or a silent acquirer left unrecorded (at
/// once after start too: sales wait for it).
pub async fn reversal_sweep<A: Acquirer>(
    coordinator: Arc<Coordinator<A>>,
    every: Duration,
    stop: CancellationToken,
) {
    let mut every = tokio::time::interval(every);
    every.tick().await;
    coordinator.finish_settling().await;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = every.tick() => {}
        }
        if let Err(e) = coordinator.reverse_leftovers().await {
            tracing::error!(error = %e, "reversal sweep failed");
        }
        coordinator.finish_settling().await;
    }
}

/// Settles the open batch once a day at `at` (local `HH:MM`).
pub async fn daily_settlement<A: Acquirer>(
    coordinator: Arc<Coordinator<A>>,
    at: String,
    stop: CancellationToken,
) {
    let mut every = tokio::time::interval(Duration::from_secs(20));
    let mut done_on = None;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = every.tick() => {}
        }
        let now = tallybox_platform::clock::now();
        if now.format("%H:%M").to_string() != at || done_on == Some(now.date_naive()) {
            continue;
        }
        done_on = Some(now.date_naive());
        match coordinator
            .settle(&tallybox_core::protocol::RequestId::new())
            .await
        {
            Ok(s) => tracing::info!(
                batch_no = s.batch_no,
                balanced = s.balanced,
                "daily settlement done"
            ),
            Err(e) => tracing::error!(error = %e, "daily settlement failed; settle from a checkout (D, 3)"),
        }
    }
}

/// Settles the open batch whenever a checkout's batch reaches the most the
/// acquirer's settlement can count (China UnionPay's layout: 999).
pub async fn full_batches<A: Acquirer>(coordinator: Arc<Coordinator<A>>, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = coordinator.batch_filled() => {}
        }
        match coordinator
            .settle(&tallybox_core::protocol::RequestId::new())
            .await
        {
            Ok(s) => tracing::info!(batch_no = s.batch_no, balanced = s.balanced, "full batch settled"),
            Err(e) => {
                tracing::error!(error = %e, "the full batch is not settled yet; the next sale asks again")
            }
        }
    }
}

/// A proven backup after each settlement and once a night at `at` (local
/// `HH:MM`), on a connection of its own so sales go on meanwhile; and a
/// copy on the USB stick mounted at `stick`, after each backup and as soon
/// as a stick appears that lacks the newest (see [`crate::store::stick`]);
/// and a copy in the `offsite` bucket after each backup, or again after a
/// failed one (see [`crate::offsite`]).
pub async fn backups(
    data_dir: std::path::PathBuf,
    mut changes: tokio::sync::broadcast::Receiver<crate::store::Change>,
    at: String,
    budget_bytes: u64,
    stick: std::path::PathBuf,
    offsite: crate::offsite::setup::Current,
    stop: CancellationToken,
) {
    use crate::store::stick;
    let mut every = tokio::time::interval(Duration::from_secs(10));
    let (mut done_on, mut offsite_tried) = (None, false);
    loop {
        let why = tokio::select! {
            _ = stop.cancelled() => return,
            change = changes.recv() => match change {
                Ok(crate::store::Change::Settled { .. }) => Some("after the settlement"),
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                _ => continue,
            },
            _ = every.tick() => {
                let now = tallybox_platform::clock::now();
                if now.format("%H:%M").to_string() == at && done_on != Some(now.date_naive()) {
                    done_on = Some(now.date_naive());
                    Some("of the night")
                } else {
                    None
                }
            }
        };
        let (dir, stick) = (data_dir.clone(), stick.clone());
        let done = tokio::task::spawn_blocking(move || {
            let open = || crate::store::Store::open(&dir);
            let backup = why.map(|_| open().and_then(|s| s.automatic_backup(budget_bytes)));
            let copied = (stick::plugged(&stick) && stick::wants_copy(&dir, &stick))
                .then(|| open().and_then(|s| s.copy_to_stick(&stick, budget_bytes)));
            (backup, copied)
        })
        .await;
        let why = why.unwrap_or("");
        match done {
            Ok((backup, copied)) => {
                match backup {
                    Some(Ok(b)) => {
                        tracing::info!(path = %b.path.display(), bytes = b.bytes, records = b.records, "backup {why} taken and proven")
                    }
                    Some(Err(e)) => tracing::error!(error = %e, "the backup {why} failed"),
                    None => {}
                }
                match copied {
                    Some(Ok(path)) => {
                        tracing::info!(path = %path.display(), "a proven copy of the backups is on the USB stick")
                    }
                    Some(Err(e)) => tracing::error!(error = %e, "the copy on the USB stick failed"),
                    None => {}
                }
            }
            Err(e) => tracing::error!(error = %e, "the backup task failed"),
        }
        // A failed copy is tried again at once after a restart (the owner
        // may have put the settings right), then every ten minutes.
        let retry_after = match offsite_tried {
            true => crate::offsite::RETRY_AFTER,
            false => Duration::ZERO,
        };
        let bucket = offsite.read().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some(bucket) = bucket.filter(|_| crate::offsite::due(&data_dir, retry_after)) {
            offsite_tried = true;
            match crate::offsite::copy(&data_dir, &bucket).await {
                Ok(object) => tracing::info!(%object, "a proven copy of the database is off-site"),
                Err(e) => {
                    tracing::error!(error = %e, bucket = ?bucket, "the off-site copy failed; tried again in ten minutes")
                }
            }
        }
    }
}

/// Saves the message counters seen (the replay marks) every few seconds and
/// once more at a clean stop.
pub async fn replay_marks(keys: Arc<Keys>, stop: CancellationToken) {
    let mut every = tokio::time::interval(Duration::from_secs(5));
    loop {
        let stopping = tokio::select! {
            _ = stop.cancelled() => true,
            _ = every.tick() => false,
        };
        let keys = Arc::clone(&keys);
        match tokio::task::spawn_blocking(move || keys.save_replay_marks()).await {
            Ok(Err(e)) => tracing::error!(error = %e, "cannot save the message counters seen"),
            Err(e) => tracing::error!(error = %e, "the replay-mark task failed"),
            Ok(Ok(_)) => {}
        }
        if stopping {
            return;
        }
    }
}

/// Offers the checkouts' update again every 30 s: a checkout that was off
/// when it came gets it later.
pub async fn update_offers(state: WebState, stop: CancellationToken) {
    let mut every = tokio::time::interval(Duration::from_secs(30));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = every.tick() => {}
        }
        crate::web::update::offer_terminal_update(&state).await;
    }
}

/// After an update, the new version's proof: the web page serving (it is,
/// by now), the database open, and the broker link up for a while. Then the
/// new version stays; without it within a minute, the hub stops (`stop`) and
/// `gave_up` names the version, so that the launcher puts the previous one
/// back.
pub async fn prove_update(
    root: std::path::PathBuf,
    connected: watch::Receiver<bool>,
    stop: CancellationToken,
    gave_up: Arc<Mutex<Option<String>>>,
) {
    use tallybox_platform::update::{Trial, Verdict, HEALTHY_FOR};
    let Some(mut trial) = Trial::begin(&root) else {
        return;
    };
    tracing::warn!(
        version = trial.version(),
        "running a new version on trial: it stays once healthy for {} s",
        HEALTHY_FOR.as_secs()
    );
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
        let healthy = *connected.borrow();
        match trial.step(healthy, "healthy (web page, database and broker link)") {
            Some(Verdict::Confirmed(version)) => {
                tracing::info!(%version, "the update proved healthy: it stays");
                return;
            }
            Some(Verdict::GaveUp(version)) => {
                tracing::error!(%version, "the new version is not healthy within a minute (no broker link); stopping so that the previous one comes back");
                *gave_up.lock().unwrap_or_else(|e| e.into_inner()) = Some(version);
                stop.cancel();
                return;
            }
            None => {}
        }
    }
}
