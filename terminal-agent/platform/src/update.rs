//! Signed updates, and switching versions so that a bad one cannot brick the
//! machine. The same for the hub (`tallybox`) and a checkout
//! (`tallybox-terminal`).
//!
//! A **bundle** is a tar file: `manifest.json` (product, version, machine
//! architecture, and each file's size and SHA-256), `manifest.sig` (an ed25519
//! signature of the manifest, base64), then the files under `files/`. The
//! signature is checked before anything else is read; each file is hashed as
//! it is unpacked, so a bundle altered or cut short anywhere is refused and
//! leaves nothing behind. The signing key is kept off the machines; they
//! hold public keys only (`/etc/tallybox/update-keys/*.pub`, 64 hex digits).
//!
//! **Versions** live side by side under an install root (`/opt/tallybox`):
//! `versions/<version>/`, with `current` a symbolic link to the one that runs
//! and `previous` to the one before. Installing unpacks into
//! `versions/<version>.partial`, syncs, renames it, writes the `trying` marker,
//! and only then moves `current` (a rename: old or new, never neither). A
//! power cut at any step leaves the old version to start.
//!
//! **Rolling back** is the launcher's job (`tallybox-launch`, a shell script
//! the service starts): while `trying` is there it counts the new version's
//! starts, and after three without a confirmation it points `current` back at
//! the previous version. The new version confirms itself ([`confirm`]) once
//! it has been healthy for a while, and gives up (exits) when it is not within
//! a minute, so the launcher gets its turn. What happened is appended to
//! `updates.log` (JSON lines) for the troubleshooting page.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use data_encoding::BASE64;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What is signed: this, then the manifest's bytes.
const SIGNED_PREFIX: &[u8] = b"tallybox update v1\n";
/// Largest manifest read (a few files' names and hashes).
const MAX_MANIFEST: u64 = 64 * 1024;
/// Room left free after unpacking, for the database and logs.
pub const SPACE_RESERVE: u64 = 32 * 1024 * 1024;
/// Starts the launcher gives a new version to confirm itself.
pub const STARTS_ALLOWED: u32 = 3;

/// The install root's layout.
pub const CURRENT: &str = "current";
pub const PREVIOUS: &str = "previous";
pub const VERSIONS: &str = "versions";
pub const TRYING: &str = "trying";
pub const LOG: &str = "updates.log";

#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error("not an update bundle: {0}")]
    Malformed(String),
    #[error("the bundle is not signed by a key this machine trusts (checked {keys} key(s)); it may be forged or damaged")]
    BadSignature { keys: usize },
    #[error("no update key is installed in {0}: updates cannot be checked, so none is applied")]
    NoKeys(String),
    #[error("the update key {file} is not 64 hex digits")]
    BadKey { file: String },
    #[error("{name} in the bundle is not what its signed manifest says (damaged or altered)")]
    FileMismatch { name: String },
    #[error("the bundle ends early: {0} is missing (cut short while copying?)")]
    Truncated(String),
    #[error("this update is for {got}, not for {want}")]
    WrongProduct { got: String, want: String },
    #[error("this update is built for {got} machines; this one is {want}")]
    WrongArch { got: String, want: String },
    #[error("{version} is already installed")]
    AlreadyInstalled { version: String },
    #[error(
        "{offered} is older than the installed {installed}; pass --allow-downgrade to go back on purpose"
    )]
    Downgrade { offered: String, installed: String },
    #[error("not enough room: the update needs {need_mib} MiB free in {dir}, {free_mib} MiB are")]
    NoSpace {
        dir: String,
        need_mib: u64,
        free_mib: u64,
    },
    #[error("{what}: {error}")]
    Io {
        what: String,
        #[source]
        error: std::io::Error,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> UpdateError {
    let what = what.into();
    move |error| UpdateError::Io { what, error }
}

/// The signed description of a bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub format: u32,
    /// `hub` or `terminal`.
    pub product: String,
    pub version: String,
    /// `std::env::consts::ARCH` of the machines it is for (`aarch64`).
    pub arch: String,
    pub files: Vec<FileEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    pub name: String,
    pub size: u64,
    pub sha256: String,
}

