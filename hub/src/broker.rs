//! The embedded MQTT broker (rumqttd), so a shop needs nothing else installed.
//! It runs on its own thread; `--broker mqtt://…` replaces it with an external
//! one such as mosquitto.

use std::collections::HashMap;
use std::net::SocketAddr;

use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};

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

fn config(listen: SocketAddr) -> Config {
    let server = ServerSettings {
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
    Config {
        id: 0,
        router: RouterConfig {
            max_connections: 1_000,
            max_outgoing_packet_count: 200,
            // The router keeps recent messages per subscription in memory. Answers
            // go out at once and retries are the protocol's job, so a short
            // history is enough and keeps the hub small under load.
            max_segment_size: 256 * 1024,
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

/// Starts the broker on `listen`. The port is checked first so that a clash is
/// one clear error rather than a broker thread dying in the background.
pub fn start(listen: SocketAddr) -> Result<(), BrokerError> {
    drop(std::net::TcpListener::bind(listen).map_err(|source| BrokerError::Bind { addr: listen, source })?);
    let mut broker = Broker::new(config(listen));
    std::thread::Builder::new()
        .name("mqtt-broker".into())
        .spawn(move || {
            if let Err(e) = broker.start() {
                tracing::error!(error = %e, "embedded MQTT broker stopped");
            }
        })
        .map_err(|source| BrokerError::Bind { addr: listen, source })?;
    Ok(())
}
