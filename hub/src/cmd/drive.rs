//! `tallybox drive`: a small client for a simulated checkout's control API, so
//! a person can make a sale in the demo from a shell.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::{json, Value};

#[derive(Debug, Clone, clap::Subcommand)]
pub enum Action {
    /// Press keys, e.g. `A1250#` (sale of 12.50).
    Keys { keys: String },
    /// Present a test card by name (see `tallybox test-cards`).
    Card {
        name: String,
        /// How it is presented: swipe, tap or manual.
        #[arg(long, default_value = "swipe")]
        entry: String,
    },
    /// Print the screen.
    Screen,
    /// Print every slip the printer printed.
    Paper,
}

pub fn run(control: SocketAddr, action: Action) -> anyhow::Result<()> {
    let request = match &action {
        Action::Keys { keys } => json!({"cmd": "keys", "keys": keys}),
        Action::Card { name, entry } => json!({"cmd": "card", "name": name, "entry": entry}),
        Action::Screen => json!({"cmd": "screen"}),
        Action::Paper => json!({"cmd": "paper"}),
    };
    let mut stream = TcpStream::connect_timeout(&control, Duration::from_secs(3))
        .map_err(|e| anyhow::anyhow!("cannot reach the checkout at {control}: {e}; is the demo running?"))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    writeln!(stream, "{request}")?;
    let mut line = String::new();
    BufReader::new(&stream).read_line(&mut line)?;
    let answer: Value = serde_json::from_str(&line)?;
    if answer["ok"] != Value::Bool(true) {
        anyhow::bail!("{}", answer["error"].as_str().unwrap_or("the checkout refused"));
    }
    match action {
        Action::Screen => {
            for l in answer["lines"].as_array().into_iter().flatten() {
                println!("{}", l.as_str().unwrap_or_default());
            }
        }
        Action::Paper => {
            for slip in answer["slips"].as_array().into_iter().flatten() {
                for l in slip.as_array().into_iter().flatten() {
                    println!("{}", l.as_str().unwrap_or_default());
                }
                println!();
            }
        }
        _ => {}
    }
    Ok(())
}
