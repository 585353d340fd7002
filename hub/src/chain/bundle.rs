//! Update bundles head office offers every shop (documents `hub_update` and
//! `terminal_update`): the signed document names the bundle's version,
//! size, SHA-256 and where head office serves it; the hub downloads it over
//! HTTP to its data disk, checking size and SHA-256 as it streams, then
//! takes it as an upload from the owner's page is taken (the vendor's
//! signature checked; the hub's installed with a backup first, a
//! checkout's offered to the checkouts). The transport need not be secret:
//! the document is signed by head office and the bundle by the vendor.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

/// The largest bundle fetched (as the page takes).
const MAX_BUNDLE: u64 = crate::web::update::MAX_BUNDLE;
/// Silence this long in the middle of a download gives it up.
const STALLED: Duration = Duration::from_secs(60);

/// A document offering a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Offer {
    pub version: String,
    pub size: u64,
    /// Hex.
    pub sha256: String,
    /// `http://host[:port]/path`.
    pub url: String,
}

/// Why a bundle was not fetched: worth trying again later (the network),
/// or never (head office's file is not what its document says).
#[derive(Debug)]
pub enum Fetch {
    Again(String),
    Never(String),
}

/// Downloads `offer` into a new file under `dir`.
pub async fn fetch(offer: &Offer, dir: &Path) -> Result<tempfile::NamedTempFile, Fetch> {
    if offer.size > MAX_BUNDLE {
        return Err(Fetch::Never(format!(
            "the bundle is larger than {} MiB",
            MAX_BUNDLE >> 20
        )));
    }
    let rest = offer
        .url
        .strip_prefix("http://")
        .ok_or_else(|| Fetch::Never(format!("{}: a bundle is fetched over http://", offer.url)))?;
    let (authority, path) = match rest.split_once('/') {
        Some((authority, path)) => (authority, format!("/{path}")),
        None => (rest, "/".to_string()),
    };
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => (
            host,
            port.parse::<u16>()
                .map_err(|_| Fetch::Never(format!("{}: {port} is not a port", offer.url)))?,
        ),
        None => (authority, 80),
    };
    let again = |what: &str, e: &dyn std::fmt::Display| Fetch::Again(format!("{what} {}: {e}", offer.url));
    let tcp = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::net::TcpStream::connect((host, port)),
    )
    .await
    .map_err(|e| again("cannot reach", &e))?
    .map_err(|e| again("cannot reach", &e))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .map_err(|e| again("no HTTP from", &e))?;
    tokio::spawn(connection);
    let request = hyper::Request::get(path)
        .header(hyper::header::HOST, authority)
        .body(Empty::<Bytes>::new())
        .map_err(|e| Fetch::Never(e.to_string()))?;
    let answer = tokio::time::timeout(STALLED, sender.send_request(request))
        .await
        .map_err(|e| again("no answer from", &e))?
        .map_err(|e| again("no answer from", &e))?;
    if answer.status() != hyper::StatusCode::OK {
        return Err(again("head office answered", &answer.status()));
    }
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| again("cannot keep", &e))?;
    let file = tempfile::Builder::new()
        .prefix("chain-")
        .suffix(".update")
        .tempfile_in(dir)
        .map_err(|e| again("cannot keep", &e))?;
    let mut out = tokio::fs::File::from_std(file.reopen().map_err(|e| again("cannot keep", &e))?);
    let (mut body, mut hash, mut got) = (answer.into_body(), Sha256::new(), 0u64);
    loop {
        let frame = tokio::time::timeout(STALLED, body.frame())
            .await
            .map_err(|e| again("the download stalled:", &e))?;
        let Some(frame) = frame else { break };
        let frame = frame.map_err(|e| again("the download broke off:", &e))?;
        let Ok(data) = frame.into_data() else { continue };
        got += data.len() as u64;
        if got > offer.size {
            return Err(Fetch::Never(format!(
                "{} is larger than its document says ({} bytes)",
                offer.url, offer.size
            )));
        }
        hash.update(&data);
        out.write_all(&data).await.map_err(|e| again("cannot keep", &e))?;
    }
    out.sync_all().await.map_err(|e| again("cannot keep", &e))?;
    if got != offer.size {
        return Err(again(
            "the download ended early:",
            &format!("{got} of {} bytes", offer.size),
        ));
    }
    if hex::encode(hash.finalize()) != offer.sha256.to_ascii_lowercase() {
        return Err(Fetch::Never(format!(
            "{} is not the bundle its document names (SHA-256 differs)",
            offer.url
        )));
    }
    Ok(file)
}