/// A version number `MAJOR.MINOR.PATCH`, compared as numbers.
pub fn parse_version(v: &str) -> Option<(u64, u64, u64)> {
    let mut parts = v.split('.').map(|p| p.parse::<u64>().ok());
    let version = (parts.next()??, parts.next()??, parts.next()??);
    parts.next().is_none().then_some(version)
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && !name.starts_with('.')
}

impl Manifest {
    fn check(&self) -> Result<(), UpdateError> {
        let bad = |m: &str| Err(UpdateError::Malformed(m.to_string()));
        if self.format != 1 {
            return bad("unknown bundle format");
        }
        if parse_version(&self.version).is_none() {
            return bad("the version is not MAJOR.MINOR.PATCH");
        }
        if self.files.is_empty() || self.files.iter().any(|f| !valid_name(&f.name)) {
            return bad("a file name is missing or not a plain name");
        }
        Ok(())
    }
}

/// An ed25519 key pair for signing bundles: the secret half stays with the
/// people who release, the public half goes on every machine.
pub fn new_signing_key() -> (String, String) {
    let key = SigningKey::from_bytes(&rand::random::<[u8; 32]>());
    (
        hex::encode(key.to_bytes()),
        hex::encode(key.verifying_key().to_bytes()),
    )
}

fn parse_hex32(text: &str) -> Option<[u8; 32]> {
    hex::decode(text.trim()).ok()?.try_into().ok()
}

/// The public keys in `dir` (`*.pub`).
pub fn trusted_keys(dir: &Path) -> Result<Vec<VerifyingKey>, UpdateError> {
    let mut keys = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(UpdateError::NoKeys(dir.display().to_string()))
        }
        Err(e) => return Err(io(format!("cannot read {}", dir.display()))(e)),
    };
    for entry in entries {
        let path = entry
            .map_err(io(format!("cannot read {}", dir.display())))?
            .path();
        if path.extension().and_then(|e| e.to_str()) != Some("pub") {
            continue;
        }
        let bad = || UpdateError::BadKey {
            file: path.display().to_string(),
        };
        let text = std::fs::read_to_string(&path).map_err(io(format!("cannot read {}", path.display())))?;
        let bytes = parse_hex32(&text).ok_or_else(bad)?;
        keys.push(VerifyingKey::from_bytes(&bytes).map_err(|_| bad())?);
    }
    if keys.is_empty() {
        return Err(UpdateError::NoKeys(dir.display().to_string()));
    }
    Ok(keys)
}

/// Writes a bundle of `files` (each with the name it gets on the machine)
/// signed with `secret` (64 hex digits).
pub fn write_bundle(
    out: &Path,
    secret: &str,
    product: &str,
    version: &str,
    arch: &str,
    files: &[(String, PathBuf)],
) -> Result<Manifest, UpdateError> {
    let key = SigningKey::from_bytes(
        &parse_hex32(secret)
            .ok_or_else(|| UpdateError::Malformed("the signing key is not 64 hex digits".into()))?,
    );
    let mut entries = Vec::new();
    for (name, path) in files {
        let bytes = std::fs::read(path).map_err(io(format!("cannot read {}", path.display())))?;
        entries.push(FileEntry {
            name: name.clone(),
            size: bytes.len() as u64,
            sha256: hex::encode(Sha256::digest(&bytes)),
        });
    }
    let manifest = Manifest {
        format: 1,
        product: product.to_string(),
        version: version.to_string(),
        arch: arch.to_string(),
        files: entries,
    };
    manifest.check()?;
    let manifest_bytes = serde_json::to_vec_pretty(&manifest).expect("a manifest serializes");
    let signature = key.sign(&[SIGNED_PREFIX, &manifest_bytes].concat());
    let file = std::fs::File::create(out).map_err(io(format!("cannot write {}", out.display())))?;
    let mut tar = tar::Builder::new(file);
    let written = (|| {
        append(&mut tar, "manifest.json", &manifest_bytes, 0o644)?;
        append(
            &mut tar,
            "manifest.sig",
            BASE64.encode(&signature.to_bytes()).as_bytes(),
            0o644,
        )?;
        for (name, path) in files {
            append(&mut tar, &format!("files/{name}"), &std::fs::read(path)?, 0o755)?;
        }
        tar.into_inner()?.sync_all()
    })();
    written.map_err(io(format!("cannot write {}", out.display())))?;
    Ok(manifest)
}

