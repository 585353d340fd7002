//! What both Tallybox programs do before their work starts: read the command
//! line (a mistake is one line on stderr and exit code 2, `--help` has the
//! rest) and log one line per event to stderr.

use std::process::ExitCode;

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

/// Logs to stderr; `RUST_LOG` overrides `default_filter`.
pub fn init_logging(default_filter: &str) {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| default_filter.into()),
        )
        .with_writer(std::io::stderr)
        .init();
}
