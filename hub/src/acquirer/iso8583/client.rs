//! The hub's ISO 8583 client: one TCP connection to the acquirer, kept open
//! and re-opened with back-off when it drops. It signs in on each new
//! connection before anything else, and each checkout's acquirer terminal id
//! signs in before its first request there. Each sign-in's answer brings
//! that terminal's working keys (PIN and MAC key, under its master key: see
//! [`super::keys`]), which live only as long as the connection. It sends
//! each request with its MAC, and takes an answer only if it verifies and
//! gives back what the request sent (matched by terminal, trace number and
//! message type). While the link is down a request fails at once (the
//! coordinator then reverses and keeps trying), rather than waiting out the
//! time-out.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tallybox_core::card::pin_block::PinKey;
use tallybox_core::code::ResponseCode;

use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

use super::batches::HostBatches;
use super::codec::{frame, Dialect, FrameReader, Message};
use super::keys::{KeyFile, WorkingKeys};
use super::mac::MacKey;
use super::messages;
use super::tls::{Io, TlsClient};
use crate::acquirer::{
    Acquirer, AcquirerError, AuthRequest, AuthResponse, BatchItem, BatchTotals, LinkHealth, Reversal,
};

#[derive(Debug, Clone)]
pub struct IsoConfig {
    /// `HOST:PORT` of the acquirer host.
    pub addr: String,
    /// TLS to it, when the acquirer requires it; plain TCP otherwise (a
    /// dedicated line).
    pub tls: Option<TlsClient>,
    pub merchant_id: String,
    /// The store's currency, ISO 4217 numeric (field 49).
    pub currency: String,
    /// The message layout the acquirer speaks.
    pub dialect: Dialect,
    /// The master key of each acquirer terminal id: its sign-in's working
    /// keys come under it. The owner may add one while the link runs.
    pub master_keys: Arc<KeyFile>,
    /// How long the connection may stay silent before the hub sends an
    /// echo test (0820): a connection dropped on the way (a router's idle
    /// time-out) is found then, not by the next sale.
    pub echo_every: Duration,
    /// The terminal id the hub signs in with first on each connection (when
    /// it has no master key, the first terminal that has one).
    pub hub_terminal: String,
    /// The acquirer's terminal id (field 41) for each checkout that has one;
    /// a checkout not listed goes out under its own id.
    pub terminal_ids: BTreeMap<String, String>,
    /// The host's own batch numbers (China UnionPay's layout).
    pub host_batches: Arc<HostBatches>,
}

/// How often the hub signs in again on a connection that stays up.
const SIGN_IN_EVERY: Duration = Duration::from_secs(24 * 3600);

impl IsoConfig {
    /// The terminal each connection signs in first.
    fn connection_terminal(&self) -> String {
        if self.master_keys.get(&self.hub_terminal).is_some() {
            return self.hub_terminal.clone();
        }
        self.master_keys
            .first_terminal()
            .unwrap_or_else(|| self.hub_terminal.clone())
    }
}

/// (terminal, trace number, answer type): what ties an answer to its request.
type Key = (String, String, String);

/// Each signed-in terminal's working keys, on the current connection.
type Keyring = Arc<Mutex<HashMap<String, WorkingKeys>>>;

struct Outgoing {
    message: Message,
    /// The check value of the PIN key field 52 was made under: if the
    /// terminal signed in again since (new keys), the request is not sent.
    pin_key_check: Option<String>,
    /// The answer, or why there is none: the answer that came was refused,
    /// or the request never went out.
    reply: oneshot::Sender<Result<Message, AcquirerError>>,
}

/// What the link task is asked to do.
enum Job {
    Send(Outgoing),
    /// Sign `terminal` in, if it is not, and say when it is.
    SignIn {
        terminal: String,
        reply: oneshot::Sender<Result<(), AcquirerError>>,
    },
}

impl Job {
    /// The acquirer terminal id it is for.
    fn terminal(&self) -> String {
        match self {
            Job::Send(o) => o.message.text(41).unwrap_or_default().trim_end().to_string(),
            Job::SignIn { terminal, .. } => terminal.clone(),
        }
    }

    /// Ends it without sending: the request was never on the wire.
    fn not_sent(self, why: &str) {
        let e = AcquirerError::NotSent {
            field: Some(41),
            why: why.to_string(),
        };
        match self {
            Job::Send(o) => drop(o.reply.send(Err(e))),
            Job::SignIn { reply, .. } => drop(reply.send(Err(e))),
        }
    }
}

#[derive(Clone)]
pub struct IsoAcquirer {
    requests: mpsc::Sender<Job>,
    merchant_id: String,
    currency: String,
    dialect: Dialect,
    terminal_ids: Arc<BTreeMap<String, String>>,
    keys: Keyring,
    master_keys: Arc<KeyFile>,
    tls: bool,
    link: Arc<Mutex<LinkState>>,
}

/// An acquirer terminal id as the owner's page lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MasterKeyCheck {
    pub terminal: String,
    /// The checkouts whose sales go out under it.
    pub checkouts: Vec<String>,
    /// Its master key's check value; `None` without a key.
    pub check_value: Option<String>,
}

/// What the link task and the exchanges note for the troubleshooting page.
#[derive(Default)]
struct LinkState {
    up: bool,
    /// The last connection reached the host, which refused the sign-in.
    sign_in_refused: bool,
    /// When `up` last changed.
    since: Option<chrono::DateTime<chrono::Utc>>,
    last_error: Option<String>,
    /// When the link dropped or a connection failed, within the last hour.
    drops: VecDeque<Instant>,
    /// Round trips of the last few exchanges, in ms.
    round_trips: VecDeque<u32>,
    /// Answers refused (not matching their request, or a wrong MAC) within
    /// the last hour, and why the last one was.
    refused: VecDeque<Instant>,
    last_refused: Option<String>,
}

/// Answers the slowest is taken over: a slow spell shows at once and clears
/// after a few quick answers.
const ROUND_TRIPS_KEPT: usize = 5;

impl LinkState {
    fn set(&mut self, up: bool, error: Option<String>) {
        if up != self.up || self.since.is_none() {
            self.since = Some(chrono::Utc::now());
        }
        if self.up && !up {
            self.drops.push_back(Instant::now());
        }
        self.up = up;
        self.sign_in_refused = false;
        if error.is_some() {
            self.last_error = error;
        }
    }

    fn refused(&mut self, why: String) {
        self.refused.push_back(Instant::now());
        self.last_refused = Some(why);
    }

    fn health(&mut self, addr: &str) -> LinkHealth {
        let hour_ago = Instant::now().checked_sub(Duration::from_secs(3600));
        for times in [&mut self.drops, &mut self.refused] {
            while times.front().is_some_and(|d| hour_ago.is_some_and(|h| *d < h)) {
                times.pop_front();
            }
        }
        LinkHealth {
            addr: addr.to_string(),
            up: self.up,
            tls: false,
            dialect: String::new(),
            signed_in: Vec::new(),
            sign_in_refused: self.sign_in_refused,
            since: self.since.map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
            last_error: self.last_error.clone(),
            drops_last_hour: self.drops.len() as u32,
            max_round_trip_ms: self.round_trips.iter().copied().max(),
            timeout_ms: 0,
            refused_answers_last_hour: self.refused.len() as u32,
            last_refused: (!self.refused.is_empty())
                .then(|| self.last_refused.clone())
                .flatten(),
        }
    }
}

fn lock(state: &Mutex<LinkState>) -> std::sync::MutexGuard<'_, LinkState> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

fn key_of(m: &Message, mti: &str) -> Key {
    (
        m.text(41).unwrap_or_default().trim_end().to_string(),
        m.text(11).unwrap_or_default().to_string(),
        mti.to_string(),
    )
}

impl IsoAcquirer {
    /// Starts the link task; it runs until the acquirer handle is dropped.
    pub fn start(config: IsoConfig) -> IsoAcquirer {
        let (tx, rx) = mpsc::channel(256);
        let (merchant_id, currency) = (config.merchant_id.clone(), config.currency.clone());
        let terminal_ids = Arc::new(config.terminal_ids.clone());
        let (tls, dialect) = (config.tls.is_some(), config.dialect);
        let state = Arc::new(Mutex::new(LinkState::default()));
        let keys = Keyring::default();
        let master_keys = Arc::clone(&config.master_keys);
        tokio::spawn(link(config, rx, Arc::clone(&state), Arc::clone(&keys)));
        IsoAcquirer {
            requests: tx,
            merchant_id,
            currency,
            dialect,
            terminal_ids,
            keys,
            master_keys,
            tls,
            link: state,
        }
    }

