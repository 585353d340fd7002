//! `tallybox hw-test`: the hardware test of the hub's own checkout, wired as
//! the hub's `device_config` says (the same walk-through as
//! `tallybox-terminal hw-test`).

use std::path::Path;

use tallybox_terminal::config::DeviceConfig;
use tallybox_terminal::hwtest::HwTestArgs;

use tallybox::config::Config;

/// Prints the report; true when no part failed.
pub fn run(config: &Path, args: &HwTestArgs) -> anyhow::Result<bool> {
    let hub = Config::load(config, false)?;
    args.run(DeviceConfig::load(&hub.device_config)?)
        .map_err(anyhow::Error::msg)
}
