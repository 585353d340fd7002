//! The store against real SQLite files in a temporary directory.

use super::query::Filter;
use super::*;
use tallybox_core::card::{test_cards, EntryMode};

pub(super) fn new_txn<'a>(
    rid: &'a RequestId,
    tid: &'a TerminalId,
    card: &'a CardRead,
    minor: u64,
) -> NewTxn<'a> {
    NewTxn {
        request_id: rid,
        terminal_id: tid,
        kind: TxnKind::Sale,
        amount: Amount::from_minor(minor).unwrap(),
        currency: "CNY",
        card,
        original_id: None,
        split: None,
    }
}

pub(super) fn approve(store: &mut Store, id: i64) -> Txn {
    let verdict = Verdict {
        status: TxnStatus::Approved,
        response_code: tallybox_core::code::ResponseCode::APPROVED,
        auth_code: "123456",
        reference_no: "000000000001",
    };
    store.finish(id, &verdict).unwrap()
}

/// An approved void of `sale` on its checkout, with the card it was paid by.
pub(super) fn void(store: &mut Store, sale: &Txn) -> Txn {
    let (rid, tid) = (RequestId::new(), TerminalId::parse(&sale.terminal_id).unwrap());
    let card = test_cards::by_name("approved").unwrap().read(EntryMode::Swipe);
    let void = NewTxn {
        kind: TxnKind::Void,
        amount: sale.amount,
        original_id: Some(sale.id),
        ..new_txn(&rid, &tid, &card, 0)
    };
    let id = store.begin(&void).unwrap().id;
    approve(store, id)
}

/// An approved card sale of `minor` on T1.
pub(super) fn sale(store: &mut Store, minor: u64) -> Txn {
    let (rid, tid) = (RequestId::new(), TerminalId::parse("T1").unwrap());
    let card = test_cards::by_name("approved").unwrap().read(EntryMode::Swipe);
    let id = store.begin(&new_txn(&rid, &tid, &card, minor)).unwrap().id;
    approve(store, id)
}

#[test]
fn a_cash_sale_is_recorded_approved_at_once_and_stays_out_of_the_acquirers_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let tid = TerminalId::parse("T1").unwrap();
    let card = test_cards::by_name("approved").unwrap().read(EntryMode::Swipe);
    let (r1, r2) = (RequestId::new(), RequestId::new());
    let paid_by_card = store.begin(&new_txn(&r1, &tid, &card, 1250)).unwrap();
    approve(&mut store, paid_by_card.id);
    let cash = store
        .record_cash(&NewCash {
            request_id: &r2,
            terminal_id: &tid,
            kind: TxnKind::Sale,
            amount: Amount::from_minor(4250).unwrap(),
            currency: "CNY",
            tendered: Amount::from_minor(5000).unwrap(),
            original_id: None,
            split: None,
        })
        .unwrap();
    assert_eq!((cash.status, cash.trace_no), (TxnStatus::Approved, 2));
    assert_eq!(
        cash.paid.change(cash.amount),
        Some(Amount::from_minor(750).unwrap())
    );
    assert!(
        store.pending().unwrap().is_empty(),
        "nothing of cash is left pending"
    );
    // Read back as written, after a reopen.
    drop(store);
    let store = Store::open(dir.path()).unwrap();
    let again = store.by_request(r2.as_str()).unwrap().unwrap();
    assert_eq!(again.paid, cash.paid);
    assert_eq!(
        again.response_code,
        Some(tallybox_core::code::ResponseCode::APPROVED)
    );
    // The acquirer hears of the card sale only; the batch still lists both.
    assert_eq!(store.batch_count(1, "T1").unwrap(), 1);
    let items = store.batch_items(1, "T1").unwrap();
    assert_eq!(items.iter().map(|i| i.trace_no).collect::<Vec<_>>(), vec![1]);
    let rows = store.batch_rows(1).unwrap();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(
        store.verify_audit().unwrap(),
        3,
        "pending, approved, and the cash sale"
    );
}

