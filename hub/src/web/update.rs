//! Updating the hub from the owner's phone: the bundle is uploaded (streamed
//! to the data disk, never held in memory), checked and installed exactly as
//! `tallybox update` does — signature, version, free space, a database backup
//! — and then the hub stops so that its service starts the new version
//! (which proves itself, or the previous one comes back by itself). A
//! checkout's update is kept instead, offered to the checkouts over MQTT
//! (news `update`) and served to them at `/updates/terminal.update`.

use futures_util::TryStreamExt;
use serde_json::json;
use tallybox_core::protocol::{Response, TerminalId};
use tallybox_platform::update::{self, UpdateError};
use tokio::io::AsyncWriteExt;
use warp::http::StatusCode;
use warp::{Buf, Filter, Rejection, Reply};

use super::auth::{session, Session};
use super::error::{internal, not_found, reject, ApiError, Code};
use super::{read, WebState};
use crate::store::accounts::Role;

/// The largest bundle taken (a release hub bundle is about 13 MiB).
pub const MAX_BUNDLE: u64 = 96 * 1024 * 1024;

/// How long the answer has to reach the phone before the hub stops.
const STOP_AFTER: std::time::Duration = std::time::Duration::from_millis(500);

/// Keeps the request's body in a new file under `dir` (removed when dropped).
async fn receive(
    dir: &std::path::Path,
    mut body: impl futures_util::Stream<Item = Result<impl Buf, warp::Error>> + Send + Unpin,
) -> Result<tempfile::NamedTempFile, Rejection> {
    tokio::fs::create_dir_all(dir).await.map_err(internal)?;
    let file = tempfile::Builder::new()
        .prefix("upload-")
        .suffix(".update")
        .tempfile_in(dir)
        .map_err(internal)?;
    let mut out = tokio::fs::File::from_std(file.reopen().map_err(internal)?);
    let broke = |e: warp::Error| {
        reject(
            StatusCode::BAD_REQUEST,
            Code::UploadFailed,
            format!("the upload broke off: {e}"),
        )
    };
    while let Some(mut chunk) = body.try_next().await.map_err(broke)? {
        while chunk.has_remaining() {
            let bytes = chunk.chunk();
            out.write_all(bytes).await.map_err(|e| {
                reject(
                    StatusCode::INSUFFICIENT_STORAGE,
                    Code::NoSpace,
                    format!("cannot keep the upload: {e}"),
                )
            })?;
            let n = bytes.len();
            chunk.advance(n);
        }
    }
    out.flush().await.map_err(internal)?;
    Ok(file)
}

fn refused(who: &Session, e: UpdateError) -> Rejection {
    if let UpdateError::Io { .. } = e {
        return internal(e);
    }
    tracing::warn!(account = %who.account, error = %e, "update refused");
    let why = match &e {
        UpdateError::Malformed(_) => "malformed",
        UpdateError::BadSignature { .. } => "bad_signature",
        UpdateError::NoKeys(_) | UpdateError::BadKey { .. } => "no_keys",
        UpdateError::FileMismatch { .. } => "file_mismatch",
        UpdateError::Truncated(_) => "truncated",
        UpdateError::WrongProduct { .. } => "wrong_product",
        UpdateError::WrongArch { .. } => "wrong_arch",
        UpdateError::AlreadyInstalled { .. } => "already_installed",
        UpdateError::Downgrade { .. } => "downgrade",
        UpdateError::NoSpace { .. } => "no_space",
        UpdateError::Io { .. } => "io",
    };
    ApiError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        Code::UpdateRefused,
        e.to_string(),
    )
    .with("why", why)
    .into()
}

async fn upload(
    who: Session,
    state: WebState,
    body: impl futures_util::Stream<Item = Result<impl Buf, warp::Error>> + Send + Unpin,
) -> Result<impl Reply, Rejection> {
    let data_dir = read(&state, |s| Ok(s.data_dir())).await?;
    let incoming = data_dir.join("updates");
    let file = receive(&incoming, body).await?;
    let by = format!("the web page ({})", who.account);
    let taken = take_bundle(&state, file, &by, None)
        .await
        .map_err(|refusal| match refusal {
            Refusal::Update(e) => refused(&who, e),
            Refusal::NotInstalled => reject(
                StatusCode::CONFLICT,
                Code::NotInstalled,
                "this hub was not installed from a package: it cannot update itself (checkout updates work)",
            ),
            Refusal::Internal(e) => internal(e),
        })?;
    if taken.restarting {
        stop_soon(&state);
    }
    Ok(warp::reply::with_status(
        warp::reply::json(&taken),
        StatusCode::ACCEPTED,
    ))
}

