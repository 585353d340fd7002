//! Bytes to messages and back: the `"v"` version, the size cap and typed
//! errors for everything a sender can get wrong.

use serde::Serialize;
use serde_json::Value;

use super::{ErrorCode, Request, Response, Status, MAX_PAYLOAD, REQUEST_TYPES, RESPONSE_TYPES, VERSION};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ProtocolError {
    pub code: ErrorCode,
    pub message: String,
    /// The request id, when it could be read, so the error can be correlated.
    pub request_id: Option<String>,
}

impl ProtocolError {
    pub fn into_response(self) -> Response {
        Response::Error {
            request_id: self.request_id,
            code: self.code,
            message: self.message,
        }
    }
}

/// A message that cannot be put on the wire: a bug on the sending side, never
/// something to send half of (an empty payload would reach the other side as
/// "not JSON" and hide where it went wrong).
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    #[error("the message cannot be written as JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the message is not a JSON object, so it cannot carry \"v\"")]
    NotAnObject,
}

/// The message as JSON with `"v": 1` in its object.
pub fn encode<T: Serialize>(message: &T) -> Result<Vec<u8>, EncodeError> {
    let mut value = serde_json::to_value(message)?;
    let Value::Object(map) = &mut value else {
        return Err(EncodeError::NotAnObject);
    };
    map.insert("v".into(), Value::from(VERSION));
    Ok(serde_json::to_vec(&value)?)
}

/// Checks size, JSON shape and version, then reads the message type `T`.
/// `known_types` lists the `"type"` tags `T` has, to tell "unknown type" from
/// "malformed".
fn decode<T: serde::de::DeserializeOwned>(payload: &[u8], known_types: &[&str]) -> Result<T, ProtocolError> {
    let fail = |code, message: String, request_id| ProtocolError {
        code,
        message,
        request_id,
    };
    if payload.len() > MAX_PAYLOAD {
        return Err(fail(
            ErrorCode::TooLarge,
            format!("payload is {} bytes; the limit is {MAX_PAYLOAD}", payload.len()),
            None,
        ));
    }
    let value: Value = serde_json::from_slice(payload)
        .map_err(|e| fail(ErrorCode::Malformed, format!("not JSON: {e}"), None))?;
    let Value::Object(mut map) = value else {
        return Err(fail(
            ErrorCode::Malformed,
            "payload is not a JSON object".into(),
            None,
        ));
    };
    let request_id = map.get("request_id").and_then(Value::as_str).map(str::to_string);
    match map.remove("v") {
        Some(v) if v.as_u64() == Some(u64::from(VERSION)) => {}
        Some(v) => {
            return Err(fail(
                ErrorCode::UnsupportedVersion,
                format!("protocol version {v} is not supported; this side speaks v{VERSION}"),
                request_id,
            ))
        }
        None => {
            return Err(fail(
                ErrorCode::UnsupportedVersion,
                format!("\"v\" is missing; this side speaks v{VERSION}"),
                request_id,
            ))
        }
    }
    match map.get("type").and_then(Value::as_str) {
        Some(t) if known_types.contains(&t) => {}
        Some(t) => {
            return Err(fail(
                ErrorCode::UnknownType,
                format!("unknown message type '{t}'"),
                request_id,
            ))
        }
        None => {
            return Err(fail(
                ErrorCode::Malformed,
                "\"type\" is missing or not a string".into(),
                request_id,
            ))
        }
    }
    serde_json::from_value(Value::Object(map))
        .map_err(|e| fail(ErrorCode::Malformed, format!("bad message: {e}"), request_id))
}

pub fn decode_request(payload: &[u8]) -> Result<Request, ProtocolError> {
    decode(payload, &REQUEST_TYPES)
}

pub fn decode_response(payload: &[u8]) -> Result<Response, ProtocolError> {
    decode(payload, RESPONSE_TYPES)
}

pub fn decode_status(payload: &[u8]) -> Result<Status, ProtocolError> {
    decode(payload, &["status"])
}
