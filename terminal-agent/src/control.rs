//! The simulated checkout's control API: JSON lines over TCP on loopback, one
//! request a line, one answer a line. It presses keys, presents cards, and
//! reads the screen and the paper, so tests, scripts and a person with `nc`
//! can run a checkout without hardware.
//!
//! ```text
//! → {"cmd":"keys","keys":"A1250#"}        ← {"ok":true}
//! → {"cmd":"card","name":"approved"}      ← {"ok":true,"read":"card"}
//! → {"cmd":"card","track2":";6222…?","entry":"tap"}
//! → {"cmd":"card","name":"visa","damaged":true}  ← {"ok":true,"read":"error"}
//! → {"cmd":"card","name":"visa","stuck":true}    ← {"ok":true,"read":"stuck"}
//! → {"cmd":"scan","code":"281234567890120000"}  ← {"ok":true} (a payment code as a scanner reads it)
//! → {"cmd":"screen"}                      ← {"ok":true,"lines":[…],"qr":null,"status":{"clock":"09:41",…},"state":"idle"}
//! → {"cmd":"health"}                      ← {"ok":true,"devices":{"swipes":3,"swipe_errors":1,…}}
//! → {"cmd":"paper"}                       ← {"ok":true,"slips":[[…],…],"drawer_kicks":[2]}
//! ```

use serde::Deserialize;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use crate::agent::AgentHandle;
use crate::devices::model::magstripe::SwipeStyle;
use crate::devices::sim::{Presented, SimDevices};
use crate::session::Input;
use tallybox_core::card::{test_cards, EntryMode};

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
        #[serde(default)]
        reversed: bool,
        #[serde(default)]
        damaged: bool,
        #[serde(default)]
        stuck: bool,
    },
    /// What a barcode scanner read (a customer's payment code).
    Scan {
        code: String,
    },
    Screen,
    Paper,
    Health,
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

/// The track 2 text of the card to present.
fn track_of(name: Option<String>, track2: Option<String>) -> Result<String, String> {
    match (name, track2) {
        (Some(name), None) => test_cards::by_name(&name)
            .map(|c| c.track2())
            .ok_or_else(|| format!("no test card named '{name}'; see `tallybox test-cards`")),
        (None, Some(raw)) => Ok(raw),
        _ => Err("give either \"name\" or \"track2\"".into()),
    }
}

async fn handle(request: ControlRequest, agent: &AgentHandle, devices: &SimDevices) -> Value {
    let gone = json!({"ok": false, "error": "the checkout has stopped"});
    match request {
        ControlRequest::Keys { keys } => {
            let read = {
                let devices = devices.clone();
                tokio::task::spawn_blocking(move || devices.press(&keys)).await
            };
            let read = match read {
                Ok(Ok(read)) => read,
                Ok(Err(e)) => return json!({"ok": false, "error": e}),
                Err(e) => return json!({"ok": false, "error": e.to_string()}),
            };
            for key in read {
                if !agent.send(Input::Key(key)).await {
                    return gone;
                }
            }
            json!({"ok": true})
        }
        ControlRequest::Card {
            name,
            track2,
            entry,
            reversed,
            damaged,
            stuck,
        } => {
            let track = match track_of(name, track2) {
                Ok(track) => track,
                Err(e) => return json!({"ok": false, "error": e}),
            };
            let wanted = *agent.card_wanted.borrow();
            let entry = entry.unwrap_or(EntryMode::Swipe);
            let devices = devices.clone();
            let presented = tokio::task::spawn_blocking(move || match entry {
                _ if stuck => Some(devices.jam()),
                // A contactless reader only looks for a card while one is asked for.
                EntryMode::Tap => wanted.map(|amount| devices.tap(&track, amount, damaged)),
                _ => {
                    let style = SwipeStyle {
                        reversed,
                        jitter: 0.1,
                        flip_bits: if damaged { vec![60, 61, 62] } else { vec![] },
                        seed: u64::from(uuid::Uuid::new_v4().as_bytes()[0]) + 1,
                        ..Default::default()
                    };
                    Some(devices.swipe(&track, &style))
                }
            })
            .await;
            let (input, read) = match presented {
                Ok(Some(Presented::Card(card))) => {
                    let read = if card.is_ok() { "card" } else { "error" };
                    (Input::Card(card), read)
                }
                Ok(Some(Presented::Stuck)) => (Input::CardStuck, "stuck"),
                Ok(None) => return json!({"ok": true, "read": "nothing: no card is asked for"}),
                Err(e) => return json!({"ok": false, "error": e.to_string()}),
            };
            if agent.send(input).await {
                json!({"ok": true, "read": read})
            } else {
                gone
            }
        }
        ControlRequest::Scan { code } => {
            let code = tallybox_core::secret::Secret::new(code);
            match agent.send(Input::Scanned(code)).await {
                true => json!({"ok": true}),
                false => gone,
            }
        }
        ControlRequest::Screen => {
            let panel = devices.panel();
            json!({
                "ok": true, "lines": panel.screen.lines, "qr": panel.screen.qr,
                "status": panel.screen.status, "state": *agent.state.borrow(),
            })
        }
        ControlRequest::Health => json!({"ok": true, "devices": devices.health.snapshot()}),
        ControlRequest::Paper => {
            let printer = devices.printer.lock();
            json!({"ok": true, "slips": printer.paper.slips, "torn": printer.paper.torn, "qr_codes": printer.paper.qr_codes, "drawer_kicks": printer.paper.drawer_kicks})
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
