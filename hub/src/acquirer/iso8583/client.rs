//! The hub's ISO 8583 client: one TCP connection to the acquirer, kept open
//! and re-opened with back-off when it drops. It signs in on each new
//! connection, sends each request with its MAC, and matches answers to
//! requests by terminal, trace number and message type. While the link is
//! down a request fails at once (the coordinator then reverses and keeps
//! trying), rather than waiting out the time-out.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tallybox_core::code::ResponseCode;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

use super::codec::{frame, FrameReader, Message};
use super::mac::MacKey;
use super::messages;
use crate::acquirer::{
    Acquirer, AcquirerError, AuthRequest, AuthResponse, BatchTotals, LinkHealth, Reversal,
};

#[derive(Debug, Clone)]
pub struct IsoConfig {
    /// `HOST:PORT` of the acquirer host.
    pub addr: String,
    pub merchant_id: String,
    /// The store's currency, ISO 4217 numeric (field 49).
    pub currency: String,
    pub mac_key: MacKey,
    /// The terminal id the hub signs in with.
    pub hub_terminal: String,
    /// The acquirer's terminal id (field 41) for each checkout that has one;
    /// a checkout not listed goes out under its own id.
    pub terminal_ids: BTreeMap<String, String>,
}

/// How often the hub signs in again on a connection that stays up.
const SIGN_IN_EVERY: Duration = Duration::from_secs(24 * 3600);

/// (terminal, trace number, answer type): what ties an answer to its request.
type Key = (String, String, String);

struct Outgoing {
    message: Message,
    reply: oneshot::Sender<Message>,
}

#[derive(Clone)]
pub struct IsoAcquirer {
    requests: mpsc::Sender<Outgoing>,
    merchant_id: String,
    currency: String,
    terminal_ids: Arc<BTreeMap<String, String>>,
    link: Arc<Mutex<LinkState>>,
}

