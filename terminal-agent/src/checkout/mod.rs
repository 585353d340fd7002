//! The checkout core, sans-IO in quinn-proto's shape: the [`Session`] (what
//! the cashier sees and does) and the [`HubLink`] (sealing, pairing, the
//! link's clocks) joined into one state machine. The runtime (`agent.rs`)
//! feeds it [`Event`]s with the time they happened
//! ([`Checkout::handle`]), sleeps until [`Checkout::poll_timeout`], and
//! carries out each [`Output`] that [`Checkout::poll_action`] hands out:
//! bytes to publish, screens, slips, journal writes, the key to keep. Nothing
//! here touches a socket, a file or a clock, so every rule below is tested
//! with plain values (`checkout/tests.rs`).
//!
//! The rules the core keeps:
//! - Unanswered requests go out again every `retry_every` while connected,
//!   with the same request id (the hub charges an id once).
//! - A paired checkout signs in at each connection to the broker. After
//!   the hub answers the first sign-in of a connection (or of the hub's
//!   return), it sends the hub its record of printed approvals from the
//!   hub's open batch on ([`Output::SendPrinted`]); each approval is added
//!   to that record before its slips are queued ([`Output::KeepPrinted`]).
//! - When a sale ends, its slips are handed out for the print queue on disk
//!   ([`Output::QueueSale`]) before the journal forgets the sale
//!   ([`Output::Journal`]): a crash in between recalls the sale at restart,
//!   and the queue knows its slips, so they print once, never zero times.
//! - A paired checkout takes nothing unsealed but the pairing's own answer.
//!   The hub saying in clear that it is not paired (it does when it holds no
//!   key for this checkout) is only believed once a sealed sign-in has gone
//!   unanswered for [`NOT_PAIRED_AFTER`]: anyone on the LAN can publish it,
//!   and a live hub answers the sign-in sealed. A sale in flight then ends
//!   as unconfirmed, never as "not charged"; any other sale ends only with
//!   the hub's sealed answer.
//! - The cashier is told once per request when the hub stays silent on it.
//! - The hub asking, sealed, whether the checkout is there (it heard an
//!   offline status, which anyone can publish) gets a heartbeat at once
//!   ([`Output::Heartbeat`]): the sealed proof that it is.
//! - A restart or an update the owner asked for waits until the checkout is
//!   idle: never in the middle of a sale. Each sealed message is taken at
//!   most once, across restarts too ([`Output::KeepSeen`]): a restart
//!   captured and published again (retained, say) is dropped.

pub mod link;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::time::Instant;

use tallybox_core::protocol::requests::{self, PrintedEntry};
use tallybox_core::protocol::{DeviceHealth, Request, RequestId, Response};
use tallybox_core::seal::Key;
use tallybox_core::slip::Slip;

use crate::journal::InFlight;
use crate::session::{Action, Input, Screen, SelfTest, Session, SessionConfig};
pub use link::{Ending, HubLink, Refused};

/// What happened, as the runtime saw it.
#[derive(Debug)]
pub enum Event {
    /// The broker accepted the connection.
    Connected,
    /// The broker connection broke (the runtime reconnects by itself).
    Disconnected,
    /// A message on this checkout's answer topic, as it came.
    Message(Vec<u8>),
    /// A key, a card, the printer, the setup code, an alert...
    Input(Input),
    /// The local clock: `HH:MM` and `(year, month)` (card expiry). The
    /// runtime sends it often; the core acts on a change only.
    Clock { hhmm: String, today: (u16, u8) },
    /// A deadline [`Checkout::poll_timeout`] gave has passed.
    Timeout,
    /// What became of [`Output::KeepKey`]: kept on disk, or why not.
    KeyKept(Result<(), String>),
    /// The journal write [`Output::Journal`] asked for failed: the core asks
    /// for it again at the next change.
    JournalFailed,
    /// An update is installed: stop once idle so that the service starts it.
    Installed(String),
    /// Time for the device counters to go to the hub.
    Heartbeat { uptime_s: u64, devices: DeviceHealth },
    /// The hub's retained status on the broker (anyone may publish it: a
    /// claim, acted on only by signing in again, sealed).
    HubStatus { online: bool },
}

