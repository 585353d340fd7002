//! The troubleshooting page's data and buttons: the doctor's checks, live
//! (with the hub's machine, its broker link and its acquirer link) and their
//! history; a test slip, a restart, "reader cleaned" and "new roll" for a
//! checkout; the owner's acceptance of history lost below the database; and
//! the support bundle. Running the checks notes what changed
//! in the history; the hub also runs them every minute on its own.

use std::time::Duration;

use serde_json::json;
use tallybox_core::protocol::{Response, TerminalId};
use warp::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

use super::auth::{session, Session};
use super::error::{bad_terminal, internal, no_checkout, terminal_offline, ApiError, Code};
use super::{read, write, WebState};
use crate::doctor::{self, Check};
use crate::shop::current;
use crate::store::accounts::Role;
use crate::store::history::Noted;
use crate::store::wear::Service;

/// How often the hub looks by itself.
const EVERY: Duration = Duration::from_secs(60);
/// How often the database is read whole for its integrity check.
const INTEGRITY_EVERY: Duration = Duration::from_secs(3600);

/// What the checks keep between runs: their database connection, and the
/// last integrity check's answer with when it ran.
pub struct Watch {
    store: crate::store::Store,
    integrity: Option<(std::time::Instant, String)>,
}

impl Watch {
    pub fn new(store: crate::store::Store) -> Watch {
        Watch {
            store,
            integrity: None,
        }
    }

    /// The integrity check's answer, run again when the last is an hour old.
    fn integrity(&mut self) -> Result<String, Rejection> {
        match &self.integrity {
            Some((at, answer)) if at.elapsed() < INTEGRITY_EVERY => Ok(answer.clone()),
            _ => {
                let answer = doctor::integrity(&self.store).map_err(internal)?;
                self.integrity = Some((std::time::Instant::now(), answer.clone()));
                Ok(answer)
            }
        }
    }
}

/// Runs every check and notes in the history what changed (and, once a
/// local day, the self-check summary).
pub async fn run_checks(state: &WebState) -> Result<Vec<Check>, Rejection> {
    let connected = *state.broker_connected.borrow();
    let root = state.install_root.clone();
    let broker_refused = state
        .broker_logins
        .as_ref()
        .map(|logins| logins.refused(std::time::Duration::from_secs(3600)));
    let machine = state.machine.clone();
    let acquirer = state.acquirer.as_ref().map(|link| link());
    let pairing = state.keys.pairing();
    let watch = std::sync::Arc::clone(&state.checks);
    let work = move || -> Result<Vec<Check>, Rejection> {
        let watch = &mut *watch.lock().unwrap_or_else(|e| e.into_inner());
        let integrity = watch.integrity()?;
        let s = &mut watch.store;
        let facts = doctor::gather(s, Some(integrity)).map_err(internal)?;
        let checks = doctor::checks(&doctor::Facts {
            broker_connected: Some(connected),
            broker_refused,
            updates: root.as_deref().map(doctor::Updates::read),
            hub_machine: Some(machine.health()),
            acquirer,
            pairing,
            ..facts
        });
        let noted: Vec<Noted> = checks
            .iter()
            .map(|c| Noted {
                id: c.id.clone(),
                status: c.status.as_str().to_string(),
                evidence: c.evidence.clone(),
                evidence_zh: c.evidence_zh.clone(),
            })
            .collect();
        let count = |status| checks.iter().filter(|c| c.status == status).count();
        let (ok, warn, fail) = (
            count(doctor::Status::Ok),
            count(doctor::Status::Warn),
            count(doctor::Status::Fail),
        );
        let summary = format!("daily self-check: {ok} ok, {warn} warnings, {fail} failures");
        let summary_zh = format!("每日自检：{ok} 项正常，{warn} 项警告，{fail} 项故障");
        let today = tallybox_platform::clock::now().format("%Y-%m-%d").to_string();
        let worst = doctor::worst(&checks);
        s.note_checks(&noted, &today, (worst.as_str(), &summary, &summary_zh))
            .map_err(internal)?;
        Ok(checks)
    };
    tokio::task::spawn_blocking(work).await.map_err(internal)?
}

/// The hub's own look every minute (the first a minute after start, not
/// during it), so the history and the daily self-check are kept with nobody
/// on the page.
pub async fn keep_watch(state: WebState, shutdown: tokio_util::sync::CancellationToken) {
    let mut every = tokio::time::interval_at(tokio::time::Instant::now() + EVERY, EVERY);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = every.tick() => {
                if run_checks(&state).await.is_err() {
                    tracing::warn!("the troubleshooting checks could not run");
                }
            }
        }
    }
}

async fn checks(_: Session, state: WebState) -> Result<impl Reply, Rejection> {
    let checks = run_checks(&state).await?;
    Ok(warp::reply::json(
        &json!({ "status": doctor::worst(&checks), "checks": checks }),
    ))
}

async fn history(_: Session, state: WebState) -> Result<impl Reply, Rejection> {
    let entries = read(&state, |s| s.check_history(200).map_err(internal)).await?;
    Ok(warp::reply::json(&json!({ "history": entries })))
}

/// A checkout the hub has heard from, and whether it is online.
pub(super) async fn known(state: &WebState, id: &str) -> Result<(TerminalId, bool), Rejection> {
    let terminal = TerminalId::parse(id).map_err(bad_terminal)?;
    let wanted = terminal.as_str().to_string();
    let online = read(state, move |s| {
        let rows = s.terminals().map_err(internal)?;
        Ok(rows.into_iter().find(|t| t.id == wanted).map(|t| t.online))
    })
    .await?
    .ok_or_else(|| no_checkout(&terminal))?;
    Ok((terminal, online))
}

