//! The embedded MQTT broker (rumqttd), so a shop needs nothing else installed.
//! It runs on its own thread; `--broker mqtt://…` replaces it with an external
//! one such as mosquitto.
//!
//! Who may connect ([`Logins`]): MQTT drops a client when another connects
//! with the same client id, so a stranger on the shop's Wi-Fi could knock the
//! hub or a checkout off the broker just by using its id. The hub's own link
//! (`tallybox-hub`) therefore logs in with a password made at each start and
//! held in memory only, and a paired checkout (`tallybox-term-<id>`) with the
//! one its pairing key gives ([`seal::broker_password`]). Every other client
//! needs only a user name: checkouts not paired yet must reach the hub to
//! pair, and what anyone can read or send is sealed (see `keys.rs`).
//!
//! rumqttd has no per-topic rules, and some CONNECTs break it, so the LAN
//! reaches it only through [`gate`], which checks each CONNECT and publish
//! first; the broker itself listens on loopback, for the hub's own link and
//! checkouts. A store on mosquitto gets per-topic rules from
//! `broker/mosquitto-acl.conf`.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tallybox_core::seal;

use crate::keys::Keys;

use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};

pub mod gate;

/// Largest publish the broker accepts. The protocol's own limit is 16 KiB; the
/// broker lets somewhat larger ones through so the hub can answer them with a
/// typed "too large" error instead of a silent disconnect.
pub const BROKER_MAX_PAYLOAD: usize = 256 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("cannot listen for MQTT on {addr}: {source}; is another broker running? Use --mqtt ADDR or --broker URL")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// The hub's own client id on its broker.
pub const HUB_CLIENT: &str = "tallybox-hub";
/// A checkout's client id is this and its terminal id.
pub const TERMINAL_CLIENT: &str = "tallybox-term-";

/// Refused logins kept for the troubleshooting page.
const REFUSALS_KEPT: usize = 64;

/// A login the broker refused, for the troubleshooting page.
#[derive(Debug, Clone)]
pub struct RefusedLogin {
    pub client_id: String,
    pub why: &'static str,
    /// Local time, `HH:MM:SS`.
    pub at: String,
    pub when: Instant,
}

/// Who a client on the broker is, once its login is accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// The hub's own link.
    Hub,
    /// A paired checkout that showed the password its key gives.
    Checkout(String),
    /// Anyone else: a checkout not paired yet, a tool, a stranger.
    Anyone,
}

/// Who may connect to the embedded broker (see the module's comment).
pub struct Logins {
    hub_password: String,
    keys: Arc<Keys>,
    refused: Mutex<VecDeque<RefusedLogin>>,
}

impl Logins {
    pub fn new(keys: Arc<Keys>) -> Logins {
        Logins {
            hub_password: hex::encode(rand::random::<[u8; 16]>()),
            keys,
            refused: Mutex::new(VecDeque::new()),
        }
    }

