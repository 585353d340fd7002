//! `tallybox`: the hub's command line.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tallybox::cmd::{self, demo::DemoArgs, drive, serve::ServeArgs};

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
    Serve(ServeArgs),
    /// Run the whole system on this machine with simulated devices and acquirer.
    Demo(DemoArgs),
    /// List the simulated issuer's test cards.
    TestCards {
        /// As a JSON array.
        #[arg(long)]
        json: bool,
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

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // One line: what was wrong. `--help` has the rest.
            let text = e.to_string();
            let first = text
                .lines()
                .next()
                .unwrap_or("bad arguments")
                .trim_start_matches("error: ");
            eprintln!("tallybox: {first} (see tallybox --help)");
            return ExitCode::from(2);
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                // rumqttd's router logs every ordinary disconnect at ERROR ("connection
                // id is already gone"); its other modules still report at WARN.
                .unwrap_or_else(|_| {
                    "info,rumqttd=warn,rumqttd::router::routing=off,rumqttc=warn,mdns_sd=warn".into()
                }),
        )
        .with_writer(std::io::stderr)
        .init();
    let result = match cli.command {
        Command::TestCards { json } => {
            cmd::test_cards::run(json);
            Ok(())
        }
        Command::Drive { control, action } => drive::run(control, action),
        Command::Serve(args) => runtime().and_then(|rt| rt.block_on(cmd::serve::run(args))),
        Command::Demo(args) => runtime().and_then(|rt| rt.block_on(cmd::demo::run(args))),
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
    Ok(tokio::runtime::Builder::new_multi_thread().enable_all().build()?)
}
