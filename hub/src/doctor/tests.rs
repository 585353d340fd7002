use tallybox_core::protocol::DeviceHealth;
use tallybox_core::protocol::PrinterProblem;
use tallybox_platform::machine::{Bluetooth, MachineHealth, Power};

use super::*;
use crate::store::wear::Wear;

fn terminal(id: &str, online: bool, devices: Option<DeviceHealth>) -> TerminalRow {
    TerminalRow {
        id: id.into(),
        name: id.into(),
        online,
        version: "0.1.0".into(),
        last_seen: "2026-11-26T03:00:00".into(),
        devices,
        frozen: None,
        frozen_zh: None,
        cashier: None,
    }
}

fn wear(id: &str) -> Wear {
    Wear {
        terminal_id: id.into(),
        started_at: "2026-11-26T03:00:00Z".into(),
        starts_last_hour: 1,
        ..Default::default()
    }
}

fn healthy() -> Facts {
    Facts {
        terminals: vec![terminal("T1", true, Some(DeviceHealth::default()))],
        wear: vec![wear("T1")],
        hub_version: "0.1.0".into(),
        disk_free: 8 << 30,
        disk_total: 16 << 30,
        integrity: "ok".into(),
        broker_connected: Some(true),
        now: chrono::Local::now().naive_local(),
        ..Default::default()
    }
}

#[test]
fn an_off_site_copy_is_checked_once_one_was_tried_and_a_failure_says_the_stores_words() {
    let mut f = healthy();
    assert!(
        super::checks(&f).iter().all(|c| c.id != "store.offsite"),
        "none set, no check"
    );
    f.offsite = Some(crate::offsite::Copied {
        at: "2026-12-06T03:00:00Z".into(),
        object: None,
        bytes: None,
        error: Some("the store answered 403 SignatureDoesNotMatch: wrong".into()),
    });
    let failed = super::checks(&f)
        .into_iter()
        .find(|c| c.id == "store.offsite")
        .unwrap();
    assert_eq!(failed.status, Status::Warn);
    assert!(
        failed.evidence.contains("SignatureDoesNotMatch"),
        "{}",
        failed.evidence
    );
    assert!(failed.fix_en.contains("[offsite]"), "{}", failed.fix_en);
    f.offsite = Some(crate::offsite::Copied {
        at: "2026-12-06T03:00:00Z".into(),
        object: Some("backups/shop/auto-20261206-030000.db".into()),
        bytes: Some(4096),
        error: None,
    });
    let done = super::checks(&f)
        .into_iter()
        .find(|c| c.id == "store.offsite")
        .unwrap();
    assert_eq!(done.status, Status::Ok);
    assert!(
        done.evidence.contains("backups/shop/auto-20261206-030000.db"),
        "{}",
        done.evidence
    );
}

#[test]
fn code_payments_are_checked_once_the_shop_takes_them() {
    let mut f = healthy();
    assert!(
        super::checks(&f).iter().all(|c| c.id != "payments.codes"),
        "no codes, no check"
    );
    f.codes = super::CodeFacts {
        sales: 12,
        undecided: 0,
        paid_hour: 5,
        not_confirmed_hour: 1,
        key_refused_hour: 0,
        clock_refused_hour: 0,
    };
    assert_eq!(status_of(&super::checks(&f), "payments.codes"), Status::Ok);
    f.codes.not_confirmed_hour = 6;
    let all = super::checks(&f);
    assert_eq!(status_of(&all, "payments.codes"), Status::Warn);
    assert!(find(&all, "payments.codes").evidence.contains("6 buyers"));
    f.codes.undecided = 2;
    let all = super::checks(&f);
    assert_eq!(status_of(&all, "payments.codes"), Status::Fail);
    assert!(find(&all, "payments.codes")
        .evidence_zh
        .contains("2 笔扫码支付尚无结果"));
    // Refused for the shop's key or the hub's clock: said before anything else.
    f.codes.clock_refused_hour = 1;
    let all = super::checks(&f);
    assert!(find(&all, "payments.codes").evidence.contains("hub's clock"));
    f.codes.key_refused_hour = 3;
    let all = super::checks(&f);
    let said = find(&all, "payments.codes");
    assert_eq!(said.status, Status::Fail);
    assert!(said.evidence.contains("3 code payments or refunds") && said.evidence.contains("key"));
    assert!(said.fix_en.contains("app private key"), "{}", said.fix_en);
}