/// What the link task and the exchanges note for the troubleshooting page.
#[derive(Default)]
struct LinkState {
    up: bool,
    /// When `up` last changed.
    since: Option<chrono::DateTime<chrono::Utc>>,
    last_error: Option<String>,
    /// When the link dropped or a connection failed, within the last hour.
    drops: VecDeque<Instant>,
    /// Round trips of the last few exchanges, in ms.
    round_trips: VecDeque<u32>,
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
        if error.is_some() {
            self.last_error = error;
        }
    }

    fn health(&mut self, addr: &str) -> LinkHealth {
        let hour_ago = Instant::now().checked_sub(Duration::from_secs(3600));
        while self
            .drops
            .front()
            .is_some_and(|d| hour_ago.is_some_and(|h| *d < h))
        {
            self.drops.pop_front();
        }
        LinkHealth {
            addr: addr.to_string(),
            up: self.up,
            since: self.since.map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string()),
            last_error: self.last_error.clone(),
            drops_last_hour: self.drops.len() as u32,
            max_round_trip_ms: self.round_trips.iter().copied().max(),
            timeout_ms: 0,
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
        let state = Arc::new(Mutex::new(LinkState::default()));
        tokio::spawn(link(config, rx, Arc::clone(&state)));
        IsoAcquirer {
            requests: tx,
            merchant_id,
            currency,
            terminal_ids,
            link: state,
        }
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
        lock(&self.link).health(addr)
    }

    async fn exchange(&self, message: Message) -> Result<Message, AcquirerError> {
        let (reply, answer) = oneshot::channel();
        let sent = Instant::now();
        self.requests
            .send(Outgoing { message, reply })
            .await
            .map_err(|_| AcquirerError::Link("the acquirer link has stopped".into()))?;
        let answer = answer
            .await
            .map_err(|_| AcquirerError::Link("the acquirer link dropped before the answer".into()))?;
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
    async fn authorize(&self, request: AuthRequest) -> Result<AuthResponse, AcquirerError> {
        let request = AuthRequest {
            terminal_id: self.acquirer_terminal(&request.terminal_id),
            ..request
        };
        let message = messages::auth_request(
            &request,
            &self.merchant_id,
            &self.currency,
            tallybox_platform::clock::now(),
        )
        .map_err(not_sent)?;
        let answer = self.exchange(message).await?;
        messages::auth_response(&answer).map_err(AcquirerError::Link)
    }

    async fn reverse(&self, reversal: Reversal) -> Result<(), AcquirerError> {
        let reversal = Reversal {
            terminal_id: self.acquirer_terminal(&reversal.terminal_id),
            ..reversal
        };
        let message = messages::reversal(&reversal, &self.merchant_id, &self.currency).map_err(not_sent)?;
        let answer = self.exchange(message).await?;
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
        let message = messages::settlement(&totals, &self.merchant_id).map_err(not_sent)?;
        let answer = self.exchange(message).await?;
        match answer.text(39).and_then(ResponseCode::parse) {
            Some(ResponseCode::APPROVED) => Ok(true),
            Some(ResponseCode::OUT_OF_BALANCE) => Ok(false),
            other => Err(AcquirerError::Link(format!("settlement answered {other:?}"))),
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

async fn link(config: IsoConfig, mut requests: mpsc::Receiver<Outgoing>, state: Arc<Mutex<LinkState>>) {
    let mut backoff = Duration::from_millis(100);
    let mut sign_ins = 0u32;
    loop {
        let connect = tokio::time::timeout(Duration::from_secs(3), TcpStream::connect(&config.addr)).await;
        let stream = match connect {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                tracing::warn!(acquirer = %config.addr, error = %e, "cannot reach the acquirer; retrying");
                lock(&state).set(false, Some(format!("cannot connect: {e}")));
                if !fail_waiting(&mut requests, backoff).await {
                    return;
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
            Err(_) => {
                tracing::warn!(acquirer = %config.addr, "acquirer did not accept the connection in 3 s; retrying");
                lock(&state).set(false, Some("no answer to the connection in 3 s".into()));
                continue;
            }
        };
        backoff = Duration::from_millis(100);
        let _ = stream.set_nodelay(true);
        tracing::info!(acquirer = %config.addr, "acquirer link up");
        lock(&state).set(true, None);
        sign_ins = sign_ins.wrapping_add(1000);
        if !connected(stream, &config, &mut requests, sign_ins).await {
            return;
        }
        tracing::warn!(acquirer = %config.addr, "acquirer link lost; reconnecting");
        lock(&state).set(false, Some("the connection dropped".into()));
    }
}

/// While there is no link: answers every request with an error at once, for
/// `wait`. False when the hub has gone.
async fn fail_waiting(requests: &mut mpsc::Receiver<Outgoing>, wait: Duration) -> bool {
    let deadline = tokio::time::sleep(wait);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            _ = &mut deadline => return true,
            r = requests.recv() => match r {
                // Dropping the reply tells the caller the link is down.
                Some(outgoing) => drop(outgoing),
                None => return false,
            },
        }
    }
}

/// Runs one connection; false when the hub has gone, true when the link dropped.
async fn connected(
    stream: TcpStream,
    config: &IsoConfig,
    requests: &mut mpsc::Receiver<Outgoing>,
    sign_in_no: u32,
) -> bool {
    let (mut read, mut write) = stream.into_split();
    let mut waiting: HashMap<Key, oneshot::Sender<Message>> = HashMap::new();
    let mut frames = FrameReader::default();
    let mut buf = vec![0u8; 4096];
    // Signs in now (the first tick is immediate) and again every day.
    let mut daily = tokio::time::interval(SIGN_IN_EVERY);
    let mut sign_in_no = sign_in_no;
    loop {
        tokio::select! {
            _ = daily.tick() => {
                sign_in_no = sign_in_no.wrapping_add(1);
                if let Ok(mut m) = messages::sign_in(sign_in_no, &config.hub_terminal, &config.merchant_id) {
                    if let Ok(bytes) = config.mac_key.seal(&mut m) {
                        if write.write_all(&frame(&bytes)).await.is_err() {
                            return true;
                        }
                    }
                }
            }
            r = requests.recv() => {
                let Some(Outgoing { mut message, reply }) = r else { return false };
                let Some(answer_mti) = messages::answer_type(&message.mti) else { continue };
                let bytes = match config.mac_key.seal(&mut message) {
                    Ok(b) => b,
                    Err(e) => {
                        tracing::error!(error = %e, "request not encodable");
                        continue;
                    }
                };
                waiting.retain(|_, r| !r.is_closed());
                waiting.insert(key_of(&message, &answer_mti), reply);
                if write.write_all(&frame(&bytes)).await.is_err() {
                    return true;
                }
            }
            n = read.read(&mut buf) => {
                let n = match n {
                    Ok(0) | Err(_) => return true,
                    Ok(n) => n,
                };
                frames.push(&buf[..n]);
                loop {
                    let bytes = match frames.next_frame() {
                        Ok(Some(b)) => b,
                        Ok(None) => break,
                        Err(e) => {
                            tracing::warn!(error = %e, "garbage from the acquirer; reconnecting");
                            return true;
                        }
                    };
                    let answer = match Message::decode(&bytes) {
                        Ok(m) => m,
                        Err(e) => {
                            tracing::warn!(error = %e, "undecodable answer from the acquirer ignored");
                            continue;
                        }
                    };
                    if !config.mac_key.verify(&bytes, &answer) {
                        tracing::warn!(mti = %answer.mti, "answer with a wrong MAC ignored");
                        continue;
                    }
                    if answer.mti == "0810" {
                        tracing::info!(code = ?answer.text(39), "signed in with the acquirer");
                        continue;
                    }
                    match waiting.remove(&key_of(&answer, &answer.mti)) {
                        Some(reply) => {
                            let _ = reply.send(answer);
                        }
                        None => tracing::warn!(mti = %answer.mti, trace = ?answer.text(11), "answer nobody waits for (too late?) ignored"),
                    }
                }
            }
        }
    }
}
