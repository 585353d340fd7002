//! `tallybox hw-test`: the hardware test of the hub's own checkout, wired as
//! the hub's `device_config` says (the same walk-through as
//! `tallybox-terminal hw-test`).

use std::path::Path;
use std::time::Duration;

use tallybox_terminal::devices::config::DeviceConfig;
use tallybox_terminal::hwtest;

use crate::config::Config;

/// Prints the report; true when no part failed.
pub fn run(config: &Path, printer: Option<String>, no_wait: bool, wait_secs: u64) -> anyhow::Result<bool> {
    let hub = Config::load(config, false)?;
    let devices = DeviceConfig::load(&hub.device_config)?
        .with_printer(printer)
        .map_err(anyhow::Error::msg)?;
    let opts = hwtest::Options {
        wait: Duration::from_secs(wait_secs),
        unattended: no_wait,
    };
    Ok(hwtest::command(&devices, &opts))
}