#[test]
fn the_providers_bills_are_checked_once_compared_and_money_taken_unrecorded_is_red() {
    use crate::store::bills::BillCheck;
    let mut f = healthy();
    assert!(super::checks(&f).iter().all(|c| c.id != "payments.bills"));
    let checked = |provider: &str, differences: serde_json::Value| BillCheck {
        day: "2026-12-06".into(),
        provider: provider.into(),
        checked_at: "2026-12-07T02:30:00Z".into(),
        error: None,
        result: Some(serde_json::json!({ "matched": 3, "differences": differences })),
    };
    f.bills = vec![
        checked("alipay", serde_json::json!([])),
        checked("wechat_pay", serde_json::json!([])),
    ];
    assert_eq!(status_of(&super::checks(&f), "payments.bills"), Status::Ok);
    f.bills[1].result = None;
    f.bills[1].error = Some("No Bill Exist".into());
    let all = super::checks(&f);
    assert_eq!(status_of(&all, "payments.bills"), Status::Warn);
    assert!(find(&all, "payments.bills")
        .evidence
        .contains("WeChat Pay's bill of 2026-12-06"));
    f.bills[0] = checked(
        "alipay",
        serde_json::json!([{ "what": "deciding", "out_trade_no": "abc" }]),
    );
    assert!(find(&super::checks(&f), "payments.bills")
        .evidence
        .contains("Alipay abc"));
    f.bills[0] = checked(
        "alipay",
        serde_json::json!([{ "what": "deciding", "out_trade_no": "abc" }, { "what": "charged_not_sold", "out_trade_no": "def" }]),
    );
    let all = super::checks(&f);
    let said = find(&all, "payments.bills");
    assert_eq!(said.status, Status::Fail);
    assert!(
        said.evidence.contains("Alipay def") && !said.evidence.contains("abc"),
        "{}",
        said.evidence
    );
    assert!(said.evidence_zh.contains("支付宝 def"), "{}", said.evidence_zh);
}

fn find<'a>(checks: &'a [Check], id: &str) -> &'a Check {
    checks
        .iter()
        .find(|c| c.id == id)
        .unwrap_or_else(|| panic!("no {id} in {checks:#?}"))
}

fn status_of(checks: &[Check], id: &str) -> Status {
    find(checks, id).status
}

fn sale(f: &Facts, minutes_ago: i64, terminal: &str, code: &str, card: &str) -> Recent {
    Recent {
        terminal_id: terminal.into(),
        status: if code == "00" { "approved" } else { "declined" }.into(),
        response_code: tallybox_core::code::ResponseCode::parse(code),
        pan_hash: format!("hash-{card}"),
        last4: card.into(),
        local_time: (f.now - chrono::Duration::minutes(minutes_ago))
            .format("%Y-%m-%d %H:%M:%S")
            .to_string(),
    }
}

#[test]
fn a_healthy_store_is_all_green() {
    let all = checks(&healthy());
    assert_eq!(worst(&all), Status::Ok, "{all:#?}");
    let ids: Vec<&str> = all.iter().map(|c| c.id.as_str()).collect();
    for id in [
        "terminal.T1.online",
        "terminal.T1.restarts",
        "terminal.T1.printer",
        "terminal.T1.paper",
        "terminal.T1.reader",
        "terminal.T1.reader_cleaning",
        "store.disk",
        "store.integrity",
        "store.history",
        "store.backup",
        "payments.network",
        "payments.cards",
        "payments.reversals",
        "payments.fraud",
        "payments.declines",
        "accounts.lockout",
        "cashiers.locked",
        "hub.broker",
    ] {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
    }
}