/// What the runtime is to do, in the order handed out.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Publish these bytes on this checkout's request topic (QoS 0).
    Publish(Vec<u8>),
    /// Connected: subscribe to the answers and say online.
    Online,
    Show(Screen),
    /// Print one slip (the spool keeps it until the printer confirms).
    Print(Slip),
    /// Open the cash drawer through the printer; a failure comes back as
    /// [`Input::DrawerShut`].
    OpenDrawer,
    /// A sale ended: put its slips in the print queue on disk first.
    QueueSale {
        request_id: RequestId,
        slips: Vec<Slip>,
    },
    /// Keep the sale in flight on disk (`None`: forget it).
    Journal(Option<InFlight>),
    /// An approval about to be told the cashier: add it to the record of
    /// printed approvals on disk, before its slips are queued.
    KeepPrinted(Box<PrintedEntry>),
    /// The hub answered the sign-in, with its open batch: hand the record's
    /// approvals of that batch and later to [`Checkout::send_printed`].
    SendPrinted {
        from_batch: u32,
    },
    /// The pairing gave this key: keep it on disk, log in with it from the
    /// next connection, and answer with [`Event::KeyKept`].
    KeepKey(Key),
    /// Print the slip that shows the printer works ([`Checkout::test_slip`]).
    PrintTestSlip,
    /// The menu's self-test: show [`Checkout::self_test`] with the device
    /// counts, and print a test slip.
    SelfTest,
    /// The hub offers this version, to be fetched from its web server.
    UpdateOffered {
        version: String,
        port: u16,
        path: String,
    },
    /// The store's time zone, as the hub says it.
    TimeZone(String),
    /// Send the device counters now (a heartbeat, sealed): the hub asked
    /// whether this checkout is still there.
    Heartbeat,
    /// Keep this replay mark (the highest counter taken from the hub), so
    /// that a message captured once is not taken again after a restart.
    KeepSeen(u64),
    /// Stop now, for this reason: the checkout is idle.
    Stop(Ending),
}

/// The least time between two sign-ins the hub's status asks for.
const STATUS_SIGN_IN_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// How long a sealed sign-in goes unanswered, after the hub said in clear
/// that this checkout is not paired, before the cashier is told so.
pub const NOT_PAIRED_AFTER: std::time::Duration = std::time::Duration::from_secs(5);

pub struct Checkout {
    session: Session,
    link: HubLink,
    /// The floor-kept message counter that seals what goes out.
    counter: Box<dyn FnMut() -> u64 + Send>,
    connected: bool,
    today: (u16, u8),
    hhmm: String,
    /// The sale the journal holds, as far as the core knows.
    journaled: Option<InFlight>,
    /// The last journal write failed: write at the next chance.
    journal_stale: bool,
    /// The key a pairing gave, until it is kept on disk.
    unkept_key: Option<Key>,
    stopping: bool,
    /// Since when a clear "not paired" waits to be confirmed; any sealed
    /// message from the hub clears it.
    not_paired_claim: Option<Instant>,
    /// The hub's status said offline since this checkout last heard it online.
    hub_was_offline: bool,
    /// When the hub's status last made this checkout sign in again.
    signed_in_for_status: Option<Instant>,
    /// The record of printed approvals goes to the hub at the next answered
    /// sign-in: set at start, at each connection and when the hub comes
    /// back, not by sign-ins a stranger's claims prompt.
    record_due: bool,
    out: VecDeque<Output>,
}

impl Checkout {
    /// A checkout starting up: it signs in (asking the hub to go on past
    /// `last_trace`, the highest trace number in its record of printed
    /// approvals), and recalls `in_flight`, the sale its journal held at the
    /// last stop.
    pub fn new(
        config: SessionConfig,
        link: HubLink,
        counter: Box<dyn FnMut() -> u64 + Send>,
        version: &str,
        in_flight: Option<InFlight>,
        last_trace: Option<u32>,
        now: Instant,
    ) -> Checkout {
        let mut checkout = Checkout {
            session: Session::new(config),
            link,
            counter,
            connected: false,
            today: (0, 0),
            hhmm: String::new(),
            journaled: None,
            journal_stale: false,
            unkept_key: None,
            stopping: false,
            not_paired_claim: None,
            hub_was_offline: false,
            signed_in_for_status: None,
            record_due: true,
            out: VecDeque::new(),
        };
        checkout.session.set_pairing(checkout.link.key());
        if let Some(trace_no) = last_trace {
            checkout.session.saw_trace(trace_no);
        }
        let mut actions = checkout.session.start(version);
        if let Some(entry) = in_flight {
            checkout.journaled = Some(entry.clone());
            actions.extend(checkout.session.resume(entry));
        }
        checkout.apply(actions, now);
        checkout
    }

