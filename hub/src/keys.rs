//! The hub's side of pairing and sealed messages (`tallybox_core::seal`):
//! each terminal's key, the one pairing the owner has open, and what the
//! MQTT link lets through.
//!
//! - A paired terminal's requests must be sealed with its key; an unsealed
//!   one, a forged one and a replayed one are dropped and logged.
//! - A revoked terminal is refused (`not_paired`) until it pairs again.
//! - An unpaired terminal is refused when the owner requires pairing;
//!   otherwise it is served in the clear, as before pairing existed.
//! - The answers to a paired terminal are sealed with its key.
//!
//! A pairing: the owner opens one on the web page (an 8-digit code, ten
//! minutes, three tries); the terminal sends its SPAKE2 message; the hub
//! answers with its own and keeps the resulting key as *pending*. The
//! terminal's first sealed message that opens with it proves the terminal
//! keyed the same code: the key becomes the terminal's and the code is spent.
//! Pairing a paired terminal again gives it a new key (rotation).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tallybox_core::card::pin_block::{self, PinKey};
use tallybox_core::protocol::requests;

use tallybox_core::protocol::{encode, EncodeError, ErrorCode, Request, RequestId, Response, TerminalId};
use tallybox_core::seal::{self, Direction, Key, ReplayGuard};
use tallybox_platform::sealed_files::Counter;

use crate::shop::SharedShop;
use crate::store::{Store, StoreError};

/// How long a pairing code stays usable.
pub const PAIRING_LIFETIME: Duration = Duration::from_secs(600);
/// Pairing attempts one code allows (a wrong code costs one).
pub const PAIRING_TRIES: u8 = 3;

#[derive(Debug, Default)]
struct Link {
    key: Option<Key>,
    pending: Option<Key>,
    revoked: bool,
    replay: ReplayGuard,
    /// The counter last saved for `replay` ([`Keys::save_replay_marks`]).
    saved: u64,
    /// When a sealed message from the terminal was last opened: proof that
    /// it was there, which nobody without its key can give.
    heard: Option<Instant>,
}

#[derive(Debug, Clone)]
struct OpenPairing {
    code: String,
    expires: Instant,
    tries_left: u8,
    /// The checkout the owner opened it for; `None`: any.
    terminal: Option<String>,
    /// The terminal this code paired, once it did.
    paired: Option<String>,
    /// The answers given, by terminal and request id: a copy of a request
    /// (the protocol's retry) gets the same answer and costs no try.
    answered: Vec<(String, RequestId, Response)>,
    /// Attempts in the name of other checkouts: refused, costing no try.
    others: u32,
    /// The last of those other ids.
    last_other: Option<String>,
}

/// The pairing the owner has open, as the page shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PairingStatus {
    pub code: String,
    pub expires_in_s: u64,
    pub tries_left: u8,
    /// The checkout the code is for, when the owner named one.
    pub terminal: Option<String>,
    pub paired: Option<String>,
    /// Attempts with this code in other checkouts' names (someone else on
    /// the network trying, or a checkout with another id), and the last id.
    pub others: u32,
    pub last_other: Option<String>,
}

/// Why a message from a terminal is not served.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Answer (in the clear) that the terminal must pair.
    NotPaired(&'static str),
    /// Drop it without an answer, and log why.
    Drop(String),
}

pub struct Keys {
    store_id: String,
    shop: SharedShop,
    db: Arc<Mutex<Store>>,
    links: RwLock<HashMap<String, Link>>,
    pairing: Mutex<Option<OpenPairing>>,
    counter: Counter,
    /// Held from a message's seal to its place in the broker's queue.
    sending: tokio::sync::Mutex<()>,
}

impl Keys {
    /// The keys the store holds; `db` is a connection of the keys' own, and
    /// the counter of the messages the hub seals is kept in `counter_file`.
    pub fn load(
        db: Store,
        shop: SharedShop,
        store_id: &str,
        counter_file: &std::path::Path,
    ) -> Result<Keys, StoreError> {
        let counter = Counter::kept_in(counter_file).map_err(|error| StoreError::DataDir {
            dir: counter_file.display().to_string(),
            error,
        })?;
        let links = db
            .terminal_keys()?
            .into_iter()
            .map(|row| {
                (
                    row.terminal_id,
                    Link {
                        key: row.key,
                        pending: row.pending,
                        revoked: row.revoked,
                        replay: ReplayGuard::from_seen(row.rx_seen),
                        saved: row.rx_seen,
                        heard: None,
                    },
                )
            })
            .collect();
        Ok(Keys {
            store_id: store_id.to_string(),
            shop,
            db: Arc::new(Mutex::new(db)),
            links: RwLock::new(links),
            pairing: Mutex::new(None),
            counter,
            sending: tokio::sync::Mutex::new(()),
        })
    }

