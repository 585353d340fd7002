//! `tallybox acquirer-keys`: the terminal master keys the acquirer issued,
//! kept in the file the settings' `acquirer_master_keys` names. A key is
//! entered once, as the two components the acquirer sends to two people,
//! each checked against the check value printed beside it; it is never
//! shown again (only its check value). The owner's page enters keys the
//! same way (Settings, Acquirer keys).

use std::io::BufRead;
use std::path::PathBuf;

use tallybox::acquirer::iso8583::keys::{self, MasterKeys};

#[derive(Debug, clap::Subcommand)]
pub enum AcquirerKeysAction {
    /// Enter the master key of one acquirer terminal id from its two
    /// components (read from standard input: component 1, its check value,
    /// component 2, its check value, one per line).
    Add {
        /// The key file (`acquirer_master_keys`).
        #[arg(long, default_value = "/var/lib/tallybox/acquirer-keys")]
        file: PathBuf,
        /// The acquirer's terminal id (field 41).
        #[arg(long)]
        terminal: String,
    },
    /// List the terminals in the key file with their keys' check values.
    List {
        #[arg(long, default_value = "/var/lib/tallybox/acquirer-keys")]
        file: PathBuf,
    },
}

pub fn run(action: AcquirerKeysAction) -> anyhow::Result<()> {
    match action {
        AcquirerKeysAction::List { file } => {
            let keys = MasterKeys::load(&file).map_err(anyhow::Error::msg)?;
            for terminal in keys.terminals() {
                let check = keys.get(terminal).map(|k| k.check_value()).unwrap_or_default();
                println!("{terminal}  check value {check}");
            }
            Ok(())
        }
        AcquirerKeysAction::Add { file, terminal } => {
            let mut keys = if file.exists() {
                MasterKeys::load(&file).map_err(anyhow::Error::msg)?
            } else {
                MasterKeys::default()
            };
            let lines = read_parts()?;
            let [c1, k1, c2, k2] = &lines[..] else {
                anyhow::bail!("give four lines: component 1, its check value, component 2, its check value");
            };
            let key = keys::combine([(c1, k1), (c2, k2)]).map_err(anyhow::Error::msg)?;
            let check = key.check_value();
            keys.insert(&terminal, key);
            // Checked as the hub will read it (the terminal id too).
            let keys = MasterKeys::parse(&keys.to_text()).map_err(anyhow::Error::msg)?;
            keys.save(&file).map_err(anyhow::Error::msg)?;
            if let Some(user) = hand_to_hub_user(&file)? {
                println!(
                    "{} belongs to the user {user} (the hub's), mode 600",
                    file.display()
                );
            }
            println!(
                "terminal {terminal}: master key kept in {}, check value {check} (compare it with the acquirer's letter)",
                file.display()
            );
            Ok(())
        }
    }
}

/// Run as root (as on the hub's image, where the hub runs as its own user
/// `tallybox`): hands the file to that user, readable and writable by it
/// alone (the owner may enter keys on the page too). The user's name, if it did.
fn hand_to_hub_user(file: &std::path::Path) -> anyhow::Result<Option<&'static str>> {
    use std::os::unix::ffi::OsStrExt;
    const USER: &std::ffi::CStr = c"tallybox";
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Ok(None);
    }
    // SAFETY: USER is a NUL-terminated string; the result is read at once.
    let user = unsafe { libc::getpwnam(USER.as_ptr()) };
    if user.is_null() {
        return Ok(None);
    }
    // SAFETY: non-null, from getpwnam, read before any other call to it.
    let (uid, gid) = unsafe { ((*user).pw_uid, (*user).pw_gid) };
    let path = std::ffi::CString::new(file.as_os_str().as_bytes())?;
    // SAFETY: path is NUL-terminated; the file stays 0600.
    if unsafe { libc::chown(path.as_ptr(), uid, gid) } != 0 {
        anyhow::bail!(
            "cannot give {} to the user tallybox: {}",
            file.display(),
            std::io::Error::last_os_error()
        );
    }
    Ok(Some("tallybox"))
}

/// The four lines: each component and its check value. On a terminal each
/// is asked for, and a component is not shown as it is typed.
fn read_parts() -> anyhow::Result<Vec<zeroize::Zeroizing<String>>> {
    use std::io::Write;
    let asks = [
        ("component 1 (32 hex digits)", true),
        ("its check value", false),
        ("component 2 (32 hex digits)", true),
        ("its check value", false),
    ];
    // SAFETY: isatty only looks at the descriptor.
    let interactive = unsafe { libc::isatty(0) } == 1;
    let mut lines = Vec::new();
    let mut input = std::io::stdin().lock();
    for (ask, secret) in asks {
        let hidden = if interactive {
            eprint!("{ask}: ");
            let _ = std::io::stderr().flush();
            secret.then(EchoOff::new).flatten()
        } else {
            None
        };
        let mut line = zeroize::Zeroizing::new(String::new());
        let read = input.read_line(&mut line)?;
        if hidden.is_some() {
            eprintln!();
        }
        drop(hidden);
        if read == 0 {
            break;
        }
        let trimmed = zeroize::Zeroizing::new(line.trim().to_string());
        lines.push(trimmed);
    }
    Ok(lines)
}

/// The terminal's echo turned off until dropped.
struct EchoOff(libc::termios);

impl EchoOff {
    fn new() -> Option<EchoOff> {
        // SAFETY: termios is plain data, filled by tcgetattr before use;
        // both calls only read or set the terminal's settings.
        unsafe {
            let mut was: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut was) != 0 {
                return None;
            }
            let mut quiet = was;
            quiet.c_lflag &= !libc::ECHO;
            (libc::tcsetattr(0, libc::TCSANOW, &quiet) == 0).then_some(EchoOff(was))
        }
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        // SAFETY: puts back the settings tcgetattr read.
        unsafe {
            libc::tcsetattr(0, libc::TCSANOW, &self.0);
        }
    }
}