/// What a bundle did once taken.
#[derive(Debug, serde::Serialize)]
pub struct Taken {
    /// `hub` or `terminal`.
    pub product: String,
    pub version: String,
    /// The hub's version before (a hub's bundle).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    /// The database backup taken first (a hub's bundle).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<String>,
    /// The checkouts it was offered to (a checkout's bundle).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offered_to: Option<Vec<String>>,
    /// The hub stops so that its service starts the new version.
    pub restarting: bool,
}

/// Why a bundle was not taken.
#[derive(Debug)]
pub enum Refusal {
    Update(UpdateError),
    /// A hub not installed from a package cannot update itself.
    NotInstalled,
    Internal(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Update(e) => e.fmt(f),
            Refusal::NotInstalled => {
                f.write_str("this hub was not installed from a package: it cannot update itself")
            }
            Refusal::Internal(e) => f.write_str(e),
        }
    }
}

/// Takes a bundle received in `file` (from the page, or from head office)
/// exactly as `tallybox update` does: a checkout's is kept and offered to
/// the checkouts; the hub's is installed (the caller then stops the hub,
/// [`stop_soon`]). `by` is who gave it, for the log.
pub async fn take_bundle(
    state: &WebState,
    file: tempfile::NamedTempFile,
    by: &str,
    product: Option<&str>,
) -> Result<Taken, Refusal> {
    let (path, keys) = (file.path().to_path_buf(), state.update_keys.clone());
    let internal = |e: tokio::task::JoinError| Refusal::Internal(e.to_string());
    let manifest = tokio::task::spawn_blocking(move || {
        update::trusted_keys(&keys).and_then(|k| update::Bundle::open(&path, &k))
    })
    .await
    .map_err(internal)?
    .map_err(Refusal::Update)?
    .manifest;
    if let Some(want) = product.filter(|want| *want != manifest.product) {
        return Err(Refusal::Update(UpdateError::WrongProduct {
            got: manifest.product,
            want: want.to_string(),
        }));
    }

    // A checkout's update is kept and offered to the checkouts.
    if manifest.product == "terminal" {
        let incoming = file
            .path()
            .parent()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_default();
        file.persist(incoming.join(TERMINAL_BUNDLE))
            .map_err(|e| Refusal::Internal(e.to_string()))?;
        tracing::warn!(version = %manifest.version, "checkout update from {by}; offering it to the checkouts");
        *state.terminal_update.lock().unwrap_or_else(|e| e.into_inner()) = Some(manifest.version.clone());
        let offered_to = offer_terminal_update(state).await;
        return Ok(Taken {
            product: "terminal".into(),
            version: manifest.version,
            previous: None,
            backup: None,
            offered_to: Some(offered_to),
            restarting: false,
        });
    }

    // The hub's own: installed, then the hub restarts into it.
    let root = match state.install_root.clone() {
        Some(root) if update::installed(&root).is_some() => root,
        _ => return Err(Refusal::NotInstalled),
    };
    let data_dir = state.store.lock().unwrap_or_else(|e| e.into_inner()).data_dir();
    let keys = state.update_keys.clone();
    let installed = tokio::task::spawn_blocking(move || {
        // The bundle is removed once read (`file` dropped).
        crate::install::install(file.path(), &keys, &root, &data_dir, false)
    })
    .await
    .map_err(internal)?;
    let (installed, backup) = installed.map_err(Refusal::Update)?;
    tracing::warn!(
        version = %installed.version,
        previous = installed.previous.as_deref().unwrap_or("-"),
        "update installed from {by}; the hub restarts into it"
    );
    Ok(Taken {
        product: "hub".into(),
        version: installed.version,
        previous: installed.previous,
        backup: backup.and_then(|b| b.file_name().map(|n| n.to_string_lossy().to_string())),
        offered_to: None,
        restarting: true,
    })
}

