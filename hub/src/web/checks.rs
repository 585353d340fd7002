//! The troubleshooting page's data: `tallybox doctor`'s checks, live, with
//! the hub's own link to the broker.

use serde_json::json;
use warp::{Filter, Rejection, Reply};

use super::auth::{session, Session};
use super::error::internal;
use super::{read, WebState};
use crate::doctor::{self, Check, Status};
use crate::store::accounts::Role;

async fn checks(_: Session, state: WebState) -> Result<impl Reply, Rejection> {
    let mut checks = read(&state, |s| {
        let db = s
            .connection()
            .path()
            .map(std::path::PathBuf::from)
            .unwrap_or_default();
        let dir = db.parent().map(std::path::Path::to_path_buf).unwrap_or_default();
        doctor::gather(s, &dir)
            .map(|f| doctor::checks(&f))
            .map_err(internal)
    })
    .await?;
    let connected = *state.broker_connected.borrow();
    checks.push(Check {
        id: "hub.broker".into(),
        status: if connected { Status::Ok } else { Status::Fail },
        evidence: if connected {
            "the hub is connected to the MQTT broker".into()
        } else {
            "the hub is not connected to the MQTT broker: no checkout can reach it".into()
        },
        fix_en: if connected {
            "Nothing to do."
        } else {
            "Restart the hub (unplug it for 10 s); with an external broker, check that it runs."
        },
        fix_zh: if connected {
            "无需处理。"
        } else {
            "重启主机（断电 10 秒）；如使用外部消息服务器，请确认其正在运行。"
        },
    });
    checks.sort_by(|a, b| b.status.cmp(&a.status).then(a.id.cmp(&b.id)));
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