    /// Saves each paired terminal's highest accepted counter where it moved
    /// (the hub does this every few seconds and at a clean stop): after a
    /// restart, a captured message older than that is refused as a replay.
    /// A crash can lose the last few seconds' marks; what those messages ask
    /// for is answered by request id, never done twice.
    pub fn save_replay_marks(&self) -> Result<usize, StoreError> {
        let moved: Vec<(String, u64)> = self
            .links
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(_, l)| l.replay.seen() != l.saved)
            .map(|(t, l)| (t.clone(), l.replay.seen()))
            .collect();
        if moved.is_empty() {
            return Ok(0);
        }
        self.write(|s| s.save_rx_seen(&moved))?;
        let mut links = self.links.write().unwrap_or_else(|e| e.into_inner());
        for (terminal, seen) in &moved {
            if let Some(link) = links.get_mut(terminal) {
                link.saved = *seen;
            }
        }
        Ok(moved.len())
    }

    fn write<R>(&self, f: impl FnOnce(&mut Store) -> Result<R, StoreError>) -> Result<R, StoreError> {
        f(&mut self.db.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// `paired`, `pairing` (answered, not yet proven), `revoked` or `unpaired`.
    pub fn state(&self, terminal: &str) -> &'static str {
        match self.links.read().unwrap_or_else(|e| e.into_inner()).get(terminal) {
            Some(Link { revoked: true, .. }) => "revoked",
            Some(Link { key: Some(_), .. }) => "paired",
            Some(Link { pending: Some(_), .. }) => "pairing",
            _ => "unpaired",
        }
    }

    /// Whether `password` lets a client connect to the embedded broker as
    /// `terminal`: a paired terminal must show the login its key gives (so
    /// nobody else can take its connection over); one without a key may
    /// connect with any, since it has to reach the hub to pair and to hear
    /// that it must.
    pub fn broker_login(&self, terminal: &str, password: &str) -> Result<(), &'static str> {
        let links = self.links.read().unwrap_or_else(|e| e.into_inner());
        let Some(link) = links.get(terminal).filter(|l| !l.revoked) else {
            return Ok(());
        };
        let keys: Vec<&Key> = link.key.iter().chain(link.pending.iter()).collect();
        if keys.is_empty()
            || keys.iter().any(|k| {
                seal::same_secret(seal::broker_password(k, terminal).as_bytes(), password.as_bytes())
            })
        {
            return Ok(());
        }
        Err(if password.is_empty() {
            "no password, and this checkout is paired"
        } else {
            "wrong password for a paired checkout"
        })
    }

    /// Opens a sealed request from `terminal`.
    pub fn open(&self, terminal: &TerminalId, payload: &[u8]) -> Result<Vec<u8>, Refusal> {
        let tid = terminal.as_str();
        let mut links = self.links.write().unwrap_or_else(|e| e.into_inner());
        // A revoked terminal has no key: only a new pairing's pending one.
        let Some(link) = links
            .get_mut(tid)
            .filter(|l| l.key.is_some() || l.pending.is_some())
        else {
            return Err(Refusal::NotPaired(
                "a sealed message from a terminal the hub holds no key for",
            ));
        };
        let opened = link
            .key
            .as_ref()
            .map(|k| seal::open(k, Direction::ToHub, tid, payload));
        let (counter, plain) = match opened {
            Some(Ok(opened)) => opened,
            Some(Err(e)) if link.pending.is_none() => return Err(Refusal::Drop(e.to_string())),
            _ => {
                // The pending key of a pairing: this message proves the terminal holds it.
                let pending = link.pending.expect("checked above");
                let opened = seal::open(&pending, Direction::ToHub, tid, payload)
                    .map_err(|e| Refusal::Drop(e.to_string()))?;
                link.key = Some(pending);
                link.pending = None;
                link.revoked = false;
                link.replay = ReplayGuard::default();
                if let Err(e) = self.write(|s| s.activate_key(tid)) {
                    tracing::error!(terminal = %tid, error = %e, "pairing proven but not stored; the terminal must pair again after a restart");
                }
                if let Some(p) = self.pairing.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
                    p.paired = Some(tid.to_string());
                }
                tracing::info!(terminal = %tid, "terminal paired: its messages are sealed with its own key");
                opened
            }
        };
        link.replay
            .accept(counter)
            .map_err(|e| Refusal::Drop(e.to_string()))?;
        link.heard = Some(Instant::now());
        Ok(plain)
    }

    /// Whether `terminal` holds a key the hub accepts: its statuses, which
    /// are not sealed, are then claims to check, not facts.
    pub fn is_paired(&self, terminal: &TerminalId) -> bool {
        let links = self.links.read().unwrap_or_else(|e| e.into_inner());
        links
            .get(terminal.as_str())
            .is_some_and(|l| l.key.is_some() && !l.revoked)
    }

    /// Whether a sealed message from `terminal` was opened after `since`.
    pub fn heard_since(&self, terminal: &TerminalId, since: Instant) -> bool {
        let links = self.links.read().unwrap_or_else(|e| e.into_inner());
        links
            .get(terminal.as_str())
            .and_then(|l| l.heard)
            .is_some_and(|at| at > since)
    }

    /// Whether the owner lets only paired checkouts sell.
    pub fn pairing_required(&self) -> bool {
        crate::shop::current(&self.shop).pairing_required
    }

    /// Whether `terminal`'s status may be recorded: it is paired, or the
    /// owner lets checkouts sell without pairing. A stranger's made-up ids
    /// on a hub that requires pairing leave no row and cost no write.
    pub fn may_report(&self, terminal: &TerminalId) -> bool {
        let links = self.links.read().unwrap_or_else(|e| e.into_inner());
        match links.get(terminal.as_str()) {
            Some(Link { revoked: true, .. }) => false,
            Some(Link { key: Some(_), .. }) => true,
            _ => !crate::shop::current(&self.shop).pairing_required,
        }
    }

    /// Whether an unsealed request from `terminal` may be served.
    pub fn admit_plain(&self, terminal: &TerminalId, request: &Request) -> Result<(), Refusal> {
        if matches!(request, Request::Pair(requests::Pair { .. })) {
            return Ok(());
        }
        let links = self.links.read().unwrap_or_else(|e| e.into_inner());
        match links.get(terminal.as_str()) {
            Some(Link { revoked: true, .. }) => Err(Refusal::NotPaired("revoked by the owner")),
            Some(Link { key: Some(_), .. }) => Err(Refusal::Drop(
                "an unsealed message in the name of a paired terminal: forged, or the terminal lost its key"
                    .into(),
            )),
            _ if crate::shop::current(&self.shop).pairing_required => {
                Err(Refusal::NotPaired("the owner requires pairing"))
            }
            _ => Ok(()),
        }
    }

    /// To be held from [`Keys::outgoing`] until the message is queued for
    /// the broker: a checkout drops a message whose counter is not above the
    /// last it took, so two answers sealed at once must leave in the order
    /// of their counters (else the lower is dropped as a replay and its
    /// request waits for the checkout's re-send).
    pub async fn in_order(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.sending.lock().await
    }

    /// The bytes to publish to `terminal`: sealed once it has a key, except
    /// the answers that must reach a terminal without one.
    pub fn outgoing(&self, terminal: &TerminalId, response: &Response) -> Result<Vec<u8>, EncodeError> {
        let plain = encode(response)?;
        let clear = matches!(
            response,
            Response::Paired { .. }
                | Response::Error {
                    code: ErrorCode::NotPaired | ErrorCode::NoPairing,
                    ..
                }
        );
        let links = self.links.read().unwrap_or_else(|e| e.into_inner());
        let key = links.get(terminal.as_str()).and_then(|l| l.key.or(l.pending));
        match key {
            Some(key) if !clear => Ok(seal::seal(
                &key,
                Direction::ToTerminal,
                terminal.as_str(),
                self.counter.next(),
                &plain,
            )),
            _ => Ok(plain),
        }
    }

    /// The owner opens a pairing: a new code (any open one is replaced).
    /// Opens a pairing for `terminal` (only its attempts count), or for any
    /// checkout when `None`.
    pub fn start_pairing(&self, terminal: Option<&TerminalId>) -> PairingStatus {
        let open = OpenPairing {
            code: seal::new_code(),
            expires: Instant::now() + PAIRING_LIFETIME,
            tries_left: PAIRING_TRIES,
            terminal: terminal.map(|t| t.to_string()),
            paired: None,
            answered: Vec::new(),
            others: 0,
            last_other: None,
        };
        *self.pairing.lock().unwrap_or_else(|e| e.into_inner()) = Some(open);
        tracing::info!(terminal = ?terminal.map(|t| t.as_str()), "pairing opened on the owner's page");
        self.pairing().expect("just opened")
    }

    pub fn cancel_pairing(&self) -> bool {
        self.pairing
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .is_some()
    }

    /// The open pairing, if any (also once it paired a terminal or ran out,
    /// until it expires, so the page can say how it ended).
    pub fn pairing(&self) -> Option<PairingStatus> {
        let mut guard = self.pairing.lock().unwrap_or_else(|e| e.into_inner());
        let open = guard.as_ref()?;
        let Some(left) = open.expires.checked_duration_since(Instant::now()) else {
            *guard = None;
            return None;
        };
        Some(PairingStatus {
            code: open.code.clone(),
            expires_in_s: left.as_secs(),
            tries_left: open.tries_left,
            terminal: open.terminal.clone(),
            paired: open.paired.clone(),
            others: open.others,
            last_other: open.last_other.clone(),
        })
    }

    /// A terminal's pairing message: the hub's half, or why not.
    pub fn pair(&self, terminal: &TerminalId, request_id: RequestId, message: &str) -> Response {
        let refuse = |code: ErrorCode, message: &str| Response::Error {
            request_id: Some(request_id.to_string()),
            code,
            message: message.into(),
        };
        // Held throughout, so that copies of one request arriving side by
        // side get the one answer.
        let mut guard = self.pairing.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(open) = guard.as_ref() {
            let copy = open
                .answered
                .iter()
                .find(|(t, id, _)| t == terminal.as_str() && *id == request_id);
            if let Some((_, _, answer)) = copy {
                return answer.clone();
            }
        }
        let usable = guard
            .as_ref()
            .is_some_and(|p| p.expires > Instant::now() && p.tries_left > 0 && p.paired.is_none());
        if !usable {
            tracing::debug!(terminal = %terminal, "pairing refused: no pairing open");
            return refuse(
                ErrorCode::NoPairing,
                "no pairing open: start one on the owner's page (Terminals)",
            );
        }
        let open = guard.as_mut().expect("checked above");
        if open.terminal.as_deref().is_some_and(|t| t != terminal.as_str()) {
            open.others += 1;
            open.last_other = Some(terminal.to_string());
            tracing::debug!(terminal = %terminal, "pairing refused: the code is for another checkout");
            return refuse(
                ErrorCode::NoPairing,
                "the open pairing is for another checkout: the owner names this checkout's id when opening one",
            );
        }
        open.tries_left -= 1;
        let answered = match seal::pair_answer(&open.code, terminal.as_str(), &self.store_id, message) {
            Ok(answer) => answer,
            Err(e) => {
                let answer = refuse(ErrorCode::Malformed, &e.to_string());
                open.answered
                    .push((terminal.to_string(), request_id, answer.clone()));
                return answer;
            }
        };
        let (key, ours, confirm) = answered;
        if let Err(e) = self.write(|s| s.set_pending_key(terminal.as_str(), &key)) {
            tracing::error!(terminal = %terminal, error = %e, "pairing key not stored");
            return refuse(ErrorCode::Internal, "the hub could not store the key; try again");
        }
        let answer = Response::Paired {
            request_id: request_id.clone(),
            message: ours,
            confirm,
        };
        open.answered
            .push((terminal.to_string(), request_id, answer.clone()));
        // Never both locks at once: `open` takes the links, then the pairing.
        drop(guard);
        let mut links = self.links.write().unwrap_or_else(|e| e.into_inner());
        // A revoked terminal stays revoked until it proves it holds this key.
        links.entry(terminal.as_str().to_string()).or_default().pending = Some(key);
        drop(links);
        tracing::info!(terminal = %terminal, "pairing answered; waiting for the terminal's first sealed message");
        answer
    }

    /// The owner withdraws a terminal's key: it is refused until paired again.
    pub fn revoke(&self, terminal: &TerminalId, by: &str) -> Result<(), StoreError> {
        self.write(|s| s.revoke_key(terminal.as_str(), by))?;
        let mut links = self.links.write().unwrap_or_else(|e| e.into_inner());
        let link = links.entry(terminal.as_str().to_string()).or_default();
        *link = Link {
            revoked: true,
            ..Link::default()
        };
        tracing::warn!(terminal = %terminal, account = %by, "terminal's key revoked");
        Ok(())
    }

    /// The key of one of the hub's own in-process checkouts: the one it has,
    /// or a new one (written to the store; the caller hands it to the checkout).
    pub fn own_key(&self, terminal: &TerminalId, have: Option<Key>) -> Result<Key, StoreError> {
        let mut links = self.links.write().unwrap_or_else(|e| e.into_inner());
        let link = links.entry(terminal.as_str().to_string()).or_default();
        if let (Some(have), Some(key)) = (have, link.key) {
            if have == key && !link.revoked {
                return Ok(key);
            }
        }
        let key: Key = rand::random();
        self.write(|s| s.set_own_key(terminal.as_str(), &key))?;
        *link = Link {
            key: Some(key),
            ..Link::default()
        };
        Ok(key)
    }

    /// The PIN key of a paired checkout (derived from its pairing key, as
    /// the checkout derives it); none for a checkout that is not paired, or
    /// whose key the owner revoked.
    pub fn checkout_pin_key(&self, terminal: &TerminalId) -> Option<PinKey> {
        let links = self.links.read().unwrap_or_else(|e| e.into_inner());
        let link = links.get(terminal.as_str()).filter(|l| !l.revoked)?;
        link.key.as_ref().map(pin_block::checkout_key)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Keys of a shop that requires pairing, kept in `dir`.
    pub(crate) fn keys(dir: &std::path::Path) -> Keys {
        let shop = Arc::new(std::sync::RwLock::new(crate::shop::Shop {
            name: "Corner Shop".into(),
            address: String::new(),
            slip_header: Vec::new(),
            slip_footer: Vec::new(),
            supervisor_pin_hash: None,
            cashier_sign_on: false,
            pairing_required: true,
            managers_unfreeze: false,
            time_zone: None,
            merchant_id: String::new(),
            public_url: String::new(),
        }));
        Keys::load(Store::open(dir).unwrap(), shop, "shop", &dir.join("seal-counter")).unwrap()
    }

    fn id(s: &str) -> TerminalId {
        TerminalId::parse(s).unwrap()
    }

    #[test]
    fn a_code_for_one_checkout_is_not_spent_by_others_and_copies_get_one_answer() {
        let dir = tempfile::tempdir().unwrap();
        let keys = keys(dir.path());
        let code = keys.start_pairing(Some(&id("T1"))).code;

        // Someone else, in another checkout's name: refused, no try spent.
        let (_, stranger) = seal::pair_start(&code, "X9", "shop").unwrap();
        for _ in 0..5 {
            let refused = keys.pair(&id("X9"), RequestId::new(), &stranger);
            assert!(
                matches!(
                    refused,
                    Response::Error {
                        code: ErrorCode::NoPairing,
                        ..
                    }
                ),
                "{refused:?}"
            );
        }
        let status = keys.pairing().unwrap();
        assert_eq!(
            (status.tries_left, status.others, status.last_other.as_deref()),
            (3, 5, Some("X9"))
        );

        // T1's request and two copies of it (its retries): one answer, one try.
        let (_, message) = seal::pair_start(&code, "T1", "shop").unwrap();
        let request = RequestId::new();
        let answers: Vec<Response> = (0..3)
            .map(|_| keys.pair(&id("T1"), request.clone(), &message))
            .collect();
        assert!(matches!(answers[0], Response::Paired { .. }), "{:?}", answers[0]);
        assert!(answers.iter().all(|a| *a == answers[0]), "{answers:?}");
        assert_eq!(keys.pairing().unwrap().tries_left, 2);
        assert_eq!(keys.state("T1"), "pairing");
        // A new request from T1 is a new try.
        keys.pair(&id("T1"), RequestId::new(), &message);
        assert_eq!(keys.pairing().unwrap().tries_left, 1);
    }
}
