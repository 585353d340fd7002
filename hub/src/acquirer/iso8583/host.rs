//! The simulated acquirer host behind `tallybox acquirer-sim`: an ISO 8583
//! server on TCP that signs terminals in (new working keys for each, under
//! its master key, at every sign-in), answers sales and balance inquiries
//! as the simulated issuer decides (with its delays and its silences), and
//! acknowledges reversals. A PIN block is translated from the terminal's
//! working PIN key into the issuer's, as an acquirer does. Every frame in
//! and out (without its length; with China UnionPay's TPDU and header) can
//! be appended to a log file as hex, for checking with another codec.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tallybox_core::code::ResponseCode;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;

use super::codec::{frame, CodecError, Dialect, FrameReader, Message};
use super::keys::{MasterKeys, WorkingKeys};
use super::messages;
use super::tls::Io;
use crate::acquirer::sim::{Decision, SimIssuer};
use std::collections::HashMap;
use tallybox_core::card::pin_block::{self, PinKey};

/// CUP's "terminal not registered": a sign-in from a terminal id the host
/// has no master key for.
const UNKNOWN_TERMINAL: &str = "97";

#[derive(Clone)]
pub struct Host {
    dialect: Dialect,
    master_keys: Arc<MasterKeys>,
    /// Each terminal's working keys from its last sign-in.
    keys: Arc<Mutex<HashMap<String, WorkingKeys>>>,
    /// Each terminal's transactions uploaded since its last batch end.
    uploads: Arc<Mutex<HashMap<String, usize>>>,
    /// The batch each terminal has open, in China UnionPay's layout, where
    /// the host numbers them: named at sign-in, one up after a settlement.
    batches: Arc<Mutex<HashMap<String, u32>>>,
    /// Where a terminal's batches start.
    first_batch: u32,
    issuer_pin_key: PinKey,
    issuer: Arc<Mutex<SimIssuer>>,
    log: Option<Arc<Mutex<std::fs::File>>>,
}

impl Host {
    /// A host speaking `dialect` that knows the terminals in `master_keys`.
    pub fn new(dialect: Dialect, master_keys: MasterKeys, log: Option<PathBuf>) -> std::io::Result<Host> {
        let log = match log {
            Some(path) => Some(Arc::new(Mutex::new(
                std::fs::OpenOptions::new().create(true).append(true).open(path)?,
            ))),
            None => None,
        };
        let issuer_pin_key: PinKey = rand::random();
        Ok(Host {
            dialect,
            master_keys: Arc::new(master_keys),
            keys: Arc::default(),
            uploads: Arc::default(),
            batches: Arc::default(),
            first_batch: 1,
            issuer_pin_key,
            issuer: Arc::new(Mutex::new(SimIssuer::with_pin_key(issuer_pin_key))),
            log,
        })
    }

    /// Terminals' batches start at `batch` (China UnionPay's layout).
    pub fn first_batch(self, batch: u32) -> Host {
        Host {
            first_batch: batch,
            ..self
        }
    }

    /// The batch `terminal` has open.
    fn open_batch(&self, terminal: &str) -> u32 {
        let mut batches = self.batches.lock().unwrap_or_else(|e| e.into_inner());
        *batches.entry(terminal.to_string()).or_insert(self.first_batch)
    }

    /// After `terminal` settled `batch`, its next one is open.
    fn settled(&self, terminal: &str, batch: u32) {
        let (open, next) = (self.open_batch(terminal), batch % 999_999 + 1);
        if open != batch && open != next {
            tracing::warn!(
                terminal,
                batch,
                open,
                "settlement of another batch than the one open"
            );
        }
        let mut batches = self.batches.lock().unwrap_or_else(|e| e.into_inner());
        batches.insert(terminal.to_string(), next);
    }

    fn issuer(&self) -> std::sync::MutexGuard<'_, SimIssuer> {
        self.issuer.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn log(&self, direction: &str, bytes: &[u8]) {
        if let Some(log) = &self.log {
            let mut f = log.lock().unwrap_or_else(|e| e.into_inner());
            let _ = writeln!(f, "{direction} {}", hex::encode_upper(bytes));
        }
    }

    /// Serves every connection to `listener`, over TLS when `tls` is given.
    pub async fn serve(self, listener: TcpListener, tls: Option<TlsAcceptor>) {
        loop {
            let Ok((stream, peer)) = listener.accept().await else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            let (host, tls) = (self.clone(), tls.clone());
            tokio::spawn(async move {
                let stream: Box<dyn Io> = match tls {
                    None => Box::new(stream),
                    Some(tls) => match tls.accept(stream).await {
                        Ok(s) => Box::new(s),
                        Err(e) => {
                            tracing::warn!(%peer, error = %e, "TLS handshake failed");
                            return;
                        }
                    },
                };
                tracing::info!(%peer, "acquirer link opened");
                host.connection(stream).await;
                tracing::info!(%peer, "acquirer link closed");
            });
        }
    }

