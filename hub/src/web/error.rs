//! How the API says no: `{"error": {"code", "message"}}` with the matching
//! HTTP status, for every refusal — ours, and warp's own (bad JSON, wrong
//! method, body too large).

use std::convert::Infallible;

use serde_json::json;
use warp::http::{header::RETRY_AFTER, StatusCode};
use warp::{Rejection, Reply};

/// Declares the API's error codes: the enum, its wire names and the list of
/// them all (the page's word tables must say each one in every language).
macro_rules! codes {
    ($($variant:ident => $name:literal,)*) => {
        /// What went wrong, as the page looks it up in its word tables.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Code {
            $($variant,)*
        }

        impl Code {
            #[cfg(test)]
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(Code::$variant => $name,)*
                }
            }
        }
    };
}

codes! {
    AlreadySetUp => "already_set_up",
    BadAccountName => "bad_account_name",
    BadAcquirerTerminal => "bad_acquirer_terminal",
    BadAddress => "bad_address",
    BackupRefused => "backup_refused",
    BadAmount => "bad_amount",
    BadBody => "bad_body",
    BadCashierName => "bad_cashier_name",
    BadCashierNo => "bad_cashier_no",
    BadCashierPin => "bad_cashier_pin",
    BadCodeCredentials => "bad_code_credentials",
    BadDate => "bad_date",
    BadOffsite => "bad_offsite",
    BadFilter => "bad_filter",
    BadFreezeReason => "bad_freeze_reason",
    BadKeyComponent => "bad_key_component",
    BadManagerName => "bad_manager_name",
    BadPasswordLength => "bad_password_length",
    BadPeriod => "bad_period",
    BadRange => "bad_range",
    BadRequest => "bad_request",
    BadStoreName => "bad_store_name",
    BadSupervisorPin => "bad_supervisor_pin",
    BadTerminalId => "bad_terminal_id",
    BadTerminalName => "bad_terminal_name",
    BadTimeZone => "bad_time_zone",
    CashierNeedsPin => "cashier_needs_pin",
    CashierSignOnNeedsCashier => "cashier_sign_on_needs_cashier",
    CredentialsRefused => "code_credentials_refused",
    Csrf => "csrf",
    Forbidden => "forbidden",
    Internal => "internal",
    KeyCheckMistyped => "key_check_mistyped",
    KeyNotKept => "key_not_kept",
    Locked => "locked",
    OffsiteFailed => "offsite_failed",
    OffsiteRefused => "offsite_refused",
    MethodNotAllowed => "method_not_allowed",
    NoAcquirerLink => "no_acquirer_link",
    NoBackup => "no_backup",
    NoCashier => "no_cashier",
    NoCheckout => "no_checkout",
    NoCheckoutUpdate => "no_checkout_update",
    NoCodeProviders => "no_code_providers",
    NoManager => "no_manager",
    NoOffsite => "no_offsite",
    NoPairing => "no_pairing",
    NoSlipToPrint => "no_slip_to_print",
    NoSpace => "no_space",
    NoTransaction => "no_transaction",
    NotFound => "not_found",
    NotFrozen => "not_frozen",
    NotInstalled => "not_installed",
    NotUndoable => "not_undoable",
    NothingLost => "nothing_lost",
    OwnerOnly => "owner_only",
    RefundTooLarge => "refund_too_large",
    RunsInHub => "runs_in_hub",
    SetupRequired => "setup_required",
    SlipLineTooWide => "slip_line_too_wide",
    TerminalOffline => "terminal_offline",
    TooLarge => "too_large",
    TooManySlipLines => "too_many_slip_lines",
    Unauthorized => "unauthorized",
    UnsupportedMediaType => "unsupported_media_type",
    UpdateRefused => "update_refused",
    UploadFailed => "upload_failed",
    VoidElsewhere => "void_elsewhere",
    VoidSettled => "void_settled",
    WrongCurrentPassword => "wrong_current_password",
    WrongPassword => "wrong_password",
    SetupCodeWrong => "wrong_setup_code",
}

/// A refusal: its code and the values the page puts into its own words for
/// it (`params`), and an English `message` for API clients and logs.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: Code,
    pub message: String,
    pub params: Vec<(&'static str, String)>,
    /// Seconds, for a locked account.
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: Code, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            params: Vec::new(),
            retry_after: None,
        }
    }

    /// A value the page's words for this code name (`{name}`).
    pub fn with(mut self, name: &'static str, value: impl std::fmt::Display) -> ApiError {
        self.params.push((name, value.to_string()));
        self
    }
}

impl warp::reject::Reject for ApiError {}

pub fn reject(status: StatusCode, code: Code, message: impl Into<String>) -> Rejection {
    ApiError::new(status, code, message).into()
}

pub fn bad_request(code: Code, message: impl Into<String>) -> Rejection {
    reject(StatusCode::BAD_REQUEST, code, message)
}

/// A refusal that carries the hub's own words (which key, an outside
/// party's answer) as `detail`, for the page to show inside its own.
pub fn said(status: StatusCode, code: Code, words: String) -> Rejection {
    warp::reject::custom(ApiError::new(status, code, words.clone()).with("detail", words))
}

/// A checkout id that breaks the id rule (the rule said in `message`).
pub fn bad_terminal(message: impl std::fmt::Display) -> Rejection {
    bad_request(Code::BadTerminalId, format!("terminal: {message}"))
}