#[test]
fn a_disk_is_amber_when_little_is_left_by_share_and_by_size() {
    let gib = 1u64 << 30;
    let status = |free: u64, total: u64| {
        let mut f = healthy();
        (f.disk_free, f.disk_total) = (free, total);
        status_of(&checks(&f), "store.disk")
    };
    // A 16 GiB card: 10 % left is amber, 3 % red.
    assert_eq!(status(16 * gib / 10, 16 * gib), Status::Warn);
    assert_eq!(status(16 * gib * 3 / 100, 16 * gib), Status::Fail);
    // A 256 GiB disk with 30 GiB free (12 %) has years of sales left.
    assert_eq!(status(30 * gib, 256 * gib), Status::Ok);
    // Under 100 MiB is red whatever the disk.
    assert_eq!(status(90 << 20, 256 * gib), Status::Fail);
}

#[test]
fn backups_are_amber_only_once_a_day_and_a_half_passes_without_one() {
    let mut f = healthy();
    let hours = |h| f.now - chrono::Duration::hours(h);
    f.first_sale = Some(hours(2));
    assert_eq!(status_of(&checks(&f), "store.backup"), Status::Ok, "a new shop");
    f.first_sale = Some(hours(40));
    let all = checks(&f);
    let none = find(&all, "store.backup");
    assert_eq!(none.status, Status::Warn);
    assert!(none.evidence.contains("no automatic backup yet"), "{none:?}");
    f.backups = Some((hours(5), 3, 30 << 20));
    let all = checks(&f);
    let fresh = find(&all, "store.backup");
    assert_eq!(fresh.status, Status::Ok);
    assert!(fresh.evidence.contains("3 kept, 30 MiB"), "{fresh:?}");
    f.backups = Some((hours(50), 3, 30 << 20));
    assert_eq!(status_of(&checks(&f), "store.backup"), Status::Warn);
}

#[test]
fn each_fault_turns_its_own_check_and_says_what_to_do() {
    let mut f = healthy();
    f.terminals = vec![
        terminal("T1", false, None),
        terminal(
            "T2",
            true,
            Some(DeviceHealth {
                swipes: 40,
                swipe_errors: 12,
                printer: Some(PrinterProblem::PaperOut),
                slips_waiting: 2,
                ..Default::default()
            }),
        ),
    ];
    f.disk_free = 50 << 20;
    f.integrity = "*** in database main ***\nPage 5: btreeInitPage() returns error code 11".into();
    f.stale_pending = 3;
    f.broker_connected = Some(false);
    f.clock_behind = Some(chrono::Duration::minutes(47));
    let all = checks(&f);
    let clock = find(&all, "store.clock");
    assert_eq!(clock.status, Status::Fail);
    assert!(
        clock.evidence.contains("47 min behind") && clock.evidence.contains("XT"),
        "{clock:?}"
    );
    assert!(clock.fix_en.contains("internet"), "{clock:?}");
    assert_eq!(status_of(&all, "terminal.T1.online"), Status::Fail);
    assert_eq!(status_of(&all, "terminal.T2.printer"), Status::Fail);
    assert_eq!(status_of(&all, "terminal.T2.reader"), Status::Warn);
    assert_eq!(status_of(&all, "store.disk"), Status::Fail);
    assert_eq!(status_of(&all, "store.integrity"), Status::Fail);
    assert_eq!(status_of(&all, "payments.reversals"), Status::Warn);
    assert_eq!(status_of(&all, "hub.broker"), Status::Fail);
    let paper = find(&all, "terminal.T2.printer");
    assert!(
        paper.fix_en.contains("paper roll") && paper.fix_zh.contains("纸卷"),
        "{paper:?}"
    );
    assert!(find(&all, "terminal.T2.reader").evidence.contains("12 of 40"));
    assert_eq!(all[0].status, Status::Fail, "worst first");
    assert_eq!(worst(&all), Status::Fail);
    // A few errors in few swipes are not a dirty reader yet.
    f.terminals[1].devices.as_mut().unwrap().swipes = 10;
    assert_eq!(status_of(&checks(&f), "terminal.T2.reader"), Status::Ok);
    // A part that never started is named, with the way to find out why.
    assert_eq!(status_of(&checks(&f), "terminal.T2.parts"), Status::Ok);
    f.terminals[1].devices.as_mut().unwrap().not_started = vec![
        "keypad: GPIO: Permission denied".into(),
        "OLED: I2C bus 1: No such file or directory".into(),
    ];
    let parts = find(&checks(&f), "terminal.T2.parts").clone();
    assert_eq!(parts.status, Status::Fail);
    assert!(
        parts
            .evidence
            .contains("keypad: GPIO: Permission denied; OLED: I2C bus 1"),
        "{parts:?}"
    );
    assert!(
        parts.fix_en.contains("hw-test") && parts.fix_zh.contains("hw-test"),
        "{parts:?}"
    );
}

