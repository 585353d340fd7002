//! The embedded broker's front door. rumqttd keeps state for a connection
//! as soon as it reads its CONNECT, and some CONNECTs leave it unable to
//! accept anyone (see `SECURITY.md`), so nobody from the LAN reaches it
//! directly: the broker listens on loopback only, and the gate, on the shop's
//! address, reads each client's CONNECT first and lets through only one that
//! is well formed, in time, with a sound client id and a login
//! [`Logins::standing`] accepts. After that it copies the client's packets
//! on, each checked against the protocol's topics:
//!
//! - the hub's own link never comes through here (it uses the loopback port);
//! - anyone else may publish only a terminal's `req` and `status`: its own
//!   (the one its client id `tallybox-term-<id>` names), or on a hub that
//!   lets unpaired checkouts sell, any unpaired one's;
//! - retained messages: only a status, small, on a few topics a connection,
//!   and none at all from a stranger on a hub that requires pairing;
//! - a stranger on such a hub is slowed to [`STRANGER_PACKETS_PER_S`] (the
//!   gate stops reading: TCP pushes back on the sender) and kept to the
//!   protocol's message size;
//! - at most [`PER_ADDRESS`] connections from one address and [`TOTAL`] in
//!   all, below the broker's own cap so the hub's link always fits.
//!
//! What it refuses is counted and logged at most once every ten seconds.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use tallybox_core::protocol::{TerminalId, Topics, MAX_PAYLOAD};

use super::{Logins, Standing};
use crate::guard::{Counted, Doors, Rate};

/// A client that has not sent its whole CONNECT by then is closed.
pub const CONNECT_WITHIN: Duration = Duration::from_secs(5);
/// Connections from one address, at most.
pub const PER_ADDRESS: usize = 64;
/// Connections through the gate, at most (the broker takes 1 000).
pub const TOTAL: usize = 512;
/// Packets a second a stranger may send on a hub that requires pairing.
pub const STRANGER_PACKETS_PER_S: f64 = 20.0;
/// The largest retained status, and how many topics one connection may
/// keep a retained message on.
const RETAINED_MAX: usize = 4 * 1024;
const RETAINED_TOPICS: usize = 4;
/// The largest CONNECT read (ids, will and login are short).
const CONNECT_MAX: usize = 8 * 1024;

/// Why a connection was refused or closed, for the counted log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Turned {
    TooMany,
    Slow,
    Malformed,
    BadClientId,
    Login,
    Will,
    Topic,
    TooLarge,
    Broker,
}

impl Turned {
    fn why(self) -> &'static str {
        match self {
            Turned::TooMany => "too many connections from one address, or in all",
            Turned::Slow => "no whole CONNECT within 5 s",
            Turned::Malformed => "not MQTT 3.1.1",
            Turned::BadClientId => "a client id outside A-Z a-z 0-9 . _ - (1 to 64)",
            Turned::Login => "login refused",
            Turned::Will => "a last will on another's topic, or too large",
            Turned::Topic => {
                "a publish outside its own topics (dropped, or closed when it wanted an acknowledgement)"
            }
            Turned::TooLarge => "a packet larger than the protocol's",
            Turned::Broker => "the broker did not take the connection",
        }
    }
}

/// The gate's shared state.
pub struct Gate {
    logins: Arc<Logins>,
    topics: Topics,
    broker: SocketAddr,
    doors: Arc<Doors>,
    turned: Mutex<Counted<Turned>>,
}

impl Gate {
    pub fn new(logins: Arc<Logins>, store: &str, broker: SocketAddr) -> Arc<Gate> {
        Arc::new(Gate {
            logins,
            topics: Topics::new(store),
            broker,
            doors: Doors::new(PER_ADDRESS, TOTAL),
            turned: Mutex::new(Counted::new(16)),
        })
    }

    fn turned(&self, why: Turned, peer: SocketAddr) {
        let logged = self.turned.lock().unwrap_or_else(|e| e.into_inner()).one(why);
        if let Some(since_start) = logged {
            tracing::warn!(last = %peer, why = why.why(), since_start, "MQTT gate turned a client away (each reason at most once every 10 s)");
        }
    }
}

/// Lets clients from `listener` through to the broker until `stop`.
pub async fn serve(gate: Arc<Gate>, listener: TcpListener, stop: CancellationToken) {
    loop {
        let (client, peer) = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors, most often: wait instead of spinning.
                    tracing::warn!(error = %e, "MQTT gate cannot accept; waiting 100 ms");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Some(place) = gate.doors.enter(peer.ip()) else {
            gate.turned(Turned::TooMany, peer);
            continue;
        };
        let gate = Arc::clone(&gate);
        let stop = stop.clone();
        tokio::spawn(async move {
            if let Err(why) = carry(&gate, client, peer, stop).await {
                gate.turned(why, peer);
            }
            drop(place);
        });
    }
}

