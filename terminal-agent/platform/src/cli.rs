//! What both Tallybox programs do before their work starts: read the command
//! line (a mistake is one line on stderr and exit code 2, `--help` has the
//! rest) and log one line per event to stderr.

use std::collections::VecDeque;
use std::process::ExitCode;
use std::sync::Mutex;

/// Parses the command line of `program`, or says what is wrong and gives the
/// exit code to leave with.
pub fn parse<T: clap::Parser>(program: &str) -> Result<T, ExitCode> {
    match T::try_parse() {
        Ok(args) => Ok(args),
        Err(e) if !e.use_stderr() => {
            let _ = e.print(); // --help, --version
            Err(ExitCode::SUCCESS)
        }
        Err(e) => {
            let text = e.to_string();
            let first = text
                .lines()
                .next()
                .unwrap_or("bad arguments")
                .trim_start_matches("error: ");
            eprintln!("{program}: {first} (see {program} --help)");
            Err(ExitCode::from(2))
        }
    }
}

/// Logs to stderr, and keeps the last [`RECENT_LINES`] lines in memory for
/// the support bundle ([`recent_log`]); `RUST_LOG` overrides `default_filter`.
/// Colours only on a terminal (not in the journal, a file or a pipe), and
/// never with `NO_COLOR` set.
pub fn init_logging(default_filter: &str) {
    use std::io::IsTerminal;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default_filter.into());
    tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
                .with_writer(std::io::stderr),
        )
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(false)
                .with_writer(|| RingWriter),
        )
        .init();
}

/// Log lines kept in memory.
pub const RECENT_LINES: usize = 2000;

static RECENT: Mutex<VecDeque<String>> = Mutex::new(VecDeque::new());

/// The last log lines, oldest first.
pub fn recent_log() -> Vec<String> {
    RECENT
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .cloned()
        .collect()
}

struct RingWriter;

impl std::io::Write for RingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let mut recent = RECENT.lock().unwrap_or_else(|e| e.into_inner());
        for line in text.lines().filter(|l| !l.is_empty()) {
            if recent.len() == RECENT_LINES {
                recent.pop_front();
            }
            recent.push_back(line.to_string());
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
