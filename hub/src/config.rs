//! The hub's settings: a TOML file (default `/etc/tallybox/tallybox.toml`),
//! then command-line flags on top. Every field has a default that works on a
//! Pi out of the box; a file with an unknown key or a bad value is refused with
//! one line naming the key, so a typo never silently changes behaviour.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use tallybox_core::money::{Amount, Currency};
use tallybox_core::secret::Secret;
use tallybox_platform::mqtt::BrokerAddr;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Short id used in MQTT topics.
    pub store_id: String,
    /// Printed at the top of every slip.
    pub store_name: String,
    /// The acquirer's merchant number (商户号), printed on slips.
    pub merchant_id: String,
    /// ISO 4217 code of the store's currency (CNY, HKD, JPY…): what every
    /// amount is counted in and how many digits follow its point.
    pub currency: Currency,
    pub data_dir: PathBuf,
    /// The web page and API.
    pub http: SocketAddr,
    /// Where the embedded broker listens. Ignored with `broker`.
    pub mqtt: SocketAddr,
    /// Use this external broker instead of the embedded one.
    pub broker: Option<String>,
    /// `sim` (the built-in simulated acquirer), `iso8583://HOST:PORT` (plain
    /// TCP, for a dedicated line) or `iso8583+tls://HOST:PORT`.
    pub acquirer: String,
    /// With TLS: the CA certificates (PEM) the acquirer's host is checked
    /// against, and the client certificate and key (PEM) the acquirer issued,
    /// if it asks for one.
    pub acquirer_tls_ca: Option<PathBuf>,
    pub acquirer_tls_cert: Option<PathBuf>,
    pub acquirer_tls_key: Option<PathBuf>,
    /// The terminal master keys the acquirer issued, a file readable by the
    /// hub alone (lines: acquirer terminal id, key, check value), needed
    /// with an ISO 8583 acquirer: each sign-in's working keys (PIN and MAC)
    /// come under them. No key is built in.
    pub acquirer_master_keys: Option<PathBuf>,
    /// The ISO 8583 layout the acquirer speaks: `iso8583-1987` (ASCII
    /// fields) or `cup-pos` (China UnionPay's POS layout: BCD fields, TPDU
    /// and header, its field 60 to 63 and MAC). See ACQUIRER.md.
    pub acquirer_dialect: String,
    /// The acquirer's own writing of that dialect, when it differs from the
    /// built-in table (its TPDU, a field's encoding): a copy of
    /// `hub/dialects/DIALECT.toml`, adjusted. See ACQUIRER.md.
    pub acquirer_layout: Option<PathBuf>,
    /// The acquirer's terminal id (field 41: 1 to 8 letters or digits, which
    /// the acquirer assigns) for each checkout id, `[acquirer_terminal_ids]`.
    /// On the ISO 8583 link a checkout not listed goes out under its own id,
    /// which works only when it has at most 8 characters; a longer one's
    /// sales are refused (`XI`), never left pending.
    pub acquirer_terminal_ids: std::collections::BTreeMap<String, String>,
    /// How long the acquirer has to answer before the sale is reversed.
    pub acquirer_timeout_ms: u64,
    /// How often reversals the acquirer has not acknowledged yet are sent again.
    pub reversal_retry_secs: u64,
    /// Largest amount a single sale may carry, in minor units.
    pub max_sale_minor: u64,
    /// The hub's own checkout: `hw` on the Pi's keypad, readers, OLED and
    /// printer; `sim` on chip models (demo, tests); `none` for no checkout.
    pub devices: String,
    /// How the hub's own checkout is wired (for `devices = "hw"`).
    pub device_config: PathBuf,
    /// Announce the hub on the LAN by mDNS.
    pub mdns: bool,
    /// How phones on the shop's Wi-Fi reach the hub; e-receipt links start with it.
    pub public_url: String,
    /// The supervisor's PIN (4 to 8 digits) for voids and refunds at the
    /// keypad; without one, voids and refunds are refused.
    pub supervisor_pin: Option<Secret<String>>,
    /// Settle the open batch every day at this local time, `HH:MM`.
    pub settle_at: Option<String>,
    /// The automatic backup of the night, local `HH:MM` (one is also taken
    /// after each settlement).
    pub backup_at: String,
    /// How much room the automatic backups may take in all, in MiB; the
    /// newest is kept whatever its size.
    pub backup_budget_mib: u64,
    /// Where a USB stick the owner plugs in is mounted: while one is, the
    /// hub keeps a copy of its backups on it (see `store::stick`).
    pub backup_usb_dir: PathBuf,
    /// Only paired terminals may sell (the default). The owner can change it
    /// on the page, and the page's choice wins once saved.
    pub pairing_required: bool,
    /// The fraud rules (`[fraud]` table).
    pub fraud: crate::coordinator::fraud::FraudRules,
    /// The rules the `[fraud]` table names: the owner's own, which head
    /// office's rules do not replace.
    #[serde(skip)]
    pub fraud_local: std::collections::BTreeSet<String>,
    /// Alipay payment codes (`[alipay]` table): none, no Alipay codes.
    pub alipay: Option<AlipayConfig>,
    /// WeChat Pay payment codes (`[wechat_pay]` table): none, no WeChat codes.
    pub wechat_pay: Option<WechatPayConfig>,
    /// A copy of each backup in a bucket of an S3-compatible store, for a
    /// shop with internet (`[offsite]` table): none, no off-site copy.
    pub offsite: Option<OffsiteConfig>,
    /// How long a buyer may take to confirm a code payment in the app
    /// before the hub cancels the order, in seconds.
    pub code_wait_secs: u64,
    /// How often the hub asks the provider meanwhile, in milliseconds
    /// (Alipay asks for 3 to 5 s).
    pub code_poll_ms: u64,
}

