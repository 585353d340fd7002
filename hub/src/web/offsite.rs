//! The off-site bucket on the owner's page (Settings): where the copies go,
//! and the bucket the owner enters, checked with the store and kept
//! (`offsite/setup.rs`). The secret is never sent back.

use serde_json::json;
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

use super::auth::{json_body, session, Session};
use super::error::{bad_request, internal, said, Code};
use super::{read, write, WebState};
use crate::offsite::setup::Entered;
use crate::payments::setup::SaveError;
use crate::store::accounts::Role;

async fn shown(_: Session, state: WebState) -> Result<impl Reply, Rejection> {
    let data_dir = read(&state, |s| Ok(s.data_dir())).await?;
    Ok(warp::reply::json(&json!({
        "offsite": state.offsite.access(),
        "last": crate::offsite::last(&data_dir),
    })))
}

async fn enter(who: Session, body: serde_json::Value, state: WebState) -> Result<impl Reply, Rejection> {
    let entered: Entered =
        serde_json::from_value(body).map_err(|e| bad_request(Code::BadBody, format!("the bucket: {e}")))?;
    tracing::info!(account = %who.account, "off-site bucket entered from the web page");
    match state.offsite.save(&entered).await {
        Ok(access) => {
            let (url, key, by) = (
                access.url.clone().unwrap_or_default(),
                access.access_key_id.clone().unwrap_or_default(),
                who.account.clone(),
            );
            write(&state, move |s| {
                s.note_offsite(Some((&url, &key)), &by).map_err(internal)
            })
            .await?;
            Ok(warp::reply::json(&access))
        }
        Err(SaveError::Bad(why)) => Err(said(StatusCode::BAD_REQUEST, Code::BadOffsite, why)),
        Err(SaveError::Refused(words)) => Err(said(
            StatusCode::UNPROCESSABLE_ENTITY,
            Code::OffsiteRefused,
            words,
        )),
        Err(SaveError::Failed(why)) => Err(internal(why)),
    }
}

async fn forget(who: Session, state: WebState) -> Result<impl Reply, Rejection> {
    tracing::info!(account = %who.account, "off-site bucket forgotten from the web page");
    let access = state.offsite.forget().map_err(internal)?;
    let by = who.account.clone();
    write(&state, move |s| s.note_offsite(None, &by).map_err(internal)).await?;
    Ok(warp::reply::json(&access))
}

pub fn routes(state: WebState) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    let with_state = {
        let state = state.clone();
        warp::any().map(move || state.clone())
    };
    let owner = session(state, Role::Owner);
    let shown = warp::path!("api" / "v1" / "offsite")
        .and(warp::get())
        .and(owner.clone())
        .and(with_state.clone())
        .and_then(shown);
    let enter = warp::path!("api" / "v1" / "offsite")
        .and(warp::put())
        .and(owner.clone())
        .and(json_body())
        .and(with_state.clone())
        .and_then(enter);
    let forget = warp::path!("api" / "v1" / "offsite")
        .and(warp::delete())
        .and(owner)
        .and(with_state)
        .and_then(forget);
    shown.or(enter).or(forget)
}
