//! The simulated checkout's control API: JSON lines over TCP on loopback, one
//! request a line, one answer a line. It presses keys, presents cards, and
//! reads the screen and the paper, so tests, scripts and a person with `nc`
//! can run a checkout without hardware.
//!
//! ```text
//! → {"cmd":"keys","keys":"A1250#"}        ← {"ok":true}
//! → {"cmd":"card","name":"approved"}      ← {"ok":true}
//! → {"cmd":"card","track2":";6222…?","entry":"tap"}
//! → {"cmd":"screen"}                      ← {"ok":true,"lines":[…],"state":"idle"}
//! → {"cmd":"paper"}                       ← {"ok":true,"slips":[[…],…]}
//! ```

use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use crate::agent::AgentHandle;
use crate::card::{test_cards, CardError, CardRead, EntryMode, Track2};
use crate::devices::sim::SimDevices;
use crate::session::{Input, Key};

const MAX_LINE: usize = 64 * 1024;

#[derive(Debug, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
enum ControlRequest {
    Keys {
        keys: String,
    },
    Card {
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        track2: Option<String>,
        #[serde(default)]
        entry: Option<EntryMode>,
    },
    Screen,
    Paper,
    Printer {
        #[serde(default)]
        paper: Option<bool>,
        #[serde(default)]
        paper_after: Option<u32>,
        #[serde(default)]
        cover_open: Option<bool>,
        #[serde(default)]
        offline: Option<bool>,
    },
}

pub async fn serve(listener: TcpListener, agent: AgentHandle, devices: SimDevices) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let (agent, devices) = (agent.clone(), devices.clone());
        tokio::spawn(async move {
            if let Err(e) = connection(stream, agent, devices).await {
                tracing::debug!(error = %e, "control connection closed");
            }
        });
    }
}

async fn connection(stream: TcpStream, agent: AgentHandle, devices: SimDevices) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let answer = if line.len() > MAX_LINE {
            json!({"ok": false, "error": "line too long"})
        } else {
            match serde_json::from_str::<ControlRequest>(&line) {
                Ok(request) => handle(request, &agent, &devices).await,
                Err(e) => json!({"ok": false, "error": format!("bad control request: {e}")}),
            }
        };
        let mut bytes = serde_json::to_vec(&answer).unwrap_or_default();
        bytes.push(b'\n');
        write.write_all(&bytes).await?;
    }
}

fn card_from(
    name: Option<String>,
    track2: Option<String>,
    entry: EntryMode,
) -> Result<Result<CardRead, CardError>, String> {
    match (name, track2) {
        (Some(name), None) => test_cards::by_name(&name)
            .map(|c| Ok(c.read(entry)))
            .ok_or_else(|| format!("no test card named '{name}'; see `tallybox test-cards`")),
        // A bad track is still "presented": the session shows a read error.
        (None, Some(raw)) => Ok(Track2::parse(&raw).map(|t| CardRead::from_track2(&t, entry))),
        _ => Err("give either \"name\" or \"track2\"".into()),
    }
}

async fn handle(request: ControlRequest, agent: &AgentHandle, devices: &SimDevices) -> Value {
    let gone = json!({"ok": false, "error": "the checkout has stopped"});
    match request {
        ControlRequest::Keys { keys } => {
            let parsed: Option<Vec<Key>> = keys.chars().map(Key::from_char).collect();
            let Some(parsed) = parsed else {
                return json!({"ok": false, "error": "keys are 0-9 * # A B C D"});
            };
            for key in parsed {
                if !agent.send(Input::Key(key)).await {
                    return gone;
                }
            }
            json!({"ok": true})
        }
        ControlRequest::Card { name, track2, entry } => {
            match card_from(name, track2, entry.unwrap_or(EntryMode::Swipe)) {
                Ok(card) => {
                    if agent.send(Input::Card(card)).await {
                        json!({"ok": true})
                    } else {
                        gone
                    }
                }
                Err(e) => json!({"ok": false, "error": e}),
            }
        }
        ControlRequest::Screen => {
            let panel = devices.panel();
            json!({"ok": true, "lines": panel.screen.lines, "state": *agent.state.borrow()})
        }
        ControlRequest::Paper => {
            let printer = devices.printer.lock();
            json!({"ok": true, "slips": printer.paper.slips, "torn": printer.paper.torn, "qr_codes": printer.paper.qr_codes})
        }
        ControlRequest::Printer {
            paper,
            paper_after,
            cover_open,
            offline,
        } => devices.printer.with(|m| {
            if let Some(present) = paper {
                m.set_paper(present);
            }
            if let Some(lines) = paper_after {
                m.paper_after(lines);
            }
            if let Some(open) = cover_open {
                m.set_cover_open(open);
            }
            if let Some(off) = offline {
                m.set_offline(off);
            }
            json!({"ok": true, "status": m.status})
        }),
    }
}
