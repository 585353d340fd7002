//! The page's connections, bounded against a client on the LAN that opens
//! many or sends slowly: at most [`PER_ADDRESS`] from one address and
//! [`TOTAL`] in all, and a connection that has not sent a request's whole
//! header within [`HEADERS_WITHIN`] is closed (a kept-alive one that sends
//! nothing more, too). Refusals are logged once every ten seconds, counted.
//! The API's answers go gzipped to a browser that accepts it (`compress.rs`).

use std::net::SocketAddr;
use std::time::Duration;

use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use warp::Filter;

type Request = warp::http::Request<hyper::body::Incoming>;

use crate::guard::{Counted, Doors};

/// A client that has not sent a request's header by then is closed.
pub const HEADERS_WITHIN: Duration = Duration::from_secs(10);
/// Connections from one address, at most (a phone's browser opens six).
pub const PER_ADDRESS: usize = 32;
/// Connections in all, at most.
pub const TOTAL: usize = 256;

/// The address a request came from, in its extensions (warp's own
/// `addr::remote` is filled only by warp's server).
#[derive(Debug, Clone, Copy)]
struct ClientAddr(SocketAddr);

/// The client's address, as `warp::addr::remote` gives it.
pub fn client_addr() -> impl Filter<Extract = (Option<SocketAddr>,), Error = std::convert::Infallible> + Clone
{
    warp::ext::optional::<ClientAddr>().map(|a: Option<ClientAddr>| a.map(|a| a.0))
}

/// Serves `service` (the page's filters, as `warp::service` makes them) on
/// `listener` until `shutdown`, then lets the requests under way finish.
pub async fn serve<S>(listener: TcpListener, service: S, shutdown: CancellationToken)
where
    S: tower_service::Service<Request, Response = warp::reply::Response, Error = std::convert::Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let doors = Doors::new(PER_ADDRESS, TOTAL);
    let mut refused = Counted::new(1);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(HEADERS_WITHIN);
    loop {
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors, most often: wait instead of spinning.
                    tracing::warn!(error = %e, "the page cannot accept; waiting 100 ms");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Some(place) = doors.enter(peer.ip()) else {
            if let Some(since_start) = refused.one(()) {
                tracing::warn!(last = %peer, since_start, "the page refused a connection: too many from one address, or in all (at most every 10 s)");
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let service = service.clone();
        let request = hyper::service::service_fn(move |mut request: Request| {
            request.extensions_mut().insert(ClientAddr(peer));
            let gzip = super::compress::wants_gzip(request.headers());
            let mut service = service.clone();
            let reply = tower_service::Service::call(&mut service, request);
            async move {
                let reply = reply.await?;
                Ok::<_, std::convert::Infallible>(match gzip {
                    true => super::compress::gzipped(reply).await,
                    false => reply,
                })
            }
        });
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), request));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(peer = %peer, error = %e, "page connection ended");
            }
            drop(place);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}