    /// Each acquirer terminal id the shop uses (the settings' and those of
    /// `checkouts`, and any with a key): the checkouts that sell under it
    /// and its master key's check value, if it has one.
    pub fn master_key_checks(&self, checkouts: &[String]) -> Vec<MasterKeyCheck> {
        fn entry(all: &mut BTreeMap<String, MasterKeyCheck>, terminal: String) -> &mut MasterKeyCheck {
            all.entry(terminal.clone()).or_insert_with(|| MasterKeyCheck {
                terminal,
                checkouts: Vec::new(),
                check_value: None,
            })
        }
        let mut all = BTreeMap::new();
        let configured = self.terminal_ids.keys().cloned();
        for checkout in configured.chain(checkouts.iter().cloned()) {
            let row = entry(&mut all, self.acquirer_terminal(&checkout));
            if !row.checkouts.contains(&checkout) {
                row.checkouts.push(checkout);
            }
        }
        for (terminal, check) in self.master_keys.check_values() {
            entry(&mut all, terminal).check_value = Some(check);
        }
        all.into_values().collect()
    }

    /// Keeps `key` as `terminal`'s master key (in the key file, then for the
    /// link) and signs the terminal in again under it at once: `Err` says
    /// why the key was not kept; `Ok(Err)` why the sign-in did not work
    /// (the key is kept; the next sale tries again).
    pub async fn enter_master_key(
        &self,
        terminal: &str,
        key: super::keys::MasterKey,
    ) -> Result<Result<(), String>, String> {
        self.master_keys.enter(terminal, key)?;
        // Working keys came under the old key: the next request signs in.
        self.keys
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(terminal);
        Ok(self.sign_in(terminal).await.map_err(|e| e.to_string()))
    }

    /// Signs `terminal` in, if it is not, and says when it is.
    async fn sign_in(&self, terminal: &str) -> Result<(), AcquirerError> {
        let (reply, signed_in) = oneshot::channel();
        let down = || AcquirerError::Link("the acquirer link is down".into());
        self.requests
            .send(Job::SignIn {
                terminal: terminal.to_string(),
                reply,
            })
            .await
            .map_err(|_| down())?;
        signed_in.await.map_err(|_| down())?
    }

    /// The acquirer's id for checkout `terminal_id` (field 41).
    fn acquirer_terminal(&self, terminal_id: &str) -> String {
        self.terminal_ids
            .get(terminal_id)
            .cloned()
            .unwrap_or_else(|| terminal_id.to_string())
    }

    /// The link as the troubleshooting page shows it.
    pub fn health(&self, addr: &str) -> LinkHealth {
        let mut signed_in: Vec<String> = self
            .keys
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(terminal, keys)| format!("{terminal} (MAC key {})", keys.mac.check_value()))
            .collect();
        signed_in.sort();
        LinkHealth {
            tls: self.tls,
            dialect: self.dialect.name().to_string(),
            signed_in,
            ..lock(&self.link).health(addr)
        }
    }

    fn working_pin_key(&self, terminal: &str) -> Option<PinKey> {
        self.keys
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(terminal)
            .map(|k| k.pin)
    }

    async fn exchange(
        &self,
        message: Message,
        pin_key_check: Option<String>,
    ) -> Result<Message, AcquirerError> {
        let (reply, answer) = oneshot::channel();
        let sent = Instant::now();
        self.requests
            .send(Job::Send(Outgoing {
                message,
                pin_key_check,
                reply,
            }))
            .await
            .map_err(|_| AcquirerError::Link("the acquirer link has stopped".into()))?;
        let answer = answer
            .await
            .map_err(|_| AcquirerError::Link("the acquirer link dropped before the answer".into()))??;
        let mut state = lock(&self.link);
        if state.round_trips.len() == ROUND_TRIPS_KEPT {
            state.round_trips.pop_front();
        }
        state
            .round_trips
            .push_back(sent.elapsed().as_millis().min(u32::MAX as u128) as u32);
        Ok(answer)
    }
}

impl Acquirer for IsoAcquirer {
    /// The working PIN key of `terminal_id`'s acquirer terminal, signing it
    /// in first when it is not.
    async fn pin_key(&self, terminal_id: &str) -> Result<PinKey, AcquirerError> {
        let terminal = self.acquirer_terminal(terminal_id);
        messages::terminal_field(&terminal).map_err(not_sent)?;
        if let Some(key) = self.working_pin_key(&terminal) {
            return Ok(key);
        }
        self.sign_in(&terminal).await?;
        self.working_pin_key(&terminal)
            .ok_or_else(|| AcquirerError::Link("the acquirer link is down".into()))
    }

    async fn authorize(&self, request: AuthRequest) -> Result<AuthResponse, AcquirerError> {
        let request = AuthRequest {
            terminal_id: self.acquirer_terminal(&request.terminal_id),
            ..request
        };
        let message = messages::auth_request(
            self.dialect,
            &request,
            &self.merchant_id,
            &self.currency,
            tallybox_platform::clock::now(),
        )
        .map_err(not_sent)?;
        let answer = self.exchange(message, request.pin_key_check.clone()).await?;
        messages::auth_response(&answer).map_err(AcquirerError::Link)
    }

    async fn reverse(&self, reversal: Reversal) -> Result<(), AcquirerError> {
        let reversal = Reversal {
            terminal_id: self.acquirer_terminal(&reversal.terminal_id),
            ..reversal
        };
        let message = messages::reversal(self.dialect, &reversal, &self.merchant_id, &self.currency)
            .map_err(not_sent)?;
        let answer = self.exchange(message, None).await?;
        match answer.text(39).and_then(ResponseCode::parse) {
            // 25: the host never saw the original: nothing was charged either.
            Some(ResponseCode::APPROVED | ResponseCode::NO_ORIGINAL) => Ok(()),
            other => Err(AcquirerError::Link(format!("reversal answered {other:?}"))),
        }
    }

    async fn settle(&self, totals: BatchTotals) -> Result<bool, AcquirerError> {
        let totals = BatchTotals {
            terminal_id: self.acquirer_terminal(&totals.terminal_id),
            ..totals
        };
        let message = messages::settlement(self.dialect, &totals, &self.merchant_id, &self.currency)
            .map_err(not_sent)?;
        let answer = self.exchange(message, None).await?;
        messages::settled(self.dialect, &answer).map_err(AcquirerError::Link)
    }

    fn batch_limit(&self) -> Option<u32> {
        messages::batch_limit(self.dialect)
    }

    /// China UnionPay's batch upload: each transaction (0320), then the
    /// batch end; each must be answered `00` within 10 s.
    async fn upload_batch(&self, totals: &BatchTotals, items: &[BatchItem]) -> Result<usize, AcquirerError> {
        if self.dialect != Dialect::CupPos {
            return Ok(0);
        }
        let totals = BatchTotals {
            terminal_id: self.acquirer_terminal(&totals.terminal_id),
            ..totals.clone()
        };
        for item in items {
            let m = messages::batch_upload(
                item,
                &totals.terminal_id,
                totals.batch_no,
                &self.merchant_id,
                &self.currency,
            )
            .map_err(not_sent)?;
            self.upload(m).await?;
        }
        self.upload(messages::batch_end(&totals, items.len(), &self.merchant_id).map_err(not_sent)?)
            .await?;
        Ok(items.len())
    }
}

/// How long the host has to answer each message of a batch upload.
const UPLOAD_WAIT: Duration = Duration::from_secs(10);

impl IsoAcquirer {
    /// Sends one message of a batch upload and checks it was taken.
    async fn upload(&self, m: Message) -> Result<(), AcquirerError> {
        let trace = m.text(11).unwrap_or_default().to_string();
        let answer = tokio::time::timeout(UPLOAD_WAIT, self.exchange(m, None))
            .await
            .map_err(|_| AcquirerError::TimedOut(UPLOAD_WAIT))??;
        match answer.text(39).and_then(ResponseCode::parse) {
            Some(ResponseCode::APPROVED) => Ok(()),
            other => Err(AcquirerError::Link(format!(
                "batch upload of trace {trace} answered {other:?}"
            ))),
        }
    }
}

fn not_sent(e: super::codec::CodecError) -> AcquirerError {
    let field = match &e {
        super::codec::CodecError::BadField { field, .. } => Some(*field),
        _ => None,
    };
    AcquirerError::NotSent {
        field,
        why: e.to_string(),
    }
}

/// The first wait after a failed connection; it doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// A connection that signed in and lasted this long was a good one: the
/// back-off starts again from [`MIN_BACKOFF`] after it. Anything shorter (a
/// host that accepts and hangs up, or refuses the sign-in) counts as a
/// failure, so such a host is not hammered.
const GOOD_CONNECTION: Duration = Duration::from_secs(5);
/// How long the host has to answer a sign-in.
const SIGN_IN_WAIT: Duration = Duration::from_secs(10);

/// How a connection ended.
enum Ended {
    /// The hub has gone: the link task stops.
    Gone,
    /// The connection dropped; `good` when it had signed in and lasted.
    Dropped { good: bool },
}

