//! `tallybox-terminal`: one checkout point.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tallybox_terminal::agent::{Agent, AgentConfig};
use tallybox_terminal::devices::Display;
use tallybox_terminal::devices::{sim::SimDevices, Backend};
use tallybox_terminal::discovery::{self, DiscoveryError};
use tallybox_terminal::mqtt::BrokerAddr;
use tallybox_terminal::protocol::TerminalId;
use tallybox_terminal::session::{Lang, Screens};
use tallybox_terminal::{cli, control};

/// A Tallybox checkout point: keypad, card reader, OLED and printer, talking to the hub.
#[derive(Parser)]
#[command(name = "tallybox-terminal", version)]
struct Args {
    /// The hub's broker, mqtt://HOST:PORT. Found by mDNS when left out.
    #[arg(long, env = "TALLYBOX_HUB")]
    hub: Option<BrokerAddr>,
    /// This checkout's id, e.g. T1 (letters, digits, '-', '_').
    #[arg(long, env = "TALLYBOX_TERMINAL_ID", value_parser = TerminalId::parse)]
    id: TerminalId,
    /// The store id used in topics (the hub's `store_id`); learned by mDNS when --hub is left out.
    #[arg(long, env = "TALLYBOX_STORE")]
    store: Option<String>,
    /// Devices to drive.
    #[arg(long, value_enum, default_value = "sim")]
    devices: Backend,
    /// Open the simulated devices' control API on this address (loopback).
    #[arg(long)]
    control: Option<SocketAddr>,
    /// Where the terminal keeps the sale in flight across restarts.
    #[arg(long, default_value = "/var/lib/tallybox-terminal")]
    state_dir: PathBuf,
    /// Language of the checkout's screens.
    #[arg(long, value_enum, default_value = "en", env = "TALLYBOX_LANG")]
    lang: Lang,
    /// Tell the cashier the hub is silent after this many seconds without an answer.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=600))]
    hub_silent_secs: u64,
}

fn main() -> ExitCode {
    let args: Args = match cli::parse("tallybox-terminal") {
        Ok(args) => args,
        Err(code) => return code,
    };
    cli::init_logging("info,rumqttc=warn");
    match run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tallybox-terminal: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> anyhow::Result<()> {
    if args.devices != Backend::Sim {
        anyhow::bail!(
            "a terminal needs devices: use --devices sim (hardware drivers come in a later release)"
        );
    }
    let mut devices = SimDevices::default();
    let (broker, store) = match (args.hub, args.store) {
        (Some(hub), store) => (hub, store.unwrap_or_else(|| "shop".into())),
        (None, store) => {
            // A terminal may boot before the hub: keep looking, and say so.
            let ui = Screens { lang: args.lang };
            devices.show(&ui.message(("STARTING", "正在启动"), ("Looking for the hub", "正在查找主机")));
            let found = loop {
                match discovery::find_hub(Duration::from_secs(3)) {
                    Ok(found) => break found,
                    Err(DiscoveryError::NotFound(_)) => {
                        tracing::info!("no hub answered on the LAN yet; still looking")
                    }
                    Err(e) => return Err(e.into()),
                }
            };
            tracing::info!(broker = %found.broker, store = %found.store, "found the hub by mDNS");
            (found.broker, store.unwrap_or(found.store))
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let mut config = AgentConfig::new(args.id, &store, broker, args.state_dir);
        config.silent_after = Duration::from_secs(args.hub_silent_secs);
        config.session.lang = args.lang;
        let (agent, handle) = Agent::new(
            config,
            devices.clone(),
            devices.printer_driver(),
            devices.health.clone(),
        );
        if let Some(addr) = args.control {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| anyhow::anyhow!("cannot open the control API on {addr}: {e}"))?;
            tracing::info!(%addr, "control API listening");
            tokio::spawn(control::serve(listener, handle, devices));
        }
        let (stop, stopped) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            let _ = stop.send(true);
        });
        agent.run(stopped).await?;
        Ok(())
    })
}
