//! `tallybox-terminal`: one checkout point.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use tallybox_core::protocol::TerminalId;
use tallybox_platform::cli;
use tallybox_platform::discovery::{self, DiscoveryError};
use tallybox_platform::machine::Machine;
use tallybox_platform::mqtt::BrokerAddr;
use tallybox_terminal::agent::{Agent, AgentConfig, Ended};
use tallybox_terminal::config::DeviceConfig;
use tallybox_terminal::devices::{sim::SimDevices, Backend, Display, Printer, SharedHealth};
use tallybox_terminal::hw::Hardware;
use tallybox_terminal::session::{Lang, Screens};
use tallybox_terminal::{control, hwtest};

/// A Tallybox checkout point: keypad, card reader, OLED and printer, talking to the hub.
#[derive(Parser)]
#[command(name = "tallybox-terminal", version, args_conflicts_with_subcommands = true)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// The hub's broker, mqtt://HOST:PORT. Found by mDNS when left out.
    #[arg(long, env = "TALLYBOX_HUB")]
    hub: Option<BrokerAddr>,
    /// This checkout's id, e.g. T1 (letters, digits, '-', '_').
    #[arg(long, env = "TALLYBOX_TERMINAL_ID", value_parser = TerminalId::parse)]
    id: Option<TerminalId>,
    /// The store id used in topics (the hub's `store_id`); learned by mDNS when --hub is left out.
    #[arg(long, env = "TALLYBOX_STORE")]
    store: Option<String>,
    /// Devices to drive: the Pi's parts (hw) or chip models (sim).
    #[arg(long, value_enum, default_value = "hw")]
    devices: Backend,
    /// How the parts are wired; missing file: the documented wiring.
    #[arg(long, default_value = "/etc/tallybox/devices.toml")]
    device_config: PathBuf,
    /// Print on this printer instead of the settings' (or the model's, with sim),
    /// e.g. uart:/dev/serial0@9600, usb:/dev/usb/lp0, tcp:192.168.1.50:9100.
    #[arg(long)]
    printer: Option<String>,
    /// Open the simulated devices' control API on this address (loopback).
    #[arg(long)]
    control: Option<SocketAddr>,
    /// Where the terminal keeps the sale in flight and unprinted slips across restarts.
    #[arg(long, default_value = "/var/lib/tallybox-terminal")]
    state_dir: PathBuf,
    /// Language of the checkout's screens (default: the device settings' with hw, English with sim).
    #[arg(long, value_enum, env = "TALLYBOX_LANG")]
    lang: Option<Lang>,
    /// Tell the cashier the hub is silent after this many seconds without an answer.
    #[arg(long, default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=600))]
    hub_silent_secs: u64,
    /// Send the hub device counters and the machine's health this often.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    heartbeat_secs: u64,
    /// Read the machine's temperature, power and Bluetooth below this directory
    /// (its `sys/…`): `/` on a Pi, a fake tree in tests.
    #[arg(long, env = "TALLYBOX_SYS_ROOT", default_value = "/")]
    sys_root: PathBuf,
    /// Where versions are installed; when this checkout runs from an
    /// install there, it takes the updates the hub offers.
    #[arg(long, env = "TALLYBOX_ROOT", default_value = "/opt/tallybox-terminal")]
    root: PathBuf,
    /// The public keys update bundles must be signed with (`*.pub`).
    #[arg(long, default_value = "/etc/tallybox/update-keys")]
    update_keys: PathBuf,
}

#[derive(Subcommand)]
enum Command {
    /// Check each wired part: test pattern, test slip, every key, a swipe and a tap.
    HwTest {
        #[arg(long, default_value = "/etc/tallybox/devices.toml")]
        device_config: PathBuf,
        #[command(flatten)]
        args: hwtest::HwTestArgs,
    },
}

fn main() -> ExitCode {
    let args: Args = match cli::parse("tallybox-terminal") {
        Ok(args) => args,
        Err(code) => return code,
    };
    cli::init_logging("info,rumqttc=warn");
    tallybox_core::protocol::RequestId::take_time_from(tallybox_platform::clock::unix_ms);
    let result = match args.command {
        Some(Command::HwTest { device_config, args }) => hw_test(&device_config, &args),
        None => run(args).and_then(|ended| match ended {
            Ended::Stopped => Ok(ExitCode::SUCCESS),
            Ended::RestartAsked => Err(restart()),
            // The service starts the new version (through the launcher).
            Ended::Updated(_) => Ok(ExitCode::SUCCESS),
            Ended::UpdateUnhealthy(version) => Err(anyhow::anyhow!(
                "version {version} did not reach the hub within a minute of its start: stopped, so that the previous version comes back"
            )),
        }),
    };
    result.unwrap_or_else(|e| {
        eprintln!("tallybox-terminal: {e:#}");
        ExitCode::FAILURE
    })
}

