//! The wire protocol between checkout points and the hub: MQTT topics and the
//! versioned JSON messages on them. `PROTOCOL.md` beside this crate documents
//! the same thing for someone writing a terminal in another language.
//!
//! Decoding is strict and typed: a payload that is too large, not JSON, of
//! another version or of an unknown type becomes a [`ProtocolError`] with a
//! code the sender can act on, never a panic.

mod codec;
mod health;
mod ids;
pub mod requests;
mod responses;
mod tender;
mod topics;
mod txn;

pub use codec::{decode_request, decode_response, decode_status, encode, EncodeError, ProtocolError};
pub use health::{Bluetooth, DeviceHealth, MachineHealth, Power, PrinterProblem, Status};
pub use ids::{RequestId, TerminalId};
pub use requests::{Request, RequestKind, REQUEST_TYPES};
pub use responses::{Cashier, DrawerCount, ErrorCode, Outcome, Receipt, Response, RESPONSE_TYPES};
pub use tender::{CardPaid, Paid, Provider, Tender};
pub use topics::Topics;
pub use txn::{TxnKind, TxnStatus};

/// The `"v"` every payload carries.
pub const VERSION: u32 = 1;
/// Payloads larger than this are refused before parsing.
pub const MAX_PAYLOAD: usize = 16 * 1024;

#[cfg(test)]
mod tests;