fn append(tar: &mut tar::Builder<std::fs::File>, name: &str, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(bytes.len() as u64);
    header.set_mode(mode);
    header.set_cksum();
    tar.append_data(&mut header, name, bytes)
}

/// Reads one tar entry whole (small ones only: the manifest and signature).
fn read_small(entry: &mut impl Read, what: &str) -> Result<Vec<u8>, UpdateError> {
    let mut bytes = Vec::new();
    entry
        .take(MAX_MANIFEST + 1)
        .read_to_end(&mut bytes)
        .map_err(|_| UpdateError::Truncated(what.to_string()))?;
    if bytes.len() as u64 > MAX_MANIFEST {
        return Err(UpdateError::Malformed(format!("{what} is too large")));
    }
    Ok(bytes)
}

/// A bundle being read: its manifest is signed and checked; its files are
/// next in the archive.
pub struct Bundle {
    pub manifest: Manifest,
    path: PathBuf,
}

impl Bundle {
    /// Opens a bundle and checks its signature against `keys`.
    pub fn open(path: &Path, keys: &[VerifyingKey]) -> Result<Bundle, UpdateError> {
        let file = std::fs::File::open(path).map_err(io(format!("cannot open {}", path.display())))?;
        let mut archive = tar::Archive::new(file);
        let (manifest_bytes, signature) = {
            let mut entries = archive
                .entries()
                .map_err(|e| UpdateError::Malformed(e.to_string()))?;
            let mut next = |want: &str| -> Result<Vec<u8>, UpdateError> {
                let mut entry = match entries.next() {
                    Some(Ok(entry)) => entry,
                    Some(Err(_)) | None => return Err(UpdateError::Truncated(want.to_string())),
                };
                let name = entry.path().map(|p| p.display().to_string()).unwrap_or_default();
                if name != want {
                    return Err(UpdateError::Malformed(format!(
                        "{want} should come first, not {name}"
                    )));
                }
                read_small(&mut entry, want)
            };
            (next("manifest.json")?, next("manifest.sig")?)
        };
        let signature = BASE64
            .decode(&signature)
            .ok()
            .and_then(|s| Signature::from_slice(&s).ok())
            .ok_or(UpdateError::BadSignature { keys: keys.len() })?;
        let signed = [SIGNED_PREFIX, &manifest_bytes].concat();
        if !keys.iter().any(|k| k.verify(&signed, &signature).is_ok()) {
            return Err(UpdateError::BadSignature { keys: keys.len() });
        }
        let manifest: Manifest =
            serde_json::from_slice(&manifest_bytes).map_err(|e| UpdateError::Malformed(e.to_string()))?;
        manifest.check()?;
        Ok(Bundle {
            manifest,
            path: path.to_path_buf(),
        })
    }

    /// Bytes the files take once unpacked.
    pub fn size(&self) -> u64 {
        self.manifest.files.iter().map(|f| f.size).sum()
    }

