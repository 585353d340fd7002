//! `tallybox evidence`: one archive for the bank, the acquirer and the police
//! after a fraudulent transaction: the transactions of the period (masked),
//! their slips as text, the hash-chained audit log with its verification,
//! the fraud rule hits, the terminals and their device counters, the CCTV
//! time windows to pull, and the steps to take. `tallybox freeze` and
//! `unfreeze` stop and restart selling at a terminal or the whole store.

use std::io::Write;
use std::path::{Path, PathBuf};

use chrono::{Duration, Local, NaiveDateTime};
use tallybox_terminal::protocol::TxnStatus;
use tallybox_terminal::slip::{self, Copy};

use crate::config::Config;
use crate::store::query::Filter;
use crate::store::{Store, Txn};

#[derive(Debug, Clone, clap::Args)]
pub struct EvidenceArgs {
    /// Start of the period, local `YYYY-MM-DD` or `YYYY-MM-DD HH:MM:SS`.
    #[arg(long)]
    pub from: String,
    /// End of the period, same forms (a bare date includes the whole day).
    #[arg(long)]
    pub to: String,
    /// The archive to write (a .tar file).
    #[arg(long)]
    pub out: PathBuf,
    /// The hub's data directory.
    #[arg(long, default_value = "/var/lib/tallybox")]
    pub data_dir: PathBuf,
    /// The hub's settings (store name and merchant number for the slips).
    #[arg(long, default_value = "/etc/tallybox/tallybox.toml")]
    pub config: PathBuf,
}

fn open(data_dir: &Path) -> anyhow::Result<Store> {
    if !data_dir.join("tallybox.db").exists() {
        anyhow::bail!(
            "no Tallybox database in {}; give the hub's --data-dir",
            data_dir.display()
        );
    }
    Ok(Store::open(data_dir)?)
}

/// Every transaction the filter matches, all pages.
fn all(store: &Store, from: &str, to: &str) -> anyhow::Result<Vec<Txn>> {
    let mut out = Vec::new();
    let mut before = None;
    loop {
        let filter = Filter {
            from: Some(from.into()),
            to: Some(to.into()),
            before,
            limit: Some(200),
            ..Default::default()
        };
        let page = store.list(&filter).map_err(|e| anyhow::anyhow!("{e}"))?;
        out.extend(page.items);
        match page.next_before {
            Some(b) => before = Some(b),
            None => return Ok(out),
        }
    }
}