    async fn connection(&self, stream: Box<dyn Io>) {
        let (mut read, mut write) = tokio::io::split(stream);
        let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
        let writer = tokio::spawn(async move {
            while let Some(bytes) = rx.recv().await {
                if write.write_all(&frame(&bytes)).await.is_err() {
                    return;
                }
            }
        });
        let mut frames = FrameReader::default();
        let mut buf = vec![0u8; 4096];
        'read: loop {
            let n = match read.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            frames.push(&buf[..n]);
            loop {
                match frames.next_frame() {
                    Ok(Some(bytes)) => {
                        self.log("in", &bytes);
                        let Ok(message) = self.dialect.unwrap(&bytes) else {
                            tracing::warn!(
                                dialect = self.dialect.name(),
                                "a frame without the dialect's header; closing the link"
                            );
                            break 'read;
                        };
                        if !self.handle(message, &tx) {
                            break 'read;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "garbage on the acquirer link; closing it");
                        break 'read;
                    }
                }
            }
        }
        drop(tx);
        let _ = writer.await;
    }

    fn keys(&self) -> std::sync::MutexGuard<'_, HashMap<String, WorkingKeys>> {
        self.keys.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Answers a sign-in: new working keys under the terminal's master key
    /// (field 62), or `97` for a terminal it does not know. Not sealed: the
    /// keys' check values are what proves them.
    fn sign_in(&self, request: &Message, terminal: &str, out: &mpsc::UnboundedSender<Vec<u8>>) {
        let built = match self.master_keys.get(terminal) {
            None => {
                tracing::warn!(
                    terminal,
                    "sign-in from a terminal with no master key here; answered 97"
                );
                ResponseCode::parse(UNKNOWN_TERMINAL)
                    .ok_or_else(|| CodecError::BadType(UNKNOWN_TERMINAL.into()))
                    .and_then(|code| messages::answer(request, code))
            }
            Some(tmk) => {
                let keys = WorkingKeys::random();
                let field = keys.field62(tmk);
                tracing::info!(terminal, mac_key_check_value = %keys.mac.check_value(), "signed in; new working keys");
                self.keys().insert(terminal.to_string(), keys);
                messages::answer(request, ResponseCode::APPROVED).and_then(|mut a| {
                    a.set(62, field)?;
                    if self.dialect == Dialect::CupPos {
                        messages::set_host_batch(&mut a, self.open_batch(terminal))?;
                    }
                    Ok(a)
                })
            }
        };
        self.send(out, built.and_then(|a| self.dialect.encode(&a)), "a sign-in");
    }

    /// Sends an answer's bytes as the host's frame, logged; or says why
    /// there is no answer to `what`.
    fn send(&self, out: &mpsc::UnboundedSender<Vec<u8>>, encoded: Result<Vec<u8>, CodecError>, what: &str) {
        match encoded {
            Ok(bytes) => {
                let frame = self.dialect.wrap(&bytes, true);
                self.log("out", &frame);
                let _ = out.send(frame);
            }
            Err(e) => tracing::warn!(error = %e, "cannot answer {what}"),
        }
    }

    /// A batch upload's message: one transaction (counted), or the batch
    /// end, answered `00` when it names as many as came and `30` if not.
    fn uploaded(&self, request: &Message, terminal: &str) -> Result<Message, CodecError> {
        let mut uploads = self.uploads.lock().unwrap_or_else(|e| e.into_inner());
        let code = match messages::read_batch_end(request) {
            None => {
                *uploads.entry(terminal.to_string()).or_default() += 1;
                ResponseCode::APPROVED
            }
            Some(named) => {
                let came = uploads.remove(terminal).unwrap_or(0);
                tracing::info!(terminal, named, came, "batch upload ended");
                if named == came {
                    ResponseCode::APPROVED
                } else {
                    ResponseCode::FORMAT_ERROR
                }
            }
        };
        messages::answer(request, code)
    }

    /// A PIN block from `terminal`, under the issuer's key: what the issuer
    /// can read. One that does not open stays as it came (the issuer then
    /// reads no PIN in it).
    fn to_issuer(&self, terminal: &str, block: &str, pan: &str) -> String {
        let Some(pin_key) = self.keys().get(terminal).map(|k| k.pin) else {
            return block.to_string();
        };
        pin_block::translate(block, pan, &pin_key, &self.issuer_pin_key).unwrap_or_else(|_| block.to_string())
    }

