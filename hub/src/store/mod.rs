//! The hub's durable memory: one SQLite file in the data directory, in WAL mode
//! with `synchronous=FULL`, so a row the hub reported is on disk before anyone
//! is told. Card numbers never enter it: a transaction keeps the masked PAN, the
//! last four digits for search, and a keyed hash of the PAN for fraud rules.
//!
//! Each state change and its audit record ([`audit`]) are one SQLite transaction.

pub mod accounts;
pub mod audit;
pub mod backups;
pub mod bills;
pub mod cashiers;
pub mod changes;
pub mod drawer;
pub mod fraud;
pub mod history;
pub mod keys;
pub mod lock;
pub mod outbox;
pub mod query;
pub mod reconcile;
pub mod report;
pub mod restore;
pub mod salvage;
mod schema;
mod secret;
pub mod settlement;
mod shop;
pub mod stick;
pub mod terminals;
pub mod wear;
pub mod witness;
pub mod writer;

use std::path::{Path, PathBuf};
use tallybox_core::code::ResponseCode;

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection, OptionalExtension, Row};
use serde::Serialize;
use tallybox_core::card::{CardRead, MaskedPan};
use tallybox_core::money::{Amount, Currency};
use tallybox_core::protocol::{
    requests::SplitPart, CardPaid, DeviceHealth, Paid, Receipt, RequestId, Tender, TerminalId, TxnKind,
    TxnStatus,
};

pub use changes::Change;
pub use secret::{read_private, write_private, PanHasher};
pub use writer::StoreHandle;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    // `error`, not `source`: the message carries it, and a chain of causes
    // would print it twice.
    #[error("cannot prepare the data directory {dir}: {error}")]
    DataDir { dir: String, error: std::io::Error },
    #[error("the database was written by a newer Tallybox (schema {found}, this build knows {known}); update Tallybox")]
    TooNew { found: u32, known: u32 },
    #[error("upgrading the database (schema {from} to {to}) needs {need_mib} MiB free where it lives, and only {free_mib} MiB are; nothing was changed: free space (or move the data to a larger SD card) and start again")]
    MigrationRoom {
        from: u32,
        to: u32,
        need_mib: u64,
        free_mib: u64,
    },
    #[error("upgrading the database from schema {from} to {to} failed: {error}; the database stays at schema {at}, with all its data")]
    Migration {
        from: u32,
        to: u32,
        at: u32,
        error: rusqlite::Error,
    },
    #[error("a Tallybox hub is already running on {dir}: stop it first (systemctl stop tallybox)")]
    InUse { dir: String },
    #[error("{0}")]
    Restore(String),
    #[error("the database did not commit: {0}")]
    Commit(String),
    #[error("the disk refused the write: {0}")]
    Storage(String),
    #[error("transaction {0} vanished while being written")]
    Vanished(i64),
    #[error("cannot hash a PIN: {0}")]
    Hash(String),
}

impl StoreError {
    /// SQLite found the database file damaged (not a database, or a
    /// malformed page): the hub starts its recovery page instead.
    pub fn is_damage(&self) -> bool {
        use rusqlite::ErrorCode as C;
        let code = match self {
            StoreError::Sqlite(e) => e.sqlite_error_code(),
            StoreError::Migration { error, .. } => error.sqlite_error_code(),
            _ => None,
        };
        matches!(code, Some(C::DatabaseCorrupt | C::NotADatabase))
    }

    /// The disk refused the write (full, read-only, failing): nothing was
    /// recorded, and nothing will be until the cause is fixed.
    pub fn is_storage(&self) -> bool {
        match self {
            StoreError::Storage(_) => true,
            StoreError::Sqlite(e) => disk_refused(e),
            StoreError::DataDir { .. } | StoreError::MigrationRoom { .. } => true,
            StoreError::Migration { error, .. } => disk_refused(error),
            _ => false,
        }
    }
}

/// SQLite's answers that mean the disk, not the query, failed.
pub(crate) fn disk_refused(e: &rusqlite::Error) -> bool {
    use rusqlite::ErrorCode as C;
    matches!(
        e.sqlite_error_code(),
        Some(C::DiskFull | C::ReadOnly | C::SystemIoFailure | C::CannotOpen | C::PermissionDenied)
    )
}

/// Below this much free space where the database lives the hub starts no new
/// sale: what is left is for finishing and reversing the sales in flight.
pub const SALES_RESERVE_BYTES: u64 = 16 << 20;

/// How far the clock may be behind the last sale recorded before the hub
/// stops selling (a Raspberry Pi has no clock battery: after a power cut it
/// starts from the time it last saved, until the network gives it the time).
pub const CLOCK_SLACK: chrono::Duration = chrono::Duration::minutes(5);

/// Why the hub must not start a sale now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unfit {
    /// Free bytes where the database lives, under [`SALES_RESERVE_BYTES`].
    DiskFull { free: u64 },
    /// The clock is this far behind the last transaction recorded.
    ClockBehind { by: chrono::Duration },
    /// The database is behind its witness: history was lost, and the owner
    /// has not yet restored a backup or accepted the loss.
    HistoryLost(Box<witness::Lost>),
    /// Batch `batch_no` is being settled: its figures must not change until
    /// the acquirer's answer is recorded.
    Settling { batch_no: u32 },
}

impl std::fmt::Display for Unfit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unfit::DiskFull { free } => write!(
                f,
                "only {} KiB free where the database lives (sales need {} MiB)",
                free >> 10,
                SALES_RESERVE_BYTES >> 20
            ),
            Unfit::ClockBehind { by } => write!(
                f,
                "the clock is {} min behind the last transaction recorded",
                by.num_minutes().max(1)
            ),
            Unfit::HistoryLost(lost) => write!(f, "history lost: {lost}"),
            Unfit::Settling { batch_no } => write!(f, "batch {batch_no} is being settled"),
        }
    }
}

pub use tallybox_platform::machine::disk_space;