    /// Unpacks the files into `dir` (made here), each checked against the
    /// manifest and synced. On any error the caller removes `dir`.
    /// The archive is read a second time from the start: whatever it holds
    /// by now, each file must match the manifest already checked.
    fn unpack(self, dir: &Path, crash_at: Option<&str>) -> Result<(), UpdateError> {
        std::fs::create_dir_all(dir).map_err(io(format!("cannot make {}", dir.display())))?;
        let file =
            std::fs::File::open(&self.path).map_err(io(format!("cannot open {}", self.path.display())))?;
        let mut archive = tar::Archive::new(file);
        let mut entries = archive
            .entries()
            .map_err(|e| UpdateError::Malformed(e.to_string()))?
            .skip(2);
        for want in &self.manifest.files {
            let mut entry = match entries.next() {
                Some(Ok(entry)) => entry,
                _ => return Err(UpdateError::Truncated(want.name.clone())),
            };
            let name = entry.path().map(|p| p.display().to_string()).unwrap_or_default();
            if name != format!("files/{}", want.name) {
                return Err(UpdateError::FileMismatch { name });
            }
            let path = dir.join(&want.name);
            let mut out =
                std::fs::File::create(&path).map_err(io(format!("cannot write {}", path.display())))?;
            let mut hasher = Sha256::new();
            let mut size = 0u64;
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = entry
                    .read(&mut buf)
                    .map_err(|_| UpdateError::Truncated(want.name.clone()))?;
                if n == 0 {
                    break;
                }
                size += n as u64;
                if size > want.size {
                    return Err(UpdateError::FileMismatch {
                        name: want.name.clone(),
                    });
                }
                hasher.update(&buf[..n]);
                out.write_all(&buf[..n])
                    .map_err(io(format!("cannot write {}", path.display())))?;
            }
            // Written, not yet synced: where a power cut hurts most.
            crash_point(crash_at, "unpack");
            if size < want.size {
                return Err(UpdateError::Truncated(want.name.clone()));
            }
            if hex::encode(hasher.finalize()) != want.sha256 {
                return Err(UpdateError::FileMismatch {
                    name: want.name.clone(),
                });
            }
            use std::os::unix::fs::PermissionsExt;
            out.set_permissions(std::fs::Permissions::from_mode(0o755))
                .and_then(|()| out.sync_all())
                .map_err(io(format!("cannot write {}", path.display())))?;
        }
        sync_dir(dir)
    }
}

fn sync_dir(dir: &Path) -> Result<(), UpdateError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(format!("cannot sync {}", dir.display())))
}

/// For the power-cut tests: `TALLYBOX_UPDATE_CRASH_AT=<step>` stops the
/// process dead at that step, as pulling the plug would.
fn crash_point(crash_at: Option<&str>, step: &str) {
    if crash_at == Some(step) {
        eprintln!("stopping dead at '{step}' (TALLYBOX_UPDATE_CRASH_AT)");
        std::process::abort();
    }
}

/// The version `current` points at, if the root holds an install.
pub fn installed(root: &Path) -> Option<String> {
    let target = std::fs::read_link(root.join(CURRENT)).ok()?;
    Some(target.file_name()?.to_str()?.to_string())
}

/// One line of `updates.log`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Event {
    /// Local time, `YYYY-MM-DD HH:MM:SS`.
    pub at: String,
    /// `installed`, `confirmed`, `rolled_back`, `interrupted`, `gave_up`.
    pub event: String,
    pub version: String,
    /// The version it replaced or went back to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other: Option<String>,
    pub detail: String,
}

/// Appends to `updates.log` (synced).
pub fn note(root: &Path, event: &str, version: &str, other: Option<&str>, detail: &str) {
    let line = Event {
        at: crate::clock::now().format("%Y-%m-%d %H:%M:%S").to_string(),
        event: event.to_string(),
        version: version.to_string(),
        other: other.map(str::to_string),
        detail: detail.to_string(),
    };
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(root.join(LOG))
        .and_then(|mut f| {
            f.write_all(
                format!("{}\n", serde_json::to_string(&line).expect("an event serializes")).as_bytes(),
            )?;
            f.sync_all()
        });
    if let Err(e) = written {
        tracing::error!(error = %e, "cannot write the update log");
    }
}