/// The merchant's access to Alipay's open platform (开放平台): the app id,
/// the application's private key (a file readable by the hub alone) and
/// Alipay's public key, as Alipay's key tool writes them.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlipayConfig {
    pub app_id: String,
    pub private_key: PathBuf,
    pub alipay_public_key: PathBuf,
    /// The gateway (Alipay's production one unless given).
    #[serde(default = "alipay_gateway")]
    pub gateway: String,
    /// The CA certificates (PEM) the gateway is checked against: the
    /// system's bundle unless given.
    #[serde(default = "system_ca")]
    pub ca: PathBuf,
}

/// The merchant's access to WeChat Pay (微信支付商户平台): the app id and
/// merchant id, the API key (a file readable by the hub alone) and the API
/// client certificate and its key (PEM), which reversals and refunds need.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WechatPayConfig {
    pub appid: String,
    pub mch_id: String,
    pub api_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
    /// WeChat Pay's API host unless given.
    #[serde(default = "wechat_gateway")]
    pub gateway: String,
    /// The CA certificates (PEM) the host is checked against: the system's
    /// bundle unless given.
    #[serde(default = "system_ca")]
    pub ca: PathBuf,
}

/// Where the off-site copies go: a bucket of any store that speaks the S3
/// API with AWS Signature Version 4 (Amazon S3, MinIO, and the S3 modes of
/// other clouds), reached over HTTPS.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OffsiteConfig {
    /// `https://HOST[:PORT]/BUCKET[/FOLDER]`: the bucket in the path (path
    /// style, which every S3-compatible store takes).
    pub url: String,
    /// The bucket's region (MinIO's is `us-east-1` unless set otherwise).
    #[serde(default = "offsite_region")]
    pub region: String,
    pub access_key_id: String,
    /// A file readable by the hub alone holding the secret access key.
    pub secret_key: PathBuf,
    /// The CA certificates (PEM) the store is checked against: the system's
    /// bundle unless given.
    #[serde(default = "system_ca")]
    pub ca: PathBuf,
}

fn offsite_region() -> String {
    "us-east-1".into()
}

fn wechat_gateway() -> String {
    crate::payments::wechat::GATEWAY.to_string()
}

fn alipay_gateway() -> String {
    crate::payments::alipay::GATEWAY.to_string()
}

pub(crate) fn system_ca() -> PathBuf {
    PathBuf::from("/etc/ssl/certs/ca-certificates.crt")
}

