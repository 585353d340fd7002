//! The owner's web page and its JSON API, served by warp. The page's files live
//! in the repository's `web/` folder and are compiled into the binary, so the
//! hub is one file to install.
//!
//! Routes: `GET /healthz`, `GET /api/v1/transactions`, `GET /api/v1/transactions/{id}`,
//! and the page itself. Errors are `{"error": {"code", "message"}}` with the
//! matching HTTP status.

mod api;
mod assets;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::TcpListener;
use tokio::sync::watch;
use warp::Filter;

use crate::store::Store;

/// What the handlers share: a read connection to the store (WAL lets it read
/// while the coordinator writes) and the facts a slip needs.
#[derive(Clone)]
pub struct WebState {
    pub store: Arc<Mutex<Store>>,
    pub store_name: String,
    pub merchant_id: String,
    pub public_url: String,
    pub broker_connected: watch::Receiver<bool>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot serve the web page on {addr}: {source}; pick another with --http ADDR")]
pub struct BindError {
    pub addr: SocketAddr,
    pub source: std::io::Error,
}

/// Binds `addr` now (so a clash is reported at start) and returns the server to run.
pub async fn bind(
    addr: SocketAddr,
    state: WebState,
    mut shutdown: watch::Receiver<bool>,
) -> Result<(SocketAddr, impl std::future::Future<Output = ()>), BindError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| BindError { addr, source })?;
    let local = listener
        .local_addr()
        .map_err(|source| BindError { addr, source })?;
    let routes = api::routes(state)
        .or(assets::routes())
        .recover(api::recover)
        .with(warp::reply::with::header("x-content-type-options", "nosniff"));
    let server = warp::serve(routes)
        .incoming(listener)
        .graceful(async move {
            let _ = shutdown.wait_for(|stop| *stop).await;
        })
        .run();
    Ok((local, server))
}