fn csv(field: &str) -> String {
    if field.contains([',', '"', '\n']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

/// Two minutes either side of `local_time`, for the CCTV.
fn window(local_time: &str) -> String {
    match NaiveDateTime::parse_from_str(local_time, "%Y-%m-%d %H:%M:%S") {
        Ok(t) => format!(
            "{} to {}",
            (t - Duration::minutes(2)).format("%Y-%m-%d %H:%M:%S"),
            (t + Duration::minutes(2)).format("%H:%M:%S")
        ),
        Err(_) => local_time.to_string(),
    }
}

const STEPS: &str = "\
What to do (按以下步骤处理)
1. Stop more losses: freeze the terminal or the store (tallybox freeze), keep it frozen until the bank has answered.
2. Call the acquirer's merchant hotline: give the merchant number, the transactions in transactions.csv (trace no., reference no., time), and ask them to stop settlement of the suspect ones.
3. If a customer's card was used without them: the customer calls their bank to block the card and have it reissued.
4. Pull the CCTV recordings for the windows in cctv_windows.txt before they are overwritten.
5. Report to the police with this archive; keep the archive and the data directory unchanged (audit_verify.txt says whether the log is intact).
";

pub fn run(args: EvidenceArgs) -> anyhow::Result<()> {
    let store = open(&args.data_dir)?;
    let settings = Config::load(&args.config, false)?;
    let txns = all(&store, &args.from, &args.to)?;
    let to_end = if args.to.len() == 10 {
        format!("{} 23:59:59", args.to)
    } else {
        args.to.clone()
    };
    let hits = store.fraud_hits(&args.from, &to_end)?;
    let mut files: Vec<(&str, Vec<u8>)> = Vec::new();

    let mut t = String::from(
        "id,local_time,terminal,kind,status,amount,currency,card,brand,entry,batch,trace,reference_no,auth_code,response_code\n",
    );
    let mut slips = String::new();
    let mut cctv = String::from("Pull these recordings (local time, terminal, why):\n");
    for x in txns.iter().rev() {
        t += &[
            x.id.to_string(),
            x.local_time.clone(),
            x.terminal_id.clone(),
            x.kind.as_str().into(),
            x.status.as_str().into(),
            x.amount.to_string(),
            x.currency.clone(),
            x.masked_pan.as_str().into(),
            x.brand.label().into(),
            x.entry_mode.label().into(),
            x.batch_no.to_string(),
            x.trace_no.to_string(),
            x.reference_no.clone(),
            x.auth_code.clone(),
            x.response_code.clone(),
        ]
        .iter()
        .map(|f| csv(f))
        .collect::<Vec<_>>()
        .join(",");
        t.push('\n');
        if x.status == TxnStatus::Approved {
            let receipt = x.receipt(&settings.store_name, &settings.merchant_id, &settings.public_url);
            slips += &slip::render(&receipt, Copy::Merchant, true).join("\n");
            slips += "\n\n";
        }
        if x.status == TxnStatus::Declined || x.status == TxnStatus::Failed {
            cctv += &format!(
                "{}  {}  {} {}\n",
                window(&x.local_time),
                x.terminal_id,
                x.kind.as_str(),
                x.status.as_str()
            );
        }
    }
    let mut h = String::from("local_time,terminal,rule,action,detail\n");
    for hit in &hits {
        h += &format!(
            "{},{},{},{},{}\n",
            csv(&hit.local_time),
            csv(&hit.terminal_id),
            csv(&hit.rule),
            csv(&hit.action),
            csv(&hit.detail)
        );
        cctv += &format!(
            "{}  {}  fraud rule {} ({})\n",
            window(&hit.local_time),
            hit.terminal_id,
            hit.rule,
            hit.action
        );
    }
    let verify = match store.verify_audit() {
        Ok(n) => format!("audit log intact: {n} records, each chained to the one before\n"),
        Err(e) => format!("audit log BROKEN: {e}\n"),
    };
    let mut audit = String::new();
    for r in store.audit_records()? {
        audit += &serde_json::to_string(&r)?;
        audit.push('\n');
    }
    let readme = format!(
        "Tallybox evidence pack — {store} (merchant {merchant})\nPeriod: {from} to {to}\nMade: {made}\n\n\
         transactions.csv   every transaction of the period; card numbers masked (first 6, last 4)\n\
         slips.txt          the slips of the approved ones, as printed\n\
         fraud_hits.csv     the store's fraud rules that fired\n\
         audit_log.jsonl    the tamper-evident log of every state change\n\
         audit_verify.txt   whether that log is intact\n\
         cctv_windows.txt   when to look on the cameras\n\
         (web logins are not recorded by this version)\n\n{STEPS}",
        store = settings.store_name,
        merchant = settings.merchant_id,
        from = args.from,
        to = args.to,
        made = Local::now().format("%Y-%m-%d %H:%M:%S"),
    );
    files.push(("README.txt", readme.into_bytes()));
    files.push(("transactions.csv", t.into_bytes()));
    files.push(("slips.txt", slips.into_bytes()));
    files.push(("fraud_hits.csv", h.into_bytes()));
    files.push(("audit_log.jsonl", audit.into_bytes()));
    files.push(("audit_verify.txt", verify.clone().into_bytes()));
    files.push(("cctv_windows.txt", cctv.into_bytes()));

    let file = std::fs::File::create(&args.out)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", args.out.display()))?;
    let mut tar = tar::Builder::new(file);
    for (name, bytes) in &files {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o600);
        header.set_mtime(Local::now().timestamp().max(0) as u64);
        header.set_cksum();
        tar.append_data(&mut header, format!("evidence/{name}"), bytes.as_slice())?;
    }
    tar.into_inner()?.sync_all()?;
    let mut out = std::io::stdout();
    writeln!(
        out,
        "wrote {}: {} transactions, {} rule hits; {}",
        args.out.display(),
        txns.len(),
        hits.len(),
        verify.trim()
    )?;
    Ok(())
}

#[derive(Debug, Clone, clap::Args)]
pub struct FreezeArgs {
    /// The terminal to freeze or unfreeze, e.g. T1.
    #[arg(long, conflicts_with = "store", required_unless_present = "store")]
    pub terminal: Option<String>,
    /// The whole store.
    #[arg(long)]
    pub store: bool,
    /// Why (shown in the logs and the audit record).
    #[arg(long, default_value = "frozen by the owner")]
    pub reason: String,
    #[arg(long, default_value = "/var/lib/tallybox")]
    pub data_dir: PathBuf,
}

impl FreezeArgs {
    fn scope(&self) -> String {
        self.terminal.clone().unwrap_or_else(|| "store".into())
    }
}

pub fn freeze(args: FreezeArgs) -> anyhow::Result<()> {
    let mut store = open(&args.data_dir)?;
    store.freeze(&args.scope(), &args.reason)?;
    println!(
        "{} frozen: it refuses sales, voids and refunds until unfrozen",
        args.scope()
    );
    Ok(())
}

pub fn unfreeze(args: FreezeArgs) -> anyhow::Result<()> {
    let mut store = open(&args.data_dir)?;
    if store.unfreeze(&args.scope())? {
        println!("{} unfrozen: it sells again", args.scope());
    } else {
        println!("{} was not frozen", args.scope());
    }
    Ok(())
}
