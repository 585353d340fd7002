//! A checkout updating itself when the hub offers a newer version (news
//! `update`): it downloads the bundle from the hub's web server, checks and
//! installs it exactly as the hub installs its own ([`tallybox_platform::update`]), and
//! once idle stops so that its service starts the new version through the
//! launcher. After such a start the new version is on trial: connected to
//! the broker for 10 s, it stays; not within a minute, it stops so that the
//! launcher puts the previous version back.

use std::io::Read;
use std::path::PathBuf;
use std::time::Duration;

use tallybox_platform::update;

/// The largest bundle downloaded.
const MAX_BUNDLE: u64 = 96 * 1024 * 1024;

/// Where the checkout is installed and whom it trusts.
#[derive(Debug, Clone)]
pub struct Install {
    /// The install root (`/opt/tallybox-terminal`).
    pub root: PathBuf,
    /// The public keys bundles must be signed with.
    pub keys: PathBuf,
}

pub struct SelfUpdate {
    install: Install,
    /// A download or install running, or the version it is for.
    busy: Option<String>,
    /// Versions that failed to install: not tried again.
    failed: Vec<String>,
    /// The new version on trial, until it is decided.
    trial: Option<update::Trial>,
}

impl SelfUpdate {
    pub fn new(install: Install) -> SelfUpdate {
        let trial = update::Trial::begin(&install.root);
        if let Some(trial) = &trial {
            tracing::warn!(
                version = trial.version(),
                "running a new version on trial: it stays once connected for {} s",
                update::HEALTHY_FOR.as_secs()
            );
        }
        SelfUpdate {
            install,
            busy: None,
            failed: Vec::new(),
            trial,
        }
    }

    /// Whether an offer of `version` is worth taking: newer than what is
    /// installed, not already being fetched, not failed before; why not.
    pub fn wants(&self, version: &str) -> Result<(), &'static str> {
        let installed = update::installed(&self.install.root).ok_or("nothing installed")?;
        if update::parse_version(version) <= update::parse_version(&installed) {
            return Err("not newer than the installed version");
        }
        if self.busy.is_some() {
            return Err("an update is being fetched");
        }
        if self.failed.iter().any(|v| v == version) {
            return Err("this version failed to install before");
        }
        Ok(())
    }

    /// Downloads and installs `version` from `url` (blocking: run it off the
    /// event loop). The version installed, or why not.
    pub fn fetch_and_install(
        install: &Install,
        version: &str,
        url: &str,
        scratch: PathBuf,
    ) -> Result<String, String> {
        let response = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(120))
            .build()
            .get(url)
            .call()
            .map_err(|e| format!("cannot download {url}: {e}"))?;
        let mut bytes = Vec::new();
        response
            .into_reader()
            .take(MAX_BUNDLE + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("the download of {url} broke off: {e}"))?;
        if bytes.len() as u64 > MAX_BUNDLE {
            return Err(format!("{url} is larger than {} MiB", MAX_BUNDLE >> 20));
        }
        std::fs::write(&scratch, &bytes).map_err(|e| format!("cannot keep the download: {e}"))?;
        let keys = update::trusted_keys(&install.keys).map_err(|e| e.to_string());
        let mut before = |_: &update::Manifest| Ok(());
        let installed = keys.and_then(|keys| {
            update::install(
                &scratch,
                &keys,
                &install.root,
                update::InstallOptions {
                    product: "terminal",
                    allow_downgrade: false,
                    before: &mut before,
                },
            )
            .map_err(|e| e.to_string())
        });
        let _ = std::fs::remove_file(&scratch);
        let installed = installed?;
        if installed.version != version {
            tracing::warn!(offered = %version, got = %installed.version, "the hub's bundle holds another version than it said");
        }
        Ok(installed.version)
    }

    pub fn install(&self) -> &Install {
        &self.install
    }

    pub fn started(&mut self, version: &str) {
        self.busy = Some(version.to_string());
    }

    /// The install ended: `Ok` is the version to restart into.
    pub fn finished(&mut self, result: &Result<String, String>) {
        if let (Err(_), Some(version)) = (result, self.busy.take()) {
            self.failed.push(version);
        }
    }

    /// Moves the trial on (called every tick with the broker link's state).
    pub fn prove(&mut self, connected: bool) -> Option<update::Verdict> {
        let verdict = self.trial.as_mut()?.step(connected, "connected to the hub")?;
        self.trial = None;
        Some(verdict)
    }
}
