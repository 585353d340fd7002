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
        /// How it is presented: swipe or tap.
        #[arg(long, default_value = "swipe")]
        entry: String,
        /// Damage the stripe (or the chip's record): a read error.
        #[arg(long)]
        damaged: bool,
        /// Swipe it back to front.
        #[arg(long)]
        reversed: bool,
        /// Leave it stuck in the swipe slot.
        #[arg(long)]
        stuck: bool,
    },
    /// Scan a customer's payment code, e.g. `280000000000000000` (see
    /// `tallybox test-cards`).
    Scan { code: String },
    /// Print the screen (and the QR code's link, when it shows one).
    Screen,
    /// Print every slip the printer printed.
    Paper,
    /// Change the simulated printer: paper=false|true, paper_after=N, cover_open=true|false, offline=true|false.
    Printer { settings: Vec<String> },
    /// Print the checkout's device counters (swipes, read errors, stuck cards, printer).
    Health,
}

/// `key=value` words as the control API's JSON fields.
fn printer_request(settings: &[String]) -> anyhow::Result<Value> {
    let mut request = json!({"cmd": "printer"});
    for s in settings {
        let (key, value) = s
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("'{s}': write settings as key=value, e.g. paper=false"))?;
        let value: Value = match key {
            "paper" | "cover_open" | "offline" => Value::Bool(
                value
                    .parse()
                    .map_err(|_| anyhow::anyhow!("{key}: use true or false"))?,
            ),
            "paper_after" => Value::from(
                value
                    .parse::<u32>()
                    .map_err(|_| anyhow::anyhow!("paper_after: give a number of lines"))?,
            ),
            _ => anyhow::bail!(
                "unknown printer setting '{key}': use paper, paper_after, cover_open or offline"
            ),
        };
        request[key] = value;
    }
    Ok(request)
}

pub fn run(control: SocketAddr, action: Action) -> anyhow::Result<()> {
    let request = match &action {
        Action::Keys { keys } => json!({"cmd": "keys", "keys": keys}),
        Action::Card {
            name,
            entry,
            damaged,
            reversed,
            stuck,
        } => {
            json!({"cmd": "card", "name": name, "entry": entry, "damaged": damaged, "reversed": reversed, "stuck": stuck})
        }
        Action::Scan { code } => json!({"cmd": "scan", "code": code}),
        Action::Screen => json!({"cmd": "screen"}),
        Action::Paper => json!({"cmd": "paper"}),
        Action::Printer { settings } => printer_request(settings)?,
        Action::Health => json!({"cmd": "health"}),
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
            if let Some(qr) = answer["qr"].as_str() {
                println!("[QR code: {qr}]");
            }
        }
        Action::Card { .. } => println!("read: {}", answer["read"].as_str().unwrap_or_default()),
        Action::Printer { .. } => println!("{}", answer["status"]),
        Action::Health => println!("{}", serde_json::to_string_pretty(&answer["devices"])?),
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