async fn link(
    config: IsoConfig,
    mut requests: mpsc::Receiver<Job>,
    state: Arc<Mutex<LinkState>>,
    keys: Keyring,
) {
    let mut backoff = MIN_BACKOFF;
    let mut sign_ins = 0u32;
    loop {
        let connect = tokio::time::timeout(Duration::from_secs(3), open(&config)).await;
        match connect {
            Ok(Ok(stream)) => {
                tracing::info!(acquirer = %config.addr, "acquirer link open; signing in");
                sign_ins = sign_ins.wrapping_add(1000);
                let opened = Instant::now();
                let ended = connected(stream, &config, &mut requests, sign_ins, &state, &keys).await;
                // Working keys belong to the connection's sign-ins.
                keys.lock().unwrap_or_else(|e| e.into_inner()).clear();
                match ended {
                    Ended::Gone => return,
                    // A failed sign-in has said why already.
                    Ended::Dropped { good: false } => {}
                    Ended::Dropped { good: true } => {
                        tracing::warn!(acquirer = %config.addr, "acquirer link lost; reconnecting");
                        lock(&state).set(false, Some("the connection dropped".into()));
                        if opened.elapsed() >= GOOD_CONNECTION {
                            backoff = MIN_BACKOFF;
                        }
                    }
                }
            }
            Ok(Err(e)) => {
                tracing::warn!(acquirer = %config.addr, error = %e, "cannot reach the acquirer; retrying");
                lock(&state).set(false, Some(format!("cannot connect: {e}")));
            }
            Err(_) => {
                tracing::warn!(acquirer = %config.addr, "acquirer did not accept the connection in 3 s; retrying");
                lock(&state).set(false, Some("no answer to the connection in 3 s".into()));
            }
        }
        if !fail_waiting(&mut requests, backoff).await {
            return;
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// A connection to the host: TCP, then the TLS handshake when the settings
/// ask for TLS.
async fn open(config: &IsoConfig) -> std::io::Result<Box<dyn Io>> {
    let tcp = TcpStream::connect(&config.addr).await?;
    let _ = tcp.set_nodelay(true);
    match &config.tls {
        None => Ok(Box::new(tcp)),
        Some(tls) => tls
            .connect(tcp)
            .await
            .map_err(|e| std::io::Error::new(e.kind(), format!("TLS handshake failed: {e}"))),
    }
}

/// While there is no link: answers every request with an error at once, for
/// `wait`. False when the hub has gone.
async fn fail_waiting(requests: &mut mpsc::Receiver<Job>, wait: Duration) -> bool {
    let deadline = tokio::time::sleep(wait);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            _ = &mut deadline => return true,
            r = requests.recv() => match r {
                // Dropping the reply tells the caller the link is down.
                Some(job) => drop(job),
                None => return false,
            },
        }
    }
}

/// A request on the wire, waiting for its answer.
struct Waiting {
    request: Message,
    /// The MAC key it went under: its answer comes under the same one,
    /// even when the terminal signs in again (new keys) meanwhile.
    mac: MacKey,
    reply: oneshot::Sender<Result<Message, AcquirerError>>,
}

/// One connection's reading side: frames as they arrive.
struct Incoming {
    read: ReadHalf<Box<dyn Io>>,
    frames: FrameReader,
    buf: Vec<u8>,
}

impl Incoming {
    /// The next frame's bytes; `Err` when the connection ends or carries garbage.
    async fn next(&mut self) -> Result<Vec<u8>, String> {
        loop {
            match self.frames.next_frame() {
                Ok(Some(bytes)) => return Ok(bytes),
                Ok(None) => {}
                Err(e) => return Err(format!("garbage from the acquirer: {e}")),
            }
            match self.read.read(&mut self.buf).await {
                Ok(0) => return Err("the acquirer closed the connection".into()),
                Err(e) => return Err(format!("reading from the acquirer: {e}")),
                Ok(n) => self.frames.push(&self.buf[..n]),
            }
        }
    }
}

/// Why a connection's sign-in failed.
struct SignInFailed {
    why: String,
    /// The host answered and refused (or its keys did not check), as
    /// against not answering at all.
    refused: bool,
}

impl SignInFailed {
    fn unanswered(why: String) -> SignInFailed {
        SignInFailed { why, refused: false }
    }
}

/// The working keys a sign-in answer brings, or why it is not an accepted
/// sign-in of `terminal`.
fn accepted_keys(answer: &Message, terminal: &str, config: &IsoConfig) -> Result<WorkingKeys, String> {
    let code = answer.text(39).and_then(ResponseCode::parse);
    if code != Some(ResponseCode::APPROVED) {
        return Err(format!(
            "the acquirer refused the sign-in of terminal {terminal} (response code {})",
            code.map_or("missing".to_string(), |c| c.to_string())
        ));
    }
    let tmk = config
        .master_keys
        .get(terminal)
        .ok_or_else(|| format!("terminal {terminal} has no master key here"))?;
    let field = answer.get(62).ok_or_else(|| {
        format!("the sign-in answer of terminal {terminal} brings no working keys (field 62)")
    })?;
    WorkingKeys::from_field62(field, &tmk).map_err(|e| format!("sign-in of terminal {terminal}: {e}"))
}

/// Sends the connection's first sign-in (0800) and waits for its answer:
/// the keys of the terminal it signed in.
async fn sign_in(
    incoming: &mut Incoming,
    write: &mut WriteHalf<Box<dyn Io>>,
    config: &IsoConfig,
    trace_no: u32,
) -> Result<(WorkingKeys, Option<u32>), SignInFailed> {
    let terminal = &config.connection_terminal();
    let d = config.dialect;
    let cannot =
        |e: super::codec::CodecError| SignInFailed::unanswered(format!("cannot build the sign-in: {e}"));
    let m = messages::sign_in(d, trace_no, terminal, &config.merchant_id).map_err(cannot)?;
    let bytes = d.encode(&m).map_err(cannot)?;
    write
        .write_all(&frame(&d.wrap(&bytes, false)))
        .await
        .map_err(|e| SignInFailed::unanswered(format!("sending the sign-in: {e}")))?;
    let answer = tokio::time::timeout(SIGN_IN_WAIT, async {
        loop {
            let bytes = incoming.next().await.map_err(SignInFailed::unanswered)?;
            let Ok(answer) = d.unwrap(&bytes).and_then(|m| d.decode(m)) else {
                tracing::warn!("undecodable message from the acquirer before sign-in ignored");
                continue;
            };
            if answer.mti == "0810" && answer.text(11) == m.text(11) {
                return Ok(answer);
            }
            tracing::warn!(mti = %answer.mti, "message from the acquirer before sign-in ignored");
        }
    })
    .await
    .map_err(|_| {
        SignInFailed::unanswered(format!(
            "no answer to the sign-in in {} s",
            SIGN_IN_WAIT.as_secs()
        ))
    })??;
    let keys = accepted_keys(&answer, terminal, config).map_err(|why| SignInFailed { why, refused: true })?;
    tracing::info!(terminal, mac_key_check_value = %keys.mac.check_value(), "signed in with the acquirer; working keys received");
    Ok((keys, messages::batch_in_60(d, &answer)))
}

/// Runs one connection: signs in first (nothing else goes out before the
/// host accepts it), then sends requests and hands out their answers.
async fn connected(
    stream: Box<dyn Io>,
    config: &IsoConfig,
    requests: &mut mpsc::Receiver<Job>,
    sign_in_no: u32,
    state: &Mutex<LinkState>,
    keys: &Keyring,
) -> Ended {
    let (read, mut write) = tokio::io::split(stream);
    let mut incoming = Incoming {
        read,
        frames: FrameReader::default(),
        buf: vec![0u8; 4096],
    };
    let (first, first_batch) = match sign_in(&mut incoming, &mut write, config, sign_in_no).await {
        Ok(first) => first,
        Err(SignInFailed { why, refused }) => {
            tracing::warn!(acquirer = %config.addr, error = %why, "acquirer sign-in failed; no transaction goes out");
            let mut state = lock(state);
            state.set(false, Some(why));
            state.sign_in_refused = refused;
            return Ended::Dropped { good: false };
        }
    };
    keys.lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(config.connection_terminal(), first);
    lock(state).set(true, None);
    let mut link = SignedIn {
        config,
        state,
        write,
        waiting: HashMap::new(),
        keys,
        host_batch: first_batch
            .map(|b| (config.connection_terminal(), b))
            .into_iter()
            .collect(),
        held: HashMap::new(),
        sign_in_no,
        heard: Instant::now(),
        echo: None,
    };
    // Signs in again every day on a connection that stays up.
    let mut daily = tokio::time::interval_at(tokio::time::Instant::now() + SIGN_IN_EVERY, SIGN_IN_EVERY);
    let mut tick = tokio::time::interval(config.echo_every.min(Duration::from_secs(1)));
    loop {
        let step = tokio::select! {
            _ = daily.tick() => link.sign_in_again().await,
            _ = tick.tick() => match link.give_up_on_sign_ins() {
                Ok(()) => link.echo_when_silent().await,
                ended => ended,
            },
            r = requests.recv() => match r {
                Some(job) => link.take(job).await,
                None => return Ended::Gone,
            },
            bytes = incoming.next() => match bytes {
                Ok(bytes) => link.on_frame(&bytes).await,
                Err(why) => {
                    tracing::warn!(error = %why, "acquirer link ended; reconnecting");
                    Err(Ended::Dropped { good: true })
                }
            },
        };
        if let Err(ended) = step {
            return ended;
        }
    }
}

/// Jobs held until their terminal's sign-in is answered.
struct Held {
    /// The sign-in's trace number (field 11).
    trace: String,
    since: Instant,
    jobs: Vec<Job>,
}

/// A connection once the hub has signed in on it. Each acquirer terminal
/// id signs in before its first request on the connection (acquirers track
/// sign-in and keys per terminal); its requests wait for that answer. A
/// terminal is signed in while the keyring holds its keys.
struct SignedIn<'a> {
    config: &'a IsoConfig,
    state: &'a Mutex<LinkState>,
    write: WriteHalf<Box<dyn Io>>,
    waiting: HashMap<Key, Waiting>,
    keys: &'a Keyring,
    /// The batch the host held open for each terminal at its latest sign-in
    /// on this connection (China UnionPay's layout).
    host_batch: HashMap<String, u32>,
    held: HashMap<String, Held>,
    sign_in_no: u32,
    /// When the host last sent anything.
    heard: Instant,
    /// The echo test waiting for its answer: its trace and when it went.
    echo: Option<(String, Instant)>,
}