/// One transaction as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Txn {
    pub id: i64,
    pub request_id: RequestId,
    pub terminal_id: String,
    pub kind: TxnKind,
    pub status: TxnStatus,
    pub amount: Amount,
    pub currency: Currency,
    /// The tender: the card (masked) or the cash handed over.
    #[serde(flatten)]
    pub paid: Paid,
    pub batch_no: u32,
    pub trace_no: u32,
    pub reference_no: String,
    pub auth_code: String,
    /// None while pending; shown to the page as the code, or "".
    #[serde(serialize_with = "code_or_empty")]
    pub response_code: Option<ResponseCode>,
    /// Local wall-clock time when the request arrived, as printed on the slip.
    pub local_time: String,
    pub created_at: String,
    pub updated_at: String,
    /// The e-receipt page's token (none for rows older than the e-receipt).
    pub receipt_token: Option<String>,
    /// For a void or refund: the sale it undoes.
    pub original_id: Option<i64>,
    /// The number of the cashier signed on at the checkout, if one was.
    pub cashier: Option<String>,
}

impl Txn {
    /// When it was recorded (its `created_at`), as a time.
    pub fn created(&self) -> chrono::DateTime<Utc> {
        chrono::DateTime::parse_from_rfc3339(&self.created_at)
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    /// The reversal that cancels it at the acquirer; `repeat` when one may
    /// have gone out before.
    pub fn reversal(&self, repeat: bool) -> crate::acquirer::Reversal {
        crate::acquirer::Reversal {
            terminal_id: self.terminal_id.clone(),
            trace_no: self.trace_no,
            batch_no: self.batch_no,
            amount: self.amount,
            kind: self.kind,
            original_at: self.created(),
            repeat,
        }
    }

    /// What the slip shows; the shop's `public_url` is where customers reach
    /// the hub's e-receipt pages (`{public_url}/r/{token}`).
    pub fn receipt(&self, shop: &crate::shop::Shop) -> Receipt {
        let public_url = &shop.public_url;
        Receipt {
            merchant_name: shop.name.clone(),
            merchant_address: shop.address.clone(),
            header: shop.slip_header.clone(),
            footer: shop.slip_footer.clone(),
            merchant_id: shop.merchant_id.clone(),
            terminal_id: self.terminal_id.clone(),
            kind: self.kind,
            status: self.status,
            amount: self.amount,
            currency: self.currency,
            paid: self.paid.clone(),
            batch_no: self.batch_no,
            trace_no: self.trace_no,
            reference_no: self.reference_no.clone(),
            auth_code: self.auth_code.clone(),
            cashier: self.cashier.clone(),
            at: self.local_time.clone(),
            link: self
                .receipt_token
                .as_ref()
                .map(|t| format!("{}/r/{t}", public_url.trim_end_matches('/'))),
        }
    }
}

/// What the coordinator knows when a request arrives.
pub struct NewTxn<'a> {
    pub request_id: &'a RequestId,
    pub terminal_id: &'a TerminalId,
    pub kind: TxnKind,
    pub amount: Amount,
    pub currency: &'a str,
    pub card: &'a CardRead,
    /// For a void or refund: the sale it undoes.
    pub original_id: Option<i64>,
    /// A sale paid with several tenders: this part's group and the total.
    pub split: Option<&'a SplitPart>,
}

/// A cash sale, or a cash sale's void or refund, as the coordinator hands
/// it to the store.
pub struct NewCash<'a> {
    pub request_id: &'a RequestId,
    pub terminal_id: &'a TerminalId,
    pub kind: TxnKind,
    pub amount: Amount,
    pub currency: &'a str,
    /// What the customer handed over (at least `amount`); for a void or
    /// refund, what the drawer gives back.
    pub tendered: Amount,
    /// For a void or refund: the sale it undoes.
    pub original_id: Option<i64>,
    /// A sale paid with several tenders: this part's group and the total.
    pub split: Option<&'a SplitPart>,
}

/// A code sale, or a code sale's void or refund, as the coordinator hands
/// it to the store: written pending before the provider is asked.
pub struct NewCode<'a> {
    pub request_id: &'a RequestId,
    pub terminal_id: &'a TerminalId,
    pub kind: TxnKind,
    pub amount: Amount,
    pub currency: &'a str,
    pub provider: tallybox_core::protocol::Provider,
    /// For a void or refund: the sale it undoes.
    pub original_id: Option<i64>,
    /// A sale paid with several tenders: this part's group and the total.
    pub split: Option<&'a SplitPart>,
}

/// One new row of `transactions`, whatever its tender.
struct Insert<'a> {
    request_id: &'a RequestId,
    terminal_id: &'a TerminalId,
    kind: TxnKind,
    amount: Amount,
    currency: &'a str,
    original_id: Option<i64>,
    status: TxnStatus,
    /// "" while pending.
    response_code: &'a str,
    tender: Tender,
    /// Empty for a tender without a card.
    card: CardColumns,
    tendered: Option<Amount>,
    provider: Option<tallybox_core::protocol::Provider>,
    split: Option<&'a SplitPart>,
}

/// What a row keeps of a card: masked, and a keyed hash for the fraud rules.
#[derive(Default)]
struct CardColumns {
    masked_pan: String,
    last4: String,
    brand: String,
    entry_mode: String,
    pan_hash: String,
}

/// A pending transaction's code in the JSON the page reads: "" (as before
/// the code was a type of its own).
fn code_or_empty<S: serde::Serializer>(
    code: &Option<ResponseCode>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(code.as_ref().map(ResponseCode::as_str).unwrap_or(""))
}

/// The acquirer's verdict, to be stored.
pub struct Verdict<'a> {
    pub status: TxnStatus,
    pub response_code: ResponseCode,
    pub auth_code: &'a str,
    pub reference_no: &'a str,
}

/// A new database's page size. Each commit writes every page it changed to
/// the WAL whole, and a sale's two commits change a page of the transactions
/// table and of each of its indexes. Under the same 20-checkout load
/// (`tallybox-bench wear`, with a 16 MiB WAL) a sale wrote 71 KiB with
/// 4 KiB pages, 40 KiB with 2 KiB and 29 KiB with 1 KiB; reading a day's
/// report from a million rows took 10 % longer with 2 KiB pages than with
/// 4 KiB, and 25 % longer with 1 KiB (`tallybox-bench pages`).
pub const PAGE_SIZE: u32 = 2048;