/// One MQTT packet as read: its fixed header's first byte, the header's
/// bytes, and the rest.
struct Packet {
    first: u8,
    header: Vec<u8>,
    body: Vec<u8>,
}

impl Packet {
    fn kind(&self) -> u8 {
        self.first >> 4
    }

    fn bytes(&self) -> Vec<u8> {
        let mut all = self.header.clone();
        all.extend_from_slice(&self.body);
        all
    }
}

/// Reads one packet of at most `max` bytes after the fixed header; `None` at
/// a clean end of the stream.
async fn read_packet<R: AsyncReadExt + Unpin>(from: &mut R, max: usize) -> Result<Option<Packet>, Turned> {
    let first = match from.read_u8().await {
        Ok(b) => b,
        Err(_) => return Ok(None),
    };
    let mut header = vec![first];
    let mut length = 0usize;
    for shift in 0..4 {
        let b = from.read_u8().await.map_err(|_| Turned::Malformed)?;
        header.push(b);
        length |= ((b & 0x7f) as usize) << (7 * shift);
        if b & 0x80 == 0 {
            break;
        }
        if shift == 3 {
            return Err(Turned::Malformed);
        }
    }
    if length > max {
        return Err(Turned::TooLarge);
    }
    let mut body = vec![0; length];
    from.read_exact(&mut body).await.map_err(|_| Turned::Malformed)?;
    Ok(Some(Packet { first, header, body }))
}

/// A length-prefixed field of a packet, and what follows it.
fn field(bytes: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = bytes.split_first_chunk::<2>()?;
    let len = u16::from_be_bytes(*len) as usize;
    (rest.len() >= len).then(|| rest.split_at(len))
}

/// What the gate reads from a CONNECT.
struct Connect {
    client_id: String,
    user: String,
    password: String,
    will: Option<(String, usize)>,
}

fn parse_connect(body: &[u8]) -> Option<Connect> {
    let (name, rest) = field(body)?;
    let (&level, rest) = rest.split_first()?;
    if name != b"MQTT" || level != 4 {
        return None;
    }
    let (&flags, rest) = rest.split_first()?;
    let rest = rest.get(2..)?; // keep-alive
    let text = |b: &[u8]| String::from_utf8(b.to_vec()).ok();
    let (id, mut rest) = field(rest)?;
    let client_id = text(id)?;
    let mut will = None;
    if flags & 0x04 != 0 {
        let (topic, after) = field(rest)?;
        let (message, after) = field(after)?;
        will = Some((text(topic)?, message.len()));
        rest = after;
    }
    let mut user = String::new();
    if flags & 0x80 != 0 {
        let (u, after) = field(rest)?;
        user = text(u)?;
        rest = after;
    }
    let mut password = String::new();
    if flags & 0x40 != 0 {
        let (p, _) = field(rest)?;
        password = text(p)?;
    }
    Some(Connect {
        client_id,
        user,
        password,
        will,
    })
}

fn sound_client_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// CONNACK with a refusal code (2: client id, 5: not authorised), then close.
async fn refuse(mut client: tokio::net::tcp::OwnedWriteHalf, code: u8) {
    let _ = client.write_all(&[0x20, 0x02, 0x00, code]).await;
    let _ = client.shutdown().await;
}

/// Who a connection is, for the checks on what it sends.
struct Sender {
    hub: bool,
    /// The terminal its client id names (`tallybox-term-<id>`): MQTT lets
    /// one connection at a time hold an id, and a paired checkout's needs
    /// its key's password, so this connection speaks for that terminal.
    terminal: Option<String>,
    retained: Vec<String>,
    pace: Rate,
}

impl Sender {
    /// A stranger on a hub that requires pairing: slowed, kept small, and
    /// retaining nothing. A checkout that pairs on this connection stops
    /// being one.
    fn limited(&self, gate: &Gate) -> bool {
        let keys = gate.logins.keys();
        !self.hub
            && keys.pairing_required()
            && self.terminal.as_deref().is_none_or(|t| keys.state(t) != "paired")
    }

