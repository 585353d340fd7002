//! The troubleshooting page's data: `tallybox doctor`'s checks, live, with
//! the hub's own link to the broker.

use serde_json::json;
use warp::{Filter, Rejection, Reply};

use super::auth::{session, Session};
use super::error::internal;
use super::{read, WebState};
use crate::doctor;
use crate::store::accounts::Role;

async fn checks(_: Session, state: WebState) -> Result<impl Reply, Rejection> {
    let connected = *state.broker_connected.borrow();
    let checks = read(&state, move |s| {
        let db = s
            .connection()
            .path()
            .map(std::path::PathBuf::from)
            .unwrap_or_default();
        let dir = db.parent().map(std::path::Path::to_path_buf).unwrap_or_default();
        let facts = doctor::gather(s, &dir).map_err(internal)?;
        Ok(doctor::checks(&doctor::Facts {
            broker_connected: Some(connected),
            ..facts
        }))
    })
    .await?;
    Ok(warp::reply::json(
        &json!({ "status": doctor::worst(&checks), "checks": checks }),
    ))
}

pub fn routes(state: WebState) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    let with_state = warp::any().map({
        let state = state.clone();
        move || state.clone()
    });
    warp::path!("api" / "v1" / "checks")
        .and(warp::get())
        .and(session(state, Role::Manager))
        .and(with_state)
        .and_then(checks)
}