#[test]
fn a_reader_failing_alone_is_dirt_with_taps_working_interference_everywhere_the_surroundings() {
    let reader = |swipes, errors, taps, tap_errors| {
        Some(DeviceHealth {
            swipes,
            swipe_errors: errors,
            taps,
            tap_errors,
            ..Default::default()
        })
    };
    let mut f = healthy();
    f.terminals = vec![
        terminal("T1", true, reader(40, 12, 0, 0)),
        terminal("T2", true, reader(40, 1, 0, 0)),
    ];
    let dirty = find(&checks(&f), "terminal.T1.reader").clone();
    assert!(dirty.fix_en.contains("cleaning card"), "{dirty:?}");

    f.terminals[0].devices = reader(40, 12, 12, 1);
    let magnetic = find(&checks(&f), "terminal.T1.reader").clone();
    assert!(
        magnetic.evidence.contains("while taps work (1 of 12 failed)"),
        "{magnetic:?}"
    );
    assert!(magnetic.fix_en.contains("magnets") && magnetic.fix_zh.contains("磁铁"));

    f.terminals[1].devices = reader(30, 10, 0, 0);
    let everywhere = find(&checks(&f), "terminal.T1.reader").clone();
    assert!(
        everywhere.evidence.contains("1 other checkouts' readers"),
        "{everywhere:?}"
    );
    assert!(everywhere.fix_en.contains("all over the shop"));
}

#[test]
fn reminders_restarts_versions_and_lost_requests() {
    let mut f = healthy();
    f.wear[0].swipes_since_clean = terminal::CLEAN_AFTER_SWIPES + 5;
    f.wear[0].paper_mm_since_roll = terminal::ROLL_MM * 9 / 10;
    f.wear[0].starts_last_hour = 4;
    f.terminals[0].version = "0.0.9".into();
    f.lost = vec![("T1".into(), 2)];
    let all = checks(&f);
    let clean = find(&all, "terminal.T1.reader_cleaning");
    assert_eq!(clean.status, Status::Warn);
    assert!(clean.evidence.contains("1005 swipes"), "{clean:?}");
    let paper = find(&all, "terminal.T1.paper");
    assert_eq!(paper.status, Status::Warn);
    assert!(paper.evidence.contains("13.5 m"), "{paper:?}");
    assert_eq!(status_of(&all, "terminal.T1.restarts"), Status::Fail);
    assert!(find(&all, "terminal.T1.version").evidence.contains("0.0.9"));
    assert_eq!(status_of(&all, "terminal.T1.link"), Status::Warn);

    // The printer's own sensor counts before the estimate.
    f.wear[0].paper_mm_since_roll = 0;
    f.terminals[0].devices.as_mut().unwrap().paper_low = true;
    assert_eq!(status_of(&checks(&f), "terminal.T1.paper"), Status::Warn);
}

#[test]
fn machine_heat_power_and_bluetooth() {
    let mut f = healthy();
    f.hub_machine = Some(MachineHealth {
        cpu_temp_c: Some(83),
        power: Some(Power {
            under_voltage: true,
            ..Default::default()
        }),
        bluetooth: Some(Bluetooth::Blocked),
    });
    f.terminals[0].devices.as_mut().unwrap().machine = Some(MachineHealth {
        cpu_temp_c: Some(72),
        power: Some(Power {
            under_voltage_before: true,
            ..Default::default()
        }),
        bluetooth: Some(Bluetooth::On),
    });
    let all = checks(&f);
    assert_eq!(status_of(&all, "hub.temperature"), Status::Fail);
    assert_eq!(status_of(&all, "hub.power"), Status::Fail);
    assert_eq!(status_of(&all, "hub.bluetooth"), Status::Warn);
    assert_eq!(status_of(&all, "terminal.T1.temperature"), Status::Warn);
    assert_eq!(status_of(&all, "terminal.T1.power"), Status::Warn);
    assert_eq!(status_of(&all, "terminal.T1.bluetooth"), Status::Ok);
    assert!(find(&all, "hub.power").fix_en.contains("5 V 3 A"));
    assert!(find(&all, "hub.temperature").evidence.contains("83 °C"));
}

