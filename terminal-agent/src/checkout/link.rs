//! The checkout's side of the link to the hub, sans-IO: sealing what goes
//! out, opening what comes in (the replay guard, and which answers a paired
//! checkout takes unsealed), pairing, and the link's clocks — when to re-send
//! an unanswered request, when a pairing has waited long enough, when the hub
//! has been silent too long on a sale, and stopping only once idle. Time is
//! passed in as `now`, and each clock says when it next falls due, so that
//! [`super::Checkout::poll_timeout`] can wake the runtime then.

use std::time::{Duration, Instant};
use tallybox_core::protocol::requests;

use tallybox_core::protocol::{
    decode_response, encode, EncodeError, ErrorCode, Request, RequestId, Response,
};
use tallybox_core::seal::{self, Direction, Key, PairError, Pairing, ReplayGuard, SealError};

/// How long a pairing waits for the hub's answer.
pub const PAIRING_WAIT: Duration = Duration::from_secs(10);

/// Why an answer from the hub was not taken.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refused {
    #[error("answer refused: {0}")]
    Seal(#[from] SealError),
    #[error("sealed answer, but this terminal is not paired: pair it (menu D 5)")]
    NotPaired,
    #[error("unsealed answer refused: this terminal is paired")]
    Unsealed,
    /// Anyone on the LAN can say this in clear; the hub says it so only
    /// when it holds no key for this checkout. The core checks with a sealed
    /// sign-in before it believes it ([`super::Checkout`]).
    #[error("the hub says in clear that this terminal is not paired: checking with a sealed sign-in")]
    UnsealedNotPaired,
    #[error("unreadable answer from hub ignored: {0}")]
    Unreadable(String),
}

/// Why the checkout stops, once it is idle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The owner asked for a restart.
    Restart,
    /// A new version is installed.
    Updated(String),
}

/// A pairing under way.
struct PairingUnderWay {
    request_id: RequestId,
    /// `None` when it could not even start (reported as failed at once).
    exchange: Option<Pairing>,
    sent_at: Instant,
}

/// The link's state; see the module doc.
pub struct HubLink {
    terminal: String,
    store: String,
    key: Option<Key>,
    replay: ReplayGuard,
    pairing: Option<PairingUnderWay>,
    retry_every: Duration,
    silent_after: Duration,
    last_send: Option<Instant>,
    /// The request waited on, since when, and whether the cashier was told.
    waiting: Option<(RequestId, Instant, bool)>,
    ending: Option<Ending>,
}

impl HubLink {
    pub fn new(
        terminal: &str,
        store: &str,
        key: Option<Key>,
        retry_every: Duration,
        silent_after: Duration,
    ) -> Self {
        HubLink {
            terminal: terminal.to_string(),
            store: store.to_string(),
            key,
            replay: ReplayGuard::default(),
            pairing: None,
            retry_every,
            silent_after,
            last_send: None,
            waiting: None,
            ending: None,
        }
    }

    /// A link that has already taken the hub's messages up to counter `seen`
    /// (its replay mark, kept across a restart).
    pub fn remembering(mut self, seen: u64) -> Self {
        self.replay = ReplayGuard::from_seen(seen);
        self
    }

    /// The highest counter taken from the hub: what to keep for the next start.
    pub fn seen(&self) -> u64 {
        self.replay.seen()
    }

    /// The terminal this link is for.
    pub fn terminal(&self) -> &str {
        &self.terminal
    }

    pub fn is_paired(&self) -> bool {
        self.key.is_some()
    }

    /// The key the pairing gave, if paired.
    pub fn key(&self) -> Option<&Key> {
        self.key.as_ref()
    }

    /// The bytes to publish for `request`: sealed once paired (with the
    /// counter `next_counter` gives), except the pairing's own request.
    pub fn outgoing(
        &mut self,
        request: &Request,
        now: Instant,
        next_counter: impl FnOnce() -> u64,
    ) -> Result<Vec<u8>, EncodeError> {
        self.last_send = Some(now);
        let plain = encode(request)?;
        Ok(match &self.key {
            Some(key) if !matches!(request, Request::Pair(requests::Pair { .. })) => {
                seal::seal(key, Direction::ToHub, &self.terminal, next_counter(), &plain)
            }
            _ => plain,
        })
    }

    /// An answer from the hub, opened. A paired checkout takes nothing
    /// unsealed but the pairing's answers; the hub saying in clear that it
    /// is not paired comes back as [`Refused::UnsealedNotPaired`].
    pub fn incoming(&mut self, payload: &[u8]) -> Result<Response, Refused> {
        let sealed = seal::is_sealed(payload);
        let plain = match (&self.key, sealed) {
            (Some(key), true) => {
                let (counter, plain) = seal::open(key, Direction::ToTerminal, &self.terminal, payload)?;
                self.replay.accept(counter)?;
                plain
            }
            (None, true) => return Err(Refused::NotPaired),
            (_, false) => payload.to_vec(),
        };
        let response = decode_response(&plain).map_err(|e| Refused::Unreadable(e.to_string()))?;
        let pairing_answer = self
            .pairing
            .as_ref()
            .is_some_and(|p| response.request_id() == Some(p.request_id.as_str()));
        let not_paired = matches!(
            response,
            Response::Error {
                code: ErrorCode::NotPaired,
                ..
            }
        );
        if self.key.is_some() && !sealed && !pairing_answer {
            return Err(match not_paired {
                true => Refused::UnsealedNotPaired,
                false => Refused::Unsealed,
            });
        }
        Ok(response)
    }

