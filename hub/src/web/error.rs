//! How the API says no: `{"error": {"code", "message"}}` with the matching
//! HTTP status, for every refusal — ours, and warp's own (bad JSON, wrong
//! method, body too large).

use std::convert::Infallible;

use serde_json::json;
use warp::http::{header::RETRY_AFTER, StatusCode};
use warp::{Rejection, Reply};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds, for a locked account.
    pub retry_after: Option<u64>,
}

impl warp::reject::Reject for ApiError {}

pub fn reject(status: StatusCode, code: &'static str, message: impl Into<String>) -> Rejection {
    warp::reject::custom(ApiError {
        status,
        code,
        message: message.into(),
        retry_after: None,
    })
}

pub fn bad_request(message: impl Into<String>) -> Rejection {
    reject(StatusCode::BAD_REQUEST, "bad_request", message)
}

pub fn not_found(message: impl Into<String>) -> Rejection {
    reject(StatusCode::NOT_FOUND, "not_found", message)
}

/// A failure inside the hub: logged in full, told to the page in general terms.
pub fn internal(e: impl std::fmt::Display) -> Rejection {
    tracing::error!(error = %e, "API failure");
    reject(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        "the hub could not read or write its database; see troubleshooting",
    )
}

pub fn error_body(status: StatusCode, code: &str, message: &str) -> warp::reply::Response {
    let body = json!({"error": {"code": code, "message": message}});
    warp::reply::with_status(warp::reply::json(&body), status).into_response()
}

pub async fn recover(e: Rejection) -> Result<warp::reply::Response, Infallible> {
    if let Some(api) = e.find::<ApiError>() {
        let mut reply = error_body(api.status, api.code, &api.message);
        if let Some(secs) = api.retry_after {
            if let Ok(v) = secs.to_string().parse() {
                reply.headers_mut().insert(RETRY_AFTER, v);
            }
        }
        return Ok(reply);
    }
    if e.is_not_found() {
        return Ok(error_body(StatusCode::NOT_FOUND, "not_found", "no such page"));
    }
    if let Some(b) = e.find::<warp::filters::body::BodyDeserializeError>() {
        return Ok(error_body(
            StatusCode::BAD_REQUEST,
            "bad_request",
            &format!("the request body is not the JSON this address expects: {b}"),
        ));
    }
    if e.find::<warp::reject::PayloadTooLarge>().is_some() {
        return Ok(error_body(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            "the request body is too large",
        ));
    }
    if e.find::<warp::reject::UnsupportedMediaType>().is_some() {
        return Ok(error_body(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send the body as application/json",
        ));
    }
    if e.find::<warp::reject::MethodNotAllowed>().is_some() {
        return Ok(error_body(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this address does not answer that method",
        ));
    }
    Ok(error_body(
        StatusCode::BAD_REQUEST,
        "bad_request",
        "the request could not be understood",
    ))
}