#[test]
fn the_bank_link_and_cards_that_fail_everywhere() {
    let mut f = healthy();
    f.recent = vec![
        sale(&f, 1, "T1", "NC", "1111"),
        sale(&f, 2, "T2", "NC", "2222"),
        sale(&f, 3, "T1", "00", "3333"),
    ];
    let all = checks(&f);
    assert_eq!(status_of(&all, "payments.network"), Status::Fail, "{all:#?}");
    assert!(find(&all, "payments.network").evidence.contains("2 of 3"));
    // The link came back: the newest sale went through.
    f.recent.insert(0, sale(&f, 0, "T1", "00", "4444"));
    assert_eq!(status_of(&checks(&f), "payments.network"), Status::Warn);
    // An hour-old failure is history.
    f.recent = vec![sale(&f, 0, "T1", "00", "4444"), sale(&f, 40, "T1", "NC", "1111")];
    assert_eq!(status_of(&checks(&f), "payments.network"), Status::Ok);

    // One card refused as invalid on two checkouts: the card, not the readers.
    f.recent = vec![
        sale(&f, 1, "T1", "14", "9999"),
        sale(&f, 5, "T2", "14", "9999"),
        sale(&f, 6, "T2", "14", "1234"),
    ];
    let cards = find(&checks(&f), "payments.cards").clone();
    assert_eq!(cards.status, Status::Warn);
    assert!(
        cards.evidence.contains("····9999 refused 2 times at T1, T2"),
        "{cards:?}"
    );
    assert!(
        !cards.evidence.contains("1234"),
        "one refusal is not a pattern: {cards:?}"
    );

    f.acquirer = Some(LinkHealth {
        addr: "127.0.0.1:5000".into(),
        up: false,
        tls: false,
        dialect: "cup-pos".into(),
        signed_in: vec!["10000042 (MAC key 08D7B4)".into()],
        sign_in_refused: false,
        since: Some("2026-11-26T05:00:00Z".into()),
        last_error: Some("cannot connect: Connection refused".into()),
        drops_last_hour: 1,
        max_round_trip_ms: None,
        timeout_ms: 4000,
        refused_answers_last_hour: 0,
        last_refused: None,
    });
    let link = find(&checks(&f), "network.acquirer").clone();
    assert_eq!(link.status, Status::Fail);
    assert!(link.evidence.contains("Connection refused"), "{link:?}");
    f.acquirer.as_mut().unwrap().up = true;
    let up = find(&checks(&f), "network.acquirer").clone();
    assert_eq!(up.status, Status::Ok);
    assert!(
        up.evidence.contains("cup-pos") && up.evidence.contains("10000042 (MAC key 08D7B4)"),
        "{up:?}"
    );
    f.acquirer.as_mut().unwrap().max_round_trip_ms = Some(1500);
    assert_eq!(status_of(&checks(&f), "network.acquirer"), Status::Ok);
    f.acquirer.as_mut().unwrap().max_round_trip_ms = Some(2500);
    assert_eq!(status_of(&checks(&f), "network.acquirer"), Status::Warn);
    let link = f.acquirer.as_mut().unwrap();
    link.refused_answers_last_hour = 1;
    link.last_refused = Some("the answer to 0200 trace 000042 was refused: its amount (field 4) is 000000000999, the request's 000000001250".into());
    let refused = find(&checks(&f), "network.acquirer").clone();
    assert_eq!(refused.status, Status::Fail, "{refused:?}");
    assert!(
        refused.evidence.contains("field 4") && refused.evidence.contains("reversed"),
        "{refused:?}"
    );
}

