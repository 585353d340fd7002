//! What the owner changes: terminals (rename, freeze, unfreeze), accounts
//! and passwords, and what the owner takes away: the evidence pack after a
//! fraud and a backup of the whole database. Managers may freeze, rename and
//! download evidence; lifting a freeze is the owner's unless the owner lets
//! managers do it (`managers_unfreeze`); accounts and backups are the owner's.

use serde::Deserialize;
use serde_json::json;
use tallybox_core::protocol::{Response, TerminalId};
use warp::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use warp::http::StatusCode;
use warp::{Filter, Rejection, Reply};

use super::auth::{check_new_password, hash_password, json_body, session, Session};
use super::error::{
    bad_filter, bad_request, bad_terminal, internal, no_checkout, reject, too_long, ApiError, Code,
};
use super::{read, write, WebState};
use crate::evidence;
use crate::shop::{current, Shop};
use crate::shop::{ShopError, MAX_SLIP_LINES};
use crate::store::accounts::{Role, OWNER};
use crate::store::query::ListError;
use tallybox_core::slip::WIDTH;

/// The scope a freeze names: a terminal id, or `store` for every checkout.
fn scope(text: &str) -> Result<String, Rejection> {
    if text == "store" {
        return Ok(text.to_string());
    }
    TerminalId::parse(text)
        .map(|t| t.as_str().to_string())
        .map_err(bad_terminal)
}

/// A shop setting refused, with the numbers its rule allows.
fn shop_refused(e: ShopError) -> Rejection {
    let (code, field, max) = match e {
        ShopError::Name => (Code::BadStoreName, "", WIDTH),
        ShopError::Address => (Code::BadAddress, "", WIDTH),
        ShopError::SlipLines(f) => (Code::TooManySlipLines, f, MAX_SLIP_LINES),
        ShopError::SlipWidth(f) => (Code::SlipLineTooWide, f, WIDTH),
        ShopError::Pin | ShopError::PinNotHashed => (Code::BadSupervisorPin, "", 8),
    };
    ApiError::new(StatusCode::BAD_REQUEST, code, e.to_string())
        .with("field", field)
        .with("max", max)
        .into()
}

async fn terminals(_: Session, state: WebState) -> Result<impl Reply, Rejection> {
    let (rows, freezes) = read(&state, |s| {
        Ok((s.terminals().map_err(internal)?, s.freezes().map_err(internal)?))
    })
    .await?;
    let store = freezes.into_iter().find(|f| f.scope == "store");
    let (store_frozen, store_frozen_zh) = store.map(|f| (f.reason, f.reason_zh)).unzip();
    let rows: Vec<serde_json::Value> = rows
        .into_iter()
        .map(|row| {
            let pairing = state.keys.state(&row.id);
            let mut v = serde_json::to_value(row).unwrap_or_default();
            v["pairing"] = json!(pairing);
            v
        })
        .collect();
    Ok(warp::reply::json(&json!({
        "terminals": rows,
        "store_frozen": store_frozen,
        "store_frozen_zh-CN": store_frozen_zh,
        "pairing_required": current(&state.shop).pairing_required,
    })))
}

