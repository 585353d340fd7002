//! The Debian packages, built by `scripts/package` from this build and
//! installed with dpkg into a throw-away root (`dpkg --root`, maintainer
//! scripts run with `DPKG_ROOT`): the files land where the units and the
//! launcher expect them, the units pass `systemd-analyze verify`, the
//! installed launcher starts the installed program, reinstalling never
//! touches the data or undoes a newer version an update put in place, and
//! purging removes the programs and keeps the shop's data.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tallybox_e2e::unit_faults;

const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
const VERSION: &str = env!("CARGO_PKG_VERSION");

fn run(command: &mut Command) -> Output {
    let out = command.output().expect("run a command");
    assert!(
        out.status.success(),
        "{command:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// An empty root dpkg can install into.
fn dpkg_root(dir: &Path) -> PathBuf {
    let root = dir.join("root");
    std::fs::create_dir_all(root.join("var/lib/dpkg/info")).unwrap();
    std::fs::create_dir_all(root.join("var/lib/dpkg/updates")).unwrap();
    std::fs::write(root.join("var/lib/dpkg/status"), "").unwrap();
    root
}

fn dpkg(root: &Path, args: &[&str]) -> Output {
    run(Command::new("dpkg")
        .arg(format!("--root={}", root.display()))
        .args(["--force-script-chrootless", "--force-depends", "--log=/dev/null"])
        .args(args))
}

#[test]
fn the_packages_install_into_a_root_keep_the_data_and_purge_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let debs = dir.path().join("debs");
    let arch = stdout(&run(Command::new("dpkg").arg("--print-architecture")))
        .trim()
        .to_string();
    run(Command::new(format!("{REPO}/scripts/package")).args([
        "--arch",
        &arch,
        "--profile",
        "debug",
        "--compress",
        "none",
        "--out",
        debs.to_str().unwrap(),
    ]));
    let hub_deb = debs.join(format!("tallybox_{VERSION}_{arch}.deb"));
    let term_deb = debs.join(format!("tallybox-terminal_{VERSION}_{arch}.deb"));

    // What the package says about itself.
    let field = |deb: &Path, name: &str| {
        stdout(&run(Command::new("dpkg-deb").arg("-f").arg(deb).arg(name)))
            .trim()
            .to_string()
    };
    assert!(field(&hub_deb, "Depends").contains("tzdata"));
    assert_eq!(field(&hub_deb, "Version"), VERSION);
    let listed = stdout(&run(Command::new("dpkg-deb").arg("-c").arg(&hub_deb)));
    for path in [
        format!("./opt/tallybox/versions/{VERSION}/tallybox"),
        "./usr/lib/tallybox/tallybox-launch".into(),
        "./lib/systemd/system/tallybox.service".into(),
        "./etc/tallybox/tallybox.toml".into(),
        "./usr/bin/tallybox -> /opt/tallybox/current/tallybox".into(),
    ] {
        assert!(listed.contains(&path), "{path} not in the package:\n{listed}");
    }
    assert!(
        !listed.contains("./var/lib/tallybox"),
        "the package ships data files"
    );

    // Both install side by side.
    let root = dpkg_root(dir.path());
    dpkg(
        &root,
        &["-i", hub_deb.to_str().unwrap(), term_deb.to_str().unwrap()],
    );
    let link = |rel: &str| {
        std::fs::read_link(root.join(rel))
            .ok()
            .map(|p| p.display().to_string())
    };
    assert_eq!(
        link("opt/tallybox/current").as_deref(),
        Some(format!("versions/{VERSION}").as_str())
    );
    assert_eq!(
        link("opt/tallybox-terminal/current").as_deref(),
        Some(format!("versions/{VERSION}").as_str())
    );
    use std::os::unix::fs::PermissionsExt;
    let data = root.join("var/lib/tallybox");
    assert_eq!(
        std::fs::metadata(&data).unwrap().permissions().mode() & 0o777,
        0o700
    );

    // The units are valid systemd units.
    for unit in ["tallybox.service", "tallybox-terminal.service"] {
        let faults = unit_faults(&root, &format!("/lib/systemd/system/{unit}"));
        assert!(faults.is_empty(), "{unit}: {faults:?}");
    }

    // The installed launcher starts the installed program.
    let launched = run(Command::new("sh")
        .arg(root.join("usr/lib/tallybox/tallybox-launch"))
        .args(["tallybox", "--version"])
        .env("TALLYBOX_ROOT", root.join("opt/tallybox")));
    assert_eq!(stdout(&launched).trim(), format!("tallybox {VERSION}"));

    // The shop's data, and a newer version an update installed.
    std::fs::write(data.join("tallybox.db"), b"the shop's sales").unwrap();
    let newer = root.join("opt/tallybox/versions/9.9.9");
    std::fs::create_dir_all(&newer).unwrap();
    std::os::unix::fs::symlink("versions/9.9.9", root.join("opt/tallybox/current.new")).unwrap();
    std::fs::rename(
        root.join("opt/tallybox/current.new"),
        root.join("opt/tallybox/current"),
    )
    .unwrap();
    dpkg(&root, &["-i", hub_deb.to_str().unwrap()]);
    assert_eq!(
        std::fs::read(data.join("tallybox.db")).unwrap(),
        b"the shop's sales"
    );
    assert_eq!(
        link("opt/tallybox/current").as_deref(),
        Some("versions/9.9.9"),
        "reinstalling the package went back on an update"
    );

    // Purged: the programs go, the data stays.
    dpkg(&root, &["--purge", "tallybox"]);
    assert!(!root.join("opt/tallybox").exists());
    assert!(!root.join("usr/bin/tallybox").exists());
    assert_eq!(
        std::fs::read(data.join("tallybox.db")).unwrap(),
        b"the shop's sales"
    );
    assert!(
        root.join("opt/tallybox-terminal/current").exists(),
        "the other package went too"
    );
}