async fn send(
    state: &WebState,
    terminal: TerminalId,
    online: bool,
    message: Response,
) -> Result<(), Rejection> {
    if !online {
        return Err(terminal_offline(&terminal, "check its power and network first"));
    }
    state
        .push
        .send((terminal, message))
        .await
        .map_err(|_| internal("the hub's link to the checkouts has stopped"))
}

async fn test_slip(id: String, who: Session, state: WebState) -> Result<impl Reply, Rejection> {
    let (terminal, online) = known(&state, &id).await?;
    tracing::info!(account = %who.account, terminal = %terminal, "test slip asked for");
    send(&state, terminal, online, Response::TestSlip).await?;
    Ok(StatusCode::ACCEPTED)
}

async fn restart(id: String, who: Session, state: WebState) -> Result<impl Reply, Rejection> {
    let (terminal, online) = known(&state, &id).await?;
    if state.own_checkouts.contains(&terminal) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            Code::RunsInHub,
            format!("{terminal} runs inside the hub: restart the hub instead (unplug it for 10 s)"),
        )
        .with("terminal", &terminal)
        .into());
    }
    tracing::warn!(account = %who.account, terminal = %terminal, "checkout restart asked for");
    send(&state, terminal, online, Response::Restart).await?;
    Ok(StatusCode::ACCEPTED)
}

async fn serviced(
    id: String,
    service: Service,
    who: Session,
    state: WebState,
) -> Result<impl Reply, Rejection> {
    let terminal = TerminalId::parse(&id).map_err(bad_terminal)?;
    let by = who.account.clone();
    let t = terminal.clone();
    if !write(&state, move |s| s.serviced(&t, service, &by).map_err(internal)).await? {
        return Err(no_checkout(&terminal));
    }
    Ok(StatusCode::NO_CONTENT)
}

/// The owner accepts what `store.history` says was lost (the audit chain
/// keeps who and what); sales resume.
async fn accept_history_loss(who: Session, state: WebState) -> Result<impl Reply, Rejection> {
    let by = who.account.clone();
    if !write(&state, move |s| s.accept_history_loss(&by).map_err(internal)).await? {
        return Err(super::error::reject(
            StatusCode::CONFLICT,
            Code::NothingLost,
            "the database holds all the history its witness has seen: nothing to accept",
        ));
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn bundle(who: Session, state: WebState) -> Result<warp::reply::Response, Rejection> {
    let checks = run_checks(&state).await?;
    let shop = current(&state.shop);
    let log = tallybox_platform::cli::recent_log();
    let tar = read(&state, move |s| {
        crate::support::bundle(s, &shop, &checks, &log).map_err(internal)
    })
    .await?;
    tracing::info!(account = %who.account, bytes = tar.len(), "support bundle downloaded");
    let name = super::download_name(&format!(
        "tallybox-support-{}.tar",
        tallybox_platform::clock::now().format("%Y%m%d-%H%M")
    ));
    let reply = warp::reply::with_header(tar, CONTENT_TYPE, "application/x-tar");
    let reply = warp::reply::with_header(
        reply,
        CONTENT_DISPOSITION,
        format!("attachment; filename=\"{name}\""),
    );
    Ok(reply.into_response())
}

pub fn routes(state: WebState) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    let with_state = warp::any().map({
        let state = state.clone();
        move || state.clone()
    });
    let manager = session(state.clone(), Role::Manager);
    let owner = session(state, Role::Owner);
    let checks = warp::path!("api" / "v1" / "checks")
        .and(warp::get())
        .and(manager.clone())
        .and(with_state.clone())
        .and_then(checks);
    let history = warp::path!("api" / "v1" / "checks" / "history")
        .and(warp::get())
        .and(manager.clone())
        .and(with_state.clone())
        .and_then(history);
    let test_slip = warp::path!("api" / "v1" / "terminals" / String / "test-slip")
        .and(warp::post())
        .and(manager.clone())
        .and(with_state.clone())
        .and_then(test_slip);
    let restart = warp::path!("api" / "v1" / "terminals" / String / "restart")
        .and(warp::post())
        .and(manager.clone())
        .and(with_state.clone())
        .and_then(restart);
    let cleaned = warp::path!("api" / "v1" / "terminals" / String / "reader-cleaned")
        .and(warp::post())
        .map(|id| (id, Service::ReaderCleaned))
        .untuple_one();
    let new_roll = warp::path!("api" / "v1" / "terminals" / String / "new-roll")
        .and(warp::post())
        .map(|id| (id, Service::NewRoll))
        .untuple_one();
    let serviced = cleaned
        .or(new_roll)
        .unify()
        .and(manager.clone())
        .and(with_state.clone())
        .and_then(serviced);
    let accept = warp::path!("api" / "v1" / "history" / "accept-loss")
        .and(warp::post())
        .and(owner)
        .and(with_state.clone())
        .and_then(accept_history_loss);
    let bundle = warp::path!("api" / "v1" / "support-bundle")
        .and(warp::get())
        .and(manager)
        .and(with_state)
        .and_then(bundle);
    checks
        .or(history)
        .or(test_slip)
        .or(restart)
        .or(serviced)
        .or(accept)
        .or(bundle)
}
