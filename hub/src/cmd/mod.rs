//! The `tallybox` subcommands, one file each.

pub mod acquirer_sim;
pub mod audit;
pub mod demo;
pub mod doctor;
pub mod drive;
pub mod evidence;
pub mod hw_test;
pub mod reset_owner;
pub mod serve;
pub mod test_cards;
pub mod update;

use tokio_util::sync::CancellationToken;

/// A token cancelled on Ctrl-C or SIGTERM.
pub fn stop_signal() -> CancellationToken {
    let stop = CancellationToken::new();
    let tx = stop.clone();
    tokio::spawn(async move {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term => {}
        }
        tracing::info!("stopping");
        tx.cancel();
    });
    stop
}
