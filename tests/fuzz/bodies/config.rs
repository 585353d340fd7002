//! The hub's settings file and a checkout's device file, as a person edits them.

use tallybox::config::Config;
use tallybox_terminal::config::DeviceConfig;

/// One input, as the fuzzer and the corpus replay hand it over.
pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(config) = Config::parse(text) {
        let _ = config.validate();
    }
    let _ = DeviceConfig::parse(text);
}