    /// Answers one message; false when the link should be closed.
    fn handle(&self, bytes: &[u8], out: &mpsc::UnboundedSender<Vec<u8>>) -> bool {
        let d = self.dialect;
        let request = match d.decode(bytes) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "undecodable message; closing the link");
                return false;
            }
        };
        let terminal = request.text(41).unwrap_or_default().trim_end().to_string();
        if request.mti == "0800" {
            self.sign_in(&request, &terminal, out);
            return true;
        }
        if request.mti == "0820" {
            // An echo test: answered at once, without a MAC.
            let answer = messages::answer(&request, ResponseCode::APPROVED).and_then(|a| d.encode(&a));
            self.send(out, answer, "an echo test");
            return true;
        }
        let mac_key = self.keys().get(&terminal).map(|k| k.mac.clone());
        let reply = |mut answer: Message, delay: std::time::Duration| {
            let (host, out, mac_key) = (self.clone(), out.clone(), mac_key.clone());
            tokio::spawn(async move {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                // Without the terminal's keys the answer goes unsealed.
                let sealed = match &mac_key {
                    Some(key) => key.seal_in(d, &mut answer),
                    None => d.encode(&answer),
                };
                host.send(&out, sealed, "a request");
            });
        };
        let answer = |code: ResponseCode| messages::answer(&request, code);
        if !mac_key.as_ref().is_some_and(|k| k.verify_in(d, bytes, &request)) {
            tracing::warn!(mti = %request.mti, terminal = %terminal, signed_in = mac_key.is_some(), "wrong MAC (or not signed in); answered A0");
            if let Ok(a) = answer(ResponseCode::MAC_ERROR) {
                reply(a, std::time::Duration::ZERO);
            }
            return true;
        }
        let built = match request.mti.as_str() {
            "0400" | "0401" => {
                // Field 90 names the original; one naming another trace
                // reverses something else.
                if let Some(Ok((_, original, _))) = request.get(90).map(|_| messages::read_original(&request))
                {
                    if request.text(11).and_then(|t| t.parse().ok()) != Some(original) {
                        tracing::warn!(trace = ?request.text(11), original, "reversal whose field 90 names another trace; answered 30");
                        if let Ok(a) = answer(ResponseCode::FORMAT_ERROR) {
                            reply(a, std::time::Duration::ZERO);
                        }
                        return true;
                    }
                }
                tracing::info!(mti = %request.mti, trace = ?request.text(11), terminal = ?request.text(41), "reversal acknowledged");
                if let (Some(terminal), Some(Ok(trace))) =
                    (request.text(41), request.text(11).map(str::parse::<u32>))
                {
                    self.issuer().reversed(terminal.trim_end(), trace);
                }
                answer(ResponseCode::APPROVED).map(|a| Some((a, std::time::Duration::ZERO)))
            }
            "0500" => match messages::read_settlement(d, &request) {
                Ok(totals) => {
                    if d == Dialect::CupPos {
                        self.settled(&terminal, totals.batch_no);
                    }
                    let balanced = self.issuer().settle(&totals);
                    tracing::info!(terminal = %totals.terminal_id, batch = totals.batch_no, balanced, "settled");
                    messages::settlement_answer(d, &request, balanced)
                        .map(|a| Some((a, std::time::Duration::ZERO)))
                }
                Err(e) => {
                    tracing::warn!(error = %e, "unreadable settlement; answered 30 (format error)");
                    answer(ResponseCode::FORMAT_ERROR).map(|a| Some((a, std::time::Duration::ZERO)))
                }
            },
            "0320" => self
                .uploaded(&request, &terminal)
                .map(|a| Some((a, std::time::Duration::ZERO))),
            "0200" | "0220" => match messages::read_auth_request(d, &request) {
                Ok(auth) if d == Dialect::CupPos && auth.batch_no != self.open_batch(&terminal) => {
                    tracing::warn!(terminal = %terminal, batch = auth.batch_no, open = self.open_batch(&terminal), "a sale in another batch than the one open; answered 77 (sign in again)");
                    answer(ResponseCode::SIGN_IN_AGAIN).map(|a| Some((a, std::time::Duration::ZERO)))
                }
                Ok(mut auth) => {
                    auth.pin_block = auth
                        .pin_block
                        .as_deref()
                        .map(|block| self.to_issuer(&terminal, block, auth.card.pan.digits()));
                    let decision = self.issuer().decide(&auth);
                    match decision {
                        Decision::Answer { response, delay } => {
                            answer(response.response_code).and_then(|mut a| {
                                a.set_str(37, &format!("{:0>12}", response.reference_no))?;
                                if !response.auth_code.is_empty() {
                                    a.set_str(38, &response.auth_code)?;
                                }
                                if let Some(balance) = response.balance {
                                    let currency = request.text(49).unwrap_or(messages::CNY);
                                    a.set_str(54, &messages::balance_field(balance, currency))?;
                                }
                                Ok(Some((a, delay)))
                            })
                        }
                        Decision::Silence => Ok(None),
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "unreadable sale; answered 30 (format error)");
                    answer(ResponseCode::FORMAT_ERROR).map(|a| Some((a, std::time::Duration::ZERO)))
                }
            },
            _ => answer(ResponseCode::INVALID_TRANSACTION).map(|a| Some((a, std::time::Duration::ZERO))),
        };
        match built {
            Ok(Some((a, delay))) => reply(a, delay),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, mti = %request.mti, "no answer possible"),
        }
        true
    }
}
