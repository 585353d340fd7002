//! Finding the hub on the store LAN without typing an address: the hub announces
//! `_tallybox._tcp` by mDNS with its broker port and store id in the TXT record.

use std::time::{Duration, Instant};

use mdns_sd::{ServiceDaemon, ServiceEvent};

use crate::mqtt::BrokerAddr;

pub const SERVICE_TYPE: &str = "_tallybox._tcp.local.";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundHub {
    pub broker: BrokerAddr,
    pub store: String,
}

#[derive(Debug, thiserror::Error)]
pub enum DiscoveryError {
    #[error("mDNS is not available here ({0}); start with --hub mqtt://HOST:PORT")]
    Mdns(#[from] mdns_sd::Error),
    #[error("no Tallybox hub answered on the LAN within {0:?}; is the hub on? Or start with --hub mqtt://HOST:PORT")]
    NotFound(Duration),
}

/// Browses for a hub until one resolves or `wait` runs out.
pub fn find_hub(wait: Duration) -> Result<FoundHub, DiscoveryError> {
    let mdns = ServiceDaemon::new()?;
    let events = mdns.browse(SERVICE_TYPE)?;
    let deadline = Instant::now() + wait;
    let mut found = None;
    while found.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        let Ok(event) = events.recv_timeout(left) else {
            break;
        };
        if let ServiceEvent::ServiceResolved(service) = event {
            let port = service
                .get_property_val_str("mqtt_port")
                .and_then(|p| p.parse().ok());
            let store = service.get_property_val_str("store").map(str::to_string);
            let addr = service.get_addresses_v4().into_iter().next();
            if let (Some(port), Some(store), Some(addr)) = (port, store, addr) {
                found = Some(FoundHub {
                    broker: BrokerAddr {
                        host: addr.to_string(),
                        port,
                        credentials: None,
                    },
                    store,
                });
            }
        }
    }
    let _ = mdns.shutdown();
    found.ok_or(DiscoveryError::NotFound(wait))
}