#[test]
fn pending_then_approved_with_trace_numbers_and_audit() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let tid = TerminalId::parse("T1").unwrap();
    let card = test_cards::by_name("approved").unwrap().read(EntryMode::Swipe);
    let (r1, r2) = (RequestId::new(), RequestId::new());
    let a = store.begin(&new_txn(&r1, &tid, &card, 1250)).unwrap();
    assert_eq!(a.status, TxnStatus::Pending);
    assert_eq!(store.pending().unwrap().len(), 1);
    let b = store.begin(&new_txn(&r2, &tid, &card, 99)).unwrap();
    assert_eq!((a.trace_no, b.trace_no), (1, 2));
    let a = approve(&mut store, a.id);
    assert_eq!(a.status, TxnStatus::Approved);
    assert_eq!(a.paid.card().unwrap().masked_pan.as_str(), "622202******0005");
    // The first final state wins.
    let again = store
        .finish(
            a.id,
            &Verdict {
                status: TxnStatus::Declined,
                response_code: tallybox_core::code::ResponseCode::DO_NOT_HONOUR,
                auth_code: "",
                reference_no: "",
            },
        )
        .unwrap();
    assert_eq!(again.status, TxnStatus::Approved);
    assert_eq!(store.by_request(r1.as_str()).unwrap().unwrap().id, a.id);
    assert_eq!(store.verify_audit().unwrap(), 3);
}

#[test]
fn the_database_never_holds_the_card_number() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let tid = TerminalId::parse("T1").unwrap();
    let card = test_cards::by_name("visa").unwrap().read(EntryMode::Tap);
    let rid = RequestId::new();
    let t = store.begin(&new_txn(&rid, &tid, &card, 500)).unwrap();
    approve(&mut store, t.id);
    drop(store);
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        assert!(!bytes.windows(16).any(|w| w == b"4111111111111111"));
    }
}

#[test]
fn tampering_with_the_audit_log_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let tid = TerminalId::parse("T1").unwrap();
    let card = test_cards::by_name("approved").unwrap().read(EntryMode::Swipe);
    for _ in 0..3 {
        let rid = RequestId::new();
        let t = store.begin(&new_txn(&rid, &tid, &card, 100)).unwrap();
        approve(&mut store, t.id);
    }
    assert_eq!(store.verify_audit().unwrap(), 6);
    store
        .connection()
        .execute(
            "UPDATE audit_log SET detail = replace(detail, '100', '1') WHERE seq = 3",
            [],
        )
        .unwrap();
    assert_eq!(store.verify_audit(), Err(audit::AuditError::Altered { seq: 3 }));
    store
        .connection()
        .execute("DELETE FROM audit_log WHERE seq = 3", [])
        .unwrap();
    assert_eq!(store.verify_audit(), Err(audit::AuditError::Broken { seq: 4 }));
}

#[test]
fn lost_requests_are_remembered_only_when_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let tid = TerminalId::parse("T1").unwrap();
    let card = test_cards::by_name("approved").unwrap().read(EntryMode::Swipe);
    let seen = RequestId::new();
    store.begin(&new_txn(&seen, &tid, &card, 100)).unwrap();
    assert!(!store.mark_lost(&seen, &tid).unwrap());
    let unseen = RequestId::new();
    assert!(store.mark_lost(&unseen, &tid).unwrap());
    assert!(store.is_lost(&unseen).unwrap());
    assert!(!store.is_lost(&seen).unwrap());
}