/// The WAL grows to this before SQLite copies it into the database, so a
/// page changed many times in between is copied once (with 1 KiB pages a
/// sale wrote 51 KiB at SQLite's default of 1 000 pages, 39 KiB at 4 MiB,
/// 29 KiB at 16 MiB).
const WAL_BYTES: u32 = 16 << 20;

pub struct Store {
    conn: Connection,
    hasher: PanHasher,
    /// The store's usual sale for the large-amount rule, and when it was read.
    usual_sale: std::cell::Cell<Option<(std::time::Instant, u64, u32)>>,
    /// What the open transaction changed (the writer's connection only).
    changes: changes::Collected,
    /// The history was found whole against its witness file.
    history_intact: std::cell::Cell<bool>,
    /// The shop is in a chain (`chain.json` in the data directory): commits
    /// append to the outbox, on this connection too.
    outbox: bool,
}

const COLUMNS: &str = "id, request_id, terminal_id, kind, status, amount, currency, masked_pan, brand, \
     entry_mode, batch_no, trace_no, reference_no, auth_code, response_code, local_time, created_at, updated_at, \
     receipt_token, original_id, cashier, tender, tendered, provider, buyer";

/// Runs `sql` from the connection's statement cache: the sale path repeats the
/// same few statements, and preparing each anew cost more than running it.
pub(crate) fn exec(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> rusqlite::Result<usize> {
    conn.prepare_cached(sql)?.execute(params)
}

/// [`exec`] for a query returning one row.
pub(crate) fn one_row<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    f: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    conn.prepare_cached(sql)?.query_row(params, f)
}