    /// Feeds one event that happened at `now`.
    pub fn handle(&mut self, event: Event, now: Instant) {
        match event {
            Event::Connected => {
                self.connected = true;
                self.record_due = true;
                self.out.push_back(Output::Online);
                // A paired checkout signs in at each connection: a hub that
                // restarted with its broker learns its trace floor and gets
                // its record of printed approvals; what was left unanswered
                // goes again once the sign-in is answered. (An unpaired one
                // takes no sale while its sign-in is unanswered, so it signs
                // in at start only.)
                if self.link.is_paired() && !self.session.signing_in() {
                    let actions = self.session.sign_in_again();
                    self.apply(actions, now);
                } else {
                    self.resend(now);
                }
            }
            Event::Disconnected => self.connected = false,
            Event::Message(payload) => self.on_message(&payload, now),
            Event::Input(input) => self.feed(input, now),
            Event::Clock { hhmm, today } => {
                self.today = today;
                if hhmm != self.hhmm {
                    self.hhmm = hhmm.clone();
                    self.feed(Input::Clock(hhmm), now);
                }
            }
            Event::Timeout => {}
            Event::KeyKept(kept) => {
                let outcome = match (kept, self.unkept_key.take()) {
                    (Ok(()), Some(key)) => {
                        self.session.set_pairing(Some(&key));
                        self.link.paired(key);
                        tracing::info!(terminal = %self.link.terminal(), "paired with the hub: messages are sealed from now on");
                        Ok(())
                    }
                    (Ok(()), None) => return,
                    (Err(e), _) => Err(format!("key not saved: {e}")),
                };
                if let Err(e) = &outcome {
                    tracing::warn!(terminal = %self.link.terminal(), error = %e, "pairing failed");
                }
                // Paired: the session signs in again, sealed now.
                self.feed(Input::Paired(outcome), now);
            }
            Event::HubStatus { online } => {
                let was_offline = std::mem::replace(&mut self.hub_was_offline, !online);
                let back = online && was_offline;
                let lately = self
                    .signed_in_for_status
                    .is_some_and(|at| now.duration_since(at) < STATUS_SIGN_IN_EVERY);
                // A paired checkout signs in to a hub back online (on an
                // external broker it stays connected through the hub's
                // restart); at most every few seconds, whoever flips it.
                if back && self.link.is_paired() && !lately {
                    self.signed_in_for_status = Some(now);
                    self.record_due = true;
                    let actions = self.session.sign_in_again();
                    self.apply(actions, now);
                }
            }
            Event::JournalFailed => self.journal_stale = true,
            Event::Installed(version) => self.link.stop_when_idle(Ending::Updated(version)),
            Event::Heartbeat { uptime_s, devices } => {
                let heartbeat = Request::Heartbeat(requests::Heartbeat {
                    uptime_s,
                    devices: Some(devices),
                });
                self.publish(&heartbeat, now);
            }
        }
        self.on_time(now);
        if !self.stopping {
            if let Some(why) = self.link.stop_now(self.session.state_name() == "idle") {
                self.stopping = true;
                self.out.push_back(Output::Stop(why.clone()));
            }
        }
    }

