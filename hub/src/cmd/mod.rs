//! The `tallybox` subcommands, one file each.

pub mod acquirer_keys;
pub mod acquirer_sim;
pub mod audit;
pub mod chain;
pub mod demo;
pub mod doctor;
pub mod drive;
pub mod evidence;
pub mod hw_test;
pub mod reset_owner;
pub mod restore;
pub mod serve;
pub mod test_cards;
pub mod update;

use tokio_util::sync::CancellationToken;

/// Where the owner's password may come from: a file (read, its trailing
/// newline dropped), the environment, or, with a warning, the command line.
#[derive(clap::Args, Debug, Clone)]
pub struct OwnerPassword {
    /// Sets the owner's web page password at start (8 to 128 characters);
    /// without it a new hub shows a one-time setup code instead. Prefer
    /// `--owner-password-file` or the environment: every local user can
    /// read a program's command line.
    #[arg(long, env = "TALLYBOX_OWNER_PASSWORD", hide_env_values = true)]
    pub owner_password: Option<String>,
    /// Reads the owner's password from this file (mode 0600 is wise).
    #[arg(long, conflicts_with = "owner_password")]
    pub owner_password_file: Option<std::path::PathBuf>,
}

impl OwnerPassword {
    /// The password given, if any; a word in the log when it came on the
    /// command line.
    pub fn read(&self) -> anyhow::Result<Option<String>> {
        if let Some(path) = &self.owner_password_file {
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("cannot read --owner-password-file {}: {e}", path.display()))?;
            return Ok(Some(text.trim_end_matches(['\n', '\r']).to_string()));
        }
        let on_command_line =
            std::env::args().any(|a| a == "--owner-password" || a.starts_with("--owner-password="));
        if self.owner_password.is_some() && on_command_line {
            tracing::warn!("the owner password was given on the command line, where every local user can read it (/proc/PID/cmdline): use --owner-password-file or TALLYBOX_OWNER_PASSWORD");
        }
        Ok(self.owner_password.clone())
    }
}

/// A token cancelled on Ctrl-C or SIGTERM.
pub fn stop_signal() -> CancellationToken {
    let stop = CancellationToken::new();
    let tx = stop.clone();
    tokio::spawn(async move {
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term => {}
        }
        tracing::info!("stopping");
        tx.cancel();
    });
    stop
}