    /// Starts a pairing with the owner's code: the request to send, or why
    /// not (then [`HubLink::pairing_expired`] reports it failed at once).
    pub fn start_pairing(&mut self, code: &str, now: Instant) -> Result<Request, PairError> {
        let request_id = RequestId::new();
        match seal::pair_start(code, &self.terminal, &self.store) {
            Ok((exchange, message)) => {
                self.pairing = Some(PairingUnderWay {
                    request_id: request_id.clone(),
                    exchange: Some(exchange),
                    sent_at: now,
                });
                Ok(Request::Pair(requests::Pair { request_id, message }))
            }
            Err(e) => {
                self.pairing = Some(PairingUnderWay {
                    request_id,
                    exchange: None,
                    sent_at: now.checked_sub(PAIRING_WAIT).unwrap_or(now),
                });
                Err(e)
            }
        }
    }

    /// When `response` answers the pairing under way: the key it gives (for
    /// the runtime to keep, then [`HubLink::paired`]) or why it failed.
    pub fn finish_pairing(&mut self, response: &Response) -> Option<Result<Key, String>> {
        let under_way = self.pairing.as_ref()?;
        if response.request_id() != Some(under_way.request_id.as_str()) {
            return None;
        }
        let exchange = self.pairing.take()?.exchange;
        Some(match (response, exchange) {
            (Response::Paired { message, confirm, .. }, Some(exchange)) => {
                exchange.finish(message, confirm).map_err(|e| e.to_string())
            }
            (
                Response::Error {
                    code: ErrorCode::NoPairing,
                    ..
                },
                _,
            ) => Err("no pairing open".into()),
            (Response::Error { message, .. }, _) => Err(message.clone()),
            _ => Err("unexpected answer".into()),
        })
    }

    /// The key is kept: from now on every message is sealed with it.
    pub fn paired(&mut self, key: Key) {
        self.key = Some(key);
        self.replay = ReplayGuard::default();
    }

    /// True once, when a pairing has waited [`PAIRING_WAIT`] for the hub.
    pub fn pairing_expired(&mut self, now: Instant) -> bool {
        let expired = self
            .pairing
            .as_ref()
            .is_some_and(|p| now.duration_since(p.sent_at) >= PAIRING_WAIT);
        if expired {
            self.pairing = None;
        }
        expired
    }

    /// Whether the unanswered requests are due to be sent again.
    pub fn resend_due(&self, now: Instant) -> bool {
        self.last_send
            .is_none_or(|sent| now.duration_since(sent) >= self.retry_every)
    }

    /// When the unanswered requests fall due again (`None`: nothing sent yet).
    pub fn resend_at(&self) -> Option<Instant> {
        self.last_send.map(|sent| sent + self.retry_every)
    }

    /// When the pairing under way has waited long enough.
    pub fn pairing_deadline(&self) -> Option<Instant> {
        self.pairing.as_ref().map(|p| p.sent_at + PAIRING_WAIT)
    }

    /// When the cashier is to be told the hub is silent on the request
    /// waited on, unless it answers first.
    pub fn silent_at(&self) -> Option<Instant> {
        match &self.waiting {
            Some((_, since, false)) => Some(*since + self.silent_after),
            _ => None,
        }
    }

    /// True once, when the same request has waited longer than the limit:
    /// the cashier is told the hub is silent (the sale may still finish).
    pub fn hub_silent(&mut self, waiting_on: Option<&RequestId>, now: Instant) -> bool {
        match (&mut self.waiting, waiting_on) {
            (Some((waited, since, told)), Some(current)) if waited == current => {
                if !*told && now.duration_since(*since) >= self.silent_after {
                    *told = true;
                    return true;
                }
                false
            }
            (slot, Some(current)) => {
                *slot = Some((current.clone(), now, false));
                false
            }
            (slot, None) => {
                *slot = None;
                false
            }
        }
    }

    /// The checkout is to stop for `why`, once it is idle.
    pub fn stop_when_idle(&mut self, why: Ending) {
        self.ending = Some(why);
    }

    /// Why to stop now, given whether the checkout is idle: never in the
    /// middle of a sale.
    pub fn stop_now(&self, idle: bool) -> Option<&Ending> {
        self.ending.as_ref().filter(|_| idle)
    }
}

#[cfg(test)]
mod tests;