/// The shop as slips show it, and the facts only the settings file changes.
async fn settings(_: Session, state: WebState) -> Result<impl Reply, Rejection> {
    let shop = current(&state.shop);
    Ok(warp::reply::json(&json!({
        "store_name": shop.name,
        "address": shop.address,
        "slip_header": shop.slip_header,
        "slip_footer": shop.slip_footer,
        "supervisor_pin_set": shop.supervisor_pin_hash.is_some(),
        "cashier_sign_on": shop.cashier_sign_on,
        "pairing_required": shop.pairing_required,
        "managers_unfreeze": shop.managers_unfreeze,
        "merchant_id": shop.merchant_id,
        "currency": state.currency,
        "public_url": shop.public_url,
        // Slips, reports and the checkouts' clocks use it.
        "time_zone": tallybox_platform::clock::zone_name(),
        "version": env!("CARGO_PKG_VERSION"),
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ShopEdit {
    store_name: String,
    #[serde(default)]
    address: String,
    #[serde(default)]
    slip_header: Vec<String>,
    #[serde(default)]
    slip_footer: Vec<String>,
    /// Absent: keep the PIN; "": no PIN (voids and refunds refused).
    supervisor_pin: Option<tallybox_core::secret::Secret<String>>,
    /// Absent: keep; true: a sale needs a cashier signed on.
    cashier_sign_on: Option<bool>,
    /// Absent: keep; an IANA name from `GET /api/v1/time-zones`.
    time_zone: Option<String>,
    /// Absent: keep; true: only paired terminals may sell.
    pairing_required: Option<bool>,
    /// Absent: keep; true: managers may lift a freeze too.
    managers_unfreeze: Option<bool>,
}

/// The owner edits the shop; the next slip and the page show it at once.
async fn edit_settings(who: Session, body: ShopEdit, state: WebState) -> Result<impl Reply, Rejection> {
    let now = current(&state.shop);
    let trimmed = |lines: Vec<String>| -> Vec<String> {
        lines
            .into_iter()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect()
    };
    let edit = Shop {
        name: body.store_name.trim().to_string(),
        address: body.address.trim().to_string(),
        slip_header: trimmed(body.slip_header),
        slip_footer: trimmed(body.slip_footer),
        supervisor_pin_hash: match body.supervisor_pin {
            None => now.supervisor_pin_hash.clone(),
            Some(p) if p.expose().is_empty() => None,
            Some(p) => {
                crate::shop::check_supervisor_pin(p.expose()).map_err(shop_refused)?;
                let hash = tokio::task::spawn_blocking(move || crate::passwords::hash(p.expose()))
                    .await
                    .map_err(internal)?
                    .map_err(internal)?;
                Some(hash)
            }
        },
        cashier_sign_on: body.cashier_sign_on.unwrap_or(now.cashier_sign_on),
        time_zone: body.time_zone.or(now.time_zone.clone()),
        pairing_required: body.pairing_required.unwrap_or(now.pairing_required),
        managers_unfreeze: body.managers_unfreeze.unwrap_or(now.managers_unfreeze),
        ..now.clone()
    };
    let new_zone = edit
        .time_zone
        .clone()
        .filter(|z| Some(z) != now.time_zone.as_ref());
    if let Some(zone) = &new_zone {
        tallybox_platform::clock::load(zone)
            .map_err(|e| bad_request(Code::BadTimeZone, format!("time_zone: {e}")))?;
    }
    edit.check().map_err(shop_refused)?;
    if edit.cashier_sign_on && !now.cashier_sign_on {
        let none = read(&state, |s| s.cashiers().map_err(internal)).await?.is_empty();
        if none {
            return Err(bad_request(
                Code::CashierSignOnNeedsCashier,
                "cashier_sign_on: add a cashier first, or no checkout could sell",
            ));
        }
    }
    let (saved, by) = (edit.clone(), who.account.clone());
    // What the owner changed here stays the owner's if head office sets it.
    let (own, file) = (now.chain_wide_changes(&edit), state.shop_file.clone());
    write(&state, move |s| {
        s.set_shop_edit_by_owner(&saved, &by, &file, &own)
            .map_err(internal)
    })
    .await?;
    *state.shop.write().unwrap_or_else(|e| e.into_inner()) = edit;
    tracing::info!(account = %who.account, "shop settings changed on the web page");
    if let Some(zone) = new_zone {
        tallybox_platform::clock::set_zone(&zone).map_err(|e| bad_request(Code::BadTimeZone, e))?;
        tracing::info!(time_zone = %zone, "local time is now the owner's time zone");
        // Every checkout's clock follows; one offline learns it at its next sign-in.
        let terminals = read(&state, |s| s.terminals().map_err(internal)).await?;
        for t in terminals.into_iter().filter(|t| t.online) {
            if let Ok(id) = TerminalId::parse(&t.id) {
                let news = Response::TimeZone {
                    time_zone: zone.clone(),
                };
                if state.push.send((id, news)).await.is_err() {
                    tracing::warn!("the MQTT link has stopped; checkouts learn the time zone at sign-in");
                }
            }
        }
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Rename {
    name: String,
}

async fn rename(id: String, _: Session, body: Rename, state: WebState) -> Result<impl Reply, Rejection> {
    let terminal = TerminalId::parse(&id).map_err(bad_terminal)?;
    let name = body.name.trim().to_string();
    if name.is_empty() || name.chars().count() > 24 {
        return Err(too_long(Code::BadTerminalName, "name: 1 to 24 characters", 24));
    }
    let found = write(&state, move |s| {
        s.rename_terminal(&terminal, &name).map_err(internal)
    })
    .await?;
    if !found {
        return Err(no_checkout(&id));
    }
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FreezeBody {
    scope: String,
    reason: Option<String>,
}

async fn freeze(who: Session, body: FreezeBody, state: WebState) -> Result<impl Reply, Rejection> {
    let scope = scope(&body.scope)?;
    let reason = body
        .reason
        .map(|r| r.trim().to_string())
        .filter(|r| !r.is_empty())
        .unwrap_or_else(|| format!("frozen by {} on the web page", who.account));
    if reason.chars().count() > 120 {
        return Err(too_long(
            Code::BadFreezeReason,
            "reason: at most 120 characters",
            120,
        ));
    }
    tracing::warn!(%scope, %reason, account = %who.account, "frozen from the web page");
    let s2 = scope.clone();
    write(&state, move |s| s.freeze(&s2, &reason).map_err(internal)).await?;
    Ok(warp::reply::with_status(
        warp::reply::json(&json!({ "scope": scope, "frozen": true })),
        StatusCode::OK,
    ))
}

async fn unfreeze(target: String, who: Session, state: WebState) -> Result<impl Reply, Rejection> {
    let scope = scope(&target)?;
    if who.role != Role::Owner && !current(&state.shop).managers_unfreeze {
        return Err(reject(
            StatusCode::FORBIDDEN,
            Code::OwnerOnly,
            "only the owner lifts a freeze; the owner can let managers do it under Settings",
        ));
    }
    let s2 = scope.clone();
    let was = write(&state, move |s| s.unfreeze(&s2).map_err(internal)).await?;
    if !was {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            Code::NotFrozen,
            format!("{scope} is not frozen"),
        )
        .with("scope", &scope)
        .into());
    }
    tracing::warn!(%scope, account = %who.account, "unfrozen from the web page");
    Ok(warp::reply::json(&json!({ "scope": scope, "frozen": false })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EvidenceQuery {
    from: String,
    to: String,
}

async fn evidence(_: Session, q: EvidenceQuery, state: WebState) -> Result<warp::reply::Response, Rejection> {
    let name = super::download_name(&format!("tallybox-evidence-{}-{}.tar", q.from, q.to));
    let shop = current(&state.shop);
    let pack = read(&state, move |s| {
        evidence::pack(s, &shop, &q.from, &q.to).map_err(|e| match e {
            evidence::EvidenceError::List(ListError::Filter(f)) => bad_filter(&f),
            evidence::EvidenceError::List(ListError::Store(e)) => internal(e),
            other => internal(other),
        })
    })
    .await?;
    let reply = warp::reply::with_header(pack.tar, CONTENT_TYPE, "application/x-tar");
    let reply = warp::reply::with_header(
        reply,
        CONTENT_DISPOSITION,
        format!("attachment; filename=\"{name}\""),
    );
    Ok(reply.into_response())
}

/// A consistent copy of the database (SQLite's `VACUUM INTO`), taken while
/// the hub keeps selling. It holds no card numbers; it does hold the
/// password hashes, so only the owner may take it.
async fn backup(_: Session, state: WebState) -> Result<warp::reply::Response, Rejection> {
    // Written beside the database (not to /tmp, which is RAM on a Pi) and
    // streamed, never held in memory whole; the file is unlinked as soon as
    // it is open, so nothing is left behind whatever becomes of the download.
    let file = read(&state, move |s| {
        let dir = tempfile::tempdir_in(s.data_dir()).map_err(internal)?;
        let path = dir.path().join("backup.db");
        s.backup_to(&path).map_err(internal)?;
        std::fs::File::open(&path).map_err(internal)
    })
    .await?;
    let stream = tokio_util::io::ReaderStream::new(tokio::fs::File::from_std(file));
    let name = format!(
        "tallybox-backup-{}.db",
        tallybox_platform::clock::now().format("%Y%m%d-%H%M")
    );
    let reply = warp::reply::with_header(
        warp::reply::stream(stream),
        CONTENT_TYPE,
        "application/vnd.sqlite3",
    );
    let reply = warp::reply::with_header(
        reply,
        CONTENT_DISPOSITION,
        format!("attachment; filename=\"{name}\""),
    );
    Ok(reply.into_response())
}

/// The zones the owner may choose, from the system's tz database.
async fn time_zones(_: Session) -> Result<impl Reply, Rejection> {
    let zones = tokio::task::spawn_blocking(tallybox_platform::clock::zones)
        .await
        .map_err(internal)?;
    Ok(warp::reply::json(&json!({
        "current": tallybox_platform::clock::zone_name(),
        "zones": zones,
    })))
}

async fn accounts(_: Session, state: WebState) -> Result<impl Reply, Rejection> {
    let (accounts, logins) = read(&state, |s| {
        Ok((s.accounts().map_err(internal)?, s.logins(50).map_err(internal)?))
    })
    .await?;
    Ok(warp::reply::json(
        &json!({ "accounts": accounts, "logins": logins }),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SetAccount {
    password: String,
}

/// Creates a manager, or gives a manager a new password.
async fn set_manager(
    name: String,
    _: Session,
    body: SetAccount,
    state: WebState,
) -> Result<impl Reply, Rejection> {
    let valid = !name.is_empty()
        && name.len() <= 32
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !valid || name == OWNER {
        return Err(bad_request(
            Code::BadManagerName,
            "name: 1 to 32 letters, digits, - or _ (and not \"owner\")",
        ));
    }
    check_new_password(&body.password)?;
    let password = body.password;
    let hash = tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(internal)??;
    let n2 = name.clone();
    write(&state, move |s| {
        s.set_account(&n2, Role::Manager, &hash).map_err(internal)
    })
    .await?;
    state.auth.close_all_of(&name);
    Ok(StatusCode::NO_CONTENT)
}

async fn remove_manager(name: String, _: Session, state: WebState) -> Result<impl Reply, Rejection> {
    let n2 = name.clone();
    let removed = write(&state, move |s| s.delete_account(&n2).map_err(internal)).await?;
    if !removed {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            Code::NoManager,
            format!("no manager named {name}"),
        )
        .with("name", &name)
        .into());
    }
    state.auth.close_all_of(&name);
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangePassword {
    current: String,
    new: String,
}

/// Anyone signed in changes their own password with the current one; every
/// other session of theirs is signed out.
async fn change_password(
    who: Session,
    body: ChangePassword,
    state: WebState,
) -> Result<impl Reply, Rejection> {
    check_new_password(&body.new)?;
    let name = who.account.clone();
    let account = read(&state, move |s| s.account(&name).map_err(internal))
        .await?
        .ok_or_else(|| reject(StatusCode::UNAUTHORIZED, Code::Unauthorized, "sign in again"))?;
    let (current, new) = (body.current, body.new);
    let hash = tokio::task::spawn_blocking(move || {
        if !super::auth::verify_password(&current, &account.password_hash) {
            return Err(reject(
                StatusCode::FORBIDDEN,
                Code::WrongCurrentPassword,
                "the current password is not right",
            ));
        }
        hash_password(&new)
    })
    .await
    .map_err(internal)??;
    let (name, role) = (who.account.clone(), who.role);
    write(&state, move |s| {
        s.set_account(&name, role, &hash).map_err(internal)
    })
    .await?;
    state.auth.close_all_of(&who.account);
    Ok(StatusCode::NO_CONTENT)
}

pub fn routes(state: WebState) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    let with_state = {
        let state = state.clone();
        warp::any().map(move || state.clone())
    };
    let anyone = session(state.clone(), Role::Manager);
    let owner = session(state, Role::Owner);
    let terminals = warp::path!("api" / "v1" / "terminals")
        .and(warp::get())
        .and(anyone.clone())
        .and(with_state.clone())
        .and_then(terminals);
    let settings = warp::path!("api" / "v1" / "settings")
        .and(warp::get())
        .and(anyone.clone())
        .and(with_state.clone())
        .and_then(settings);
    let edit_settings = warp::path!("api" / "v1" / "settings")
        .and(warp::put())
        .and(owner.clone())
        .and(json_body())
        .and(with_state.clone())
        .and_then(edit_settings);
    let time_zones = warp::path!("api" / "v1" / "time-zones")
        .and(warp::get())
        .and(anyone.clone())
        .and_then(time_zones);
    let rename = warp::path!("api" / "v1" / "terminals" / String)
        .and(warp::put())
        .and(anyone.clone())
        .and(json_body())
        .and(with_state.clone())
        .and_then(rename);
    let freeze = warp::path!("api" / "v1" / "freezes")
        .and(warp::post())
        .and(anyone.clone())
        .and(json_body())
        .and(with_state.clone())
        .and_then(freeze);
    let unfreeze = warp::path!("api" / "v1" / "freezes" / String)
        .and(warp::delete())
        .and(anyone.clone())
        .and(with_state.clone())
        .and_then(unfreeze);
    let evidence = warp::path!("api" / "v1" / "evidence")
        .and(warp::get())
        .and(anyone.clone())
        .and(super::query::<EvidenceQuery>())
        .and(with_state.clone())
        .and_then(evidence);
    let password = warp::path!("api" / "v1" / "password")
        .and(warp::put())
        .and(anyone)
        .and(json_body())
        .and(with_state.clone())
        .and_then(change_password);
    let backup = warp::path!("api" / "v1" / "backup")
        .and(warp::get())
        .and(owner.clone())
        .and(with_state.clone())
        .and_then(backup);
    let accounts = warp::path!("api" / "v1" / "accounts")
        .and(warp::get())
        .and(owner.clone())
        .and(with_state.clone())
        .and_then(accounts);
    let set_manager = warp::path!("api" / "v1" / "accounts" / String)
        .and(warp::put())
        .and(owner.clone())
        .and(json_body())
        .and(with_state.clone())
        .and_then(set_manager);
    let remove_manager = warp::path!("api" / "v1" / "accounts" / String)
        .and(warp::delete())
        .and(owner)
        .and(with_state)
        .and_then(remove_manager);
    terminals
        .or(settings)
        .or(edit_settings)
        .or(time_zones)
        .or(rename)
        .or(freeze)
        .or(unfreeze)
        .or(evidence)
        .or(password)
        .or(backup)
        .or(accounts)
        .or(set_manager)
        .or(remove_manager)
}