/// The update log, oldest first (unreadable lines skipped).
pub fn history(root: &Path) -> Vec<Event> {
    std::fs::read_to_string(root.join(LOG))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

/// What [`install`] did.
#[derive(Debug)]
pub struct Installed {
    pub version: String,
    pub previous: Option<String>,
}

/// What an install may and must do.
pub struct InstallOptions<'a> {
    /// `hub` or `terminal`: a bundle for the other is refused.
    pub product: &'a str,
    pub allow_downgrade: bool,
    /// Run once the bundle is unpacked and checked, before anything changes
    /// (the hub backs up its database here); an error stops the install.
    pub before: &'a mut dyn FnMut(&Manifest) -> Result<(), UpdateError>,
}

/// Checks a bundle and switches `root` to it (see the module's comment); the
/// new version runs at the next start.
pub fn install(
    bundle_path: &Path,
    keys: &[VerifyingKey],
    root: &Path,
    options: InstallOptions<'_>,
) -> Result<Installed, UpdateError> {
    let crash_at = std::env::var("TALLYBOX_UPDATE_CRASH_AT").ok();
    let crash_at = crash_at.as_deref();
    let bundle = Bundle::open(bundle_path, keys)?;
    let m = bundle.manifest.clone();
    if m.product != options.product {
        return Err(UpdateError::WrongProduct {
            got: m.product,
            want: options.product.to_string(),
        });
    }
    if m.arch != std::env::consts::ARCH {
        return Err(UpdateError::WrongArch {
            got: m.arch,
            want: std::env::consts::ARCH.to_string(),
        });
    }
    let previous = installed(root);
    if let Some(now) = &previous {
        match parse_version(&m.version).cmp(&parse_version(now)) {
            std::cmp::Ordering::Equal => return Err(UpdateError::AlreadyInstalled { version: m.version }),
            std::cmp::Ordering::Less if !options.allow_downgrade => {
                return Err(UpdateError::Downgrade {
                    offered: m.version,
                    installed: now.clone(),
                })
            }
            _ => {}
        }
    }
    let versions = root.join(VERSIONS);
    let first = !versions.exists();
    std::fs::create_dir_all(&versions).map_err(io(format!("cannot make {}", versions.display())))?;
    let partial = versions.join(format!("{}.partial", m.version));
    // What an earlier, interrupted install left.
    let _ = std::fs::remove_dir_all(&partial);
    let (free, total) = crate::machine::disk_space(&versions);
    let need = bundle.size() + SPACE_RESERVE;
    let unpacked = if total > 0 && free < need {
        Err(UpdateError::NoSpace {
            dir: versions.display().to_string(),
            need_mib: need.div_ceil(1 << 20),
            free_mib: free >> 20,
        })
    } else {
        // Unpacked and checked in full first; only then the backup, and the switch.
        bundle
            .unpack(&partial, crash_at)
            .and_then(|()| (options.before)(&m))
    };
    if let Err(e) = unpacked {
        // A refused bundle leaves the root as it found it.
        let _ = std::fs::remove_dir_all(&partial);
        if first {
            let _ = std::fs::remove_dir(&versions);
        }
        return Err(e);
    }
    let target = versions.join(&m.version);
    let _ = std::fs::remove_dir_all(&target);
    std::fs::rename(&partial, &target).map_err(io(format!("cannot move {}", partial.display())))?;
    sync_dir(&versions)?;
    crash_point(crash_at, "before-marker");
    if let Some(from) = &previous {
        let marker = format!("{} {from} 0\n", m.version);
        crate::fsync::write_synced(&root.join(TRYING), marker.as_bytes())
            .map_err(io("cannot write the update marker"))?;
    }
    crash_point(crash_at, "switch");
    if let Some(from) = &previous {
        point(root, PREVIOUS, from)?;
    }
    point(root, CURRENT, &m.version)?;
    note(
        root,
        "installed",
        &m.version,
        previous.as_deref(),
        "waiting for its first start to prove it works",
    );
    Ok(Installed {
        version: m.version,
        previous,
    })
}

