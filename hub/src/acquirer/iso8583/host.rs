//! The simulated acquirer host behind `tallybox acquirer-sim`: an ISO 8583
//! server on TCP that signs terminals in, answers sales and balance
//! inquiries as the simulated issuer decides (with its delays and its
//! silences), and acknowledges reversals. Every frame in and out can be
//! appended to a log file as hex, for checking with another codec.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tallybox_core::code::ResponseCode;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;

use super::codec::{frame, FrameReader, Message};
use super::mac::MacKey;
use super::messages;
use super::tls::Io;
use crate::acquirer::sim::{Decision, SimIssuer};
use tallybox_core::card::pin_block::PinKey;

#[derive(Clone)]
pub struct Host {
    key: MacKey,
    issuer: Arc<Mutex<SimIssuer>>,
    log: Option<Arc<Mutex<std::fs::File>>>,
}

impl Host {
    /// A host that checks MACs with `key` and whose issuer reads PIN blocks
    /// under `pin_key`.
    pub fn new(key: MacKey, pin_key: PinKey, log: Option<PathBuf>) -> std::io::Result<Host> {
        let log = match log {
            Some(path) => Some(Arc::new(Mutex::new(
                std::fs::OpenOptions::new().create(true).append(true).open(path)?,
            ))),
            None => None,
        };
        let issuer = SimIssuer::with_pin_key(pin_key);
        Ok(Host {
            key,
            issuer: Arc::new(Mutex::new(issuer)),
            log,
        })
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
                        if !self.handle(&bytes, &tx) {
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

    /// Answers one message; false when the link should be closed.
    fn handle(&self, bytes: &[u8], out: &mpsc::UnboundedSender<Vec<u8>>) -> bool {
        let request = match Message::decode(bytes) {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(error = %e, "undecodable message; closing the link");
                return false;
            }
        };
        let reply = |mut answer: Message, delay: std::time::Duration| {
            let (host, out) = (self.clone(), out.clone());
            tokio::spawn(async move {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                match host.key.seal(&mut answer) {
                    Ok(bytes) => {
                        host.log("out", &bytes);
                        let _ = out.send(bytes);
                    }
                    Err(e) => tracing::error!(error = %e, "cannot encode an answer"),
                }
            });
        };
        let answer = |code: ResponseCode| messages::answer(&request, code);
        if !self.key.verify(bytes, &request) {
            tracing::warn!(mti = %request.mti, "wrong MAC; answered A0");
            if let Ok(a) = answer(ResponseCode::MAC_ERROR) {
                reply(a, std::time::Duration::ZERO);
            }
            return true;
        }
        let built = match request.mti.as_str() {
            "0800" => answer(ResponseCode::APPROVED).map(|a| Some((a, std::time::Duration::ZERO))),
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
            "0500" => match messages::read_settlement(&request) {
                Ok(totals) => {
                    let balanced = self.issuer().settle(&totals);
                    tracing::info!(terminal = %totals.terminal_id, batch = totals.batch_no, balanced, "settled");
                    answer(if balanced {
                        ResponseCode::APPROVED
                    } else {
                        ResponseCode::OUT_OF_BALANCE
                    })
                    .map(|a| Some((a, std::time::Duration::ZERO)))
                }
                Err(e) => {
                    tracing::warn!(error = %e, "unreadable settlement; answered 30 (format error)");
                    answer(ResponseCode::FORMAT_ERROR).map(|a| Some((a, std::time::Duration::ZERO)))
                }
            },
            "0200" | "0220" => match messages::read_auth_request(&request) {
                Ok(auth) => {
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