impl Default for Config {
    fn default() -> Self {
        Config {
            store_id: "shop".into(),
            store_name: "Tallybox Store".into(),
            merchant_id: "898000000000001".into(),
            currency: Currency::CNY,
            data_dir: PathBuf::from("/var/lib/tallybox"),
            http: ([0, 0, 0, 0], 80).into(),
            mqtt: ([0, 0, 0, 0], 1883).into(),
            broker: None,
            acquirer: "sim".into(),
            acquirer_tls_ca: None,
            acquirer_tls_cert: None,
            acquirer_tls_key: None,
            acquirer_master_keys: None,
            acquirer_dialect: "iso8583-1987".into(),
            acquirer_layout: None,
            acquirer_terminal_ids: Default::default(),
            acquirer_timeout_ms: 10_000,
            alipay: None,
            wechat_pay: None,
            offsite: None,
            code_wait_secs: 60,
            code_poll_ms: 3_000,
            reversal_retry_secs: 30,
            max_sale_minor: 5_000_000,
            devices: "hw".into(),
            device_config: PathBuf::from("/etc/tallybox/devices.toml"),
            mdns: true,
            public_url: "http://tallybox.local".into(),
            supervisor_pin: None,
            pairing_required: true,
            settle_at: None,
            backup_at: "03:00".into(),
            backup_budget_mib: 2048,
            backup_usb_dir: PathBuf::from("/media/tallybox-usb"),
            fraud: Default::default(),
            fraud_local: Default::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("setting {key}: {message}")]
    Invalid { key: &'static str, message: String },
}

impl Config {
    /// Reads `path`; a missing file is an error only when it was asked for.
    pub fn load(path: &Path, required: bool) -> Result<Config, ConfigError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => return Ok(Config::default()),
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        Config::parse(&text).map_err(|message| ConfigError::Parse {
            path: path.to_path_buf(),
            message,
        })
    }

    /// The settings in `text` (TOML); the error is one line.
    pub fn parse(text: &str) -> Result<Config, String> {
        // toml's message spans several lines with a source excerpt; keep its first.
        let mut config: Config = toml::from_str(text).map_err(|e| {
            let message = e.message().lines().next().unwrap_or("invalid TOML");
            if message.contains("`acquirer_mac_key`") || message.contains("`acquirer_pin_key`") {
                return "acquirer_mac_key and acquirer_pin_key are no longer set by hand: the acquirer's working keys come at each sign-in, under the terminal master keys in acquirer_master_keys".to_string();
            }
            message.to_string()
        })?;
        if let Ok(table) = text.parse::<toml::Table>() {
            if let Some(toml::Value::Table(fraud)) = table.get("fraud") {
                config.fraud_local = fraud.keys().cloned().collect();
            }
        }
        Ok(config)
    }

    /// Checks what the types alone cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |key, message: &str| {
            Err(ConfigError::Invalid {
                key,
                message: message.to_string(),
            })
        };
        if tallybox_core::protocol::TerminalId::parse(&self.store_id).is_err() {
            return invalid("store_id", "use 1-32 letters, digits, '-' or '_'");
        }
        if self.store_name.trim().is_empty() || self.store_name.chars().count() > 32 {
            return invalid("store_name", "give a name of 1 to 32 characters");
        }
        if self.acquirer != "sim" && self.iso8583_addr().is_none() {
            return invalid(
                "acquirer",
                "use 'sim', iso8583://HOST:PORT or iso8583+tls://HOST:PORT",
            );
        }
        if self.acquirer_tls() && self.acquirer_tls_ca.is_none() {
            return invalid(
                "acquirer_tls_ca",
                "a TLS acquirer link needs the acquirer's CA certificate (a PEM file)",
            );
        }
        if self.acquirer_tls_cert.is_some() != self.acquirer_tls_key.is_some() {
            return invalid(
                "acquirer_tls_cert",
                "give the client certificate and its key (acquirer_tls_key) both",
            );
        }
        let mut seen = std::collections::BTreeSet::new();
        for (checkout, id) in &self.acquirer_terminal_ids {
            if id.is_empty() || id.len() > 8 || !id.bytes().all(|b| b.is_ascii_alphanumeric()) {
                return Err(ConfigError::Invalid {
                    key: "acquirer_terminal_ids",
                    message: format!(
                        "{checkout} = {id:?}: the acquirer's terminal id is 1 to 8 letters or digits"
                    ),
                });
            }
            if !seen.insert(id) {
                return Err(ConfigError::Invalid {
                    key: "acquirer_terminal_ids",
                    message: format!("{id} is given to two checkouts; the acquirer tells them apart by it"),
                });
            }
        }
        if self.iso8583_addr().is_some() && self.acquirer_master_keys.is_none() {
            return invalid(
                "acquirer_master_keys",
                "the ISO 8583 link needs the terminal master keys your acquirer issued: a file of lines `TERMINAL-ID KEY CHECK-VALUE` (`tallybox acquirer-keys add` makes one); none is built in",
            );
        }
        let dialect = match crate::acquirer::iso8583::codec::Dialect::parse(&self.acquirer_dialect) {
            Ok(dialect) => dialect,
            Err(e) => return invalid("acquirer_dialect", &e),
        };
        if let Some(path) = &self.acquirer_layout {
            if let Err(e) = crate::acquirer::iso8583::codec::Layout::load(path, dialect, "acquirer_dialect") {
                return invalid("acquirer_layout", &e);
            }
        }
        if !(1..=3600).contains(&self.reversal_retry_secs) {
            return invalid("reversal_retry_secs", "use 1 to 3600");
        }
        if !(5..=600).contains(&self.code_wait_secs) {
            return invalid("code_wait_secs", "use 5 to 600");
        }
        if !(100..=10_000).contains(&self.code_poll_ms) {
            return invalid("code_poll_ms", "use 100 to 10000");
        }
        if !(100..=120_000).contains(&self.acquirer_timeout_ms) {
            return invalid("acquirer_timeout_ms", "use 100 to 120000");
        }
        if self.max_sale_minor == 0 || Amount::from_minor(self.max_sale_minor).is_err() {
            return invalid("max_sale_minor", "use 1 to 999999999 (minor units)");
        }
        if !matches!(self.devices.as_str(), "hw" | "sim" | "none") {
            return invalid(
                "devices",
                "use 'hw' (the Pi's parts), 'sim' (chip models) or 'none'",
            );
        }
        if let Some(pin) = &self.supervisor_pin {
            if crate::shop::check_supervisor_pin(pin.expose()).is_err() {
                return invalid("supervisor_pin", "use 4 to 8 digits");
            }
        }
        if let Err(e) = self.fraud.validate() {
            return invalid("fraud", &e);
        }
        if let Some(at) = &self.settle_at {
            if chrono::NaiveTime::parse_from_str(at, "%H:%M").is_err() {
                return invalid("settle_at", "give a local time as HH:MM, e.g. 23:30");
            }
        }
        if chrono::NaiveTime::parse_from_str(&self.backup_at, "%H:%M").is_err() {
            return invalid("backup_at", "give a local time as HH:MM, e.g. 03:00");
        }
        if !self.backup_usb_dir.is_absolute() {
            return invalid(
                "backup_usb_dir",
                "give the absolute folder where a USB stick is mounted, e.g. /media/tallybox-usb",
            );
        }
        let url = &self.public_url;
        let valid_url = (url.starts_with("http://") || url.starts_with("https://"))
            && url.len() <= 40
            && !url.chars().any(|c| c.is_whitespace() || c.is_control());
        if !valid_url {
            return invalid(
                "public_url",
                "give the address phones use to reach the hub, e.g. http://tallybox.local (at most 40 characters)",
            );
        }
        if let Some(url) = &self.broker {
            url.parse::<BrokerAddr>()
                .map_err(|message| ConfigError::Invalid {
                    key: "broker",
                    message,
                })?;
        }
        Ok(())
    }

    pub fn broker_addr(&self) -> Option<BrokerAddr> {
        self.broker.as_deref().and_then(|b| b.parse().ok())
    }

    /// `HOST:PORT` of an ISO 8583 acquirer, when the settings name one.
    pub fn iso8583_addr(&self) -> Option<&str> {
        let addr = (self.acquirer.strip_prefix("iso8583://"))
            .or_else(|| self.acquirer.strip_prefix("iso8583+tls://"))?;
        let (host, port) = addr.rsplit_once(':')?;
        (!host.is_empty() && port.parse::<u16>().is_ok()).then_some(addr)
    }

    /// The settings ask for TLS to the acquirer.
    pub fn acquirer_tls(&self) -> bool {
        self.acquirer.starts_with("iso8583+tls://")
    }

    pub fn acquirer_timeout(&self) -> Duration {
        Duration::from_millis(self.acquirer_timeout_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tallybox.toml");
        std::fs::write(&path, text).unwrap();
        let config = Config::load(&path, true)?;
        config.validate()?;
        Ok(config)
    }

    #[test]
    fn the_packaged_settings_file_names_real_keys_with_valid_values() {
        let file = include_str!("../../image/debian/tallybox.toml");
        let uncommented: String = file
            .lines()
            .filter(|l| l.starts_with('#') && l.contains(" = "))
            .map(|l| format!("{}\n", &l[1..]))
            .collect();
        assert!(uncommented.lines().count() >= 5, "{uncommented}");
        let config = Config::parse(&uncommented).unwrap_or_else(|e| panic!("{e}\n{uncommented}"));
        assert_eq!(config.http.port(), 80);
        assert_eq!(
            format!("{config:?}"),
            format!("{:?}", Config::default()),
            "the file's examples are the defaults"
        );
    }

    #[test]
    fn a_file_overrides_defaults() {
        let c = load("store_name = \"Corner Shop\"\nacquirer_timeout_ms = 4000\n").unwrap();
        assert_eq!(c.store_name, "Corner Shop");
        assert_eq!(c.acquirer_timeout(), Duration::from_secs(4));
        assert_eq!(c.currency, Currency::CNY);
        let yen = load("currency = \"JPY\"\n").unwrap();
        assert_eq!(yen.currency.exponent(), 0);
    }

    #[test]
    fn mistakes_name_the_key() {
        let e = load("store_nmae = \"x\"").unwrap_err().to_string();
        assert!(e.contains("store_nmae"), "{e}");
        let e = load("acquirer_timeout_ms = \"soon\"").unwrap_err().to_string();
        assert!(
            e.contains("acquirer_timeout_ms") || e.contains("invalid type"),
            "{e}"
        );
        let e = load("currency = \"yuan\"").unwrap_err().to_string();
        assert!(e.contains("currency") && e.contains("use one of CNY, HKD"), "{e}");
        let e = load("broker = \"localhost\"").unwrap_err().to_string();
        assert!(e.contains("broker"), "{e}");
        assert!(!load("this is not toml").unwrap_err().to_string().contains('\n'));
    }

    #[test]
    fn an_iso8583_acquirer_needs_the_acquirers_master_keys_and_none_is_built_in() {
        let link = "acquirer = \"iso8583://127.0.0.1:5800\"\n";
        let e = load(link).unwrap_err().to_string();
        assert!(
            e.contains("acquirer_master_keys") && e.contains("none is built in"),
            "{e}"
        );
        let keys = "acquirer_master_keys = \"/etc/tallybox/acquirer-keys\"\n";
        assert!(load(&format!("{link}{keys}")).is_ok());
        assert!(load("").is_ok(), "the built-in simulated acquirer needs no key");
        // A settings file from before working keys says what replaced its keys.
        let e = load(&format!(
            "{link}acquirer_mac_key = \"00112233445566778899AABBCCDDEEFF\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("acquirer_master_keys") && !e.contains('\n'), "{e}");
    }

    #[test]
    fn a_tls_acquirer_link_needs_the_acquirers_ca_and_a_client_certificate_comes_with_its_key() {
        let link = "acquirer = \"iso8583+tls://bank.example:5800\"\nacquirer_master_keys = \"/etc/tallybox/acquirer-keys\"\n";
        let e = load(link).unwrap_err().to_string();
        assert!(e.contains("acquirer_tls_ca"), "{e}");
        let c = load(&format!(
            "{link}acquirer_tls_ca = \"/etc/tallybox/acquirer-ca.pem\"\n"
        ))
        .unwrap();
        assert!(c.acquirer_tls());
        assert_eq!(c.iso8583_addr(), Some("bank.example:5800"));
        let e = load(&format!(
            "{link}acquirer_tls_ca = \"/ca.pem\"\nacquirer_tls_cert = \"/cert.pem\"\n"
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("acquirer_tls_key"), "{e}");
        assert!(!load("").unwrap().acquirer_tls());
    }

    #[test]
    fn acquirer_terminal_ids_are_eight_letters_or_digits_each_its_own() {
        let c = load("[acquirer_terminal_ids]\nFRONT-COUNTER-1 = \"10000042\"\n").unwrap();
        assert_eq!(c.acquirer_terminal_ids["FRONT-COUNTER-1"], "10000042");
        for (text, says) in [
            ("A = \"100000420\"", "1 to 8 letters or digits"),
            ("A = \"\"", "1 to 8 letters or digits"),
            ("A = \"10 00\"", "1 to 8 letters or digits"),
            ("A = \"10000042\"\nB = \"10000042\"", "given to two checkouts"),
        ] {
            let e = load(&format!("[acquirer_terminal_ids]\n{text}\n"))
                .unwrap_err()
                .to_string();
            assert!(e.contains("acquirer_terminal_ids") && e.contains(says), "{e}");
        }
    }

    #[test]
    fn a_missing_default_file_is_fine_but_an_asked_for_one_is_not() {
        let missing = Path::new("/nonexistent/tallybox.toml");
        assert!(Config::load(missing, false).is_ok());
        assert!(Config::load(missing, true).is_err());
    }
}
