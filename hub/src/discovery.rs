//! Announces the hub on the store LAN by mDNS (`_tallybox._tcp` with the broker
//! port and store id in TXT, and `_mqtt._tcp` for generic MQTT tools), so
//! terminals and the owner's phone find it as `tallybox.local`.

use std::collections::HashMap;

use mdns_sd::{ServiceDaemon, ServiceInfo};
use tallybox_platform::discovery::SERVICE_TYPE;

pub const MQTT_SERVICE_TYPE: &str = "_mqtt._tcp.local.";
pub const HOST_NAME: &str = "tallybox.local.";

/// Keeps announcing while the returned daemon lives.
pub fn announce(store: &str, http_port: u16, mqtt_port: u16) -> Result<ServiceDaemon, mdns_sd::Error> {
    let mdns = ServiceDaemon::new()?;
    let properties = HashMap::from([
        ("store".to_string(), store.to_string()),
        ("mqtt_port".to_string(), mqtt_port.to_string()),
        ("version".to_string(), env!("CARGO_PKG_VERSION").to_string()),
    ]);
    let instance = format!("Tallybox {store}");
    let hub =
        ServiceInfo::new(SERVICE_TYPE, &instance, HOST_NAME, "", http_port, properties)?.enable_addr_auto();
    let mqtt = ServiceInfo::new(
        MQTT_SERVICE_TYPE,
        &instance,
        HOST_NAME,
        "",
        mqtt_port,
        None::<HashMap<String, String>>,
    )?
    .enable_addr_auto();
    mdns.register(hub)?;
    mdns.register(mqtt)?;
    Ok(mdns)
}