/// How long the host has to answer an echo test before the connection is
/// taken for dead and made again.
const ECHO_WAIT: Duration = Duration::from_secs(10);

/// `Err` ends the connection, saying how.
type Step = Result<(), Ended>;

impl SignedIn<'_> {
    async fn write(&mut self, bytes: &[u8]) -> Step {
        self.write
            .write_all(&frame(&self.config.dialect.wrap(bytes, false)))
            .await
            .map_err(|_| Ended::Dropped { good: true })
    }

    fn keyring(&self) -> std::sync::MutexGuard<'_, HashMap<String, WorkingKeys>> {
        self.keys.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends a sign-in for `terminal` and holds `jobs` until its answer.
    async fn sign_in(&mut self, terminal: &str, jobs: Vec<Job>) -> Step {
        if self.config.master_keys.get(terminal).is_none() {
            let why = format!(
                "acquirer terminal {terminal} has no master key: it cannot sign in (the owner enters it under Settings, Acquirer keys)"
            );
            tracing::error!(terminal, "{why}");
            jobs.into_iter().for_each(|j| j.not_sent(&why));
            return Ok(());
        }
        if let Some(held) = self.held.get_mut(terminal) {
            // A sign-in of it is on its way already: the jobs wait for that one.
            held.jobs.extend(jobs);
            return Ok(());
        }
        self.sign_in_no = self.sign_in_no.wrapping_add(1);
        let d = self.config.dialect;
        let built = messages::sign_in(d, self.sign_in_no, terminal, &self.config.merchant_id)
            .and_then(|m| d.encode(&m).map(|bytes| (m, bytes)));
        let (m, bytes) = match built {
            Ok(built) => built,
            Err(e) => {
                jobs.into_iter().for_each(|j| j.not_sent(&e.to_string()));
                return Ok(());
            }
        };
        self.held.insert(
            terminal.to_string(),
            Held {
                trace: m.text(11).unwrap_or_default().to_string(),
                since: Instant::now(),
                jobs,
            },
        );
        self.write(&bytes).await
    }

    /// The daily sign-in: new keys for the connection's terminal now (its
    /// requests wait for them), the others' before their next request.
    async fn sign_in_again(&mut self) -> Step {
        self.keyring().clear();
        let terminal = self.config.connection_terminal();
        self.sign_in(&terminal, Vec::new()).await
    }

    /// Sends a request (or says a terminal is signed in), or holds it until
    /// its terminal has signed in.
    async fn take(&mut self, job: Job) -> Step {
        let terminal = job.terminal();
        let signed_in = self.keyring().contains_key(&terminal);
        if signed_in {
            return match job {
                Job::Send(outgoing) => self.send_now(outgoing).await,
                Job::SignIn { reply, .. } => {
                    let _ = reply.send(Ok(()));
                    Ok(())
                }
            };
        }
        if let Some(held) = self.held.get_mut(&terminal) {
            held.jobs.push(job);
            return Ok(());
        }
        self.sign_in(&terminal, vec![job]).await
    }

    async fn send_now(&mut self, outgoing: Outgoing) -> Step {
        let Outgoing {
            mut message,
            pin_key_check,
            reply,
        } = outgoing;
        let Some(answer_mti) = messages::answer_type(&message.mti) else {
            return Ok(());
        };
        let terminal = message.text(41).unwrap_or_default().trim_end().to_string();
        if self.keyring().contains_key(&terminal) {
            let (book, signed_in) = (&self.config.host_batches, self.host_batch.get(&terminal).copied());
            let numbered = messages::number_batches(self.config.dialect, &mut message, |batch, own| {
                if own {
                    book.number(&terminal, batch, signed_in)
                } else {
                    book.known(&terminal, batch)
                }
            });
            if let Err(e) = numbered {
                tracing::error!(error = %e, "request not encodable");
                return Ok(());
            }
        }
        // None: signed out since it was taken; Some(Err): a stale PIN key.
        let sealed = self.keyring().get(&terminal).map(|keys| {
            let pin_check = tallybox_core::card::pin_block::check_value(&keys.pin);
            match pin_key_check.as_deref() {
                Some(check) if check != pin_check => Err(()),
                _ => Ok((
                    keys.mac.seal_in(self.config.dialect, &mut message),
                    keys.mac.clone(),
                )),
            }
        });
        let sealed = match sealed {
            None => {
                // It signs in again first.
                let job = Job::Send(Outgoing {
                    message,
                    pin_key_check,
                    reply,
                });
                return Box::pin(self.take(job)).await;
            }
            Some(Err(())) => {
                let _ = reply.send(Err(AcquirerError::NotSent {
                    field: Some(52),
                    why: format!(
                        "terminal {terminal} signed in again (new PIN key) while the PIN was on its way; nothing was sent"
                    ),
                }));
                return Ok(());
            }
            Some(Ok(sealed)) => sealed,
        };
        let (bytes, mac) = match sealed {
            (Ok(b), mac) => (b, mac),
            (Err(e), _) => {
                tracing::error!(error = %e, "request not encodable");
                return Ok(());
            }
        };
        self.waiting.retain(|_, w| !w.reply.is_closed());
        self.waiting.insert(
            key_of(&message, &answer_mti),
            Waiting {
                request: message,
                mac,
                reply,
            },
        );
        self.write(&bytes).await
    }

    /// Sends an echo test (0820) when the host has been silent for
    /// `echo_every`; ends the connection when one goes unanswered.
    async fn echo_when_silent(&mut self) -> Step {
        if let Some((_, sent)) = &self.echo {
            if sent.elapsed() < ECHO_WAIT {
                return Ok(());
            }
            let why = format!("no answer to the echo test in {} s", ECHO_WAIT.as_secs());
            tracing::warn!(acquirer = %self.config.addr, "{why}; reconnecting");
            lock(self.state).set(false, Some(why));
            // Said why already; and a failure, for the back-off.
            return Err(Ended::Dropped { good: false });
        }
        if self.heard.elapsed() < self.config.echo_every {
            return Ok(());
        }
        let d = self.config.dialect;
        self.sign_in_no = self.sign_in_no.wrapping_add(1);
        let built = messages::echo(
            d,
            self.sign_in_no,
            &self.config.connection_terminal(),
            &self.config.merchant_id,
        )
        .and_then(|m| d.encode(&m).map(|bytes| (m, bytes)));
        let Ok((m, bytes)) = built else {
            return Ok(());
        };
        self.echo = Some((m.text(11).unwrap_or_default().to_string(), Instant::now()));
        self.write(&bytes).await
    }

    /// Ends the jobs of terminals whose sign-in went unanswered; the
    /// connection too, when it was its own terminal's.
    fn give_up_on_sign_ins(&mut self) -> Step {
        let late: Vec<String> = self
            .held
            .iter()
            .filter(|(_, h)| h.since.elapsed() >= SIGN_IN_WAIT)
            .map(|(t, _)| t.clone())
            .collect();
        for terminal in late {
            let why = format!(
                "no answer to the sign-in of terminal {terminal} in {} s",
                SIGN_IN_WAIT.as_secs()
            );
            self.refuse_held(&terminal, why.clone());
            if terminal == self.config.connection_terminal() {
                lock(self.state).set(false, Some(why));
                return Err(Ended::Dropped { good: false });
            }
        }
        Ok(())
    }

    /// Ends `terminal`'s held jobs with `why`: never sent (a sale ends
    /// failed with nothing to reverse); its next request signs in again.
    fn refuse_held(&mut self, terminal: &str, why: String) {
        let Some(held) = self.held.remove(terminal) else {
            return;
        };
        tracing::warn!(terminal, error = %why, requests = held.jobs.len(), "requests not sent");
        lock(self.state).last_error = Some(why.clone());
        held.jobs.into_iter().for_each(|j| j.not_sent(&why));
    }

    async fn on_frame(&mut self, frame: &[u8]) -> Step {
        let d = self.config.dialect;
        let Ok(bytes) = d.unwrap(frame) else {
            tracing::warn!(dialect = d.name(), "a frame without the dialect's header ignored");
            return Ok(());
        };
        self.heard = Instant::now();
        let answer = match d.decode(bytes) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "undecodable answer from the acquirer ignored");
                return Ok(());
            }
        };
        if answer.mti == "0830" {
            if self
                .echo
                .as_ref()
                .is_some_and(|(trace, _)| answer.text(11) == Some(trace.as_str()))
            {
                self.echo = None;
            }
            return Ok(());
        }
        if answer.mti == "0810" {
            return self.on_sign_in(&answer).await;
        }
        let terminal = answer.text(41).unwrap_or_default().trim_end().to_string();
        if answer.text(39).and_then(ResponseCode::parse) == Some(ResponseCode::MAC_ERROR) {
            // The host's keys for it differ from ours: new ones first.
            tracing::warn!(terminal = %terminal, "the acquirer answered A0 (MAC error); the terminal signs in again before its next request");
            self.keyring().remove(&terminal);
        }
        let Some(Waiting { request, mac, reply }) = self.waiting.remove(&key_of(&answer, &answer.mti)) else {
            tracing::warn!(mti = %answer.mti, trace = ?answer.text(11), "answer nobody waits for (too late?) ignored");
            return Ok(());
        };
        let mac_ok = mac.verify_in(d, bytes, &answer);
        let refused = if mac_ok {
            messages::answer_mismatch(&request, &answer)
        } else {
            Some("its MAC is wrong".to_string())
        };
        match refused {
            None => {
                self.after_answer(&terminal, &request, &answer);
                let _ = reply.send(Ok(answer));
            }
            Some(why) => {
                let why = format!(
                    "the answer to {} trace {} was refused: {why}",
                    request.mti,
                    request.text(11).unwrap_or("?")
                );
                tracing::error!(error = %why, "answer refused: the request counts as unanswered");
                lock(self.state).refused(why.clone());
                let _ = reply.send(Err(AcquirerError::BadAnswer(why)));
            }
        }
        Ok(())
    }

    /// What an answer tells the link of its terminal, in China UnionPay's
    /// layout: `77` says the host holds another batch for it (its number is
    /// asked again at a new sign-in); after a settlement the host opens the
    /// terminal's next batch, which the next sign-in names. Either way the
    /// terminal signs in again before its next request.
    fn after_answer(&mut self, terminal: &str, request: &Message, answer: &Message) {
        let d = self.config.dialect;
        if d != Dialect::CupPos {
            return;
        }
        let refused = answer.text(39).and_then(ResponseCode::parse) == Some(ResponseCode::SIGN_IN_AGAIN);
        if refused {
            tracing::warn!(terminal, batch = ?messages::batch_in_60(d, request), "the acquirer answered 77 (sign in again): the batch is numbered again at the next sign-in");
            if let Some(batch) = messages::batch_in_60(d, request) {
                self.config.host_batches.forget(terminal, batch);
            }
        }
        if refused || request.mti == "0500" {
            self.keyring().remove(terminal);
            self.host_batch.remove(terminal);
        }
    }

    async fn on_sign_in(&mut self, answer: &Message) -> Step {
        let terminal = answer.text(41).unwrap_or_default().trim_end().to_string();
        let held_trace = self.held.get(&terminal).map(|h| h.trace.clone());
        if held_trace.is_none() || held_trace.as_deref() != answer.text(11) {
            tracing::warn!(terminal = %terminal, "sign-in answer nobody waits for ignored");
            return Ok(());
        }
        let keys = match accepted_keys(answer, &terminal, self.config) {
            Ok(keys) => keys,
            Err(why) => {
                self.refuse_held(&terminal, why.clone());
                if terminal == self.config.connection_terminal() {
                    tracing::warn!(error = %why, "reconnecting");
                    let mut state = lock(self.state);
                    state.set(false, Some(why));
                    state.sign_in_refused = true;
                    return Err(Ended::Dropped { good: false });
                }
                return Ok(());
            }
        };
        tracing::info!(terminal = %terminal, mac_key_check_value = %keys.mac.check_value(), "terminal signed in with the acquirer; working keys received");
        self.keyring().insert(terminal.clone(), keys);
        match messages::batch_in_60(self.config.dialect, answer) {
            Some(batch) => self.host_batch.insert(terminal.clone(), batch),
            None => self.host_batch.remove(&terminal),
        };
        let jobs = self.held.remove(&terminal).map(|h| h.jobs).unwrap_or_default();
        for job in jobs {
            self.take(job).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acquirer::iso8583::keys::MasterKey;
    use crate::acquirer::iso8583::mac::{MacKey, TEST_MAC_KEY};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tallybox_core::card::{test_cards, EntryMode};
    use tallybox_core::money::Amount;
    use tallybox_core::protocol::TxnKind;
    use tokio::net::TcpListener;

    /// A host on loopback that answers each message as `answer` says (none:
    /// silence) and notes the message types each connection carried.
    struct FakeHost {
        dialect: Dialect,
        addr: String,
        seen: Arc<Mutex<Vec<Vec<String>>>>,
    }

    async fn fake_host(answer: impl Fn(&Message) -> Option<Vec<u8>> + Send + Sync + 'static) -> FakeHost {
        fake_host_over(Dialect::Iso1987, None, answer).await
    }

    /// A fake host speaking `d`: `answer` gives a message's bytes in `d`
    /// (without TPDU and header).
    async fn fake_host_in(
        d: Dialect,
        answer: impl Fn(&Message) -> Option<Vec<u8>> + Send + Sync + 'static,
    ) -> FakeHost {
        fake_host_over(d, None, answer).await
    }

    /// A fake host that speaks TLS with `tls`, when given.
    async fn fake_host_over(
        d: Dialect,
        tls: Option<tokio_rustls::TlsAcceptor>,
        answer: impl Fn(&Message) -> Option<Vec<u8>> + Send + Sync + 'static,
    ) -> FakeHost {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let seen: Arc<Mutex<Vec<Vec<String>>>> = Arc::default();
        let (answer, noted) = (Arc::new(answer), Arc::clone(&seen));
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (answer, noted, tls) = (Arc::clone(&answer), Arc::clone(&noted), tls.clone());
                tokio::spawn(async move {
                    let stream: Box<dyn Io> = match tls {
                        None => Box::new(stream),
                        Some(tls) => match tls.accept(stream).await {
                            Ok(s) => Box::new(s),
                            Err(_) => return,
                        },
                    };
                    let (read, mut write) = tokio::io::split(stream);
                    let mut incoming = Incoming {
                        read,
                        frames: FrameReader::default(),
                        buf: vec![0; 4096],
                    };
                    let n = {
                        let mut seen = noted.lock().unwrap();
                        seen.push(Vec::new());
                        seen.len() - 1
                    };
                    while let Ok(bytes) = incoming.next().await {
                        let m = d.decode(d.unwrap(&bytes).unwrap()).unwrap();
                        let terminal = m.text(41).unwrap_or_default().trim_end();
                        noted.lock().unwrap()[n].push(format!("{} {terminal}", m.mti));
                        match answer(&m) {
                            Some(out) if out.is_empty() => return,
                            // Bytes to write as they are (frames made by the test).
                            Some(out) if out.starts_with(RAW) => {
                                write.write_all(&out[RAW.len()..]).await.unwrap()
                            }
                            Some(out) => write.write_all(&frame(&d.wrap(&out, true))).await.unwrap(),
                            None => {}
                        }
                    }
                });
            }
        });
        FakeHost {
            dialect: d,
            addr,
            seen,
        }
    }

    /// An answer starting with this goes on the wire as it is.
    const RAW: &[u8] = b"RAW:";

    #[tokio::test]
    async fn garbage_from_the_host_approves_nothing_an_unreadable_frame_is_skipped_a_wild_length_reconnects()
    {
        for d in [Dialect::Iso1987, Dialect::CupPos] {
            // Before each answer to a sale, a frame of garbage.
            let host = fake_host_in(d, move |m| {
                let answer = answered_in(d, m, &TEST_MAC_KEY, |_| {})?;
                if m.mti != "0200" {
                    return Some(answer);
                }
                let mut raw = RAW.to_vec();
                raw.extend(frame(&d.wrap(&[0xFF; 40], true)));
                raw.extend(frame(&d.wrap(&answer, true)));
                Some(raw)
            })
            .await;
            let link = link_to(&host);
            let approved = authorize_when_up(&link, &host, sale(70)).await.unwrap();
            assert!(approved.approved(), "{}: the garbage was skipped", d.name());
            assert_eq!(host.seen.lock().unwrap().len(), 1, "on the same connection");

            // A length no message has: the connection ends, nothing is
            // approved, and a new connection signs in.
            let host = fake_host_in(d, move |m| match m.mti.as_str() {
                "0200" => Some([RAW, &[0xFF, 0xFF, 0x00]].concat()),
                _ => answered_in(d, m, &TEST_MAC_KEY, |_| {}),
            })
            .await;
            let link = link_to(&host);
            let e = authorize_when_up(&link, &host, sale(71)).await.unwrap_err();
            assert!(matches!(e, AcquirerError::Link(_)), "{}: {e:?}", d.name());
            tokio::time::sleep(Duration::from_millis(700)).await;
            let seen = host.seen.lock().unwrap().clone();
            assert!(seen.len() >= 2, "{}: {seen:?}", d.name());
            assert_eq!(seen[1].first().map(String::as_str), Some("0800 HUB"));
        }
    }

    /// Every test terminal's master key.
    fn test_master_key() -> MasterKey {
        MasterKey::from_bytes([0x24; 16])
    }

    /// The working keys the fake hosts give at every sign-in.
    fn test_keys() -> WorkingKeys {
        WorkingKeys {
            pin: [0x42; 16],
            mac: TEST_MAC_KEY,
        }
    }

    /// The answer an honest host gives, changed by `change`, sealed with
    /// `key`; a sign-in's brings the test working keys and is not sealed.
    fn answered(request: &Message, key: &MacKey, change: impl FnOnce(&mut Message)) -> Option<Vec<u8>> {
        answered_in(Dialect::Iso1987, request, key, change)
    }

    /// The same in dialect `d`.
    fn answered_in(
        d: Dialect,
        request: &Message,
        key: &MacKey,
        change: impl FnOnce(&mut Message),
    ) -> Option<Vec<u8>> {
        let mut a = messages::answer(request, ResponseCode::APPROVED).unwrap();
        if request.mti == "0200" {
            a.set_str(37, "000000000001")
                .unwrap()
                .set_str(38, "123456")
                .unwrap();
        }
        if request.mti == "0800" {
            a.set(62, test_keys().field62(&test_master_key())).unwrap();
            change(&mut a);
            return Some(d.encode(&a).unwrap());
        }
        change(&mut a);
        Some(key.seal_in(d, &mut a).unwrap())
    }

    fn link_to(host: &FakeHost) -> IsoAcquirer {
        IsoAcquirer::start(config_for(host))
    }

    fn config_for(host: &FakeHost) -> IsoConfig {
        IsoConfig {
            addr: host.addr.clone(),
            tls: None,
            merchant_id: "898000000000001".into(),
            currency: "156".into(),
            dialect: host.dialect,
            echo_every: Duration::from_secs(3600),
            master_keys: {
                let mut keys = crate::acquirer::iso8583::keys::MasterKeys::default();
                for terminal in ["HUB", "T1", "T2"] {
                    keys.insert(terminal, test_master_key());
                }
                Arc::new(KeyFile::new(keys, None))
            },
            hub_terminal: "HUB".into(),
            terminal_ids: BTreeMap::new(),
            host_batches: Arc::new(HostBatches::open(None)),
        }
    }

    fn sale(trace_no: u32) -> AuthRequest {
        AuthRequest {
            kind: TxnKind::Sale,
            terminal_id: "T1".into(),
            trace_no,
            batch_no: 1,
            amount: Amount::from_minor(1250).unwrap(),
            card: test_cards::by_name("approved").unwrap().read(EntryMode::Swipe),
            pin_block: None,
            pin_key_check: None,
            original: None,
            at: chrono::Utc::now(),
        }
    }

    /// Sends `sale` once the link is up (the first sign-in takes a moment).
    async fn authorize_when_up(
        link: &IsoAcquirer,
        host: &FakeHost,
        sale: AuthRequest,
    ) -> Result<AuthResponse, AcquirerError> {
        for _ in 0..100 {
            if link.health(&host.addr).up {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::timeout(Duration::from_secs(5), link.authorize(sale))
            .await
            .expect("an answer or an error in 5 s")
    }

    #[tokio::test]
    async fn an_answer_for_another_amount_approves_nothing_and_the_link_says_why() {
        for d in [Dialect::Iso1987, Dialect::CupPos] {
            let host = fake_host_in(d, move |m| match m.mti.as_str() {
                "0200" => answered_in(d, m, &TEST_MAC_KEY, |a| {
                    a.set_str(4, "000000000999").unwrap();
                }),
                _ => answered_in(d, m, &TEST_MAC_KEY, |_| {}),
            })
            .await;
            let link = link_to(&host);
            let e = authorize_when_up(&link, &host, sale(7)).await.unwrap_err();
            assert!(matches!(e, AcquirerError::BadAnswer(_)), "{e:?}");
            let why = e.to_string();
            assert!(
                why.contains("field 4") && why.contains("000000000999") && why.contains("000000001250"),
                "{why}"
            );
            let health = link.health(&host.addr);
            assert!(health.up, "the link itself is fine");
            assert_eq!(health.refused_answers_last_hour, 1);
            assert_eq!(health.last_refused.as_deref(), Some(why.as_str()));
        }
    }

    #[tokio::test]
    async fn an_answer_with_a_wrong_mac_is_refused_at_once_not_after_the_time_out() {
        for d in [Dialect::Iso1987, Dialect::CupPos] {
            let other = MacKey::parse("00112233445566778899AABBCCDDEEFF").unwrap();
            let host = fake_host_in(d, move |m| match m.mti.as_str() {
                "0200" => answered_in(d, m, &other, |_| {}),
                _ => answered_in(d, m, &TEST_MAC_KEY, |_| {}),
            })
            .await;
            let link = link_to(&host);
            let started = Instant::now();
            let e = authorize_when_up(&link, &host, sale(8)).await.unwrap_err();
            assert!(e.to_string().contains("MAC is wrong"), "{e}");
            assert!(
                started.elapsed() < Duration::from_secs(3),
                "{:?}",
                started.elapsed()
            );
        }
    }

    #[tokio::test]
    async fn a_refused_sign_in_lets_nothing_else_out_and_is_not_retried_in_a_storm() {
        for d in [Dialect::Iso1987, Dialect::CupPos] {
            let host = fake_host_in(d, move |m| {
                answered_in(d, m, &TEST_MAC_KEY, |a| {
                    a.set_str(39, "96").unwrap();
                })
            })
            .await;
            let link = link_to(&host);
            tokio::time::sleep(Duration::from_millis(500)).await;
            let e = tokio::time::timeout(Duration::from_secs(5), link.authorize(sale(9)))
                .await
                .unwrap()
                .unwrap_err();
            assert!(matches!(e, AcquirerError::Link(_)), "{e:?}");
            tokio::time::sleep(Duration::from_millis(1500)).await;
            let seen = host.seen.lock().unwrap().clone();
            assert!(seen.iter().flatten().all(|m| m == "0800 HUB"), "{seen:?}");
            assert!(
                (2..=6).contains(&seen.len()),
                "connections in 2 s: {}",
                seen.len()
            );
            let health = link.health(&host.addr);
            assert!(!health.up && health.sign_in_refused, "{health:?}");
            assert!(health.last_error.unwrap().contains("response code 96"));
        }
    }

    #[tokio::test]
    async fn a_host_that_accepts_and_hangs_up_gets_a_few_connections_not_thousands() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&accepted);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                counted.fetch_add(1, Ordering::Relaxed);
                drop(stream);
            }
        });
        let host = FakeHost {
            dialect: Dialect::Iso1987,
            addr,
            seen: Arc::default(),
        };
        let link = link_to(&host);
        tokio::time::sleep(Duration::from_secs(3)).await;
        let n = accepted.load(Ordering::Relaxed);
        // 100, 200, 400, 800 and 1 600 ms apart: 5 or 6 in 3 s.
        assert!((3..=8).contains(&n), "{n} connections in 3 s");
        assert!(!link.health(&host.addr).up);
    }

    #[tokio::test]
    async fn every_connection_signs_in_before_anything_else_goes_out() {
        for d in [Dialect::Iso1987, Dialect::CupPos] {
            let answered_sales = Arc::new(AtomicUsize::new(0));
            let count = Arc::clone(&answered_sales);
            // The host hangs up after each sale's answer.
            let host = fake_host_in(d, move |m| match m.mti.as_str() {
                "0200" if count.fetch_add(1, Ordering::Relaxed) % 2 == 1 => Some(Vec::new()),
                _ => answered_in(d, m, &TEST_MAC_KEY, |_| {}),
            })
            .await;
            let link = link_to(&host);
            authorize_when_up(&link, &host, sale(10)).await.unwrap();
            // The second sale's connection is cut before its answer.
            assert!(authorize_when_up(&link, &host, sale(11)).await.is_err());
            tokio::time::sleep(Duration::from_millis(300)).await;
            authorize_when_up(&link, &host, sale(12)).await.unwrap();
            let seen = host.seen.lock().unwrap().clone();
            assert!(seen.len() >= 2, "{seen:?}");
            for connection in &seen {
                assert_eq!(
                    connection.first().map(String::as_str),
                    Some("0800 HUB"),
                    "{seen:?}"
                );
            }
        }
    }

    #[tokio::test]
    async fn each_terminal_signs_in_before_its_first_request_and_a_refused_one_sends_nothing() {
        for d in [Dialect::Iso1987, Dialect::CupPos] {
            // The host refuses terminal T2's sign-in.
            let host = fake_host_in(d, move |m| {
                answered_in(d, m, &TEST_MAC_KEY, |a| {
                    if m.mti == "0800" && m.text(41) == Some("T2      ") {
                        a.set_str(39, "03").unwrap();
                    }
                })
            })
            .await;
            let link = link_to(&host);
            authorize_when_up(&link, &host, sale(20)).await.unwrap();
            authorize_when_up(&link, &host, sale(21)).await.unwrap();
            let t2 = AuthRequest {
                terminal_id: "T2".into(),
                ..sale(22)
            };
            let e = authorize_when_up(&link, &host, t2).await.unwrap_err();
            assert!(
                matches!(e, AcquirerError::NotSent { field: Some(41), .. }),
                "never sent: {e:?}"
            );
            assert!(
                e.to_string().contains("sign-in of terminal T2") && e.to_string().contains("03"),
                "{e}"
            );
            let seen = host.seen.lock().unwrap().clone();
            assert_eq!(
                seen,
                vec![vec!["0800 HUB", "0800 T1", "0200 T1", "0200 T1", "0800 T2"]],
                "one sign-in per terminal, before its first request; nothing for T2 after its refusal"
            );
            assert!(link.health(&host.addr).up, "the others go on");
        }
    }

    #[tokio::test]
    async fn each_sign_in_brings_new_keys_and_an_a0_answer_makes_the_terminal_sign_in_again() {
        for d in [Dialect::Iso1987, Dialect::CupPos] {
            // The host makes new working keys at every sign-in, and answers the
            // first sale A0 (it could not check its MAC).
            let current: Arc<Mutex<HashMap<String, WorkingKeys>>> = Arc::default();
            let sales = Arc::new(AtomicUsize::new(0));
            let (keys, count) = (Arc::clone(&current), Arc::clone(&sales));
            let host = fake_host_in(d, move |m| {
                let terminal = m.text(41).unwrap().trim_end().to_string();
                if m.mti == "0800" {
                    let fresh = WorkingKeys::random();
                    let mut a = messages::answer(m, ResponseCode::APPROVED).unwrap();
                    a.set(62, fresh.field62(&test_master_key())).unwrap();
                    keys.lock().unwrap().insert(terminal, fresh);
                    return Some(d.encode(&a).unwrap());
                }
                let mac = keys.lock().unwrap()[&terminal].mac.clone();
                let first = count.fetch_add(1, Ordering::Relaxed) == 0;
                answered_in(d, m, &mac, |a| {
                    if first {
                        a.set_str(39, "A0").unwrap();
                    }
                })
            })
            .await;
            let link = link_to(&host);
            let refused = authorize_when_up(&link, &host, sale(40)).await.unwrap();
            assert_eq!(refused.response_code, ResponseCode::MAC_ERROR);
            let before = current.lock().unwrap()["T1"].mac.check_value();
            let approved = authorize_when_up(&link, &host, sale(41)).await.unwrap();
            assert!(approved.approved(), "{approved:?}");
            let after = current.lock().unwrap()["T1"].mac.check_value();
            assert_ne!(before, after, "the second sign-in brought a new MAC key");
            assert_eq!(
                link.pin_key("T1").await.unwrap(),
                current.lock().unwrap()["T1"].pin,
                "and a new PIN key, which the hub now uses"
            );
            let seen = host.seen.lock().unwrap().clone();
            assert_eq!(
                seen,
                vec![vec!["0800 HUB", "0800 T1", "0200 T1", "0800 T1", "0200 T1"]]
            );
        }
    }

    /// The simulated host speaking China UnionPay's layout, its batches
    /// starting at `first_batch`, and the file it logs every frame to.
    async fn cup_host(first_batch: u32, log: &std::path::Path) -> FakeHost {
        let mut keys = crate::acquirer::iso8583::keys::MasterKeys::default();
        for terminal in ["HUB", "T1"] {
            keys.insert(terminal, test_master_key());
        }
        let host = super::super::host::Host::new(Dialect::CupPos, keys, Some(log.to_path_buf()))
            .unwrap()
            .first_batch(first_batch);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(host.serve(listener, None));
        FakeHost {
            dialect: Dialect::CupPos,
            addr,
            seen: Arc::default(),
        }
    }

    /// The batch (60.2) and original batch (61, if any) of each message
    /// `mti` the hub sent, in the host's log.
    fn batches_sent(log: &std::path::Path, mti: &str) -> Vec<(u32, Option<u32>)> {
        let d = Dialect::CupPos;
        std::fs::read_to_string(log)
            .unwrap()
            .lines()
            .filter_map(|l| l.strip_prefix("in "))
            .map(|h| d.decode(d.unwrap(&hex::decode(h).unwrap()).unwrap()).unwrap())
            .filter(|m| m.mti == mti)
            .map(|m| {
                let batch = messages::batch_in_60(d, &m).unwrap();
                (batch, m.text(61).map(|f| f[..6].parse().unwrap()))
            })
            .collect()
    }

    #[tokio::test]
    async fn a_china_unionpay_hosts_own_batch_numbers_go_on_the_wire_and_outlive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let (log, book) = (
            dir.path().join("host.log"),
            dir.path().join("acquirer-batches.json"),
        );
        let host = cup_host(417, &log).await;
        let start = |host: &FakeHost| {
            IsoAcquirer::start(IsoConfig {
                host_batches: Arc::new(HostBatches::open(Some(book.clone()))),
                ..config_for(host)
            })
        };
        let link = start(&host);
        // The hub's batch 1 is the host's 417 for T1.
        assert!(authorize_when_up(&link, &host, sale(40))
            .await
            .unwrap()
            .approved());
        let totals = BatchTotals::of("T1", 1, [(TxnKind::Sale, 1, 1250)]);
        let settlement = |trace_no: u32| BatchTotals {
            trace_no,
            ..totals.clone()
        };
        assert!(link.settle(settlement(41)).await.unwrap(), "balanced");
        // After settling, T1 signs in again and the host names its next batch.
        let in_batch_2 = AuthRequest {
            batch_no: 2,
            ..sale(42)
        };
        assert!(authorize_when_up(&link, &host, in_batch_2.clone())
            .await
            .unwrap()
            .approved());
        let void = AuthRequest {
            kind: TxnKind::Void,
            original: Some(crate::acquirer::OriginalRef {
                trace_no: 42,
                batch_no: 2,
                reference_no: "000000000001".into(),
                auth_code: "123456".into(),
                at: chrono::Utc::now(),
            }),
            ..AuthRequest {
                batch_no: 2,
                ..sale(43)
            }
        };
        link.authorize(void).await.unwrap();
        assert_eq!(
            batches_sent(&log, "0200"),
            [(417, None), (418, None), (418, Some(418))]
        );
        assert_eq!(batches_sent(&log, "0500"), [(417, None)]);

        // The hub restarts and repeats batch 1's settlement (it never
        // recorded the answer): it names 417 again, not the host's open 418,
        // and gets the first answer.
        drop(link);
        let link = start(&host);
        assert!(authorize_when_up(&link, &host, in_batch_2.clone())
            .await
            .unwrap()
            .approved());
        assert!(
            link.settle(settlement(44)).await.unwrap(),
            "the repeat gets the first answer"
        );
        assert_eq!(batches_sent(&log, "0500"), [(417, None), (417, None)]);

        // A host that numbers the batch otherwise (it was reset) answers 77;
        // the terminal signs in again and the batch takes the host's number.
        let other_log = dir.path().join("other.log");
        let reset = cup_host(900, &other_log).await;
        let link = start(&reset);
        let refused = authorize_when_up(&link, &reset, in_batch_2.clone())
            .await
            .unwrap();
        assert_eq!(refused.response_code, ResponseCode::SIGN_IN_AGAIN);
        assert!(authorize_when_up(&link, &reset, in_batch_2)
            .await
            .unwrap()
            .approved());
        assert_eq!(batches_sent(&other_log, "0200"), [(418, None), (900, None)]);
    }

    #[tokio::test]
    async fn working_keys_that_do_not_check_under_the_master_key_are_refused_and_nothing_is_sent() {
        for d in [Dialect::Iso1987, Dialect::CupPos] {
            // Someone without T1's master key answers its sign-in with keys of
            // their own.
            let host = fake_host_in(d, move |m| {
                if m.mti == "0800" && m.text(41) == Some("T1      ") {
                    let mut a = messages::answer(m, ResponseCode::APPROVED).unwrap();
                    a.set(62, test_keys().field62(&MasterKey::random())).unwrap();
                    return Some(d.encode(&a).unwrap());
                }
                answered_in(d, m, &TEST_MAC_KEY, |_| {})
            })
            .await;
            let link = link_to(&host);
            let e = authorize_when_up(&link, &host, sale(42)).await.unwrap_err();
            assert!(
                matches!(e, AcquirerError::NotSent { field: Some(41), .. }),
                "{e:?}"
            );
            assert!(e.to_string().contains("check value does not match"), "{e}");
            let seen = host.seen.lock().unwrap().clone();
            assert_eq!(seen, vec![vec!["0800 HUB", "0800 T1"]], "no sale went out");
            // A terminal with no master key here cannot sign in at all.
            let t3 = AuthRequest {
                terminal_id: "T3".into(),
                ..sale(43)
            };
            let e = link.authorize(t3).await.unwrap_err();
            assert!(e.to_string().contains("no master key"), "{e}");
        }
    }

    #[tokio::test]
    async fn a_pin_block_made_under_a_replaced_pin_key_is_not_sent() {
        for d in [Dialect::Iso1987, Dialect::CupPos] {
            let host = fake_host_in(d, move |m| answered_in(d, m, &TEST_MAC_KEY, |_| {})).await;
            let link = link_to(&host);
            let key = tokio::time::timeout(Duration::from_secs(5), link.pin_key("T1"))
                .await
                .unwrap()
                .unwrap();
            assert_eq!(key, test_keys().pin);
            let with_pin = |trace: u32, check: String| AuthRequest {
                pin_block: Some("0123456789ABCDEF".into()),
                pin_key_check: Some(check),
                ..sale(trace)
            };
            let e = authorize_when_up(&link, &host, with_pin(44, "FFFFFF".into()))
                .await
                .unwrap_err();
            assert!(
                matches!(e, AcquirerError::NotSent { field: Some(52), .. }),
                "{e:?}"
            );
            let check = tallybox_core::card::pin_block::check_value(&key);
            assert!(authorize_when_up(&link, &host, with_pin(45, check))
                .await
                .unwrap()
                .approved());
            let seen = host.seen.lock().unwrap().clone();
            assert_eq!(seen, vec![vec!["0800 HUB", "0800 T1", "0200 T1"]]);
        }
    }

    #[tokio::test]
    async fn a_silent_connection_is_tested_with_0820_and_made_again_when_the_echo_goes_unanswered() {
        // The first connection answers everything but echo tests; later ones answer them too.
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&connections);
        let host = fake_host(move |m| {
            if m.mti == "0800" && m.text(41) == Some("HUB     ") {
                counted.fetch_add(1, Ordering::Relaxed);
            }
            if m.mti == "0820" && counted.load(Ordering::Relaxed) == 1 {
                return None;
            }
            answered(m, &TEST_MAC_KEY, |_| {})
        })
        .await;
        let link = IsoAcquirer::start(IsoConfig {
            echo_every: Duration::from_millis(300),
            ..config_for(&host)
        });
        let e = wait_until(Duration::from_secs(15), || {
            let health = link.health(&host.addr);
            health.last_error.filter(|e| e.contains("echo test"))
        })
        .await;
        assert!(e.is_some(), "the unanswered echo ended the connection");
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(
            link.health(&host.addr).up,
            "a new connection, whose echoes are answered"
        );
        assert!(authorize_when_up(&link, &host, sale(50))
            .await
            .unwrap()
            .approved());
        let seen = host.seen.lock().unwrap().clone();
        assert!(seen.len() >= 2, "{seen:?}");
        assert_eq!(seen[0][..2], ["0800 HUB", "0820 HUB"], "{seen:?}");
        assert!(
            seen[1].iter().filter(|m| *m == "0820 HUB").count() >= 2,
            "{seen:?}"
        );
    }

    async fn wait_until<T>(limit: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
        let started = Instant::now();
        while started.elapsed() < limit {
            if let Some(t) = check() {
                return Some(t);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        None
    }

    /// A CA, and a certificate it signed for 127.0.0.1, written as PEM files
    /// in `dir`: (ca, host certificate, host key).
    fn certificates(
        dir: &std::path::Path,
        name: &str,
    ) -> (std::path::PathBuf, std::path::PathBuf, std::path::PathBuf) {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let host_key = KeyPair::generate().unwrap();
        let host = CertificateParams::new(vec!["127.0.0.1".to_string()])
            .unwrap()
            .signed_by(&host_key, &Issuer::new(ca_params, ca_key))
            .unwrap();
        let path = |what: &str| dir.join(format!("{name}-{what}.pem"));
        std::fs::write(path("ca"), ca.pem()).unwrap();
        std::fs::write(path("cert"), host.pem()).unwrap();
        std::fs::write(path("key"), host_key.serialize_pem()).unwrap();
        (path("ca"), path("cert"), path("key"))
    }

    #[tokio::test]
    async fn a_host_that_asks_for_a_client_certificate_takes_the_one_its_ca_signed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        let (ca, cert, key) = certificates(dir.path(), "acquirer");
        // The terminals' certificates, from a CA of the acquirer's own.
        let (client_ca, client_cert, client_key) = certificates(dir.path(), "terminals");
        let acceptor =
            crate::acquirer::iso8583::tls::acceptor_for_clients(&cert, &key, Some(client_ca.as_path()))
                .unwrap();
        let host = fake_host_over(Dialect::Iso1987, Some(acceptor), |m| {
            answered(m, &TEST_MAC_KEY, |_| {})
        })
        .await;

        // No certificate: the link never comes up, and nothing reaches the host.
        let bare = tls_link_to(&host, &ca);
        tokio::time::sleep(Duration::from_millis(800)).await;
        assert!(bare.authorize(sale(60)).await.is_err());
        assert!(!bare.health(&host.addr).up);
        assert!(
            host.seen.lock().unwrap().iter().all(Vec::is_empty),
            "no message got through"
        );
        drop(bare);

        let with_cert = IsoAcquirer::start(IsoConfig {
            tls: Some(TlsClient::new(&ca, Some((&client_cert, &client_key)), "127.0.0.1").unwrap()),
            ..config_for(&host)
        });
        assert!(authorize_when_up(&with_cert, &host, sale(61))
            .await
            .unwrap()
            .approved());
    }

    fn tls_link_to(host: &FakeHost, ca: &std::path::Path) -> IsoAcquirer {
        IsoAcquirer::start(IsoConfig {
            tls: Some(TlsClient::new(ca, None, "127.0.0.1").unwrap()),
            ..config_for(host)
        })
    }

    #[tokio::test]
    async fn over_tls_a_sale_goes_through_and_a_host_with_another_cas_certificate_gets_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let (ca, cert, key) = certificates(dir.path(), "acquirer");
        for d in [Dialect::Iso1987, Dialect::CupPos] {
            let acceptor = crate::acquirer::iso8583::tls::acceptor(&cert, &key).unwrap();
            let host = fake_host_over(d, Some(acceptor), move |m| {
                answered_in(d, m, &TEST_MAC_KEY, |_| {})
            })
            .await;
            let link = tls_link_to(&host, &ca);
            let approved = authorize_when_up(&link, &host, sale(30)).await.unwrap();
            assert!(approved.approved(), "{}", d.name());
            let health = link.health(&host.addr);
            assert!(
                health.up && health.tls && health.dialect == d.name(),
                "{health:?}"
            );
        }

        // A host whose certificate another CA signed (someone in the middle):
        // the handshake fails, nothing is sent, and the link says why.
        let (_, other_cert, other_key) = certificates(dir.path(), "stranger");
        let stranger = crate::acquirer::iso8583::tls::acceptor(&other_cert, &other_key).unwrap();
        let impostor = fake_host_over(Dialect::Iso1987, Some(stranger), |m| {
            answered(m, &TEST_MAC_KEY, |_| {})
        })
        .await;
        let link = tls_link_to(&impostor, &ca);
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(link.authorize(sale(31)).await.is_err());
        let health = link.health(&impostor.addr);
        assert!(!health.up, "{health:?}");
        let error = health.last_error.unwrap_or_default();
        assert!(
            error.contains("TLS handshake failed") && error.contains("certificate"),
            "{error}"
        );
        assert!(
            impostor.seen.lock().unwrap().iter().all(Vec::is_empty),
            "no message reached it"
        );
    }
}