#[test]
fn guessing_locked_cashiers_fraud_and_freezes() {
    let mut f = healthy();
    f.login_failures = vec![
        ("owner".into(), 7, Some("2026-11-26T05:00:00Z".into())),
        ("ann".into(), 2, None),
    ];
    f.locked_cashiers = vec![("07".into(), "Mei".into(), "2026-11-26T05:01:00Z".into())];
    f.fraud_hits = vec![("card_testing".into(), 3)];
    f.terminals[0].frozen = Some("card testing".into());
    let all = checks(&f);
    let guessing = find(&all, "accounts.lockout");
    assert_eq!(guessing.status, Status::Warn);
    assert!(
        guessing.evidence.contains("owner: 7 wrong passwords"),
        "{guessing:?}"
    );
    assert!(
        !guessing.evidence.contains("ann"),
        "two wrong passwords are a typo: {guessing:?}"
    );
    assert!(guessing.fix_en.contains("tallybox reset-owner") && guessing.fix_en.contains("backup"));
    assert!(find(&all, "cashiers.locked").evidence.contains("cashier 07 Mei"));
    assert!(find(&all, "payments.fraud").evidence.contains("card_testing ×3"));
    let frozen = find(&all, "terminal.T1.frozen");
    assert!(frozen.evidence.contains("frozen (card testing)") && frozen.fix_en.contains("unfreeze"));
}

#[test]
fn declines_by_cause_and_a_bluetooth_printer_that_will_not_connect() {
    let mut f = healthy();
    f.recent = (0..6).map(|n| sale(&f, n, "T1", "00", "1111")).collect();
    f.recent.push(sale(&f, 7, "T1", "51", "2222"));
    f.recent.push(sale(&f, 8, "T1", "55", "3333"));
    // The bank unavailable is the network check's, not a decline by cause.
    f.recent.push(sale(&f, 9, "T1", "91", "4444"));
    let d = find(&checks(&f), "payments.declines").clone();
    assert_eq!(d.status, Status::Ok);
    assert!(
        d.evidence.contains("2 of 8")
            && d.evidence
                .contains("insufficient funds or over the limit 1, wrong PIN 1"),
        "{d:?}"
    );
    for n in 0..6 {
        f.recent.push(sale(&f, 9 + n, "T2", "14", &format!("9{n:03}")));
    }
    assert_eq!(status_of(&checks(&f), "payments.declines"), Status::Warn);

    let t = f.terminals[0].devices.as_mut().unwrap();
    t.printer = Some(PrinterProblem::NotResponding);
    t.printer_link = Some("rfcomm".into());
    t.machine = Some(MachineHealth {
        bluetooth: Some(Bluetooth::Blocked),
        ..Default::default()
    });
    let p = find(&checks(&f), "terminal.T1.printer").clone();
    assert!(
        p.evidence.contains("Bluetooth printer") && p.evidence.contains("switched off"),
        "{p:?}"
    );
    assert!(
        p.fix_en.contains("pair it again") && p.fix_zh.contains("重新配对"),
        "{p:?}"
    );
}

#[test]
fn refused_broker_logins_are_counted_per_client_and_name_the_way_out() {
    let refusal = |client: &str, at: &str| crate::broker::RefusedLogin {
        client_id: client.into(),
        why: "wrong password for a paired checkout",
        at: at.into(),
        when: std::time::Instant::now(),
    };
    let mut f = healthy();
    // Outside the hub, or with an external broker: nothing to say.
    assert!(checks(&f).iter().all(|c| c.id != "hub.broker_logins"));
    f.broker_refused = Some(vec![]);
    assert_eq!(status_of(&checks(&f), "hub.broker_logins"), Status::Ok);
    f.broker_refused = Some(vec![
        refusal("tallybox-term-T1", "10:30:00"),
        refusal("tallybox-hub", "10:31:00"),
        refusal("tallybox-term-T1", "10:32:01"),
    ]);
    let all = checks(&f);
    let logins = find(&all, "hub.broker_logins");
    assert_eq!(logins.status, Status::Warn);
    assert!(
        logins.evidence.contains("refused 3 login(s)")
            && logins.evidence.contains("tallybox-term-T1 ×2 (last 10:32:01")
            && logins.evidence.contains("tallybox-hub ×1"),
        "{logins:?}"
    );
    assert!(logins.fix_en.contains("Revoke key") && logins.fix_zh.contains("吊销密钥"));
}
