//! The owner's web page and its JSON API, served by warp. The page's files live
//! in the repository's `web/` folder and are compiled into the binary, so the
//! hub is one file to install.
//!
//! Public: `GET /healthz`, the customer's e-receipt `GET /r/{token}`, the page's
//! static files, and signing in (`POST /api/v1/session`, `POST /api/v1/setup`).
//! Everything else under `/api/v1/` needs a session ([`auth`]); `web/openapi.yaml`
//! lists every route. Errors are `{"error": {"code", "message"}}` (`error.rs`).

mod acquirer_keys;
mod api;
mod assets;
pub mod auth;
pub mod bills;
mod cashiers;
mod checks;
mod compress;
mod error;
mod manage;
mod offsite;
mod pairing;
mod providers;
mod reports;
mod restore;
pub mod serve;
mod undo;
pub mod update;

pub use checks::{keep_watch, Watch};

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;
use tokio::sync::watch;
use warp::{Filter, Rejection};

use crate::shop::SharedShop;
use crate::store::Store;
use auth::Auth;
use error::internal;
use tallybox_core::protocol::{Response, TerminalId};

/// What the handlers share: a connection to the store (WAL lets it read while
/// the coordinator writes), the sessions, and the facts a slip needs.
#[derive(Clone)]
pub struct WebState {
    pub store: Arc<Mutex<Store>>,
    /// Terminal keys and the owner's open pairing.
    pub keys: Arc<crate::keys::Keys>,
    pub auth: Arc<Auth>,
    /// The shop's name, slip lines and PIN, shared with the coordinator.
    pub shop: SharedShop,
    /// The settings file's shop (what the owner's edits are compared with).
    pub shop_file: crate::shop::Shop,
    /// To a terminal over MQTT (reprints).
    pub push: tokio::sync::mpsc::Sender<(TerminalId, Response)>,
    pub currency: tallybox_core::money::Currency,
    pub broker_connected: watch::Receiver<bool>,
    /// Where versions are installed; `None` when not run from an install.
    pub install_root: Option<std::path::PathBuf>,
    /// The public keys update bundles must be signed with.
    pub update_keys: std::path::PathBuf,
    /// Stops the hub (its service starts it again): after an update.
    pub stop: tokio_util::sync::CancellationToken,
    /// The version of the checkouts' update the hub holds, if any.
    pub terminal_update: Arc<Mutex<Option<String>>>,
    /// The port the web page is served on (for checkouts to download from),
    /// once bound.
    pub http_port: Arc<std::sync::atomic::AtomicU16>,
    /// Who the embedded broker let in or refused; `None` with an external broker.
    pub broker_logins: Option<Arc<crate::broker::Logins>>,
    /// Bumped whenever anyone commits to the database ([`watch_changes`]).
    pub changes: watch::Receiver<u64>,
    /// The hub's machine, for the troubleshooting checks.
    pub machine: tallybox_platform::machine::Machine,
    /// The ISO 8583 link's state, when the hub runs one.
    pub acquirer: Option<LinkProbe>,
    /// The ISO 8583 link's master keys, which the owner enters.
    pub acquirer_keys: Option<crate::acquirer::iso8583::client::IsoAcquirer>,
    /// The checkouts running inside the hub (they restart with it).
    pub own_checkouts: Vec<TerminalId>,
    /// The troubleshooting checks' own connection (gathering them never
    /// holds up the page, `/healthz` or receipts on [`WebState::store`]) and
    /// their last integrity answer.
    pub checks: Arc<Mutex<Watch>>,
    /// The voids and refunds the owner ordered, shared with the coordinator.
    pub orders: Arc<crate::orders::UndoOrders>,
    /// The payment-code providers, for their bills.
    pub codes: crate::payments::Codes,
    /// The merchant's credentials the owner enters for them.
    pub code_setup: Arc<crate::payments::setup::Setup>,
    /// The off-site bucket, as the owner enters it.
    pub offsite: Arc<crate::offsite::setup::Setup>,
}

/// Reads the acquirer link's state.
pub type LinkProbe = Arc<dyn Fn() -> crate::acquirer::LinkHealth + Send + Sync>;

/// Runs `f` on the store off the async threads.
pub(crate) async fn read<R: Send + 'static>(
    state: &WebState,
    f: impl FnOnce(&Store) -> Result<R, Rejection> + Send + 'static,
) -> Result<R, Rejection> {
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || f(&store.lock().unwrap_or_else(|e| e.into_inner())))
        .await
        .map_err(internal)?
}

