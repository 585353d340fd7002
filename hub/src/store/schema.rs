//! Schema migrations, numbered by SQLite's `user_version`. A migration is
//! appended, never edited: a hub in a shop upgrades from whatever it has.

use rusqlite::Connection;

const MIGRATIONS: &[&str] = &[
    // 1: the foundation.
    r#"
    CREATE TABLE transactions (
        id            INTEGER PRIMARY KEY,
        request_id    TEXT    NOT NULL UNIQUE,
        terminal_id   TEXT    NOT NULL,
        kind          TEXT    NOT NULL,
        status        TEXT    NOT NULL,
        amount        INTEGER NOT NULL CHECK (amount >= 0),
        currency      TEXT    NOT NULL,
        masked_pan    TEXT    NOT NULL,
        last4         TEXT    NOT NULL,
        brand         TEXT    NOT NULL,
        entry_mode    TEXT    NOT NULL,
        pan_hash      TEXT    NOT NULL,
        batch_no      INTEGER NOT NULL,
        trace_no      INTEGER NOT NULL,
        reference_no  TEXT    NOT NULL DEFAULT '',
        auth_code     TEXT    NOT NULL DEFAULT '',
        response_code TEXT    NOT NULL DEFAULT '',
        local_time    TEXT    NOT NULL,
        created_at    TEXT    NOT NULL,
        updated_at    TEXT    NOT NULL
    );
    CREATE INDEX transactions_time ON transactions (local_time, id);
    CREATE INDEX transactions_terminal ON transactions (terminal_id, id);
    CREATE INDEX transactions_status ON transactions (status, id);
    CREATE INDEX transactions_last4 ON transactions (last4, id);
    CREATE UNIQUE INDEX transactions_trace ON transactions (terminal_id, batch_no, trace_no);

    -- Request ids a terminal asked about but the hub never received: a late
    -- copy of such a request is refused, never charged.
    CREATE TABLE lost_requests (
        request_id  TEXT PRIMARY KEY,
        terminal_id TEXT NOT NULL,
        at          TEXT NOT NULL
    );

    CREATE TABLE terminals (
        id         TEXT PRIMARY KEY,
        name       TEXT NOT NULL,
        online     INTEGER NOT NULL DEFAULT 0,
        version    TEXT NOT NULL DEFAULT '',
        last_seen  TEXT NOT NULL,
        next_trace INTEGER NOT NULL DEFAULT 1
    );

    CREATE TABLE settings (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    INSERT INTO settings (key, value) VALUES ('batch_no', '1');

    CREATE TABLE audit_log (
        seq       INTEGER PRIMARY KEY,
        at        TEXT NOT NULL,
        event     TEXT NOT NULL,
        txn_id    INTEGER,
        detail    TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash      TEXT NOT NULL
    );
    "#,
    // 2: receipts are listed newest first by local time; every filter's index
    // ends in (local_time, id) so a page of 50 is an index walk, never a sort.
    r#"
    DROP INDEX transactions_terminal;
    DROP INDEX transactions_status;
    DROP INDEX transactions_last4;
    CREATE INDEX transactions_terminal ON transactions (terminal_id, local_time, id);
    CREATE INDEX transactions_status ON transactions (status, local_time, id);
    CREATE INDEX transactions_last4 ON transactions (last4, local_time, id);
    CREATE INDEX transactions_amount ON transactions (amount, local_time, id);
    "#,
    // 3: each transaction gets an unguessable token for the customer's
    // e-receipt page `/r/{token}` (shown as a QR code when the slip cannot print).
    r#"
    ALTER TABLE transactions ADD COLUMN receipt_token TEXT;
    CREATE UNIQUE INDEX transactions_receipt_token ON transactions (receipt_token);
    "#,
    // 4: each terminal's device counters from its last heartbeat (JSON):
    // swipes and read errors, taps, stuck cards, printer problem.
    r#"
    ALTER TABLE terminals ADD COLUMN devices TEXT;
    "#,
    // 5: voids and refunds point at the sale they undo.
    r#"
    ALTER TABLE transactions ADD COLUMN original_id INTEGER REFERENCES transactions (id);
    CREATE INDEX transactions_original ON transactions (original_id) WHERE original_id IS NOT NULL;
    "#,
    // 6: each settled batch, its totals and whether the acquirer agreed.
    r#"
    CREATE TABLE settlements (
        batch_no  INTEGER PRIMARY KEY,
        at        TEXT NOT NULL,
        balanced  INTEGER NOT NULL,
        report    TEXT NOT NULL
    );
    "#,
    // 7: wrong PINs per card (by its keyed hash) and local day.
    r#"
    CREATE TABLE pin_failures (
        pan_hash TEXT NOT NULL,
        day      TEXT NOT NULL,
        count    INTEGER NOT NULL,
        PRIMARY KEY (pan_hash, day)
    );
    "#,
    // 8: fraud rule hits, and what is frozen (a terminal, or 'store').
    r#"
    CREATE INDEX transactions_pan ON transactions (pan_hash, local_time);
    CREATE TABLE fraud_hits (
        id          INTEGER PRIMARY KEY,
        at          TEXT NOT NULL,
        local_time  TEXT NOT NULL,
        terminal_id TEXT NOT NULL,
        rule        TEXT NOT NULL,
        action      TEXT NOT NULL,
        detail      TEXT NOT NULL,
        -- what the hit is about: the card's keyed hash, or the terminal
        subject     TEXT NOT NULL
    );
    CREATE INDEX fraud_hits_time ON fraud_hits (local_time);
    CREATE INDEX fraud_hits_subject ON fraud_hits (rule, subject, local_time);
    CREATE TABLE freezes (
        scope   TEXT PRIMARY KEY,
        reason  TEXT NOT NULL,
        at      TEXT NOT NULL
    );
    "#,
    // 9: the card-testing rule counts a terminal's recent declines on every
    // sale: an index walk, not a scan of every decline in the store.
    r#"
    CREATE INDEX transactions_terminal_status ON transactions (terminal_id, status, local_time);
    "#,
    // 10: who may open the owner's web page (argon2 hashes), and every login
    // attempt: the owner sees when and from where; failures lock an account
    // with a growing back-off.
    r#"
    CREATE TABLE accounts (
        name          TEXT PRIMARY KEY,
        role          TEXT NOT NULL CHECK (role IN ('owner', 'manager')),
        password_hash TEXT NOT NULL,
        created_at    TEXT NOT NULL,
        updated_at    TEXT NOT NULL
    );
    CREATE UNIQUE INDEX accounts_one_owner ON accounts (role) WHERE role = 'owner';
    CREATE TABLE logins (
        id      INTEGER PRIMARY KEY,
        at      TEXT NOT NULL,
        account TEXT NOT NULL,
        ip      TEXT NOT NULL,
        ok      INTEGER NOT NULL
    );
    CREATE INDEX logins_account ON logins (account, id);
    "#,
    // 11: a customer's dispute quotes the auth code or the reference number;
    // partial indexes leave out the rows that have none (pending, declined).
    r#"
    CREATE INDEX transactions_auth_code ON transactions (auth_code, local_time, id) WHERE auth_code <> '';
    CREATE INDEX transactions_reference ON transactions (reference_no, local_time, id) WHERE reference_no <> '';
    "#,
    // 12: cashiers (收银员) sign on at a checkout with their number and PIN;
    // the checkout's cashier is kept (a restart keeps them signed on) and
    // stamped on every transaction. A removed cashier keeps their row, so
    // old sales still show their name.
    r#"
    CREATE TABLE cashiers (
        no         TEXT PRIMARY KEY,
        name       TEXT NOT NULL,
        pin_hash   TEXT NOT NULL,
        failures   INTEGER NOT NULL DEFAULT 0,
        locked_at  TEXT,
        removed_at TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    ALTER TABLE terminals ADD COLUMN cashier TEXT;
    ALTER TABLE transactions ADD COLUMN cashier TEXT;
    "#,
    // 13: the key each paired terminal shares with the hub (hex), the one a
    // pairing in progress would give it, and revoked terminals.
    r#"
    CREATE TABLE terminal_keys (
        terminal_id TEXT PRIMARY KEY,
        key         TEXT,
        pending_key TEXT,
        state       TEXT NOT NULL CHECK (state IN ('pairing', 'paired', 'revoked')),
        changed_at  TEXT NOT NULL
    );
    "#,
    // 14: each checkout's odometers, kept across its restarts (swipes since
    // the reader was cleaned, paper since the roll was changed), when its
    // program started, and the history of the troubleshooting checks.
    r#"
    CREATE TABLE terminal_wear (
        terminal_id   TEXT PRIMARY KEY,
        started_at    TEXT NOT NULL,
        uptime_s      INTEGER NOT NULL DEFAULT 0,
        swipes        INTEGER NOT NULL DEFAULT 0,
        swipe_errors  INTEGER NOT NULL DEFAULT 0,
        taps          INTEGER NOT NULL DEFAULT 0,
        tap_errors    INTEGER NOT NULL DEFAULT 0,
        swipes_since_clean INTEGER NOT NULL DEFAULT 0,
        cleaned_at    TEXT,
        paper_mm_since_roll INTEGER NOT NULL DEFAULT 0,
        roll_at       TEXT
    );
    CREATE TABLE terminal_starts (
        terminal_id TEXT NOT NULL,
        at          TEXT NOT NULL
    );
    CREATE INDEX terminal_starts_at ON terminal_starts (terminal_id, at);
    CREATE TABLE check_history (
        id        INTEGER PRIMARY KEY,
        at        TEXT NOT NULL,
        check_id  TEXT NOT NULL,
        status    TEXT NOT NULL,
        evidence  TEXT NOT NULL
    );
    CREATE INDEX check_history_check ON check_history (check_id, id);
    "#,
    // 15: the highest message counter accepted from each paired terminal, so
    // a message captured before a hub restart cannot be replayed after it.
    r#"
    ALTER TABLE terminal_keys ADD COLUMN rx_seen INTEGER NOT NULL DEFAULT 0;
    "#,
    // 16: a settlement asked of the acquirer and not yet recorded, with the
    // request that asked: after a crash it is asked again (the acquirer
    // answers a batch it settled with its first answer), and a repeat of the
    // request gets the recorded settlement.
    r#"
    CREATE TABLE settling (
        batch_no   INTEGER PRIMARY KEY,
        request_id TEXT NOT NULL,
        at         TEXT NOT NULL
    );
    ALTER TABLE settlements ADD COLUMN request_id TEXT;
    CREATE UNIQUE INDEX settlements_request ON settlements (request_id) WHERE request_id IS NOT NULL;
    "#,
    // 17: reversals of a transaction that may have reached the acquirer: the
    // second and later go out as repeats (0401).
    r#"
    ALTER TABLE transactions ADD COLUMN reversals_sent INTEGER NOT NULL DEFAULT 0;
    "#,
    // 18: each terminal's settlement message carries a trace number of its
    // own (field 11), taken once per batch: asked again after a crash, it
    // goes out with the same one.
    r#"
    CREATE TABLE settlement_traces (
        batch_no    INTEGER NOT NULL,
        terminal_id TEXT    NOT NULL,
        trace_no    INTEGER NOT NULL,
        PRIMARY KEY (batch_no, terminal_id)
    );
    "#,
    // 19: what the hub itself says in the checks' history, fraud hits and
    // freezes, in Chinese too (empty in rows written before).
    r#"
    ALTER TABLE check_history ADD COLUMN evidence_zh TEXT NOT NULL DEFAULT '';
    ALTER TABLE fraud_hits ADD COLUMN detail_zh TEXT NOT NULL DEFAULT '';
    ALTER TABLE freezes ADD COLUMN reason_zh TEXT NOT NULL DEFAULT '';
    "#,
    // 20: the tender a transaction was paid by (`card` for every row
    // before), and for cash what the customer handed over (a cash row's
    // card columns are empty); the cash drawer opened without a sale and
    // counted at a shift's end, each once per request; the parts of a sale
    // paid with several tenders share a group (the first part's request id)
    // and the sale's total.
    r#"
    ALTER TABLE transactions ADD COLUMN tender TEXT NOT NULL DEFAULT 'card';
    ALTER TABLE transactions ADD COLUMN tendered INTEGER;
    ALTER TABLE transactions ADD COLUMN split_of TEXT;
    ALTER TABLE transactions ADD COLUMN split_total INTEGER;
    CREATE INDEX transactions_split ON transactions (split_of) WHERE split_of IS NOT NULL;
    CREATE TABLE drawer_events (
        id          INTEGER PRIMARY KEY,
        request_id  TEXT    NOT NULL UNIQUE,
        terminal_id TEXT    NOT NULL,
        kind        TEXT    NOT NULL CHECK (kind IN ('no_sale', 'count')),
        cashier     TEXT,
        local_time  TEXT    NOT NULL,
        created_at  TEXT    NOT NULL,
        -- A count: the cash the drawer should hold (cash sales since the
        -- last count), what was counted, and the last transaction included.
        expected    INTEGER,
        counted     INTEGER,
        upto_txn    INTEGER
    );
    CREATE INDEX drawer_events_terminal ON drawer_events (terminal_id, kind, id);
    CREATE INDEX drawer_events_time ON drawer_events (local_time);
    "#,
    // 21: a payment code's provider, and the buyer's account as the
    // provider masks it (once paid); the provider's trade number is the
    // row's reference_no.
    r#"
    ALTER TABLE transactions ADD COLUMN provider TEXT;
    ALTER TABLE transactions ADD COLUMN buyer TEXT;
    "#,
    // 22: the outbox a head office reads while the shop is in a chain
    // (store/outbox.rs): numbered, chained by hash; `chain_acked` in settings.
    r#"
    CREATE TABLE outbox (
        seq   INTEGER PRIMARY KEY,
        kind  TEXT    NOT NULL,
        at    TEXT    NOT NULL,
        body  TEXT    NOT NULL,
        hash  BLOB    NOT NULL
    );
    "#,
    // 23: each local day's totals by what the reports group on, kept by
    // triggers in the transaction that writes the sale or its verdict: a
    // week's or a month's report reads a few rows a day instead of every
    // transaction (store/report.rs). Filled from the transactions once.
    r#"
    CREATE TABLE daily_totals (
        day         TEXT    NOT NULL,
        terminal_id TEXT    NOT NULL,
        brand       TEXT    NOT NULL,
        kind        TEXT    NOT NULL,
        status      TEXT    NOT NULL,
        cashier     TEXT    NOT NULL,
        tender      TEXT    NOT NULL,
        count       INTEGER NOT NULL,
        minor       INTEGER NOT NULL,
        PRIMARY KEY (day, terminal_id, brand, kind, status, cashier, tender)
    ) WITHOUT ROWID;
    INSERT INTO daily_totals
        SELECT substr(local_time, 1, 10), terminal_id, brand, kind, status, coalesce(cashier, ''), tender,
               count(*), sum(amount)
        FROM transactions WHERE status IN ('approved', 'declined')
        GROUP BY 1, 2, 3, 4, 5, 6, 7;
    CREATE TRIGGER daily_totals_insert AFTER INSERT ON transactions
        WHEN NEW.status IN ('approved', 'declined')
    BEGIN
        INSERT INTO daily_totals VALUES (substr(NEW.local_time, 1, 10), NEW.terminal_id, NEW.brand, NEW.kind,
            NEW.status, coalesce(NEW.cashier, ''), NEW.tender, 1, NEW.amount)
        ON CONFLICT DO UPDATE SET count = count + 1, minor = minor + excluded.minor;
    END;
    CREATE TRIGGER daily_totals_leave AFTER UPDATE OF status ON transactions
        WHEN OLD.status IN ('approved', 'declined') AND NEW.status IS NOT OLD.status
    BEGIN
        UPDATE daily_totals SET count = count - 1, minor = minor - OLD.amount
        WHERE day = substr(OLD.local_time, 1, 10) AND terminal_id = OLD.terminal_id AND brand = OLD.brand
          AND kind = OLD.kind AND status = OLD.status AND cashier = coalesce(OLD.cashier, '') AND tender = OLD.tender;
    END;
    CREATE TRIGGER daily_totals_enter AFTER UPDATE OF status ON transactions
        WHEN NEW.status IN ('approved', 'declined') AND NEW.status IS NOT OLD.status
    BEGIN
        INSERT INTO daily_totals VALUES (substr(NEW.local_time, 1, 10), NEW.terminal_id, NEW.brand, NEW.kind,
            NEW.status, coalesce(NEW.cashier, ''), NEW.tender, 1, NEW.amount)
        ON CONFLICT DO UPDATE SET count = count + 1, minor = minor + excluded.minor;
    END;
    CREATE TRIGGER daily_totals_delete AFTER DELETE ON transactions
        WHEN OLD.status IN ('approved', 'declined')
    BEGIN
        UPDATE daily_totals SET count = count - 1, minor = minor - OLD.amount
        WHERE day = substr(OLD.local_time, 1, 10) AND terminal_id = OLD.terminal_id AND brand = OLD.brand
          AND kind = OLD.kind AND status = OLD.status AND cashier = coalesce(OLD.cashier, '') AND tender = OLD.tender;
    END;
    "#,
    // 24: each provider's bill of a day checked against the code payments
    // (store/bills.rs): the latest check of a day and provider.
    r#"
    CREATE TABLE bill_checks (
        day        TEXT NOT NULL,
        provider   TEXT NOT NULL,
        checked_at TEXT NOT NULL,
        error      TEXT,
        result     TEXT,
        PRIMARY KEY (day, provider)
    );
    "#,
    // 25: fewer pages written a sale (an SD card's wear). The card-testing
    // rule's index (9) held every row by checkout and status, so each
    // verdict moved an entry between two pages of its checkout's; it now
    // holds the declines only, the rows the rule counts.
    r#"
    DROP INDEX transactions_terminal_status;
    CREATE INDEX transactions_terminal_declines ON transactions (terminal_id, local_time) WHERE status = 'declined';
    "#,
];

/// Brings the database to the latest schema, one transaction a step; on a
/// failure, the step it stayed at and why.
pub fn migrate(conn: &mut Connection) -> Result<u32, (u32, rusqlite::Error)> {
    let current: u32 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(|e| (0, e))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let step = |conn: &mut Connection| -> rusqlite::Result<()> {
            let tx = conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", (i + 1) as u32)?;
            tx.commit()
        };
        step(conn).map_err(|e| (i as u32, e))?;
    }
    Ok(MIGRATIONS.len() as u32)
}

/// The newest schema this build knows.
pub fn latest() -> u32 {
    MIGRATIONS.len() as u32
}