    /// May this connection speak on `terminal`'s topics? Its own (its
    /// client id names it), and on a hub that lets unpaired checkouts sell
    /// (tools, tests) any unpaired one's. On a hub that requires pairing a
    /// stranger therefore cannot spend a pairing code's tries in a real
    /// checkout's name without taking its client id, which drops that
    /// checkout from the broker for all to see.
    fn speaks_for(&self, gate: &Gate, terminal: &TerminalId) -> bool {
        if self.hub || self.terminal.as_deref() == Some(terminal.as_str()) {
            return true;
        }
        let keys = gate.logins.keys();
        !keys.pairing_required() && keys.state(terminal.as_str()) != "paired"
    }

    /// Waits until a limited sender may send one more packet.
    async fn pace(&mut self, limited: bool) {
        if limited {
            tokio::time::sleep(self.pace.take()).await;
        }
    }
}

/// Checks one PUBLISH from `sender` (and clears its retain flag where it
/// may not keep one); `Err` closes the connection.
fn police(gate: &Gate, sender: &mut Sender, limited: bool, packet: &mut Packet) -> Result<bool, Turned> {
    let (topic, rest) = field(&packet.body).ok_or(Turned::Malformed)?;
    let topic = std::str::from_utf8(topic).map_err(|_| Turned::Malformed)?;
    let qos = (packet.first >> 1) & 0x03;
    let payload = rest.len().saturating_sub(if qos > 0 { 2 } else { 0 });
    let allowed = gate
        .topics
        .parse_term_topic(topic)
        .filter(|(_, leaf)| matches!(*leaf, "req" | "status"))
        .filter(|(terminal, _)| sender.speaks_for(gate, terminal));
    let Some((_, leaf)) = allowed else {
        // Dropped; a publish that wants an acknowledgement closes instead.
        return if qos == 0 { Ok(false) } else { Err(Turned::Topic) };
    };
    if packet.first & 0x01 != 0 {
        let keep = leaf == "status"
            && !limited
            && payload <= RETAINED_MAX
            && (sender.retained.iter().any(|t| t == topic) || sender.retained.len() < RETAINED_TOPICS);
        if keep {
            if !sender.retained.iter().any(|t| t == topic) {
                sender.retained.push(topic.to_string());
            }
        } else {
            packet.first &= !0x01;
            packet.header[0] = packet.first;
        }
    }
    Ok(true)
}