/// The data directory and the database files are the hub's alone: they hold
/// password and PIN hashes and the terminals' keys. The directory becomes
/// 0700; the database (created here if new) and its WAL and shared-memory
/// files 0600 (SQLite gives the WAL files the database's mode).
fn private(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(dir.join("tallybox.db"))?;
    for name in ["tallybox.db", "tallybox.db-wal", "tallybox.db-shm"] {
        match std::fs::set_permissions(dir.join(name), std::fs::Permissions::from_mode(0o600)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// A migration may rewrite every table through the WAL before it
/// checkpoints: it needs about a copy of the database's size free, which is
/// checked before it starts instead of failing half way.
fn migration_room(dir: &Path, found: u32) -> Result<(), StoreError> {
    let size = |name: &str| std::fs::metadata(dir.join(name)).map_or(0, |m| m.len());
    let need = size("tallybox.db") + size("tallybox.db-wal") + (1 << 20);
    let (free, total) = disk_space(dir);
    if total > 0 && free < need {
        return Err(StoreError::MigrationRoom {
            from: found,
            to: schema::latest(),
            need_mib: need.div_ceil(1 << 20),
            free_mib: free >> 20,
        });
    }
    Ok(())
}

/// Whether the database file is shorter than its own header says (an SD
/// card that lost its end): SQLite would find out only when it reads a page
/// that is gone, in the middle of a sale. One read of 100 bytes. Not asked
/// while the WAL holds frames: a checkpoint cut by a power loss writes page
/// 1 (and its new size) before the pages after it, and SQLite finishes it
/// from the WAL.
fn cut_short(db: &Path) -> std::io::Result<Option<String>> {
    use std::io::Read;
    let mut wal = db.as_os_str().to_owned();
    wal.push("-wal");
    // 32 bytes: a WAL header and no frame.
    if std::fs::metadata(&wal).is_ok_and(|m| m.len() > 32) {
        return Ok(None);
    }
    let mut file = std::fs::File::open(db)?;
    let len = file.metadata()?.len();
    let mut header = [0u8; 100];
    if len < 100 {
        return Ok((len > 0).then(|| format!("the database file is {len} bytes, shorter than its header")));
    }
    file.read_exact(&mut header)?;
    let word = |at: usize| u32::from_be_bytes([header[at], header[at + 1], header[at + 2], header[at + 3]]);
    let page_size = match u16::from_be_bytes([header[16], header[17]]) {
        1 => 65_536,
        n => u64::from(n),
    };
    // The size in the header counts only when written by the last change.
    let (changes, pages, valid_for) = (word(24), u64::from(word(28)), word(92));
    let expected = pages * page_size;
    Ok((valid_for == changes && expected > len)
        .then(|| format!("the database file is cut short: {len} bytes of the {expected} its header counts")))
}

/// What `undoings` (a sale's voids and refunds, [`Store::undoings`]) have
/// undone of it: whether it was voided, and how much was refunded. Pending
/// ones count: they may go through.
pub fn undone_of(undoings: &[(i64, String, i64, String)]) -> (bool, u64) {
    let (mut voided, mut refunded) = (false, 0u64);
    for (_, kind, amount, status) in undoings {
        if !matches!(status.as_str(), "approved" | "pending") {
            continue;
        }
        match kind.as_str() {
            "void" => voided = true,
            "refund" => refunded += (*amount).max(0) as u64,
            _ => {}
        }
    }
    (voided, refunded)
}

/// The number of the open batch (批次号).
fn open_batch(conn: &Connection) -> rusqlite::Result<u32> {
    one_row(
        conn,
        "SELECT CAST(value AS INTEGER) FROM settings WHERE key = 'batch_no'",
        [],
        |r| r.get(0),
    )
}

/// 16 bytes in base 32 (26 characters), short enough for the link to fit a
/// QR code the OLED can show at a scannable size: the time in milliseconds
/// (6 bytes), then 80 random bits, beyond guessing. The time first, in the
/// base-32 alphabet that sorts as its bytes do, puts tokens made one after
/// another side by side in their unique index: a sale adds to its last page
/// instead of a random one (an SD card's wear). Older links (128 random bits
/// in the other base-32 alphabet) stay as they are.
fn receipt_token() -> String {
    let ms = tallybox_platform::clock::unix_ms();
    let mut token = [0u8; 16];
    token[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    token[6..].copy_from_slice(&rand::random::<[u8; 10]>());
    data_encoding::BASE32HEX_NOPAD.encode(&token)
}

/// The local day, `YYYY-MM-DD`: PIN tries are counted per shop day.
fn today() -> String {
    tallybox_platform::clock::now().format("%Y-%m-%d").to_string()
}

/// Takes `terminal`'s next trace number (凭证号): they run 1..=999999 per
/// terminal, then wrap. The terminal's row must exist.
fn take_trace(conn: &rusqlite::Connection, terminal: &str) -> Result<u32, StoreError> {
    let trace_no: u32 = one_row(
        conn,
        "SELECT next_trace FROM terminals WHERE id = ?1",
        [terminal],
        |r| r.get(0),
    )?;
    let next = if trace_no >= 999_999 { 1 } else { trace_no + 1 };
    exec(
        conn,
        "UPDATE terminals SET next_trace = ?2 WHERE id = ?1",
        params![terminal, next],
    )?;
    Ok(trace_no)
}

impl Store {
    /// Moves `terminal`'s next trace number up to `floor`, the checkout's
    /// own word at sign-in (see `SignIn::trace_floor`), when the store's is
    /// behind it: the store lost trace numbers it had issued, and must not
    /// issue them again. The number it had, when it moved. A floor out of
    /// range, or more than half the range ahead (the store's wrapped past
    /// 999999 since), moves nothing.
    pub fn raise_trace_floor(
        &mut self,
        terminal: &TerminalId,
        floor: u32,
    ) -> Result<Option<u32>, StoreError> {
        if !(1..=999_999).contains(&floor) {
            return Ok(None);
        }
        let next: Option<u32> = one_row(
            &self.conn,
            "SELECT next_trace FROM terminals WHERE id = ?1",
            [terminal.as_str()],
            |r| r.get(0),
        )
        .optional()?;
        let next = next.unwrap_or(1);
        if floor <= next || floor - next >= 500_000 {
            return Ok(None);
        }
        exec(
            &self.conn,
            "INSERT INTO terminals (id, name, last_seen, next_trace) VALUES (?1, ?1, ?2, ?3) \
             ON CONFLICT(id) DO UPDATE SET next_trace = excluded.next_trace",
            params![terminal.as_str(), now_utc(), floor],
        )?;
        Ok(Some(next))
    }
}

fn now_utc() -> String {
    Utc::now().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Reads a serde enum from its stored snake_case name.
fn parse_enum<T: serde::de::DeserializeOwned>(text: &str) -> Option<T> {
    serde_json::from_value(serde_json::Value::String(text.to_string())).ok()
}

fn enum_text<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

fn from_row(row: &Row<'_>) -> rusqlite::Result<Txn> {
    let id: i64 = row.get(0)?;
    let bad = |i: usize, what: &str| {
        rusqlite::Error::FromSqlConversionFailure(
            i,
            rusqlite::types::Type::Text,
            format!("transaction {id} has a damaged {what}").into(),
        )
    };
    let text = |i: usize| row.get::<_, String>(i);
    Ok(Txn {
        id,
        request_id: RequestId::parse(&text(1)?).map_err(|_| bad(1, "request id"))?,
        terminal_id: text(2)?,
        kind: parse_enum(&text(3)?).ok_or_else(|| bad(3, "kind"))?,
        status: TxnStatus::parse(&text(4)?).ok_or_else(|| bad(4, "status"))?,
        amount: u64::try_from(row.get::<_, i64>(5)?)
            .ok()
            .and_then(|m| Amount::from_minor(m).ok())
            .ok_or_else(|| bad(5, "amount"))?,
        currency: Currency::from_code(&text(6)?).ok_or_else(|| bad(6, "currency"))?,
        paid: match Tender::parse(&text(21)?).ok_or_else(|| bad(21, "tender"))? {
            Tender::Card => Paid::Card(CardPaid {
                masked_pan: MaskedPan::from_stored(&text(7)?).ok_or_else(|| bad(7, "masked PAN"))?,
                brand: parse_enum(&text(8)?).ok_or_else(|| bad(8, "brand"))?,
                entry_mode: parse_enum(&text(9)?).ok_or_else(|| bad(9, "entry mode"))?,
            }),
            Tender::Cash => Paid::Cash {
                tendered: row
                    .get::<_, Option<i64>>(22)?
                    .and_then(|m| u64::try_from(m).ok())
                    .and_then(|m| Amount::from_minor(m).ok())
                    .ok_or_else(|| bad(22, "cash tendered"))?,
            },
            Tender::Code => Paid::Code {
                provider: row
                    .get::<_, Option<String>>(23)?
                    .and_then(|p| tallybox_core::protocol::Provider::parse(&p))
                    .ok_or_else(|| bad(23, "code provider"))?,
                buyer: row.get(24)?,
            },
        },
        batch_no: row.get(10)?,
        trace_no: row.get(11)?,
        reference_no: text(12)?,
        auth_code: text(13)?,
        response_code: match text(14)?.as_str() {
            "" => None,
            code => Some(ResponseCode::parse(code).ok_or_else(|| bad(14, "response code"))?),
        },
        local_time: text(15)?,
        created_at: text(16)?,
        updated_at: text(17)?,
        receipt_token: row.get(18)?,
        original_id: row.get(19)?,
        cashier: row.get(20)?,
    })
}

impl Store {
    /// Opens (or creates) `tallybox.db` in `dir`, migrating it to the latest schema.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let data_dir = |error| StoreError::DataDir {
            dir: dir.display().to_string(),
            error,
        };
        std::fs::create_dir_all(dir).map_err(data_dir)?;
        private(dir).map_err(data_dir)?;
        let hasher = PanHasher::load_or_create(&dir.join("pan-hash.key")).map_err(data_dir)?;
        if let Some(why) = cut_short(&dir.join("tallybox.db")).map_err(data_dir)? {
            return Err(StoreError::Sqlite(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CORRUPT),
                Some(why),
            )));
        }
        let mut conn = Connection::open(dir.join("tallybox.db"))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.set_prepared_statement_cache_capacity(64);
        // Taken when the file is made; an older database keeps its pages.
        conn.pragma_update(None, "page_size", PAGE_SIZE)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        let page_size: u32 = conn.query_row("PRAGMA page_size", [], |r| r.get(0))?;
        conn.pragma_update(None, "wal_autocheckpoint", WAL_BYTES / page_size.max(512))?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        let found: u32 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if found > schema::latest() {
            return Err(StoreError::TooNew {
                found,
                known: schema::latest(),
            });
        }
        if found > 0 && found < schema::latest() {
            migration_room(dir, found)?;
        }
        schema::migrate(&mut conn).map_err(|(at, error)| StoreError::Migration {
            from: found,
            to: schema::latest(),
            at,
            error,
        })?;
        Ok(Store {
            conn,
            hasher,
            usual_sale: std::cell::Cell::new(None),
            changes: changes::Collected::default(),
            history_intact: std::cell::Cell::new(false),
            outbox: dir.join(crate::chain::FILE).exists(),
        })
    }

    /// What is missing from the history its witness file knows of, if
    /// anything. Read from the file until found intact (a history once
    /// intact is lost only below the running hub, and seen at next start);
    /// while lost, read again at each call, so an acceptance made on another
    /// connection is seen.
    pub fn history_lost(&self) -> Result<Option<witness::Lost>, StoreError> {
        if self.history_intact.get() {
            return Ok(None);
        }
        let found = match witness::read(&self.data_dir()) {
            Ok(Some(w)) => witness::compare(&self.conn, &w)?,
            Ok(None) => None,
            Err(e) => {
                tracing::error!(error = %e, "the history cannot be compared with its witness; it is written anew");
                None
            }
        };
        self.history_intact.set(found.is_none());
        Ok(found)
    }

    /// The owner accepts the history lost (no backup holds it): recorded in
    /// the audit chain with what was missing, and every checkout's trace
    /// numbers and the batch number move past what the witness saw, so none
    /// is issued twice. False when nothing is lost.
    pub fn accept_history_loss(&mut self, by: &str) -> Result<bool, StoreError> {
        let Some(lost) = self.history_lost()? else {
            return Ok(false);
        };
        let w = &lost.witnessed;
        let (utc, tx) = (now_utc(), self.conn.savepoint()?);
        for (terminal, next) in &w.traces {
            exec(
                &tx,
                "INSERT INTO terminals (id, name, last_seen, next_trace) VALUES (?1, ?1, ?2, ?3) \
                 ON CONFLICT(id) DO UPDATE SET next_trace = max(next_trace, excluded.next_trace)",
                params![terminal, utc, next],
            )?;
        }
        exec(
            &tx,
            "UPDATE settings SET value = CAST(max(CAST(value AS INTEGER), ?1) AS TEXT) WHERE key = 'batch_no'",
            [w.batch_no],
        )?;
        let detail = serde_json::json!({
            "by": by,
            "witness_seq": w.seq,
            "witness_hash": w.hash,
            "missing": lost.to_string(),
        });
        audit::append(&tx, &utc, witness::ACCEPTED, None, &detail.to_string())?;
        tx.commit()?;
        tracing::warn!(account = by, missing = %lost, "the owner accepted the lost history");
        Ok(true)
    }

    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The data directory the database lives in.
    pub fn data_dir(&self) -> PathBuf {
        self.conn
            .path()
            .and_then(|db| Path::new(db).parent())
            .map(Path::to_path_buf)
            .unwrap_or_default()
    }

    /// Why a new sale must not start now (checked before each one, in the
    /// same store job that would write it): too little disk, history lost
    /// and not yet dealt with, a settlement waiting for the acquirer, or a
    /// clock behind the last transaction.
    pub fn unfit_for_sales(&self) -> Result<Option<Unfit>, StoreError> {
        let (free, total) = disk_space(&self.data_dir());
        if total > 0 && free < SALES_RESERVE_BYTES {
            return Ok(Some(Unfit::DiskFull { free }));
        }
        if let Some(lost) = self.history_lost()? {
            return Ok(Some(Unfit::HistoryLost(Box::new(lost))));
        }
        if let Some((batch_no, _)) = self.settling()? {
            return Ok(Some(Unfit::Settling { batch_no }));
        }
        Ok(self.clock_behind()?.map(|by| Unfit::ClockBehind { by }))
    }

    /// How far the clock is behind the newest transaction, beyond [`CLOCK_SLACK`].
    pub fn clock_behind(&self) -> Result<Option<chrono::Duration>, StoreError> {
        let newest: Option<String> = self
            .conn
            .prepare_cached("SELECT created_at FROM transactions ORDER BY id DESC LIMIT 1")?
            .query_row([], |r| r.get(0))
            .optional()?;
        let Some(newest) = newest.and_then(|t| DateTime::parse_from_rfc3339(&t).ok()) else {
            return Ok(None);
        };
        let by = newest.with_timezone(&Utc) - Utc::now();
        Ok((by > CLOCK_SLACK).then_some(by))
    }

    /// The schema version the database is at.
    pub fn schema_version(&self) -> Result<u32, StoreError> {
        Ok(self.conn.query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    fn one(&self, sql: &str, params: impl rusqlite::Params) -> Result<Option<Txn>, StoreError> {
        Ok(self
            .conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM transactions {sql}"),
                params,
                from_row,
            )
            .optional()?)
    }

    pub(crate) fn many(&self, sql: &str, params: impl rusqlite::Params) -> Result<Vec<Txn>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(&format!("SELECT {COLUMNS} FROM transactions {sql}"))?;
        let rows = stmt.query_map(params, from_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Wrong PINs `pan` had today at this store.
    pub fn pin_failures_today(&self, pan: &str) -> Result<u32, StoreError> {
        let count: Option<u32> = self
            .conn
            .prepare_cached("SELECT count FROM pin_failures WHERE pan_hash = ?1 AND day = ?2")?
            .query_row(params![self.hasher.hash(pan), today()], |r| r.get(0))
            .optional()?;
        Ok(count.unwrap_or(0))
    }

    /// This terminal's transaction with this trace number.
    pub fn by_trace(&self, terminal: &TerminalId, trace_no: u32) -> Result<Option<Txn>, StoreError> {
        self.conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM transactions WHERE terminal_id = ?1 AND trace_no = ?2 ORDER BY id DESC LIMIT 1"
            ))?
            .query_row(params![terminal.as_str(), trace_no], from_row)
            .optional()
            .map_err(StoreError::from)
    }

    /// What has been undone of sale `original_id` so far: whether it was
    /// voided, and how much was refunded ([`undone_of`]).
    pub fn undone(&self, original_id: i64) -> Result<(bool, u64), StoreError> {
        Ok(undone_of(&self.undoings(original_id)?))
    }

    /// The voids and refunds made of sale `original_id`, oldest first, with
    /// their status: (id, kind, amount in minor units, status).
    pub fn undoings(&self, original_id: i64) -> Result<Vec<(i64, String, i64, String)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, kind, amount, status FROM transactions WHERE original_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map([original_id], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Whether `pan` is the card of transaction `id` (by the keyed hash: the
    /// card number itself is not stored).
    pub fn same_card(&self, id: i64, pan: &str) -> Result<bool, StoreError> {
        let stored: String = one_row(
            &self.conn,
            "SELECT pan_hash FROM transactions WHERE id = ?1",
            [id],
            |r| r.get(0),
        )?;
        Ok(stored == self.hasher.hash(pan))
    }

    /// The transaction behind an e-receipt link.
    pub fn by_receipt_token(&self, token: &str) -> Result<Option<Txn>, StoreError> {
        self.conn
            .prepare_cached(&format!(
                "SELECT {COLUMNS} FROM transactions WHERE receipt_token = ?1"
            ))?
            .query_row([token], from_row)
            .optional()
            .map_err(StoreError::from)
    }

    pub fn get(&self, id: i64) -> Result<Option<Txn>, StoreError> {
        self.one("WHERE id = ?1", [id])
    }

    pub fn by_request(&self, request_id: &str) -> Result<Option<Txn>, StoreError> {
        self.one("WHERE request_id = ?1", [request_id])
    }

    /// The terminal's most recent approved sale, or the one with `trace_no`.
    pub fn for_reprint(
        &self,
        terminal: &TerminalId,
        trace_no: Option<u32>,
    ) -> Result<Option<Txn>, StoreError> {
        match trace_no {
            Some(trace) => self.one(
                "WHERE terminal_id = ?1 AND trace_no = ?2 AND kind = 'sale' ORDER BY id DESC LIMIT 1",
                params![terminal.as_str(), trace],
            ),
            None => self.one(
                "WHERE terminal_id = ?1 AND kind = 'sale' AND status = 'approved' ORDER BY id DESC LIMIT 1",
                [terminal.as_str()],
            ),
        }
    }

    pub fn pending(&self) -> Result<Vec<Txn>, StoreError> {
        self.many("WHERE status = 'pending' ORDER BY id", [])
    }

    /// What the parts of split sale `group` paid so far (approved, less
    /// voids), in minor units; pending parts count, as they may be charged.
    pub fn split_paid(&self, group: &RequestId) -> Result<u64, StoreError> {
        Ok(one_row(
            &self.conn,
            "SELECT coalesce(sum(amount), 0) FROM transactions t WHERE split_of = ?1 AND kind = 'sale' \
             AND status IN ('approved', 'pending') AND NOT EXISTS (SELECT 1 FROM transactions v \
             WHERE v.original_id = t.id AND v.kind = 'void' AND v.status = 'approved')",
            [group.as_str()],
            |r| r.get::<_, i64>(0),
        )?
        .max(0) as u64)
    }

    /// Whether `terminal`'s sale `trace_no` is a part of split sale `group`
    /// that the cashier may undo without the supervisor: the sale is not
    /// paid in full yet, and the part is less than ten minutes old.
    pub fn split_part_open(
        &self,
        group: &RequestId,
        terminal: &TerminalId,
        trace_no: u32,
    ) -> Result<bool, StoreError> {
        let Some(part) = self.by_trace(terminal, trace_no)? else {
            return Ok(false);
        };
        let total: Option<i64> = one_row(
            &self.conn,
            "SELECT split_total FROM transactions WHERE id = ?1 AND split_of = ?2",
            params![part.id, group.as_str()],
            |r| r.get(0),
        )
        .optional()?
        .flatten();
        let Some(total) = total else { return Ok(false) };
        let recent = Utc::now() - part.created() < chrono::Duration::minutes(10);
        Ok(recent && (self.split_paid(group)? as i64) < total)
    }

    /// Records the transaction as `pending`, with its trace and batch numbers,
    /// durably, before the acquirer is asked.
    pub fn begin(&mut self, new: &NewTxn<'_>) -> Result<Txn, StoreError> {
        let card = CardColumns {
            masked_pan: new.card.pan.masked().as_str().to_string(),
            last4: new.card.pan.last4().to_string(),
            brand: enum_text(&new.card.pan.brand()),
            entry_mode: enum_text(&new.card.entry_mode),
            pan_hash: self.hasher.hash(new.card.pan.digits()),
        };
        let row = Insert {
            request_id: new.request_id,
            terminal_id: new.terminal_id,
            kind: new.kind,
            amount: new.amount,
            currency: new.currency,
            original_id: new.original_id,
            status: TxnStatus::Pending,
            response_code: "",
            tender: Tender::Card,
            card,
            tendered: None,
            provider: None,
            split: new.split,
        };
        self.insert(&row)
    }

    /// Records a code sale (or its void or refund) as `pending`, durably,
    /// before the provider is asked.
    pub fn begin_code(&mut self, new: &NewCode<'_>) -> Result<Txn, StoreError> {
        let row = Insert {
            request_id: new.request_id,
            terminal_id: new.terminal_id,
            kind: new.kind,
            amount: new.amount,
            currency: new.currency,
            original_id: new.original_id,
            status: TxnStatus::Pending,
            response_code: "",
            tender: Tender::Code,
            card: CardColumns::default(),
            tendered: None,
            provider: Some(new.provider),
            split: new.split,
        };
        self.insert(&row)
    }

    /// The buyer's account (masked by the provider) of a code payment, kept
    /// with its verdict.
    pub fn note_buyer(&mut self, id: i64, buyer: &str) -> Result<(), StoreError> {
        exec(
            &self.conn,
            "UPDATE transactions SET buyer = ?2 WHERE id = ?1",
            params![id, buyer],
        )?;
        Ok(())
    }

    /// Records a cash sale (or its void or refund), approved at once (no
    /// acquirer is asked; the drawer holds the money), with its trace and
    /// batch numbers.
    pub fn record_cash(&mut self, new: &NewCash<'_>) -> Result<Txn, StoreError> {
        let row = Insert {
            request_id: new.request_id,
            terminal_id: new.terminal_id,
            kind: new.kind,
            amount: new.amount,
            currency: new.currency,
            original_id: new.original_id,
            status: TxnStatus::Approved,
            response_code: ResponseCode::APPROVED.as_str(),
            tender: Tender::Cash,
            card: CardColumns::default(),
            tendered: Some(new.tendered),
            provider: None,
            split: new.split,
        };
        self.insert(&row)
    }

    /// Writes one new transaction and its audit record in one SQLite
    /// transaction, taking the terminal's next trace number.
    fn insert(&mut self, new: &Insert<'_>) -> Result<Txn, StoreError> {
        let (utc, local) = (
            now_utc(),
            tallybox_platform::clock::now()
                .format("%Y-%m-%d %H:%M:%S")
                .to_string(),
        );
        let tx = self.conn.savepoint()?;
        let first_word = exec(
            &tx,
            "INSERT INTO terminals (id, name, last_seen) VALUES (?1, ?1, ?2) ON CONFLICT(id) DO NOTHING",
            params![new.terminal_id.as_str(), utc],
        )? > 0;
        if first_word && self.outbox {
            self.changes.note(Change::TerminalSeen {
                terminal: new.terminal_id.clone(),
                changed: true,
            });
        }
        let trace_no = take_trace(&tx, new.terminal_id.as_str())?;
        let batch_no = open_batch(&tx)?;
        let card = &new.card;
        exec(
            &tx,
            "INSERT INTO transactions (request_id, terminal_id, kind, status, amount, currency, masked_pan, last4, \
             brand, entry_mode, pan_hash, batch_no, trace_no, local_time, created_at, updated_at, receipt_token, original_id, \
             cashier, response_code, tender, tendered, split_of, split_total, provider) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?15, ?16, ?17, \
             (SELECT cashier FROM terminals WHERE id = ?2), ?18, ?19, ?20, ?21, ?22, ?23)",
            params![
                new.request_id.as_str(),
                new.terminal_id.as_str(),
                new.kind.as_str(),
                new.status.as_str(),
                new.amount.minor() as i64,
                new.currency,
                card.masked_pan,
                card.last4,
                card.brand,
                card.entry_mode,
                card.pan_hash,
                batch_no,
                trace_no,
                local,
                utc,
                receipt_token(),
                new.original_id,
                new.response_code,
                new.tender.as_str(),
                new.tendered.map(|a| a.minor() as i64),
                new.split.map(|p| p.group.as_str()),
                new.split.map(|p| p.total.minor() as i64),
                new.provider.map(|p| p.as_str()),
            ],
        )?;
        let id = tx.last_insert_rowid();
        let mut detail = serde_json::json!({
            "request_id": new.request_id.as_str(), "terminal": new.terminal_id.as_str(),
            "kind": new.kind.as_str(), "amount": new.amount.minor(), "trace_no": trace_no,
        });
        if let Some(tendered) = new.tendered {
            detail["tender"] = new.tender.as_str().into();
            detail["tendered"] = tendered.minor().into();
        }
        if let Some(provider) = new.provider {
            detail["tender"] = new.tender.as_str().into();
            detail["provider"] = provider.as_str().into();
        }
        audit::append(&tx, &utc, new.status.as_str(), Some(id), &detail.to_string())?;
        tx.commit()?;
        self.changes.note(Change::Txn {
            id,
            terminal: new.terminal_id.clone(),
            status: new.status,
        });
        self.get(id)?.ok_or(StoreError::Vanished(id))
    }

    /// Moves a pending transaction to its final state. A transaction that is no
    /// longer pending is left alone: the first final state wins.
    pub fn finish(&mut self, id: i64, verdict: &Verdict<'_>) -> Result<Txn, StoreError> {
        let utc = now_utc();
        let tx = self.conn.savepoint()?;
        let changed = exec(
            &tx,
            "UPDATE transactions SET status = ?2, response_code = ?3, auth_code = ?4, reference_no = ?5, updated_at = ?6 \
             WHERE id = ?1 AND status = 'pending'",
            params![id, verdict.status.as_str(), verdict.response_code.as_str(), verdict.auth_code, verdict.reference_no, utc],
        )?;
        if changed == 1 && verdict.response_code == ResponseCode::WRONG_PIN {
            // Counted with the verdict, in the same transaction: a crash cannot
            // lose a wrong PIN and hand the card another try.
            exec(
                &tx,
                "INSERT INTO pin_failures (pan_hash, day, count) SELECT pan_hash, ?2, 1 FROM transactions WHERE id = ?1 \
                 ON CONFLICT (pan_hash, day) DO UPDATE SET count = count + 1",
                params![id, today()],
            )?;
        }
        if changed == 1 {
            let detail = serde_json::json!({
                "status": verdict.status.as_str(), "response_code": verdict.response_code.as_str(),
                "auth_code": verdict.auth_code, "reference_no": verdict.reference_no,
            });
            audit::append(&tx, &utc, verdict.status.as_str(), Some(id), &detail.to_string())?;
        }
        tx.commit()?;
        let txn = self.get(id)?.ok_or(StoreError::Vanished(id))?;
        if changed == 1 {
            if let Ok(terminal) = TerminalId::parse(&txn.terminal_id) {
                self.changes.note(Change::Txn {
                    id,
                    terminal,
                    status: txn.status,
                });
            }
        }
        Ok(txn)
    }

    /// Marks `request_id` as never received. False when it was received after all.
    pub fn mark_lost(&mut self, request_id: &RequestId, terminal: &TerminalId) -> Result<bool, StoreError> {
        let utc = now_utc();
        let tx = self.conn.savepoint()?;
        let known: bool = one_row(
            &tx,
            "SELECT EXISTS (SELECT 1 FROM transactions WHERE request_id = ?1)",
            [request_id.as_str()],
            |r| r.get(0),
        )?;
        if !known {
            let added = exec(
                &tx,
                "INSERT OR IGNORE INTO lost_requests (request_id, terminal_id, at) VALUES (?1, ?2, ?3)",
                params![request_id.as_str(), terminal.as_str(), utc],
            )?;
            if added == 1 {
                let detail =
                    serde_json::json!({"request_id": request_id.as_str(), "terminal": terminal.as_str()});
                audit::append(&tx, &utc, "lost", None, &detail.to_string())?;
            }
        }
        tx.commit()?;
        Ok(!known)
    }

    pub fn is_lost(&self, request_id: &RequestId) -> Result<bool, StoreError> {
        Ok(one_row(
            &self.conn,
            "SELECT EXISTS (SELECT 1 FROM lost_requests WHERE request_id = ?1)",
            [request_id.as_str()],
            |r| r.get(0),
        )?)
    }

    /// Notes a terminal's status message (online, version) and when it was seen.
    /// Notes that a reversal of transaction `id` is about to go out, before
    /// it does; true when one may have gone out before (this one is then a
    /// repeat).
    pub fn reversal_going(&mut self, id: i64) -> Result<bool, StoreError> {
        let before: u32 = one_row(
            &self.conn,
            "UPDATE transactions SET reversals_sent = reversals_sent + 1 WHERE id = ?1 RETURNING reversals_sent - 1",
            [id],
            |r| r.get(0),
        )?;
        Ok(before > 0)
    }

    pub fn touch_terminal(
        &mut self,
        terminal: &TerminalId,
        online: Option<bool>,
        version: Option<&str>,
    ) -> Result<(), StoreError> {
        let before = self.terminal_state(terminal)?;
        exec(
            &self.conn,
            "INSERT INTO terminals (id, name, online, version, last_seen) VALUES (?1, ?1, COALESCE(?2, 1), COALESCE(?3, ''), ?4) \
             ON CONFLICT(id) DO UPDATE SET online = COALESCE(?2, online), version = COALESCE(?3, version), last_seen = ?4",
            params![terminal.as_str(), online, version, now_utc()],
        )?;
        let changed = self.outbox && before != self.terminal_state(terminal)?;
        self.changes.note(Change::TerminalSeen {
            terminal: terminal.clone(),
            changed,
        });
        Ok(())
    }

    /// Whether `terminal` is online and the version it runs, read only
    /// while the shop is in a chain (head office hears of changes).
    fn terminal_state(&self, terminal: &TerminalId) -> Result<Option<(bool, String)>, StoreError> {
        if !self.outbox {
            return Ok(None);
        }
        Ok(self
            .conn
            .prepare_cached("SELECT online, version FROM terminals WHERE id = ?1")?
            .query_row([terminal.as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?)
    }

    /// A retained status from `terminal`: noted when the hub knows it (it
    /// signed in, or was paired), else ignored, so that statuses in made-up
    /// names leave no row. Whether it was known.
    pub fn note_status(
        &mut self,
        terminal: &TerminalId,
        online: bool,
        version: &str,
    ) -> Result<bool, StoreError> {
        let before = self.terminal_state(terminal)?;
        let known = exec(
            &self.conn,
            "UPDATE terminals SET online = ?2, version = ?3, last_seen = ?4 WHERE id = ?1",
            params![terminal.as_str(), online, version, now_utc()],
        )? > 0;
        if known {
            let changed = self.outbox && before != self.terminal_state(terminal)?;
            self.changes.note(Change::TerminalSeen {
                terminal: terminal.clone(),
                changed,
            });
        }
        Ok(known)
    }

    /// The device counters `terminal` sent last, if any.
    pub fn device_health(&self, terminal: &TerminalId) -> Result<Option<DeviceHealth>, StoreError> {
        let json: Option<String> = self
            .conn
            .query_row(
                "SELECT devices FROM terminals WHERE id = ?1",
                [terminal.as_str()],
                |r| r.get(0),
            )
            .optional()?
            .flatten();
        Ok(json.and_then(|j| serde_json::from_str(&j).ok()))
    }

    /// A consistent copy of the whole database at `path` (SQLite's `VACUUM
    /// INTO`), readable by the hub's user only: it holds password hashes.
    /// It holds no key file (see [`backups`] for the copies that do).
    pub fn backup_to(&self, path: &Path) -> Result<(), StoreError> {
        use std::os::unix::fs::PermissionsExt;
        self.vacuum_into(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(|error| {
            StoreError::DataDir {
                dir: path.display().to_string(),
                error,
            }
        })?;
        Ok(())
    }

    /// The copy of [`Store::backup_to`] on a file system that keeps no
    /// permissions (a USB stick's FAT, mounted private to the hub).
    pub(crate) fn vacuum_into(&self, path: &Path) -> Result<(), StoreError> {
        self.conn
            .execute("VACUUM INTO ?1", [path.display().to_string()])?;
        Ok(())
    }

    /// A backup in the data directory's `backups/`, named for what is about
    /// to happen (`before-<what>-<time>.db`); its path.
    pub fn backup_before(&self, what: &str) -> Result<PathBuf, StoreError> {
        let path = self.new_backup_path(&format!("before-{what}-"))?;
        self.backup_to(&path)?;
        backups::add_keys(&path, &self.data_dir())?;
        Ok(path)
    }

    /// A free name in `backups/` (made if need be): `{prefix}{local time}.db`,
    /// and `-2`, `-3`… for more in the same second.
    pub(crate) fn new_backup_path(&self, prefix: &str) -> Result<PathBuf, StoreError> {
        let backups = self.data_dir().join("backups");
        std::fs::create_dir_all(&backups).map_err(|error| StoreError::DataDir {
            dir: backups.display().to_string(),
            error,
        })?;
        let stamp = tallybox_platform::clock::now().format("%Y%m%d-%H%M%S");
        Ok((1..)
            .map(|n| match n {
                1 => backups.join(format!("{prefix}{stamp}.db")),
                n => backups.join(format!("{prefix}{stamp}-{n}.db")),
            })
            .find(|p| !p.exists())
            .expect("a free name"))
    }

    pub fn batch_no(&self) -> Result<u32, StoreError> {
        Ok(open_batch(&self.conn)?)
    }

    pub fn audit_records(&self) -> Result<Vec<audit::Record>, StoreError> {
        Ok(audit::records(&self.conn)?)
    }

    pub fn verify_audit(&self) -> Result<u64, audit::AuditError> {
        audit::verify(&self.conn)
    }
}

#[cfg(test)]
mod tests;
