//! `tallybox demo`: the whole system on one laptop — embedded broker, simulated
//! acquirer, the hub's own checkout and simulated terminals, web on localhost.

use std::net::SocketAddr;
use std::path::PathBuf;

use tallybox::config::Config;
use tallybox::hub::{self, Options, Started};

#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Settings file (TOML), e.g. to try a store name or time-out; the demo
    /// still uses its own addresses, the embedded broker and simulated devices.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Where the demo keeps its database (kept between runs).
    #[arg(long, default_value = "tallybox-demo-data")]
    pub data_dir: PathBuf,
    /// Web page address.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub http: SocketAddr,
    /// Embedded broker address.
    #[arg(long, default_value = "127.0.0.1:18830")]
    pub mqtt: SocketAddr,
    /// Simulated terminals besides the hub's own checkout.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(0..=20))]
    pub terminals: u16,
    /// Control API of the first checkout; the others take the next ports.
    #[arg(long, default_value = "127.0.0.1:7700")]
    pub control: SocketAddr,
    #[command(flatten)]
    pub owner: super::OwnerPassword,
    /// Language of the simulated checkouts' screens.
    #[arg(long, value_enum, default_value = "en")]
    pub lang: tallybox_terminal::session::Lang,
    /// Read the machine's temperature, power and Bluetooth below this
    /// directory (its `sys/…`): `/` on a Pi, a fake tree in tests.
    #[arg(long, env = "TALLYBOX_SYS_ROOT", default_value = "/")]
    pub sys_root: PathBuf,
}

/// The demo's supervisor PIN when its settings give none.
const DEMO_SUPERVISOR_PIN: &str = "1234";

fn banner(s: &Started, data_dir: &std::path::Path) {
    let mut out = String::new();
    out.push_str("\nTallybox demo is running. Ctrl-C stops it.\n\n");
    out.push_str(&format!("  Web page     http://{}\n", s.http));
    out.push_str(&format!("  MQTT broker  {} (embedded)\n", s.broker));
    out.push_str(&format!("  Data         {}\n", data_dir.display()));
    match &s.setup_code {
        Some(code) => out.push_str(&format!(
            "  Setup code   {code}  (the web page asks for it once, to set the owner password)\n\n"
        )),
        None => out.push_str("  Owner        sign in on the web page with the owner password\n\n"),
    }
    out.push_str("  Checkouts (simulated devices):\n");
    for (tid, control) in &s.checkouts {
        let who = if tid.as_str() == hub::OWN_CHECKOUT {
            "the hub's own"
        } else {
            "terminal"
        };
        let at = control.map(|c| c.to_string()).unwrap_or_default();
        out.push_str(&format!("    {tid:<4} {who:<14} control {at}\n"));
    }
    if let Some((_, Some(first))) = s.checkouts.first() {
        out.push_str("\n  Make a sale of 12.50 and read the slip:\n");
        out.push_str(&format!("    tallybox drive --control {first} keys A1250#\n"));
        out.push_str(&format!("    tallybox drive --control {first} card approved\n"));
        out.push_str(&format!("    tallybox drive --control {first} screen\n"));
        out.push_str(&format!("    tallybox drive --control {first} paper\n"));
        out.push_str("  Then open the web page. Every test card: tallybox test-cards\n");
        out.push_str(&format!(
            "  Pay by Alipay code instead: keys A1250#, then: tallybox drive --control {first} scan 281234567890120000\n"
        ));
        out.push_str(&format!(
            "  (…0001: the buyer confirms in the app {} s later; …0002: never, not charged; WeChat Pay: 13…)\n",
            tallybox::payments::sim::CONFIRMS_AFTER.as_secs()
        ));
        out.push_str(&format!(
            "  Void it (supervisor PIN {DEMO_SUPERVISOR_PIN}, trace no. from the slip): keys B1{DEMO_SUPERVISOR_PIN}#1#, card approved\n"
        ));
    }
    println!("{out}");
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let base = match &args.config {
        Some(path) => Config::load(path, true)?,
        None => Config {
            store_name: "Tallybox Demo Shop".into(),
            ..Config::default()
        },
    };
    let config = Config {
        data_dir: args.data_dir.clone(),
        http: args.http,
        mqtt: args.mqtt,
        broker: None,
        acquirer: "sim".into(),
        devices: "sim".into(),
        mdns: false,
        // Voids and refunds need a supervisor PIN; the demo has a known one.
        supervisor_pin: base
            .supervisor_pin
            .clone()
            .or_else(|| Some(DEMO_SUPERVISOR_PIN.into())),
        ..base
    };
    let options = Options {
        extra_terminals: args.terminals,
        control: Some(args.control),
        lang: args.lang,
        owner_password: args.owner.read()?,
        sys_root: args.sys_root.clone(),
        install_root: None,
        simulated_codes: true,
        update_keys: tallybox::install::UPDATE_KEYS.into(),
    };
    let shutdown = super::stop_signal();
    let data_dir = args.data_dir.clone();
    hub::run(config, options, shutdown, move |started| {
        banner(started, &data_dir)
    })
    .await?;
    Ok(())
}