    /// The user name and password of the hub's own link.
    pub fn hub_login(&self) -> (String, String) {
        (HUB_CLIENT.to_string(), self.hub_password.clone())
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// Whether a client may connect; a refusal is logged (never the password) and kept.
    pub fn admit(&self, client_id: &str, user: &str, password: &str) -> bool {
        self.standing(client_id, user, password).is_some()
    }

    /// Who a client is, if it may connect; a refusal is logged (never the
    /// password) and kept.
    pub fn standing(&self, client_id: &str, user: &str, password: &str) -> Option<Standing> {
        let verdict = if client_id == HUB_CLIENT || user == HUB_CLIENT {
            match seal::same_secret(self.hub_password.as_bytes(), password.as_bytes()) {
                true => Ok(Standing::Hub),
                false => Err("posing as the hub: wrong password"),
            }
        } else if let Some(terminal) = client_id.strip_prefix(TERMINAL_CLIENT) {
            self.keys
                .broker_login(terminal, password)
                .map(|()| match self.keys.state(terminal) {
                    "paired" => Standing::Checkout(terminal.to_string()),
                    _ => Standing::Anyone,
                })
        } else {
            Ok(Standing::Anyone)
        };
        let why = match verdict {
            Ok(standing) => return Some(standing),
            Err(why) => why,
        };
        tracing::warn!(client_id, user, why, "broker login refused");
        let mut refused = self.refused.lock().unwrap_or_else(|e| e.into_inner());
        if refused.len() == REFUSALS_KEPT {
            refused.pop_front();
        }
        refused.push_back(RefusedLogin {
            client_id: client_id.to_string(),
            why,
            at: tallybox_platform::clock::now().format("%H:%M:%S").to_string(),
            when: Instant::now(),
        });
        None
    }

    /// The logins refused in the last `within`, oldest first.
    pub fn refused(&self, within: Duration) -> Vec<RefusedLogin> {
        let refused = self.refused.lock().unwrap_or_else(|e| e.into_inner());
        refused
            .iter()
            .filter(|r| r.when.elapsed() < within)
            .cloned()
            .collect()
    }
}

fn config(listen: SocketAddr, logins: Arc<Logins>) -> Config {
    let mut server = ServerSettings {
        name: "tallybox-v4".into(),
        listen,
        tls: None,
        next_connection_delay_ms: 1,
        connections: ConnectionSettings {
            connection_timeout_ms: 10_000,
            max_payload_size: BROKER_MAX_PAYLOAD,
            max_inflight_count: 100,
            auth: None,
            external_auth: None,
            dynamic_filters: true,
        },
    };
    server.set_auth_handler(move |client_id: String, user: String, password: String| {
        let admitted = logins.admit(&client_id, &user, &password);
        async move { admitted }
    });
    Config {
        id: 0,
        router: RouterConfig {
            max_connections: 1_000,
            max_outgoing_packet_count: 200,
            // The router keeps recent messages per subscription filter in
            // memory, up to two segments, and each kept message also holds on
            // to the read buffer it came in. Subscribers read at once and a
            // checkout has few requests on their way, so a short history is
            // enough: at 256 KiB a segment a 20-checkout hub grew by 30 MiB
            // before the history was full (soak, 75 s of load); at 64 KiB
            // that history holds some 400 requests per filter.
            max_segment_size: 64 * 1024,
            max_segment_count: 2,
            custom_segment: None,
            initialized_filters: None,
            shared_subscriptions_strategy: Default::default(),
        },
        v4: Some(HashMap::from([("1".to_string(), server)])),
        v5: None,
        ws: None,
        cluster: None,
        console: None,
        bridge: None,
        prometheus: None,
        metrics: None,
    }
}

/// The embedded broker, running: the port the LAN reaches (the gate's,
/// served by [`gate::serve`]) and the loopback one the hub's own clients use.
pub struct Started {
    pub gate: Arc<gate::Gate>,
    pub listener: std::net::TcpListener,
    pub inner: SocketAddr,
}

/// Starts the broker on a loopback port, letting in whom `logins` admits,
/// and binds `listen` for its gate (see [`gate`]). The port is bound first
/// so that a clash is one clear error rather than a thread dying in the
/// background.
pub fn start(listen: SocketAddr, store: &str, logins: Arc<Logins>) -> Result<Started, BrokerError> {
    let listener =
        std::net::TcpListener::bind(listen).map_err(|source| BrokerError::Bind { addr: listen, source })?;
    listener
        .set_nonblocking(true)
        .map_err(|source| BrokerError::Bind { addr: listen, source })?;
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let inner = std::net::TcpListener::bind(loopback)
        .and_then(|l| l.local_addr())
        .map_err(|source| BrokerError::Bind {
            addr: loopback,
            source,
        })?;
    let gate = gate::Gate::new(Arc::clone(&logins), store, inner);
    let mut broker = Broker::new(config(inner, logins));
    std::thread::Builder::new()
        .name("mqtt-broker".into())
        .spawn(move || {
            if let Err(e) = broker.start() {
                tracing::error!(error = %e, "embedded MQTT broker stopped");
            }
        })
        .map_err(|source| BrokerError::Bind { addr: listen, source })?;
    Ok(Started {
        gate,
        listener,
        inner,
    })
}
