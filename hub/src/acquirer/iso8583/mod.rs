//! The ISO 8583 acquirer link: the message codec ([`codec`]), the MAC in
//! field 64 ([`mac`]), what each transaction looks like on the wire
//! ([`messages`]), the hub's client ([`client`]) and the simulated acquirer
//! host that `tallybox acquirer-sim` runs ([`host`]), over TCP or TLS
//! ([`tls`]); China UnionPay hosts' own batch numbers ([`batches`]).

pub mod batches;
pub mod client;
pub mod codec;
pub mod host;
pub mod keys;
pub mod mac;
pub mod messages;
pub mod tls;
