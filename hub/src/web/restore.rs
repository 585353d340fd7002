//! Putting a backup back from the owner's page, on a hub that runs: the
//! backups on the hub and the copies in the off-site bucket, and the order
//! to put one back. The backup is checked at once (a refusal changes
//! nothing); an off-site copy is brought into `backups/` first. Then the
//! hub stops, and its service starts it again on the backup
//! (`store::restore::ordered`), the database it replaced kept.

use serde::Deserialize;
use serde_json::json;
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

use super::auth::{json_body, session, Session};
use super::error::{bad_request, internal, not_found, said, Code};
use super::{read, WebState};
use crate::store::accounts::Role;
use crate::store::{backups, restore};

/// The backups kept on the hub, newest first; whether a bucket is set; how
/// the last restore from the page ended.
async fn listed(_: Session, state: WebState) -> Result<impl Reply, Rejection> {
    let data_dir = read(&state, |s| Ok(s.data_dir())).await?;
    let on_hub: Vec<_> = backups::automatic(&data_dir.join("backups"))
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(path, bytes)| {
            let name = path.file_name()?.to_string_lossy().into_owned();
            Some(json!({ "name": name, "bytes": bytes }))
        })
        .collect();
    Ok(warp::reply::json(&json!({
        "on_hub": on_hub,
        "offsite": state.offsite.bucket().is_some(),
        "last_restore": restore::last(&data_dir),
    })))
}

/// The copies in the off-site bucket, newest first.
async fn offsite_copies(_: Session, state: WebState) -> Result<impl Reply, Rejection> {
    let bucket = state.offsite.bucket().ok_or_else(no_bucket)?;
    let copies = bucket
        .copies()
        .await
        .map_err(|words| said(StatusCode::BAD_GATEWAY, Code::OffsiteFailed, words))?;
    Ok(warp::reply::json(
        &json!({ "copies": copies, "where": bucket.object("") }),
    ))
}

/// Which backup to put back: one on the hub, or a copy in the bucket
/// (`latest`: the newest).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Order {
    backup: Option<String>,
    offsite: Option<String>,
}

async fn put_back(who: Session, order: Order, state: WebState) -> Result<impl Reply, Rejection> {
    let data_dir = read(&state, |s| Ok(s.data_dir())).await?;
    let file = match (order.backup, order.offsite) {
        (Some(name), None) => {
            let kept = backups::automatic(&data_dir.join("backups")).map_err(internal)?;
            if !kept
                .iter()
                .any(|(path, _)| path.file_name().is_some_and(|n| n.to_string_lossy() == name))
            {
                return Err(not_found(
                    Code::NoBackup,
                    format!("no backup {name:?} on the hub (see GET /api/v1/backups)"),
                ));
            }
            name
        }
        (None, Some(name)) => {
            let bucket = state.offsite.bucket().ok_or_else(no_bucket)?;
            let (object, path, bytes) = crate::offsite::fetch(&data_dir, &bucket, &name)
                .await
                .map_err(|words| said(StatusCode::BAD_GATEWAY, Code::OffsiteFailed, words))?;
            tracing::info!(%object, bytes, "off-site copy brought for a restore from the web page");
            path.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        }
        _ => {
            return Err(bad_request(
                Code::BadBody,
                "name either a backup on the hub (\"backup\") or an off-site copy (\"offsite\")",
            ))
        }
    };
    let by = who.account.clone();
    let (dir, name) = (data_dir.clone(), file.clone());
    let ordered = tokio::task::spawn_blocking(move || restore::order(&dir, &name, &by))
        .await
        .map_err(internal)?;
    let records = match ordered {
        Ok(records) => records,
        Err(e) => {
            // An off-site copy brought for nothing does not stay on the card.
            if file.starts_with(crate::offsite::FETCHED) {
                let _ = std::fs::remove_file(data_dir.join("backups").join(&file));
            }
            return Err(said(
                StatusCode::UNPROCESSABLE_ENTITY,
                Code::BackupRefused,
                e.to_string(),
            ));
        }
    };
    tracing::warn!(
        account = %who.account, file = %file, records,
        "restore ordered from the web page; the hub restarts on the backup"
    );
    super::update::stop_soon(&state);
    Ok(warp::reply::with_status(
        warp::reply::json(&json!({ "file": file, "records": records, "restarting": true })),
        StatusCode::ACCEPTED,
    ))
}

fn no_bucket() -> Rejection {
    super::error::reject(
        StatusCode::CONFLICT,
        Code::NoOffsite,
        "no off-site bucket is set (Settings, Backup)",
    )
}

pub fn routes(state: WebState) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    let with_state = {
        let state = state.clone();
        warp::any().map(move || state.clone())
    };
    let owner = session(state, Role::Owner);
    let listed = warp::path!("api" / "v1" / "backups")
        .and(warp::get())
        .and(owner.clone())
        .and(with_state.clone())
        .and_then(listed);
    let offsite_copies = warp::path!("api" / "v1" / "offsite" / "copies")
        .and(warp::get())
        .and(owner.clone())
        .and(with_state.clone())
        .and_then(offsite_copies);
    let put_back = warp::path!("api" / "v1" / "restore")
        .and(warp::post())
        .and(owner)
        .and(json_body())
        .and(with_state)
        .and_then(put_back);
    listed.or(offsite_copies).or(put_back)
}
