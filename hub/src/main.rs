//! `tallybox`: the hub's command line.

use std::net::SocketAddr;
use std::process::ExitCode;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
mod cmd;

use cmd::{demo::DemoArgs, drive, serve::ServeArgs};

/// Tallybox: a Raspberry Pi payment hub for a small shop.
#[derive(Parser)]
#[command(name = "tallybox", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the hub (broker, coordinator, web page, own checkout).
    Serve(Box<ServeArgs>),
    /// Run the whole system on this machine with simulated devices and acquirer.
    Demo(DemoArgs),
    /// Run the simulated acquirer as an ISO 8583 host on TCP.
    AcquirerSim(cmd::acquirer_sim::AcquirerSimArgs),
    /// Enter or list the terminal master keys the acquirer issued.
    AcquirerKeys {
        #[command(subcommand)]
        action: cmd::acquirer_keys::AcquirerKeysAction,
    },
    /// Check the tamper-evident audit log.
    Audit {
        #[command(subcommand)]
        action: cmd::audit::AuditAction,
    },
    /// Join a chain of shops (head office's one-time code), or see what the uplink has sent.
    Chain {
        #[command(subcommand)]
        action: cmd::chain::ChainAction,
    },
    /// Write the evidence pack of a period (transactions, slips, audit log, CCTV times, steps).
    Evidence(cmd::evidence::EvidenceArgs),
    /// Stop a terminal (--terminal T1) or the whole store (--store) from selling.
    Freeze(cmd::evidence::FreezeArgs),
    /// Let a frozen terminal or store sell again.
    Unfreeze(cmd::evidence::FreezeArgs),
    /// Forgot the owner password? Remove it (nothing else); the next start shows a new setup code.
    ResetOwner(cmd::reset_owner::ResetOwnerArgs),
    /// Put a backup back, with the hub stopped (the database it replaces is kept).
    Restore(cmd::restore::RestoreArgs),
    /// Install a signed update bundle (database backed up first; rolls back by itself if the new version fails).
    Update(cmd::update::UpdateArgs),
    /// Make a signing key pair or sign an update bundle (for releasing, not for the shop).
    Release {
        #[command(subcommand)]
        action: cmd::update::ReleaseAction,
    },
    /// Check the hub: terminals, printers, readers, disk, database, reversals; what to do about each.
    Doctor(cmd::doctor::DoctorArgs),
    /// List the simulated issuer's test cards.
    TestCards {
        /// As a JSON array.
        #[arg(long)]
        json: bool,
    },
    /// Check the hub's own checkout parts: test pattern, test slip, every key, a swipe and a tap.
    HwTest {
        /// The hub's settings, for `device_config`.
        #[arg(long, default_value = "/etc/tallybox/tallybox.toml")]
        config: PathBuf,
        #[command(flatten)]
        args: tallybox_terminal::hwtest::HwTestArgs,
    },
    /// Drive a simulated checkout: press keys, present a card, read screen and paper.
    Drive {
        /// The checkout's control API address (printed by `tallybox demo`).
        #[arg(long, default_value = "127.0.0.1:7700")]
        control: SocketAddr,
        #[command(subcommand)]
        action: drive::Action,
    },
}

/// Large blocks (argon2's 19 MiB for every password and PIN hash) are
/// mapped on their own and handed back to the system when freed, whichever
/// thread freed them. glibc's default raises this threshold after the first
/// such block is freed, so later ones came from a thread's arena and could
/// stay resident there: the hub's peak memory varied from run to run.
fn return_large_blocks() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; it runs before any
    // thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

fn main() -> ExitCode {
    return_large_blocks();
    // The hub's own checkout's request ids start with the time, as every
    // checkout's do.
    tallybox_core::protocol::RequestId::take_time_from(tallybox_platform::clock::unix_ms);
    let cli: Cli = match tallybox_platform::cli::parse("tallybox") {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    // rumqttd's router logs every ordinary disconnect at ERROR ("connection id is
    // already gone"); its other modules still report at WARN.
    tallybox_platform::cli::init_logging(
        "info,rumqttd=warn,rumqttd::router::routing=off,rumqttc=warn,mdns_sd=warn",
    );
    let result = match cli.command {
        Command::TestCards { json } => {
            cmd::test_cards::run(json);
            Ok(())
        }
        Command::Drive { control, action } => drive::run(control, action),
        Command::HwTest { config, args } => match cmd::hw_test::run(&config, &args) {
            Ok(true) => Ok(()),
            Ok(false) => return ExitCode::FAILURE,
            Err(e) => Err(e),
        },
        Command::Serve(args) => runtime().and_then(|rt| rt.block_on(cmd::serve::run(*args))),
        Command::Demo(args) => runtime().and_then(|rt| rt.block_on(cmd::demo::run(args))),
        Command::Audit { action } => match cmd::audit::run(action) {
            Ok(true) => Ok(()),
            Ok(false) => return ExitCode::FAILURE,
            Err(e) => Err(e),
        },
        Command::Chain { action } => cmd::chain::run(action),
        Command::Evidence(args) => cmd::evidence::run(args),
        Command::Freeze(args) => cmd::evidence::freeze(args),
        Command::Unfreeze(args) => cmd::evidence::unfreeze(args),
        Command::ResetOwner(args) => cmd::reset_owner::run(args),
        Command::Restore(args) => runtime().and_then(|rt| rt.block_on(cmd::restore::run(args))),
        Command::Update(args) => cmd::update::run(args),
        Command::Release { action } => cmd::update::release(action),
        Command::Doctor(args) => match cmd::doctor::run(args) {
            Ok(tallybox::doctor::Status::Ok) => Ok(()),
            Ok(tallybox::doctor::Status::Warn) => return ExitCode::from(1),
            Ok(tallybox::doctor::Status::Fail) => return ExitCode::from(2),
            // A doctor that cannot look is a failure, not a warning.
            Err(e) => {
                eprintln!("tallybox: {e:#}");
                return ExitCode::from(2);
            }
        },
        Command::AcquirerKeys { action } => cmd::acquirer_keys::run(action),
        Command::AcquirerSim(args) => runtime().and_then(|rt| rt.block_on(cmd::acquirer_sim::run(args))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tallybox: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    // The web server's filter chain is deep; unoptimized builds need more
    // than the default 2 MiB of stack per worker to poll it.
    Ok(tokio::runtime::Builder::new_multi_thread()
        .thread_stack_size(8 * 1024 * 1024)
        .enable_all()
        .build()?)
}
