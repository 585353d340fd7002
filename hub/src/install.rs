//! Installing a hub update bundle: checked and unpacked by
//! `tallybox_platform::update`, with the database backed up first. Used by
//! `tallybox update FILE` and by the owner's upload on the web page.

use std::path::{Path, PathBuf};

use tallybox_platform::update::{self, InstallOptions, UpdateError};

use crate::store::Store;

/// Where versions are installed.
pub const INSTALL_ROOT: &str = "/opt/tallybox";
/// Where the public keys that sign updates are.
pub const UPDATE_KEYS: &str = "/etc/tallybox/update-keys";

/// Checks and installs a hub bundle; the database is backed up once the
/// bundle is unpacked and checked, before anything changes. The path of the
/// backup, if any.
pub fn install(
    bundle: &Path,
    keys: &Path,
    root: &Path,
    data_dir: &Path,
    allow_downgrade: bool,
) -> Result<(update::Installed, Option<PathBuf>), UpdateError> {
    let keys = update::trusted_keys(keys)?;
    let mut backup = None;
    let mut before = |m: &update::Manifest| -> Result<(), UpdateError> {
        if !data_dir.join("tallybox.db").exists() {
            return Ok(());
        }
        let failed = |e: crate::store::StoreError| UpdateError::Io {
            what: format!(
                "cannot back up the database before updating to {}; nothing was changed",
                m.version
            ),
            error: std::io::Error::other(e.to_string()),
        };
        let store = Store::open(data_dir).map_err(failed)?;
        backup = Some(
            store
                .backup_before(&format!("update-{}", m.version))
                .map_err(failed)?,
        );
        Ok(())
    };
    let installed = update::install(
        bundle,
        &keys,
        root,
        InstallOptions {
            product: "hub",
            allow_downgrade,
            before: &mut before,
        },
    )?;
    Ok((installed, backup))
}