#[test]
fn pages_by_keyset_and_filters() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let t1 = TerminalId::parse("T1").unwrap();
    let t2 = TerminalId::parse("T2").unwrap();
    let union = test_cards::by_name("approved").unwrap().read(EntryMode::Swipe);
    let visa = test_cards::by_name("visa").unwrap().read(EntryMode::Swipe);
    for i in 0..7u64 {
        let rid = RequestId::new();
        let (tid, card) = if i % 2 == 0 { (&t1, &union) } else { (&t2, &visa) };
        let t = store.begin(&new_txn(&rid, tid, card, 100 + i)).unwrap();
        approve(&mut store, t.id);
    }
    let page1 = store
        .list(&Filter {
            limit: Some(3),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        page1.items.iter().map(|t| t.amount.minor()).collect::<Vec<_>>(),
        [106, 105, 104]
    );
    let page2 = store
        .list(&Filter {
            limit: Some(3),
            before: page1.next_before,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(
        page2.items.iter().map(|t| t.amount.minor()).collect::<Vec<_>>(),
        [103, 102, 101]
    );
    let page3 = store
        .list(&Filter {
            limit: Some(3),
            before: page2.next_before,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(page3.items.len(), 1);
    assert_eq!(page3.next_before, None);
    let t2_only = store
        .list(&Filter {
            terminal: Some("T2".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(t2_only.items.len(), 3);
    let by_last4 = store
        .list(&Filter {
            last4: Some("1111".into()),
            ..Default::default()
        })
        .unwrap();
    assert!(by_last4
        .items
        .iter()
        .all(|t| t.paid.card().unwrap().masked_pan.as_str().ends_with("1111")));
    assert_eq!(by_last4.items.len(), 3);
    let by_amount = store
        .list(&Filter {
            amount: Some("1.04".into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(by_amount.items.len(), 1);
    let today = tallybox_platform::clock::now().format("%Y-%m-%d").to_string();
    let today_only = store
        .list(&Filter {
            from: Some(today.clone()),
            to: Some(today),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(today_only.items.len(), 7);
    let past = store
        .list(&Filter {
            to: Some("2000-01-01".into()),
            ..Default::default()
        })
        .unwrap();
    assert!(past.items.is_empty());
}

#[test]
fn a_database_from_a_newer_build_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path()).unwrap());
    let conn = Connection::open(dir.path().join("tallybox.db")).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let err = Store::open(dir.path()).err().unwrap();
    assert!(err.to_string().contains("newer Tallybox"), "{err}");
}

#[test]
fn the_key_file_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    drop(Store::open(dir.path()).unwrap());
    let mode = std::fs::metadata(dir.path().join("pan-hash.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn each_transaction_gets_its_own_e_receipt_token_and_terminals_their_device_counters() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let tid = TerminalId::parse("T1").unwrap();
    let card = test_cards::by_name("approved").unwrap().read(EntryMode::Swipe);
    let (r1, r2) = (RequestId::new(), RequestId::new());
    let a = store.begin(&new_txn(&r1, &tid, &card, 1250)).unwrap();
    let b = store.begin(&new_txn(&r2, &tid, &card, 99)).unwrap();
    let (ta, tb) = (a.receipt_token.clone().unwrap(), b.receipt_token.clone().unwrap());
    assert_ne!(ta, tb);
    assert_eq!(ta.len(), 26);
    // Made one after the other, they sort in that order by their time (the
    // first 45 bits), so their index takes each new one on its last page.
    assert!(ta[..9] <= tb[..9], "{ta} {tb}");
    assert_eq!(store.by_receipt_token(&ta).unwrap().unwrap().id, a.id);
    assert!(store
        .by_receipt_token("AAAAAAAAAAAAAAAAAAAAAAAAAA")
        .unwrap()
        .is_none());
    let shop = crate::shop::Shop {
        public_url: "http://tallybox.local/".into(),
        ..crate::shop::Shop::from_config(&crate::config::Config::default()).unwrap()
    };
    let link = a.receipt(&shop).link;
    assert_eq!(link, Some(format!("http://tallybox.local/r/{ta}")));

    store.touch_terminal(&tid, Some(true), None).unwrap();
    assert_eq!(store.device_health(&tid).unwrap(), None);
    let health = DeviceHealth {
        swipes: 10,
        swipe_errors: 4,
        printer: Some(tallybox_core::protocol::PrinterProblem::PaperOut),
        ..Default::default()
    };
    store.record_heartbeat(&tid, 30, &health).unwrap();
    assert_eq!(store.device_health(&tid).unwrap(), Some(health));
}

#[test]
fn the_data_directory_and_database_files_are_the_hubs_alone() {
    use std::os::unix::fs::PermissionsExt;
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("data");
    let mode = |name: &str| std::fs::metadata(dir.join(name)).unwrap().permissions().mode() & 0o777;
    {
        let mut s = Store::open(&dir).unwrap();
        let (rid, tid) = (RequestId::new(), TerminalId::parse("T1").unwrap());
        let card = test_cards::by_name("approved").unwrap().read(EntryMode::Swipe);
        s.begin(&new_txn(&rid, &tid, &card, 100)).unwrap();
        assert_eq!(mode(""), 0o700);
        for file in ["tallybox.db", "tallybox.db-wal", "pan-hash.key"] {
            assert_eq!(mode(file), 0o600, "{file}");
        }
    }
    // A database left readable by an older version is closed up at the next start.
    std::fs::set_permissions(dir.join("tallybox.db"), std::fs::Permissions::from_mode(0o644)).unwrap();
    Store::open(&dir).unwrap();
    assert_eq!(mode("tallybox.db"), 0o600);
}

#[test]
fn a_supervisor_pin_an_older_hub_kept_in_clear_is_hashed_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let kept = |store: &Store| -> String {
        store
            .conn
            .query_row("SELECT value FROM settings WHERE key = 'shop'", [], |r| r.get(0))
            .unwrap()
    };
    store
        .conn
        .execute(
            "INSERT INTO settings (key, value) VALUES ('shop', ?1)",
            [r#"{"name":"Corner Shop","supervisor_pin":"4321","pairing_required":true}"#],
        )
        .unwrap();
    store.hash_clear_supervisor_pin().unwrap();
    let once = kept(&store);
    assert!(!once.contains("4321"), "{once}");
    let hash = store.shop_edit().unwrap().unwrap().supervisor_pin_hash.unwrap();
    assert!(crate::passwords::verify("4321", &hash));
    store.hash_clear_supervisor_pin().unwrap();
    assert_eq!(kept(&store), once, "a hash is not hashed again");
}

#[test]
fn a_database_file_shorter_than_its_header_is_damage_unless_its_wal_still_holds_pages() {
    let dir = tempfile::tempdir().unwrap();
    {
        let mut store = Store::open(dir.path()).unwrap();
        store.freeze("T1", "a test").unwrap();
        store
            .connection()
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
            .unwrap();
    }
    let db = dir.path().join("tallybox.db");
    assert_eq!(cut_short(&db).unwrap(), None, "whole");
    let len = std::fs::metadata(&db).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&db)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let why = cut_short(&db).unwrap().expect("cut short");
    assert!(why.contains("cut short"), "{why}");
    let e = Store::open(dir.path()).err().expect("refused");
    assert!(e.is_damage(), "{e}");
    // A checkpoint cut by a power loss looks the same on the main file, but
    // the WAL still holds the pages: SQLite finishes it, nothing is damaged.
    std::fs::write(dir.path().join("tallybox.db-wal"), vec![1u8; 4096]).unwrap();
    assert_eq!(cut_short(&db).unwrap(), None);
}

#[test]
fn a_settlement_takes_a_trace_number_of_its_own_once_per_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let tid = TerminalId::parse("T1").unwrap();
    let card = test_cards::by_name("approved").unwrap().read(EntryMode::Swipe);
    let (r1, r2) = (RequestId::new(), RequestId::new());
    let sale = store.begin(&new_txn(&r1, &tid, &card, 1250)).unwrap();
    approve(&mut store, sale.id);
    let batch = sale.batch_no;
    let stan = store.settlement_trace(batch, "T1").unwrap();
    assert_eq!(stan, sale.trace_no + 1, "the terminal's next trace number");
    // Asked again (after a crash): the same number, nothing more taken.
    assert_eq!(store.settlement_trace(batch, "T1").unwrap(), stan);
    drop(store);
    let mut store = Store::open(dir.path()).unwrap();
    assert_eq!(
        store.settlement_trace(batch, "T1").unwrap(),
        stan,
        "kept across a restart"
    );
    // The next sale never reuses it.
    let next = store.begin(&new_txn(&r2, &tid, &card, 99)).unwrap();
    assert_eq!(next.trace_no, stan + 1);
}

#[test]
fn the_owners_own_shop_settings_are_those_changed_on_the_page_or_before_joining_a_chain() {
    use crate::shop::Shop;
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let file = Shop::from_config(&crate::config::Config::default()).unwrap();
    assert!(store.shop_local(&file).unwrap().is_empty());
    let edit = Shop {
        slip_footer: vec!["Our own footer".into()],
        ..file.clone()
    };
    store.set_shop_edit(&edit, "owner").unwrap();
    let local: Vec<String> = store.shop_local(&file).unwrap().into_iter().collect();
    assert_eq!(local, ["slip_footer"], "edited before any was noted");
    store
        .note_shop_local(&file, &["managers_unfreeze".to_string()])
        .unwrap();
    let local: Vec<String> = store.shop_local(&file).unwrap().into_iter().collect();
    assert_eq!(local, ["managers_unfreeze", "slip_footer"]);
    let header = Shop {
        slip_header: vec!["Open 8-22".into()],
        ..edit
    };
    store
        .set_shop_edit_by_owner(&header, "owner", &file, &["slip_header".to_string()])
        .unwrap();
    assert_eq!(store.shop_edit().unwrap().unwrap().slip_header, ["Open 8-22"]);
    let local: Vec<String> = store.shop_local(&file).unwrap().into_iter().collect();
    assert_eq!(local, ["managers_unfreeze", "slip_footer", "slip_header"]);
}

#[test]
fn a_freeze_is_said_in_chinese_only_where_the_hub_wrote_it_and_the_stores_comes_first() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let t1 = TerminalId::parse("T1").unwrap();
    assert_eq!(store.frozen_said(&t1).unwrap(), None);
    store.freeze_said("T1", "card testing", "疑似盗卡测试").unwrap();
    let said = store.frozen_said(&t1).unwrap().unwrap();
    assert_eq!(
        (said.en.as_str(), said.zh.as_deref()),
        ("card testing", Some("疑似盗卡测试"))
    );
    // The whole shop closed by the owner's own words: those, in both.
    store.freeze("store", "stocktaking").unwrap();
    let said = store.frozen_said(&t1).unwrap().unwrap();
    assert_eq!(
        (said.en.as_str(), said.zh.as_deref()),
        ("stocktaking", Some("stocktaking"))
    );
}

/// What one sale writes to the SD card: the pages its two commits (pending,
/// then the verdict) put in the write-ahead log, each sale alone, on a store
/// that already holds a thousand sales of twenty checkouts. Cards, amounts,
/// approval codes and references all differ, as a shop's do.
#[test]
fn a_sale_alone_writes_few_pages_to_the_card() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::open(dir.path()).unwrap();
    let expiry = test_cards::by_name("approved").unwrap().read(EntryMode::Swipe);
    let sale = |store: &mut Store, n: u64| {
        // Spread over the numbers as cards are: a multiplicative hash of n.
        let spread = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 20;
        let body = format!("622202{:09}", spread % 1_000_000_000);
        let check = (0..10)
            .map(|d| format!("{body}{d}"))
            .find(|pan| tallybox_core::card::luhn_ok(pan))
            .unwrap();
        let card = CardRead {
            pan: tallybox_core::card::Pan::parse(&check).unwrap(),
            ..expiry.clone()
        };
        let (rid, tid) = (
            RequestId::new(),
            TerminalId::parse(&format!("T{}", n % 20)).unwrap(),
        );
        let txn = store
            .begin(&new_txn(&rid, &tid, &card, 100 + spread % 50_000))
            .unwrap();
        let (auth, reference) = (
            format!("{:06}", spread % 1_000_000),
            format!("{:012}", spread >> 8),
        );
        let verdict = Verdict {
            status: TxnStatus::Approved,
            response_code: tallybox_core::code::ResponseCode::APPROVED,
            auth_code: &auth,
            reference_no: &reference,
        };
        store.finish(txn.id, &verdict).unwrap();
    };
    for n in 0..1_000 {
        sale(&mut store, n);
    }
    let conn = store.connection();
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
    let page: i64 = conn.query_row("PRAGMA page_size", [], |r| r.get(0)).unwrap();
    let page = page as u64;
    let wal = dir.path().join("tallybox.db-wal");
    assert_eq!(std::fs::metadata(&wal).unwrap().len(), 0);
    const SALES: u64 = 50;
    for n in 1_000..1_000 + SALES {
        sale(&mut store, n);
    }
    // The log's header, then a 24-byte header and a page for each page written.
    let frames = (std::fs::metadata(&wal).unwrap().len() - 32) / (24 + page);
    let per_sale = frames as f64 / SALES as f64;
    // 23 (46 KiB) since the card-testing rule's index holds declines only
    // (26 before): a page of the table, of the audit log and of the daily
    // totals at each commit, and one of each index the row is in.
    assert!(per_sale <= 24.0, "{per_sale:.1} pages of {page} B a sale");
}