async fn carry(
    gate: &Arc<Gate>,
    client: TcpStream,
    peer: SocketAddr,
    stop: CancellationToken,
) -> Result<(), Turned> {
    let _ = client.set_nodelay(true);
    let (read, write) = client.into_split();
    let mut read = BufReader::new(read);
    let connect = match tokio::time::timeout(CONNECT_WITHIN, read_packet(&mut read, CONNECT_MAX)).await {
        Err(_) => return Err(Turned::Slow),
        Ok(Ok(Some(packet))) if packet.kind() == 1 => packet,
        Ok(Ok(None)) => return Ok(()),
        Ok(Ok(Some(_)) | Err(_)) => return Err(Turned::Malformed),
    };
    let Some(login) = parse_connect(&connect.body) else {
        return Err(Turned::Malformed);
    };
    if !sound_client_id(&login.client_id) {
        refuse(write, 2).await;
        return Err(Turned::BadClientId);
    }
    let Some(standing) = gate
        .logins
        .standing(&login.client_id, &login.user, &login.password)
    else {
        refuse(write, 5).await;
        return Err(Turned::Login);
    };
    let mut sender = Sender {
        hub: standing == Standing::Hub,
        terminal: login
            .client_id
            .strip_prefix(super::TERMINAL_CLIENT)
            .map(str::to_string),
        retained: Vec::new(),
        pace: Rate::new(STRANGER_PACKETS_PER_S, STRANGER_PACKETS_PER_S * 3.0),
    };
    let limited = sender.limited(gate);
    if let Some((topic, size)) = &login.will {
        let own = gate
            .topics
            .parse_term_topic(topic)
            .filter(|(terminal, leaf)| *leaf == "status" && sender.speaks_for(gate, terminal));
        if own.is_none() || *size > RETAINED_MAX {
            refuse(write, 5).await;
            return Err(Turned::Will);
        }
    }
    let mut connect = connect;
    if limited {
        // A stranger's last will is kept, never retained. The flags follow
        // the protocol name ("MQTT", 6 bytes with its length) and level.
        connect.body[7] &= !0x20;
    }
    let broker = TcpStream::connect(gate.broker).await.map_err(|e| {
        tracing::error!(error = %e, "MQTT gate cannot reach the broker");
        Turned::Broker
    })?;
    let _ = broker.set_nodelay(true);
    let (mut from_broker, mut to_broker) = broker.into_split();
    // What the client sent after its CONNECT may already be in `read`'s
    // buffer (a client need not wait for CONNACK): the same reader goes on.
    let (mut from_client, mut to_client) = (read, write);
    to_broker
        .write_all(&connect.bytes())
        .await
        .map_err(|_| Turned::Malformed)?;
    let gate = Arc::clone(gate);
    let inbound = async move {
        loop {
            let limited = sender.limited(&gate);
            let max = match limited {
                true => MAX_PAYLOAD + 1024,
                false => super::BROKER_MAX_PAYLOAD + 1024,
            };
            let Some(mut packet) = read_packet(&mut from_client, max).await? else {
                return Ok(());
            };
            sender.pace(limited).await;
            match packet.kind() {
                1 => return Err(Turned::Malformed),
                3 if !sender.hub && !police(&gate, &mut sender, limited, &mut packet)? => {
                    gate.turned(Turned::Topic, peer);
                    continue;
                }
                _ => {}
            }
            if to_broker.write_all(&packet.bytes()).await.is_err() {
                return Ok(());
            }
        }
    };
    let outbound = async move {
        let _ = tokio::io::copy(&mut from_broker, &mut to_client).await;
        let _ = to_client.shutdown().await;
    };
    tokio::select! {
        _ = stop.cancelled() => Ok(()),
        ended = inbound => ended,
        _ = outbound => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CONNECT as rumqttc writes it, with a will and a login.
    fn connect_bytes(id: &str, will: Option<(&str, &[u8])>, login: Option<(&str, &str)>) -> Vec<u8> {
        let put = |out: &mut Vec<u8>, b: &[u8]| {
            out.extend_from_slice(&(b.len() as u16).to_be_bytes());
            out.extend_from_slice(b);
        };
        let mut body = Vec::new();
        put(&mut body, b"MQTT");
        body.push(4);
        let mut flags = 0x02;
        if will.is_some() {
            flags |= 0x04 | 0x20;
        }
        if login.is_some() {
            flags |= 0x80 | 0x40;
        }
        body.push(flags);
        body.extend_from_slice(&5u16.to_be_bytes());
        put(&mut body, id.as_bytes());
        if let Some((topic, message)) = will {
            put(&mut body, topic.as_bytes());
            put(&mut body, message);
        }
        if let Some((user, password)) = login {
            put(&mut body, user.as_bytes());
            put(&mut body, password.as_bytes());
        }
        body
    }

    #[test]
    fn a_connect_is_read_field_by_field() {
        let body = connect_bytes(
            "tallybox-term-T1",
            Some(("tallybox/v1/shop/term/T1/status", b"{}")),
            Some(("T1", "secret")),
        );
        let c = parse_connect(&body).expect("parses");
        assert_eq!(c.client_id, "tallybox-term-T1");
        assert_eq!((c.user.as_str(), c.password.as_str()), ("T1", "secret"));
        assert_eq!(c.will, Some(("tallybox/v1/shop/term/T1/status".into(), 2)));
        // Cut anywhere, it is refused, never read past its end.
        for cut in 0..body.len() {
            let _ = parse_connect(&body[..cut]);
        }
        assert!(parse_connect(&body[..body.len() - 3]).is_none());
    }

    #[test]
    fn client_ids_with_topic_characters_or_nothing_are_not_sound() {
        for bad in ["", "a/b", "a+b", "#", "$SYS", "a b", "é", &"x".repeat(65)] {
            assert!(!sound_client_id(bad), "{bad:?}");
        }
        for good in ["tallybox-term-T1", "tallybox-hub", "raw-T9-123", "a.b_c"] {
            assert!(sound_client_id(good), "{good}");
        }
    }

    #[tokio::test]
    async fn a_packet_longer_than_allowed_or_with_a_runaway_length_is_refused() {
        let mut long: &[u8] = &[0x30, 0xff, 0xff, 0x7f];
        assert!(matches!(
            read_packet(&mut long, 1024).await,
            Err(Turned::TooLarge)
        ));
        let mut runaway: &[u8] = &[0x30, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert!(matches!(
            read_packet(&mut runaway, 1 << 30).await,
            Err(Turned::Malformed)
        ));
        let mut ping: &[u8] = &[0xc0, 0x00];
        let p = read_packet(&mut ping, 16).await.unwrap().unwrap();
        assert_eq!((p.kind(), p.bytes()), (12, vec![0xc0, 0x00]));
        let mut empty: &[u8] = &[];
        assert!(read_packet(&mut empty, 16).await.unwrap().is_none());
    }
}