/// The device settings with the command line's overrides.
fn device_config(path: &std::path::Path, printer: Option<String>) -> anyhow::Result<DeviceConfig> {
    DeviceConfig::load(path)?
        .with_printer(printer)
        .map_err(anyhow::Error::msg)
}

fn hw_test(path: &std::path::Path, args: &hwtest::HwTestArgs) -> anyhow::Result<ExitCode> {
    let passed = args.run(DeviceConfig::load(path)?).map_err(anyhow::Error::msg)?;
    Ok(if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Starts this program again in place (same process id, same arguments): a
/// restart the owner asked for from the page, under systemd or not.
fn restart() -> anyhow::Error {
    use std::os::unix::process::CommandExt;
    let error = std::process::Command::new("/proc/self/exe")
        .args(std::env::args_os().skip(1))
        .exec();
    anyhow::anyhow!("cannot restart: {error}")
}

fn run(args: Args) -> anyhow::Result<Ended> {
    let id = args
        .id
        .ok_or_else(|| anyhow::anyhow!("give this checkout's id with --id (e.g. --id T1)"))?;
    let config = device_config(&args.device_config, args.printer.clone())?;
    // Simulated checkouts are for development: English unless asked otherwise.
    let lang = args.lang.unwrap_or(match args.devices {
        Backend::Sim => Lang::En,
        _ => config.lang,
    });
    let ui = Screens { lang };
    // One place picks the devices; everything after works on the traits.
    let sim = SimDevices::default();
    let (mut display, printer, health, mut hardware): (Box<dyn Display>, Box<dyn Printer>, SharedHealth, _) =
        match args.devices {
            Backend::Hw => {
                let hw = Hardware::open(&config).map_err(anyhow::Error::msg)?;
                (hw.display, hw.printer, hw.inputs.health.clone(), Some(hw.inputs))
            }
            Backend::Sim => {
                let printer = match &args.printer {
                    Some(_) => {
                        let addr = config.printer_addr().map_err(anyhow::Error::msg)?;
                        sim.health.printer_link(addr.link());
                        Box::new(config.printer().map_err(anyhow::Error::msg)?) as Box<dyn Printer>
                    }
                    None => {
                        let log = args.state_dir.join("sim-paper.jsonl");
                        sim.printer.with(|m| m.log_paper_to(log));
                        sim.printer_driver()
                    }
                };
                (Box::new(sim.clone()), printer, sim.health.clone(), None)
            }
            Backend::None => anyhow::bail!("a terminal needs devices: use --devices hw or --devices sim"),
        };
    let (broker, store) = match (args.hub, args.store) {
        (Some(hub), store) => (hub, store.unwrap_or_else(|| "shop".into())),
        (None, store) => {
            // A terminal may boot before the hub: keep looking, and say so.
            display.show(&ui.message(("STARTING", "正在启动"), ("Looking for the hub", "正在查找主机")));
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
        let mut agent_config = AgentConfig::new(id, &store, broker, args.state_dir);
        agent_config.silent_after = Duration::from_secs(args.hub_silent_secs);
        agent_config.heartbeat_every = Duration::from_secs(args.heartbeat_secs);
        agent_config.machine = Some(Machine::at(&args.sys_root));
        if tallybox_platform::update::installed(&args.root).is_some() {
            agent_config.install = Some(tallybox_terminal::self_update::Install {
                root: args.root.clone(),
                keys: args.update_keys.clone(),
            });
        }
        agent_config.session.lang = lang;
        agent_config.session.slip_columns = config.printer.columns;
        let (agent, handle) = Agent::new(agent_config, display, printer, health);
        if let Some(inputs) = hardware.as_mut() {
            inputs.start(&handle);
        }
        if let Some(addr) = args.control {
            if args.devices != Backend::Sim {
                anyhow::bail!("--control drives simulated devices: add --devices sim");
            }
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|e| anyhow::anyhow!("cannot open the control API on {addr}: {e}"))?;
            tracing::info!(%addr, "control API listening");
            tokio::spawn(control::serve(listener, handle, sim));
        }
        let stop = tokio_util::sync::CancellationToken::new();
        let stopped = stop.clone();
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            stop.cancel();
        });
        // Alive while the runtime runs: the checkout's own loop wakes at
        // least every second, so a wedged runtime starves the watchdog.
        tallybox_platform::service::started(|| std::future::ready(true));
        Ok(agent.run(stopped).await?)
    })
}
