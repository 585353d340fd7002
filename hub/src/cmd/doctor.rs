//! `tallybox doctor`: the hub's checks on the command line — what is wrong,
//! the numbers that show it, and what to do, in English and Chinese. Exits 0
//! when all is well, 1 on a warning, 2 on a failure (for scripts and the
//! image's health check).

use std::path::PathBuf;

use tallybox::doctor::{self, Status};
use tallybox::store::Store;

#[derive(Debug, Clone, clap::Args)]
pub struct DoctorArgs {
    /// The hub's data directory.
    #[arg(long, default_value = "/var/lib/tallybox")]
    pub data_dir: PathBuf,
    /// As JSON: `{"status", "checks": [{id, status, evidence, fix_en, fix_zh-CN}]}`.
    #[arg(long)]
    pub json: bool,
    /// Where the machine's sysfs is (`/` on a Pi).
    #[arg(long, env = "TALLYBOX_SYS_ROOT", default_value = "/")]
    pub sys_root: PathBuf,
    /// Where versions are installed.
    #[arg(long, env = "TALLYBOX_ROOT", default_value = tallybox::install::INSTALL_ROOT)]
    pub root: PathBuf,
}

/// Prints the checks; the worst status.
pub fn run(args: DoctorArgs) -> anyhow::Result<Status> {
    if !args.data_dir.join("tallybox.db").exists() {
        anyhow::bail!(
            "no Tallybox database in {}; give the hub's --data-dir",
            args.data_dir.display()
        );
    }
    let store = Store::open(&args.data_dir)?;
    let facts = doctor::Facts {
        hub_machine: Some(tallybox_platform::machine::Machine::at(&args.sys_root).health()),
        updates: Some(doctor::Updates::read(&args.root)),
        ..doctor::gather(&store, None)?
    };
    let checks = doctor::checks(&facts);
    let worst = doctor::worst(&checks);
    if args.json {
        println!("{}", serde_json::json!({ "status": worst, "checks": checks }));
        return Ok(worst);
    }
    for c in &checks {
        let mark = match c.status {
            Status::Ok => "ok  ",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        };
        println!("{mark} {:<24} {}", c.id, c.evidence);
        if c.status != Status::Ok {
            println!("     fix: {}", c.fix_en);
            println!("     处理: {}", c.fix_zh);
        }
    }
    Ok(worst)
}
