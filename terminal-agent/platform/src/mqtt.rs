//! Connecting to the store's MQTT broker, the one way every Tallybox process
//! does it: TCP_NODELAY on (Nagle otherwise adds ~40 ms a hop on the sale path),
//! a short keep-alive so a dead peer is noticed, and a retained last will.

use std::time::Duration;

use rumqttc::{AsyncClient, EventLoop, LastWill, MqttOptions, NetworkOptions, QoS};

use tallybox_core::protocol::{Status, MAX_PAYLOAD};

/// `mqtt://host:port` (port 1883 when left out).
#[derive(Clone, PartialEq, Eq)]
pub struct BrokerAddr {
    pub host: String,
    pub port: u16,
    /// User name and password for a broker that asks (`mqtt://USER:PASSWORD@HOST`).
    pub credentials: Option<(String, String)>,
}

impl std::str::FromStr for BrokerAddr {
    type Err = String;

    fn from_str(url: &str) -> Result<Self, Self::Err> {
        let rest = url
            .strip_prefix("mqtt://")
            .ok_or_else(|| format!("'{url}' is not a broker URL: write mqtt://HOST:PORT"))?;
        let rest = rest.trim_end_matches('/');
        let (credentials, rest) = match rest.rsplit_once('@') {
            Some((user_pass, rest)) => {
                let (user, pass) = user_pass.split_once(':').ok_or_else(|| {
                    "a broker user needs a password: write mqtt://USER:PASSWORD@HOST:PORT".to_string()
                })?;
                if user.is_empty() {
                    return Err("the broker user name is empty".into());
                }
                (Some((user.to_string(), pass.to_string())), rest)
            }
            None => (None, rest),
        };
        let (host, port) = match rest.rsplit_once(':') {
            Some((h, p)) => (
                h,
                p.parse::<u16>()
                    .map_err(|_| format!("'{p}' in '{url}' is not a port number"))?,
            ),
            None => (rest, 1883),
        };
        if host.is_empty() {
            return Err(format!("'{url}' has no host"));
        }
        Ok(BrokerAddr {
            host: host.trim_start_matches('[').trim_end_matches(']').to_string(),
            port,
            credentials,
        })
    }
}

impl BrokerAddr {
    /// The whole URL, password included: for settings, never for logs (its
    /// `Display` hides the password).
    pub fn url(&self) -> String {
        match &self.credentials {
            Some((user, password)) => format!("mqtt://{user}:{password}@{}:{}", self.host, self.port),
            None => self.to_string(),
        }
    }
}

impl std::fmt::Debug for BrokerAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl std::fmt::Display for BrokerAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The password never shows (this goes to logs).
        match &self.credentials {
            Some((user, _)) => write!(f, "mqtt://{user}:***@{}:{}", self.host, self.port),
            None => write!(f, "mqtt://{}:{}", self.host, self.port),
        }
    }
}

/// A client whose broker publishes `offline` on `status_topic` if it vanishes.
pub fn connect(client_id: &str, broker: &BrokerAddr, status_topic: &str) -> (AsyncClient, EventLoop) {
    let mut options = MqttOptions::new(client_id, broker.host.clone(), broker.port);
    options.set_keep_alive(Duration::from_secs(5));
    if let Some((user, password)) = &broker.credentials {
        options.set_credentials(user, password);
    }
    options.set_clean_session(true);
    options.set_max_packet_size(MAX_PAYLOAD * 64, MAX_PAYLOAD * 4);
    let offline = Status {
        online: false,
        version: env!("CARGO_PKG_VERSION").to_string(),
        detail: None,
    };
    options.set_last_will(LastWill::new(
        status_topic,
        offline.payload(),
        QoS::AtLeastOnce,
        true,
    ));
    let (client, mut eventloop) = AsyncClient::new(options, 256);
    let mut network = NetworkOptions::new();
    network.set_tcp_nodelay(true);
    network.set_connection_timeout(5);
    eventloop.set_network_options(network);
    (client, eventloop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_broker_urls() {
        let a: BrokerAddr = "mqtt://127.0.0.1:18830".parse().unwrap();
        assert_eq!((a.host.as_str(), a.port), ("127.0.0.1", 18830));
        let b: BrokerAddr = "mqtt://tallybox.local".parse().unwrap();
        assert_eq!(b.port, 1883);
        assert!("http://x:1".parse::<BrokerAddr>().is_err());
        assert!("mqtt://x:notaport".parse::<BrokerAddr>().is_err());
        assert!("mqtt://:1883".parse::<BrokerAddr>().is_err());
        // A login: used, kept in the URL for settings, hidden everywhere shown.
        let c: BrokerAddr = "mqtt://T1:s3cr:et@broker.lan:1884".parse().unwrap();
        assert_eq!(c.credentials, Some(("T1".into(), "s3cr:et".into())));
        assert_eq!((c.host.as_str(), c.port), ("broker.lan", 1884));
        assert_eq!(c.url(), "mqtt://T1:s3cr:et@broker.lan:1884");
        assert!(!c.to_string().contains("s3cr") && !format!("{c:?}").contains("s3cr"));
        assert!(
            "mqtt://T1@broker.lan".parse::<BrokerAddr>().is_err(),
            "a user without a password"
        );
    }
}

/// Waits before the next connection attempt: 50 ms after the first failure,
/// doubling to 2 s, and back to 50 ms once connected. A broker that is just
/// starting (or restarting) is reached within moments; a dead one is not hammered.
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            next: Duration::from_millis(50),
        }
    }
}

impl Backoff {
    pub fn reset(&mut self) {
        *self = Backoff::default();
    }

    pub async fn wait(&mut self) {
        tokio::time::sleep(self.next).await;
        self.next = (self.next * 2).min(Duration::from_secs(2));
    }
}