pub fn not_found(code: Code, message: impl Into<String>) -> Rejection {
    reject(StatusCode::NOT_FOUND, code, message)
}

/// A search filter the store cannot run: its field named for the page.
pub fn bad_filter(f: &crate::store::query::FilterError) -> Rejection {
    ApiError::new(StatusCode::BAD_REQUEST, Code::BadFilter, f.to_string())
        .with("field", f.field)
        .into()
}

/// A transaction that is not in the store.
pub fn no_transaction(id: i64) -> Rejection {
    ApiError::new(
        StatusCode::NOT_FOUND,
        Code::NoTransaction,
        format!("no transaction {id}"),
    )
    .with("id", id)
    .into()
}

/// A text over the length its field allows (`message` says the rule).
pub fn too_long(code: Code, message: &str, max: usize) -> Rejection {
    ApiError::new(StatusCode::BAD_REQUEST, code, message)
        .with("max", max)
        .into()
}

/// A checkout the hub has never heard from.
pub fn no_checkout(terminal: impl std::fmt::Display) -> Rejection {
    ApiError::new(
        StatusCode::NOT_FOUND,
        Code::NoCheckout,
        format!("no checkout {terminal}"),
    )
    .with("terminal", terminal)
    .into()
}

/// A checkout that is off, asked to do something now.
pub fn terminal_offline(terminal: impl std::fmt::Display, what_to_do: &str) -> Rejection {
    ApiError::new(
        StatusCode::CONFLICT,
        Code::TerminalOffline,
        format!("{terminal} is offline; {what_to_do}"),
    )
    .with("terminal", terminal)
    .into()
}

/// A failure inside the hub: logged in full, told to the page in general terms.
pub fn internal(e: impl std::fmt::Display) -> Rejection {
    tracing::error!(error = %e, "API failure");
    reject(
        StatusCode::INTERNAL_SERVER_ERROR,
        Code::Internal,
        "the hub could not read or write its database; see troubleshooting",
    )
}

pub fn error_body(status: StatusCode, code: Code, message: &str) -> warp::reply::Response {
    error_reply(&ApiError::new(status, code, message))
}

fn error_reply(e: &ApiError) -> warp::reply::Response {
    warp::reply::with_status(warp::reply::json(&error_json(e)), e.status).into_response()
}

fn error_json(e: &ApiError) -> serde_json::Value {
    let params: serde_json::Map<String, serde_json::Value> =
        e.params.iter().map(|(k, v)| (k.to_string(), json!(v))).collect();
    json!({"error": {"code": e.code.as_str(), "message": e.message, "params": params}})
}

pub async fn recover(e: Rejection) -> Result<warp::reply::Response, Infallible> {
    if let Some(api) = e.find::<ApiError>() {
        let mut reply = error_reply(api);
        if let Some(secs) = api.retry_after {
            if let Ok(v) = secs.to_string().parse() {
                reply.headers_mut().insert(RETRY_AFTER, v);
            }
        }
        return Ok(reply);
    }
    if e.is_not_found() {
        return Ok(error_body(StatusCode::NOT_FOUND, Code::NotFound, "no such page"));
    }
    if let Some(b) = e.find::<warp::filters::body::BodyDeserializeError>() {
        return Ok(error_body(
            StatusCode::BAD_REQUEST,
            Code::BadBody,
            &format!("the request body is not the JSON this address expects: {b}"),
        ));
    }
    if e.find::<warp::reject::PayloadTooLarge>().is_some() {
        return Ok(error_body(
            StatusCode::PAYLOAD_TOO_LARGE,
            Code::TooLarge,
            "the request body is too large",
        ));
    }
    if e.find::<warp::reject::UnsupportedMediaType>().is_some() {
        return Ok(error_body(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Code::UnsupportedMediaType,
            "send the body as application/json",
        ));
    }
    if e.find::<warp::reject::MethodNotAllowed>().is_some() {
        return Ok(error_body(
            StatusCode::METHOD_NOT_ALLOWED,
            Code::MethodNotAllowed,
            "this address does not answer that method",
        ));
    }
    Ok(error_body(
        StatusCode::BAD_REQUEST,
        Code::BadRequest,
        "the request could not be understood",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The page says every refusal in its own words, in each language: a
    /// code missing from a word table would reach a Chinese page as English.
    #[test]
    fn every_code_has_words_in_both_languages() {
        let words = include_str!("../../../web/i18n.js");
        let zh_at = words.find("\"zh-CN\": {").expect("the Chinese table");
        let (en, zh) = words.split_at(zh_at);
        let mut missing = Vec::new();
        for code in Code::ALL {
            let key = format!("e_{}:", code.as_str());
            for (lang, table) in [("en", en), ("zh-CN", zh)] {
                if !table.contains(&format!("    {key}")) && !table.contains(&format!(" {key}")) {
                    missing.push(format!("{lang} {key}"));
                }
            }
        }
        assert!(missing.is_empty(), "no words for: {missing:?}");
        let names: std::collections::HashSet<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(names.len(), Code::ALL.len(), "a wire name used twice");
    }

    #[test]
    fn a_refusal_carries_its_code_and_values() {
        let e = ApiError::new(StatusCode::CONFLICT, Code::TerminalOffline, "T2 is offline")
            .with("terminal", "T2");
        assert_eq!(
            error_json(&e),
            json!({"error": {"code": "terminal_offline", "message": "T2 is offline", "params": {"terminal": "T2"}}})
        );
    }
}
