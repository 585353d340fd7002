//! The providers' bills against the hub's code payments, on the page:
//! the checks kept for a day, and a check made now.

use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::json;
use warp::{Filter, Rejection, Reply};

use super::auth::{json_body, session, Session};
use super::error::{bad_request, internal, reject, Code};
use super::{query, read, WebState};
use crate::store::accounts::Role;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DayQuery {
    /// The provider's day (Beijing time); the latest checked when absent.
    day: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckBody {
    day: String,
}

fn day(text: &str) -> Result<NaiveDate, Rejection> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| bad_request(Code::BadDate, "day: use YYYY-MM-DD"))
}

/// The checks of a day, with the providers the shop takes codes of.
fn answer(state: &WebState, day: Option<String>, checks: Vec<crate::store::bills::BillCheck>) -> impl Reply {
    let providers: Vec<&str> = state.codes.each().iter().map(|(p, _)| p.as_str()).collect();
    let day = day.or_else(|| checks.first().map(|c| c.day.clone()));
    warp::reply::json(&json!({ "day": day, "providers": providers, "checks": checks }))
}

async fn checks(_: Session, q: DayQuery, state: WebState) -> Result<impl Reply, Rejection> {
    let wanted = q.day.as_deref().map(day).transpose()?;
    let checks = read(&state, move |s| s.bill_checks(wanted).map_err(internal)).await?;
    Ok(answer(&state, q.day, checks))
}

async fn check(who: Session, body: CheckBody, state: WebState) -> Result<impl Reply, Rejection> {
    let wanted = day(&body.day)?;
    if state.codes.is_empty() {
        return Err(reject(
            warp::http::StatusCode::CONFLICT,
            Code::NoCodeProviders,
            "this shop takes no payment codes: there is no bill to check",
        ));
    }
    let today = chrono::Utc::now()
        .with_timezone(&crate::payments::beijing())
        .date_naive();
    if wanted > today {
        return Err(bad_request(
            Code::BadDate,
            "day: a bill is of a day that has begun",
        ));
    }
    tracing::info!(day = %wanted, account = %who.account, "bills checked from the web page");
    let checks = crate::bills::check_day(&state.codes, &state.store, wanted).await;
    Ok(answer(&state, Some(body.day), checks))
}

pub fn routes(state: WebState) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    let with_state = {
        let state = state.clone();
        warp::any().map(move || state.clone())
    };
    let manager = session(state, Role::Manager);
    let list = warp::path!("api" / "v1" / "code-bills")
        .and(warp::get())
        .and(manager.clone())
        .and(query::<DayQuery>())
        .and(with_state.clone())
        .and_then(checks);
    let run = warp::path!("api" / "v1" / "code-bills")
        .and(warp::post())
        .and(manager)
        .and(json_body())
        .and(with_state)
        .and_then(check);
    list.or(run)
}