    /// The next moment [`Checkout::handle`] wants an [`Event::Timeout`], if any.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let resend = match self.connected && !self.session.outstanding().is_empty() {
            true => self.link.resend_at(),
            false => None,
        };
        let claim = self.not_paired_claim.map(|since| since + NOT_PAIRED_AFTER);
        [resend, self.link.pairing_deadline(), self.link.silent_at(), claim]
            .into_iter()
            .flatten()
            .min()
    }

    /// The next thing to do, in order.
    pub fn poll_action(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// The session's state (`idle`, `card`, `waiting`...), for the handles.
    pub fn state_name(&self) -> &'static str {
        self.session.state_name()
    }

    /// The amount a card is wanted for right now, if one is.
    pub fn card_wanted(&self) -> Option<tallybox_core::money::Amount> {
        self.session.card_wanted()
    }

    pub fn is_connected(&self) -> bool {
        self.connected
    }

    pub fn is_paired(&self) -> bool {
        self.link.is_paired()
    }

    /// The test slip, printed at `local_time` by `version`.
    pub fn test_slip(&self, local_time: &str, version: &str) -> Slip {
        tallybox_core::slip::test_slip(
            self.session.store_name(),
            self.link.terminal(),
            local_time,
            version,
            self.session.slip_columns(),
        )
    }

    /// The self-test screen, with the device counts the runtime holds.
    pub fn self_test(&self, devices: DeviceHealth) -> Screen {
        let (online, printer, paper_low) = self.session.link_and_printer();
        let report = SelfTest {
            online,
            paired: self.link.is_paired(),
            printer,
            paper_low,
            devices,
        };
        tracing::info!(terminal = %self.link.terminal(), online, paired = report.paired, ?printer, "self-test from the menu");
        self.session.screens().self_test(&report)
    }

    /// The link's clocks: re-sends, a pairing that waited too long, a silent hub.
    fn on_time(&mut self, now: Instant) {
        if self.connected && !self.session.outstanding().is_empty() && self.link.resend_due(now) {
            self.resend(now);
        }
        if self.link.pairing_expired(now) {
            self.feed(Input::Paired(Err("the hub did not answer".into())), now);
        }
        if self.link.hub_silent(self.session.waiting_on(), now) {
            self.feed(Input::HubSilent, now);
        }
        let claim_stands = self
            .not_paired_claim
            .is_some_and(|since| now.duration_since(since) >= NOT_PAIRED_AFTER);
        if claim_stands {
            self.not_paired_claim = None;
            tracing::warn!(terminal = %self.link.terminal(), "the hub does not answer this checkout's sealed sign-in and says it is not paired: pair it again (menu D 5)");
            let not_paired = Response::Error {
                request_id: None,
                code: tallybox_core::protocol::ErrorCode::NotPaired,
                message: "not paired".into(),
            };
            self.feed(Input::Answer(Box::new(not_paired)), now);
        }
    }

    fn on_message(&mut self, payload: &[u8], now: Instant) {
        let seen = self.link.seen();
        self.take_message(payload, now);
        if self.link.seen() != seen {
            self.out.push_back(Output::KeepSeen(self.link.seen()));
        }
    }

    fn take_message(&mut self, payload: &[u8], now: Instant) {
        let sealed = tallybox_core::seal::is_sealed(payload);
        let response = match self.link.incoming(payload) {
            Ok(response) => response,
            Err(Refused::UnsealedNotPaired) => {
                if self.not_paired_claim.is_none() {
                    tracing::warn!(terminal = %self.link.terminal(), "told in clear that this checkout is not paired: checking with a sealed sign-in");
                    self.not_paired_claim = Some(now);
                    let actions = self.session.sign_in_again();
                    self.apply(actions, now);
                }
                return;
            }
            Err(e) => {
                tracing::warn!(terminal = %self.link.terminal(), error = %e, "answer from the hub not taken");
                return;
            }
        };
        if sealed {
            // The hub holds this checkout's key and speaks: it is paired.
            self.not_paired_claim = None;
        }
        if let Some(outcome) = self.link.finish_pairing(&response) {
            match outcome {
                Ok(key) => {
                    self.unkept_key = Some(key);
                    self.out.push_back(Output::KeepKey(key));
                }
                Err(e) => {
                    tracing::warn!(terminal = %self.link.terminal(), error = %e, "pairing failed");
                    self.feed(Input::Paired(Err(e)), now);
                }
            }
            return;
        }
        match response {
            Response::TestSlip => {
                tracing::info!(terminal = %self.link.terminal(), "printing a test slip the owner asked for");
                self.out.push_back(Output::PrintTestSlip);
                return;
            }
            Response::Update { version, port, path } => {
                self.out.push_back(Output::UpdateOffered { version, port, path });
                return;
            }
            Response::Restart => {
                tracing::warn!(terminal = %self.link.terminal(), "the owner asked for a restart; it happens when the checkout is idle");
                self.link.stop_when_idle(Ending::Restart);
                return;
            }
            Response::AreYouThere => {
                self.out.push_back(Output::Heartbeat);
                return;
            }
            Response::SignedIn {
                time_zone: Some(ref zone),
                ..
            }
            | Response::TimeZone { time_zone: ref zone } => {
                self.out.push_back(Output::TimeZone(zone.clone()));
            }
            _ => {}
        }
        // The record of an approval goes to disk before its slips are queued.
        let trace_no = match &response {
            Response::Outcome(outcome) => outcome.receipt.as_ref().map(|r| r.trace_no),
            _ => None,
        };
        if let Response::Outcome(outcome) = &response {
            if let Some(entry) = self.session.printed_entry(outcome) {
                self.out.push_back(Output::KeepPrinted(Box::new(entry)));
            }
        }
        let sign_in_answer = match &response {
            Response::SignedIn { batch_no, .. } if self.session.signing_in() => Some(*batch_no),
            _ => None,
        };
        self.feed(Input::Answer(Box::new(response)), now);
        if let Some(trace_no) = trace_no {
            self.session.saw_trace(trace_no);
        }
        // Only sealed: the record names amounts and masked cards, and the
        // hub takes no other.
        if let Some(from_batch) =
            sign_in_answer.filter(|_| !self.session.signing_in() && self.link.is_paired() && self.record_due)
        {
            self.record_due = false;
            self.out.push_back(Output::SendPrinted { from_batch });
        }
        // What waited for the sign-in goes now.
        if sign_in_answer.is_some() && !self.session.signing_in() {
            self.resend(now);
        }
    }

    /// Sends the hub `entries` from the record of printed approvals (see
    /// [`Output::SendPrinted`]), as many to a message as fit.
    pub fn send_printed(&mut self, entries: Vec<PrintedEntry>, now: Instant) {
        for message in requests::Printed::messages(entries) {
            self.publish(&Request::Printed(message), now);
        }
    }

    fn feed(&mut self, input: Input, now: Instant) {
        let actions = self.session.handle(input, self.today);
        self.apply(actions, now);
    }

    /// Turns the session's actions into outputs, journal first (see the
    /// module doc for the order).
    fn apply(&mut self, mut actions: Vec<Action>, now: Instant) {
        let in_flight = self.session.in_flight();
        if let Some(was) = self
            .journaled
            .as_ref()
            .filter(|was| in_flight.as_ref() != Some(*was))
        {
            let (slips, rest): (Vec<Action>, Vec<Action>) =
                actions.into_iter().partition(|a| matches!(a, Action::Print(_)));
            let slips = slips
                .into_iter()
                .filter_map(|a| match a {
                    Action::Print(slip) => Some(slip),
                    _ => None,
                })
                .collect();
            self.out.push_back(Output::QueueSale {
                request_id: was.request_id.clone(),
                slips,
            });
            actions = rest;
        }
        if in_flight != self.journaled || self.journal_stale {
            self.journal_stale = false;
            self.journaled = in_flight.clone();
            self.out.push_back(Output::Journal(in_flight));
        }
        for action in actions {
            match action {
                Action::Show(screen) => self.out.push_back(Output::Show(screen)),
                Action::Print(slip) => self.out.push_back(Output::Print(slip)),
                Action::OpenDrawer => self.out.push_back(Output::OpenDrawer),
                Action::Send(request) => self.publish(&request, now),
                Action::Pair(code) => self.start_pairing(&code, now),
                Action::SelfTest => self.out.push_back(Output::SelfTest),
            }
        }
    }

    fn resend(&mut self, now: Instant) {
        let outstanding: Vec<Request> = self.session.outstanding().into_iter().cloned().collect();
        for request in &outstanding {
            self.publish(request, now);
        }
    }

    fn publish(&mut self, request: &Request, now: Instant) {
        let counter = &mut self.counter;
        match self.link.outgoing(request, now, counter) {
            Ok(payload) => self.out.push_back(Output::Publish(payload)),
            Err(e) => {
                tracing::error!(terminal = %self.link.terminal(), error = %e, "request not sent: it cannot be encoded")
            }
        }
    }

    /// Sends the first half of a pairing; the hub's answer finishes it.
    fn start_pairing(&mut self, code: &str, now: Instant) {
        match self.link.start_pairing(code, now) {
            Ok(request) => {
                tracing::info!(terminal = %self.link.terminal(), "pairing with the hub");
                self.publish(&request, now);
            }
            // Reported as failed by the pairing's clock, at once.
            Err(e) => tracing::warn!(terminal = %self.link.terminal(), error = %e, "pairing not started"),
        }
    }
}