/// Stops the hub once the answer had time to reach the phone.
pub fn stop_soon(state: &WebState) {
    let stop = state.stop.clone();
    tokio::spawn(async move {
        tokio::time::sleep(STOP_AFTER).await;
        stop.cancel();
    });
}

/// Where the checkouts' update is kept, in the data directory's `updates/`.
pub const TERMINAL_BUNDLE: &str = "terminal.update";
/// Where the checkouts download it.
pub const TERMINAL_BUNDLE_PATH: &str = "/updates/terminal.update";

/// The version of the checkouts' update kept in `data_dir`, if one is.
pub fn kept_terminal_update(data_dir: &std::path::Path, keys: &std::path::Path) -> Option<String> {
    let path = data_dir.join("updates").join(TERMINAL_BUNDLE);
    let keys = update::trusted_keys(keys).ok()?;
    Some(update::Bundle::open(&path, &keys).ok()?.manifest.version)
}

/// Offers the checkouts' update to each online checkout that reports an
/// older version (not the hub's own); the ones told.
pub async fn offer_terminal_update(state: &WebState) -> Vec<String> {
    let offered = state
        .terminal_update
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let Some(version) = offered else {
        return Vec::new();
    };
    let Ok(rows) = read(state, |s| s.terminals().map_err(internal)).await else {
        return Vec::new();
    };
    let mut told = Vec::new();
    for row in rows {
        let Ok(terminal) = TerminalId::parse(&row.id) else {
            continue;
        };
        let older = update::parse_version(&row.version) < update::parse_version(&version);
        if !row.online || !older || state.own_checkouts.contains(&terminal) {
            continue;
        }
        let news = Response::Update {
            version: version.clone(),
            port: state.http_port.load(std::sync::atomic::Ordering::Relaxed),
            path: TERMINAL_BUNDLE_PATH.to_string(),
        };
        if state.push.send((terminal, news)).await.is_ok() {
            told.push(row.id);
        }
    }
    told
}

/// The checkouts' update, for them to download (signed; holds no secret).
async fn terminal_bundle(state: WebState) -> Result<warp::reply::Response, Rejection> {
    let dir = read(&state, |s| Ok(s.data_dir())).await?;
    let file = tokio::fs::File::open(dir.join("updates").join(TERMINAL_BUNDLE))
        .await
        .map_err(|_| not_found(Code::NoCheckoutUpdate, "no checkout update has been uploaded"))?;
    let stream = tokio_util::io::ReaderStream::new(file);
    let reply = warp::reply::with_header(
        warp::reply::stream(stream),
        warp::http::header::CONTENT_TYPE,
        "application/octet-stream",
    );
    Ok(reply.into_response())
}

/// The install's version and update history (what `hub.update` sums up).
async fn status(_: Session, state: WebState) -> Result<impl Reply, Rejection> {
    let Some(root) = state.install_root.clone() else {
        return Ok(warp::reply::json(&json!({ "installed": null, "history": [] })));
    };
    let updates = tokio::task::spawn_blocking(move || crate::doctor::Updates::read(&root))
        .await
        .map_err(internal)?;
    Ok(warp::reply::json(&json!({
        "installed": updates.installed,
        "trying": updates.trying.map(|(new, old, starts)| json!({"version": new, "previous": old, "starts": starts})),
        "history": updates.history,
    })))
}

pub fn routes(state: WebState) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    let with_state = {
        let state = state.clone();
        warp::any().map(move || state.clone())
    };
    let owner = session(state.clone(), Role::Owner);
    let upload = warp::path!("api" / "v1" / "update")
        .and(warp::post())
        .and(owner.clone())
        .and(with_state.clone())
        .and(warp::body::content_length_limit(MAX_BUNDLE))
        .and(warp::body::stream())
        .and_then(|who, state, body| upload(who, state, Box::pin(body)));
    let status = warp::path!("api" / "v1" / "update")
        .and(warp::get())
        .and(owner)
        .and(with_state.clone())
        .and_then(status);
    let bundle = warp::path!("updates" / "terminal.update")
        .and(warp::get())
        .and(with_state)
        .and_then(terminal_bundle);
    upload.or(status).or(bundle)
}