/// Points the link `name` in `root` at `versions/<version>`, atomically.
fn point(root: &Path, name: &str, version: &str) -> Result<(), UpdateError> {
    let tmp = root.join(format!("{name}.new"));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(Path::new(VERSIONS).join(version), &tmp)
        .and_then(|()| std::fs::rename(&tmp, root.join(name)))
        .map_err(io(format!("cannot switch {name}")))?;
    sync_dir(root)
}

/// The version being tried after an update, if one is: `(new, old, starts)`.
pub fn trying(root: &Path) -> Option<(String, String, u32)> {
    let text = std::fs::read_to_string(root.join(TRYING)).ok()?;
    let mut words = text.split_whitespace();
    let (to, from) = (words.next()?.to_string(), words.next()?.to_string());
    let starts = words.next().and_then(|s| s.parse().ok()).unwrap_or(0);
    Some((to, from, starts))
}

/// How long a new version has to prove itself after an update.
pub const PROOF: std::time::Duration = std::time::Duration::from_secs(60);
/// How long it must stay healthy to count.
pub const HEALTHY_FOR: std::time::Duration = std::time::Duration::from_secs(10);

/// What a trial decided.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Confirmed(String),
    GaveUp(String),
}

/// A new version on trial after an update (the hub's and a checkout's):
/// healthy for [`HEALTHY_FOR`] within [`PROOF`] of its start, it stays;
/// otherwise it gives up, so that the launcher puts the previous one back.
#[derive(Debug)]
pub struct Trial {
    root: PathBuf,
    version: String,
    from: String,
    started: std::time::Instant,
    healthy_since: Option<std::time::Instant>,
}

impl Trial {
    /// The trial under way in `root`, if an update is being tried.
    pub fn begin(root: &Path) -> Option<Trial> {
        let (version, from, _) = trying(root)?;
        Some(Trial {
            root: root.to_path_buf(),
            version,
            from,
            started: std::time::Instant::now(),
            healthy_since: None,
        })
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    /// Moves the trial on with whether the program is `healthy` now (what
    /// that means, for the log: `healthy_means`); confirms or gives up once.
    pub fn step(&mut self, healthy: bool, healthy_means: &str) -> Option<Verdict> {
        let now = std::time::Instant::now();
        self.healthy_since = match (healthy, self.healthy_since) {
            (true, None) => Some(now),
            (true, since) => since,
            (false, _) => None,
        };
        if self.healthy_since.is_some_and(|since| now - since >= HEALTHY_FOR) {
            let detail = format!("{healthy_means} for {} s", HEALTHY_FOR.as_secs());
            if let Err(e) = confirm(&self.root, &detail) {
                tracing::error!(error = %e, "cannot confirm the update");
            }
            return Some(Verdict::Confirmed(self.version.clone()));
        }
        if now - self.started > PROOF {
            let detail = format!("not {healthy_means} within a minute");
            note(&self.root, "gave_up", &self.version, Some(&self.from), &detail);
            return Some(Verdict::GaveUp(self.version.clone()));
        }
        None
    }
}

/// The running version proved itself: it stays.
pub fn confirm(root: &Path, detail: &str) -> Result<(), UpdateError> {
    let Some((to, from, _)) = trying(root) else {
        return Ok(());
    };
    std::fs::remove_file(root.join(TRYING)).map_err(io("cannot remove the update marker"))?;
    sync_dir(root)?;
    note(root, "confirmed", &to, Some(&from), detail);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_as_numbers() {
        assert!(parse_version("0.10.0") > parse_version("0.9.9"));
        assert_eq!(parse_version("1.2.3"), Some((1, 2, 3)));
        for bad in ["1.2", "1.2.3.4", "v1.2.3", "1.x.3", ""] {
            assert_eq!(parse_version(bad), None, "{bad}");
        }
    }

    #[test]
    fn file_names_are_plain() {
        assert!(valid_name("tallybox") && valid_name("tallybox-terminal"));
        for bad in ["", "../x", "a/b", ".hidden", "a b"] {
            assert!(!valid_name(bad), "{bad}");
        }
    }
}