/// Like [`read`], for the page's own few writes (accounts, logins, freezes,
/// settings); sales are written by the coordinator's store thread alone.
pub(crate) async fn write<R: Send + 'static>(
    state: &WebState,
    f: impl FnOnce(&mut Store) -> Result<R, Rejection> + Send + 'static,
) -> Result<R, Rejection> {
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || f(&mut store.lock().unwrap_or_else(|e| e.into_inner())))
        .await
        .map_err(internal)?
}

/// The query string as `T`; a bad or unknown field is a 400 that names it
/// (warp's own query filter says only "Invalid query string").
pub(crate) fn query<T: serde::de::DeserializeOwned + Send + 'static>(
) -> impl Filter<Extract = (T,), Error = Rejection> + Clone {
    warp::query::raw()
        .or(warp::any().map(String::new))
        .unify()
        .and_then(|raw: String| async move {
            serde_urlencoded::from_str::<T>(&raw).map_err(|e| {
                let refused = error::ApiError::new(
                    warp::http::StatusCode::BAD_REQUEST,
                    error::Code::BadFilter,
                    format!("bad query: {e}"),
                );
                warp::reject::custom(refused.with("field", "query"))
            })
        })
}

/// A download's file name from text that came with the request: letters,
/// digits, `-`, `_` and `.` only, so nothing can break out of the header.
pub(crate) fn download_name(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .take(80)
        .collect()
}

#[derive(Debug, thiserror::Error)]
#[error("cannot serve the web page on {addr}: {source}; pick another with --http ADDR")]
pub struct BindError {
    pub addr: SocketAddr,
    pub source: std::io::Error,
}

/// No inline script or style, nothing from elsewhere, never inside a frame.
const CSP: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; \
                   connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Bumped at each commit: at once for the store writer's (`writer`, its
/// typed changes), within a second for any other connection's (the page's
/// own edits, another `tallybox` process), seen with SQLite's
/// `data_version`. The receiver goes in [`WebState::changes`].
pub fn watch_changes(
    db: std::path::PathBuf,
    mut writer: tokio::sync::broadcast::Receiver<crate::store::Change>,
) -> watch::Receiver<u64> {
    let (tx, rx) = watch::channel(0);
    reports::watch_changes(db, tx.clone());
    tokio::spawn(async move {
        use tokio::sync::broadcast::error::RecvError;
        loop {
            match writer.recv().await {
                Ok(_) | Err(RecvError::Lagged(_)) => tx.send_modify(|v| *v += 1),
                Err(RecvError::Closed) => return,
            }
        }
    });
    rx
}

/// Binds `addr` now (so a clash is reported at start) and returns the server to run.
pub async fn bind(
    addr: SocketAddr,
    state: WebState,
    shutdown: tokio_util::sync::CancellationToken,
) -> Result<(SocketAddr, impl std::future::Future<Output = ()>), BindError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| BindError { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| BindError { addr, source })?;
    // Each group boxed: one deep chain of filters made a future too large
    // for a worker thread's stack in unoptimized builds.
    let routes = auth::routes(state.clone())
        .boxed()
        .or(api::routes(state.clone()).boxed())
        .or(reports::routes(state.clone()).boxed())
        .or(manage::routes(state.clone()).boxed())
        .or(cashiers::routes(state.clone()).boxed())
        .or(pairing::routes(state.clone()).boxed())
        .or(update::routes(state.clone()).boxed())
        .or(acquirer_keys::routes(state.clone()).boxed())
        .or(undo::routes(state.clone()).boxed())
        .or(bills::routes(state.clone()).boxed())
        .or(providers::routes(state.clone()).boxed())
        .or(offsite::routes(state.clone()).boxed())
        .or(restore::routes(state.clone()).boxed())
        .or(checks::routes(state).boxed())
        .or(assets::routes().boxed())
        .recover(error::recover)
        .with(warp::reply::with::header("x-content-type-options", "nosniff"))
        .with(warp::reply::with::header("x-frame-options", "DENY"))
        .with(warp::reply::with::header("referrer-policy", "no-referrer"))
        .with(warp::reply::with::header("content-security-policy", CSP));
    Ok((local, serve::serve(listener, warp::service(routes), shutdown)))
}

#[cfg(test)]
mod tests {
    use super::download_name;

    #[test]
    fn a_download_name_keeps_nothing_that_could_break_its_header() {
        assert_eq!(
            download_name("tallybox-2026-11-25-2026-11-25.csv"),
            "tallybox-2026-11-25-2026-11-25.csv"
        );
        assert_eq!(
            download_name("a\"; b\r\nSet-Cookie: x=1 12:00.csv"),
            "abSet-Cookiex11200.csv"
        );
    }
}
