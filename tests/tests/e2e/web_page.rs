//! The owner's page in a real headless Chromium at phone size, against a real
//! hub and a simulated checkout: sign in, watch a sale arrive live, search
//! and open receipts, switch to Chinese, export CSV, read reports, freeze a
//! terminal and see its next sale refused. Screenshots of every page land in
//! `target/screenshots/`.

use std::time::{Duration, Instant};

use tallybox_e2e::browser::Browser;
use tallybox_e2e::procs::{Hub, ProviderSim, Terminal};
use tallybox_e2e::web::OWNER_PASSWORD;

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_runs_the_shop_from_a_phone() {
    let hub = Hub::start();
    let t1 = Terminal::start("T1", hub.mqtt);
    t1.wait_ready();
    let base = format!("http://127.0.0.1:{}", hub.http);
    let b = Browser::start().await;

    // Signing in: a wrong password is explained, the right one opens Today.
    b.goto(&format!("{base}/")).await;
    b.wait_text("#login-view", "Sign in", WAIT).await;
    b.screenshot("login").await;
    b.fill("#login-form [name=password]", "not-the-password").await;
    b.click("#login-form button").await;
    b.wait_text("#error", "Wrong name or password", WAIT).await;
    b.fill("#login-form [name=password]", OWNER_PASSWORD).await;
    b.click("#login-form button").await;
    b.wait_text("#today-view", "Net", WAIT).await;
    b.wait_text("#today-totals", "¥0.00", WAIT).await;

    // A sale on the checkout shows on Today without a reload.
    let screen = tokio::task::block_in_place(|| t1.sale(1250, "approved"));
    assert!(screen.contains("APPROVED"), "{screen}");
    let approved_at = Instant::now();
    t1.keys("C");
    b.wait_text("#today-totals", "¥12.50", WAIT).await;
    let live = approved_at.elapsed();
    println!(
        "sale on the page {} ms after the checkout showed APPROVED",
        live.as_millis()
    );
    assert!(live < Duration::from_millis(1500), "took {live:?}");
    b.wait_text("#today-terminals", "T1", WAIT).await;
    b.screenshot("today").await;

    // Receipts: a decline too, then a search by the card's last four digits.
    let screen = tokio::task::block_in_place(|| t1.sale(3300, "lost"));
    assert!(screen.contains("DECLINED") || screen.contains("Lost"), "{screen}");
    t1.keys("C");
    b.click("#nav a[href='#/']").await;
    b.wait_text("#receipts", "¥33.00", WAIT).await;
    let list = b.text("#receipts").await;
    assert!(
        list.contains("¥12.50") && list.contains("Declined · Lost card"),
        "{list}"
    );
    b.screenshot("receipts").await;
    b.run("document.querySelector('#filters [name=status]').value = 'approved'")
        .await;
    b.click("#filters button[type=submit]").await;
    let started = Instant::now();
    loop {
        let list = b.text("#receipts").await;
        if list.contains("¥12.50") && !list.contains("¥33.00") {
            break;
        }
        assert!(started.elapsed() < WAIT, "filter never applied: {list}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The CSV link carries the filter and downloads with the session.
    // (TextDecoder drops a byte order mark: look at the first bytes first.)
    let got = b
        .run(
            "return fetch(document.querySelector('#csv').href).then(r => r.arrayBuffer()).then(b => \
             ({bom: Array.from(new Uint8Array(b, 0, 3)), text: new TextDecoder().decode(b)}))",
        )
        .await;
    assert_eq!(
        got["bom"],
        serde_json::json!([0xef, 0xbb, 0xbf]),
        "Excel needs the BOM"
    );
    let csv = got["text"].as_str().unwrap_or_default();
    assert!(csv.contains("金额 amount"), "{csv}");
    assert_eq!(
        csv.trim_end().split("\r\n").count(),
        2,
        "header + the approved sale: {csv}"
    );

    // A partial refund at the checkout (supervisor PIN, trace 1, 5.00).
    tokio::task::block_in_place(|| {
        t1.keys("B28888#1#500#");
        t1.card("approved");
        let screen = t1.wait_screen("Any key", WAIT);
        assert!(screen.contains("APPROVED"), "{screen}");
        t1.keys("C");
    });

    // One receipt, as its slip, with the customer's e-receipt QR code and
    // what was refunded of it.
    let sale = hub.transactions("kind=sale&status=approved")[0]["id"].clone();
    b.goto(&format!("{base}/#/receipt/{sale}")).await;
    b.wait_text("#slip", "CARDHOLDER COPY", WAIT).await;
    b.wait_text(
        "#detail-status",
        "Sale · ¥12.50 · Approved · refunded ¥5.00",
        WAIT,
    )
    .await;
    let slip = b.text("#slip").await;
    assert!(slip.contains("CNY 12.50") && slip.contains("AUTH CODE"), "{slip}");
    let qr_ok = b
        .run(
            "const i = document.querySelector('#share-qr'); return i.decode().then(() => i.naturalWidth > 0)",
        )
        .await;
    assert_eq!(qr_ok, serde_json::json!(true), "the QR code image did not load");
    b.screenshot("receipt").await;

    // Reprint the customer's copy on the checkout's printer.
    b.wait_text("#reprint-form", "Reprint", WAIT).await;
    b.click("#reprint-form button").await;
    wait_notice(&b, "Sent to the printer", WAIT).await;
    tokio::task::block_in_place(|| {
        let reprinted = tallybox_e2e::wait_for(WAIT, || {
            t1.paper().into_iter().find(|slip| slip.contains("REPRINT"))
        })
        .expect("the reprint came out of T1's printer");
        assert!(
            reprinted.contains("CARDHOLDER COPY") && reprinted.contains("CNY 12.50"),
            "{reprinted}"
        );
    });

    // 中文.
    b.click("#lang").await;
    b.wait_text("#nav", "签购单", WAIT).await;
    b.click("#nav a[href='#/']").await;
    b.wait_text("#receipts", "成功", WAIT).await;
    b.screenshot("receipts-zh").await;
    b.click("#nav a[href='#/today']").await;
    b.wait_text("#today-view", "净额", WAIT).await;
    b.screenshot("today-zh").await;
    b.click("#lang").await;
    b.wait_text("#nav", "Receipts", WAIT).await;

    // Reports: the hour chart has a bar for every hour.
    b.click("#nav a[href='#/reports']").await;
    b.wait_text("#report-totals", "¥12.50", WAIT).await;
    let bars = b
        .run("return document.querySelectorAll('#chart rect').length")
        .await;
    assert_eq!(bars, serde_json::json!(24));
    // The chart in words (the busiest hour), for the owner and a screen reader.
    let said = b.wait_text("#chart-said", "Busiest hour", WAIT).await;
    let label = b
        .run("return document.querySelector('#chart svg').getAttribute('aria-label')")
        .await;
    assert!(
        label.as_str().unwrap_or_default().contains(said.trim()),
        "{label} / {said}"
    );
    // Its box has its height before the chart is drawn: the page does not jump.
    let heights = b
        .run("const c = document.querySelector('#chart'); const drawn = c.getBoundingClientRect().height; \
              const kids = [...c.childNodes]; c.replaceChildren(); const empty = c.getBoundingClientRect().height; \
              c.replaceChildren(...kids); return [empty, drawn]")
        .await;
    assert_eq!(heights[0], heights[1], "{heights}");
    assert!(heights[0].as_f64().unwrap() > 100.0, "{heights}");
    b.screenshot("reports").await;

    // Terminals: freeze T1 from the phone; its next sale is refused.
    b.click("#nav a[href='#/terminals']").await;
    b.wait_text("#terminal-list", "online", WAIT).await;
    b.fill("li[data-id=T1] [name=reason]", "card testing seen").await;
    // Freeze asks first, saying what it does; Cancel leaves T1 selling.
    b.click("li[data-id=T1] button.danger").await;
    b.wait_text(".confirm", "T1: freeze it? It refuses every sale", WAIT)
        .await;
    b.screenshot("terminals-confirm-freeze").await;
    b.click(".confirm [data-confirm=no]").await;
    assert_eq!(b.text(".confirm").await, "", "the question stays up");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!b.text("#terminal-list").await.contains("FROZEN"));
    assert!(hub.get("/api/v1/terminals").1["terminals"][0]["frozen"].is_null());
    b.click("li[data-id=T1] button.danger").await;
    b.click(".confirm [data-confirm=yes]").await;
    wait_notice(&b, "T1: frozen", WAIT).await;
    b.wait_text("#terminal-list", "FROZEN: card testing seen", WAIT)
        .await;
    b.screenshot("terminals").await;
    tokio::task::block_in_place(|| {
        // The checkout learns it by itself and starts no sale.
        let idle = t1.wait_screen("TERMINAL FROZEN", Duration::from_secs(10));
        assert!(idle.contains("card testing seen"), "{idle}");
        t1.keys("A800#");
        assert!(t1.screen().0.contains("TERMINAL FROZEN"));
    });
    b.click("li[data-id=T1] > button.secondary").await;
    b.wait_text("#store-frozen", "Every checkout may sell", WAIT)
        .await;
    let started = Instant::now();
    while b.text("#terminal-list").await.contains("FROZEN") {
        assert!(started.elapsed() < WAIT, "T1 stayed frozen");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::task::block_in_place(|| t1.wait_screen("Ready", Duration::from_secs(10)));

    // Pair T1: the page shows a code, the cashier keys it, the page says so.
    b.wait_text("li[data-id=T1] .pairing", "not paired", WAIT).await;
    b.fill("#pairing-terminal", "T1").await;
    b.click("#pairing-start").await;
    let code = b.wait_text("#pairing-code", " ", WAIT).await.replace(' ', "");
    assert_eq!(code.len(), 8, "{code}");
    b.screenshot("pairing").await;
    tokio::task::block_in_place(|| {
        t1.keys(&format!("D5{code}#"));
        t1.wait_screen("PAIRED", Duration::from_secs(10));
        t1.keys("C");
    });
    b.wait_text("li[data-id=T1] .pairing", "paired (sealed)", WAIT)
        .await;
    tokio::task::block_in_place(|| {
        assert!(t1.sale(800, "approved").contains("APPROVED"));
        t1.keys("C");
    });

    // Settings: the sign-in attempts, the wrong one included.
    b.click("#nav a[href='#/settings']").await;
    b.wait_text("#logins", "wrong password", WAIT).await;
    // A cashier added on the phone signs on at T1's keypad.
    b.fill("#cashier-form [name=no]", "12").await;
    b.fill("#cashier-form [name=name]", "Mei").await;
    b.fill("#cashier-form [name=pin]", "1357").await;
    b.click("#cashier-form button[type=submit]").await;
    b.wait_text("#cashiers", "12 Mei", WAIT).await;
    tokio::task::block_in_place(|| {
        t1.keys("D412#1357#");
        t1.wait_screen("SIGNED ON", Duration::from_secs(10));
        t1.keys("C");
    });
    b.click("#nav a[href='#/today']").await;
    b.click("#nav a[href='#/settings']").await;
    b.wait_text("#cashiers", "signed on at T1", WAIT).await;
    b.screenshot("settings").await;
    b.run("document.querySelector('#cashier-form').scrollIntoView(); return true")
        .await;
    b.screenshot("settings-cashiers").await;
    // Troubleshooting: the checks, T1 online among them, each with its evidence.
    b.click("#nav a[href='#/troubleshooting']").await;
    // All green: one folded line, which opens to every check.
    let folded = b.wait_text("#checks-ok", "checks are fine", WAIT).await;
    assert_eq!(
        b.text("li[data-id='terminal.T1.online']").await,
        "",
        "green checks are folded: {folded}"
    );
    b.click("#checks-ok > details > summary").await;
    b.wait_text("li[data-id='terminal.T1.online']", "T1 is online", WAIT)
        .await;
    b.wait_text("#checks", "Database", WAIT).await;
    b.wait_text("#checks", "Hub · link to the checkouts", WAIT).await;
    b.wait_text("#areas", "T1", WAIT).await;
    b.wait_text("#check-history", "Daily self-check", WAIT).await;
    // A check opens to its fix and buttons: a test slip comes out of T1.
    b.click("li[data-id='terminal.T1.printer'] summary").await;
    b.click("li[data-id='terminal.T1.printer'] button[data-action='test-slip']")
        .await;
    tokio::task::block_in_place(|| {
        tallybox_e2e::wait_for(Duration::from_secs(10), || {
            t1.paper()
                .iter()
                .any(|s| s.contains("PRINTER TEST"))
                .then_some(())
        })
        .expect("the test slip printed on T1");
    });
    b.screenshot("troubleshooting").await;

    // Signing out returns to the sign-in form; the API then refuses.
    b.click("#logout").await;
    b.wait_text("#login-view", "Sign in", WAIT).await;
    let after = b
        .run("return fetch('/api/v1/transactions').then(r => r.status)")
        .await;
    assert_eq!(after, serde_json::json!(401));
    b.close().await;
}

/// Waits until the page's last notice (shown for a few seconds, then
/// hidden; a busy machine may look after it went) says `needle`.
async fn wait_notice(b: &Browser, needle: &str, limit: Duration) {
    let started = Instant::now();
    loop {
        let said = b
            .run("return document.querySelector('#notice').textContent")
            .await;
        if said.as_str().is_some_and(|s| s.contains(needle)) {
            return;
        }
        assert!(
            started.elapsed() < limit,
            "the notice never said {needle:?}: {said}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The line of `terminal` in a key file: its key as bytes.
fn key_in(file: &std::path::Path, terminal: &str) -> Option<[u8; 16]> {
    let text = std::fs::read_to_string(file).unwrap();
    let line = text
        .lines()
        .find(|l| l.split_whitespace().next() == Some(terminal))?;
    let hex_key = line.split_whitespace().nth(1)?;
    hex::decode(hex_key).ok()?.try_into().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_enters_an_acquirer_master_key_on_the_page_and_the_checkout_sells_under_it() {
    use std::os::unix::fs::PermissionsExt;
    use tallybox::acquirer::iso8583::keys::MasterKey;
    use tallybox_e2e::procs::AcquirerSim;

    // The hub holds every terminal's master key but T2's.
    let acquirer = AcquirerSim::start();
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("acquirer-keys");
    let all = std::fs::read_to_string(acquirer.master_keys_path()).unwrap();
    let others: String = all
        .lines()
        .filter(|l| l.split_whitespace().next() != Some("T2"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&keys, others).unwrap();
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o600)).unwrap();
    let hub = Hub::start_configured(&format!(
        "acquirer = \"{}\"\nacquirer_master_keys = \"{}\"\n",
        acquirer.url(),
        keys.display()
    ));
    let t2 = Terminal::start("T2", hub.mqtt);
    t2.wait_ready();
    let screen = tokio::task::block_in_place(|| t2.sale(500, "approved"));
    assert!(!screen.contains("APPROVED"), "sold without a key: {screen}");
    t2.keys("C");

    // The acquirer's letters: two components, each with its check value.
    let tmk = key_in(&acquirer.master_keys_path(), "T2").expect("the acquirer's key of T2");
    let c1: [u8; 16] = rand::random();
    let c2: Vec<u8> = tmk.iter().zip(c1).map(|(k, c)| k ^ c).collect();
    let check = |key: &[u8]| MasterKey::from_bytes(key.try_into().unwrap()).check_value();
    let (k1, k2, k) = (check(&c1), check(&c2), check(&tmk));
    let (c1, c2) = (hex::encode_upper(c1), hex::encode_upper(&c2));

    let b = Browser::start().await;
    b.goto(&format!("http://127.0.0.1:{}/#/settings", hub.http)).await;
    b.fill("#login-form [name=password]", OWNER_PASSWORD).await;
    b.click("#login-form button").await;
    b.wait_text("#acquirer-keys", "no key", WAIT).await;
    let listed = b.text("#acquirer-keys").await;
    assert!(listed.contains("T2"), "{listed}");
    b.run("const s = document.querySelector('#acquirer-keys-form [name=terminal]'); s.value = 'T2';")
        .await;

    // A mistyped check value: refused, nothing written.
    let form = "#acquirer-keys-form";
    b.fill(&format!("{form} [name=component_1]"), &c1).await;
    b.fill(&format!("{form} [name=check_value_1]"), &k1).await;
    b.fill(&format!("{form} [name=component_2]"), &c2).await;
    b.fill(&format!("{form} [name=check_value_2]"), "000000").await;
    b.click(&format!("{form} button")).await;
    b.wait_text("#error", "Component 2", WAIT).await;
    assert!(b.text("#error").await.contains("mistyped"));
    assert!(key_in(&keys, "T2").is_none(), "a mistyped key was kept");

    b.fill(&format!("{form} [name=check_value_2]"), &k2).await;
    b.click(&format!("{form} button")).await;
    let said = b
        .wait_text(
            "#acquirer-key-result",
            "accepted a sign-in",
            Duration::from_secs(20),
        )
        .await;
    assert!(said.contains(&format!("T2: Check value {k}")), "{said}");
    b.wait_text("#acquirer-keys", &k, WAIT).await;
    b.screenshot("acquirer-keys").await;

    // Kept for the hub alone; shown nowhere but by its check value.
    assert_eq!(key_in(&keys, "T2"), Some(tmk));
    assert_eq!(
        std::fs::metadata(&keys).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let page = b.run("return document.documentElement.outerHTML;").await;
    let page = page.as_str().unwrap_or_default().to_uppercase();
    let log = hub.log().to_uppercase();
    for secret in [&c1, &c2, &hex::encode_upper(tmk)] {
        assert!(!page.contains(secret.as_str()), "a key on the page");
        assert!(!log.contains(secret.as_str()), "a key in the hub's log");
    }
    // The audit log says who entered which key, by its check value.
    let db = rusqlite::Connection::open(hub.data_dir().join("tallybox.db")).unwrap();
    let detail: String = db
        .query_row(
            "SELECT detail FROM audit_log WHERE event = 'acquirer_master_key_entered'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(
        detail.contains("\"T2\"") && detail.contains(&k) && detail.contains("owner"),
        "{detail}"
    );

    // The checkout sells under it.
    let screen = tokio::task::block_in_place(|| t2.sale(500, "approved"));
    assert!(screen.contains("APPROVED"), "{screen}");
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steps_not_taken_back_by_a_tap_ask_first_in_both_languages() {
    let hub = Hub::start();
    let t1 = Terminal::start("T1", hub.mqtt);
    t1.wait_ready();
    let web = hub.web();
    assert_eq!(
        web.send(
            "PUT",
            "/api/v1/accounts/lin",
            serde_json::json!({"password": "manager-pass-1"})
        )
        .0,
        204
    );
    let (status, _) = web.send(
        "PUT",
        "/api/v1/cashiers/12",
        serde_json::json!({"name": "Mei", "pin": "1357"}),
    );
    assert!(status < 300, "{status}");
    let b = Browser::start().await;
    b.goto(&format!("http://127.0.0.1:{}/#/terminals", hub.http))
        .await;
    b.fill("#login-form [name=password]", OWNER_PASSWORD).await;
    b.click("#login-form button").await;
    b.wait_text("#terminal-list", "T1", WAIT).await;

    // Freezing the whole shop: asked, cancelled, nothing frozen; asked, done.
    b.click("#store-freeze").await;
    b.wait_text(".confirm", "The whole shop stops taking payments", WAIT)
        .await;
    b.click(".confirm [data-confirm=no]").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(hub.get("/api/v1/terminals").1["store_frozen"].is_null());
    b.click("#store-freeze").await;
    b.click(".confirm [data-confirm=yes]").await;
    wait_notice(&b, "Every checkout is frozen", WAIT).await;
    b.wait_text("#store-frozen", "frozen", WAIT).await;
    assert!(hub.get("/api/v1/terminals").1["store_frozen"].is_string());
    b.click("#store-unfreeze").await;

    // Removing a manager and a cashier: each asked first, by name.
    b.click("#nav a[href='#/settings']").await;
    b.wait_text("#managers", "lin", WAIT).await;
    b.click("#managers button").await;
    b.wait_text(".confirm", "lin: remove this manager? Their sessions end", WAIT)
        .await;
    b.click(".confirm [data-confirm=no]").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(b.text("#managers").await.contains("lin"));
    b.click("#managers button").await;
    b.click(".confirm [data-confirm=yes]").await;
    wait_notice(&b, "lin: removed", WAIT).await;
    let accounts = web.get("/api/v1/accounts").1.to_string();
    assert!(!accounts.contains("\"lin\""), "{accounts}");

    // In Chinese, the question and the answer are Chinese.
    b.click("#lang").await;
    b.wait_text("#nav", "设置", WAIT).await;
    b.wait_text("#cashiers", "12 Mei", WAIT).await;
    b.click("#cashiers li[data-no='12'] button.secondary").await;
    let asked = b.wait_text(".confirm", "确定删除这位收银员", WAIT).await;
    assert!(asked.contains("12 Mei") && asked.contains("取消"), "{asked}");
    b.screenshot("settings-confirm-remove-cashier-zh").await;
    b.click(".confirm [data-confirm=yes]").await;
    wait_notice(&b, "已删除", WAIT).await;
    let cashiers = web.get("/api/v1/cashiers").1;
    assert_eq!(cashiers["cashiers"].as_array().unwrap().len(), 0, "{cashiers}");
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkout_out_of_paper_and_a_dead_one_show_where_the_owner_looks() {
    let hub = Hub::start();
    let t1 = Terminal::start("T1", hub.mqtt);
    let mut t2 = Terminal::start("T2", hub.mqtt);
    t1.wait_ready();
    t2.wait_ready();
    let b = Browser::start().await;
    b.goto(&format!("http://127.0.0.1:{}/#/today", hub.http)).await;
    b.fill("#login-form [name=password]", OWNER_PASSWORD).await;
    b.click("#login-form button").await;
    b.wait_text("#today-view", "Net", WAIT).await;
    let (_, checks) = hub.web().get("/api/v1/checks");
    assert_eq!(
        b.text("#problem-badge").await,
        "",
        "all green: no badge; checks: {checks}"
    );

    // T1's printer runs out of paper during a sale; T2 dies.
    t1.call(serde_json::json!({"cmd": "printer", "paper": false}));
    tokio::task::block_in_place(|| {
        // Sold; its slip waits for paper.
        t1.sale(1250, "approved");
        t1.keys("C");
    });
    assert_eq!(hub.transactions("status=approved").len(), 1);
    t2.kill();
    let slow = Duration::from_secs(30);
    // Today lists both, worst first; the Troubleshooting tab carries a badge.
    b.goto(&format!("http://127.0.0.1:{}/#/terminals", hub.http))
        .await;
    b.goto(&format!("http://127.0.0.1:{}/#/today", hub.http)).await;
    let started = Instant::now();
    loop {
        let listed = b.text("#problem-list").await;
        if listed.contains("T1 · printer") && listed.contains("T2 · online") {
            break;
        }
        assert!(started.elapsed() < slow, "Today lists: {listed}");
        // The page looks again each minute by itself; a visit asks now.
        b.click("#nav a[href='#/troubleshooting']").await;
        tokio::time::sleep(Duration::from_millis(500)).await;
        b.click("#nav a[href='#/today']").await;
    }
    println!("both on Today {} ms after T2 died", started.elapsed().as_millis());
    let badge: u32 = b.text("#problem-badge").await.parse().unwrap();
    assert!(badge >= 2, "badge {badge}");
    let colour = b
        .run("return document.querySelector('#problem-badge').className")
        .await;
    assert_eq!(colour, serde_json::json!("badge fail"));
    // Beside the title too, where it is seen whatever tab is scrolled away.
    let flag = b.text("#problem-flag").await;
    assert_eq!(flag, format!("⚠ {badge}"));
    b.screenshot("today-problems").await;

    // Troubleshooting: the new roll is offered on the failing printer check.
    b.click("#nav a[href='#/troubleshooting']").await;
    b.wait_text("li[data-id='terminal.T1.printer']", "Paper out", WAIT)
        .await;
    let offered = b
        .run("return !!document.querySelector(\"li[data-id='terminal.T1.printer'] button[data-action='new-roll']\")")
        .await;
    assert_eq!(offered, serde_json::json!(true));

    // Terminals: T1 is amber with its printer's state in words, T2 grey.
    b.click("#nav a[href='#/terminals']").await;
    b.wait_text("li[data-id=T1]", "printer out of paper", WAIT).await;
    let dots = b
        .run("return ['T1','T2'].map((id) => document.querySelector(`li[data-id=${id}] .dot`).className)")
        .await;
    assert_eq!(dots, serde_json::json!(["dot warn", "dot off"]));

    // In Chinese too.
    b.click("#lang").await;
    b.wait_text("li[data-id=T1]", "缺纸", WAIT).await;
    b.click("#nav a[href='#/today']").await;
    b.wait_text("#problems", "需要处理", WAIT).await;
    b.screenshot("today-problems-zh").await;

    // Paper back in: T1 goes green on Terminals.
    t1.call(serde_json::json!({"cmd": "printer", "paper": true}));
    b.click("#nav a[href='#/terminals']").await;
    let started = Instant::now();
    while b
        .run("return document.querySelector('li[data-id=T1] .dot').className")
        .await
        != serde_json::json!("dot on")
    {
        assert!(started.elapsed() < slow, "T1 stayed amber");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "T1 green {} ms after its paper came back",
        started.elapsed().as_millis()
    );
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn voids_refunds_and_balance_inquiries_read_as_what_they_are() {
    let hub = Hub::start();
    let t1 = Terminal::start("T1", hub.mqtt);
    t1.wait_ready();
    let trace_of_last = || hub.transactions("limit=1")[0]["trace_no"].as_u64().unwrap();
    let wait = Duration::from_secs(10);
    let (voided, refunded) = tokio::task::block_in_place(|| {
        assert!(t1.sale(1250, "approved").contains("APPROVED"));
        t1.keys("C");
        let voided = hub.transactions("limit=1")[0].clone();
        t1.keys(&format!("B18888#{}#", trace_of_last()));
        t1.card("approved");
        assert!(t1.wait_screen("Any key", wait).contains("APPROVED"), "void");
        t1.keys("C");
        assert!(t1.sale(5000, "visa").contains("APPROVED"));
        t1.keys("C");
        let refunded = hub.transactions("limit=1")[0].clone();
        t1.keys(&format!("B28888#{}#2000#", trace_of_last()));
        t1.card("visa");
        assert!(t1.wait_screen("Any key", wait).contains("APPROVED"), "refund");
        t1.keys("C");
        t1.keys("D1");
        t1.card("low-balance");
        t1.wait_screen("Any key", wait);
        t1.keys("C");
        (voided, refunded)
    });
    let b = Browser::start().await;
    let base = format!("http://127.0.0.1:{}", hub.http);
    b.goto(&format!("{base}/")).await;
    b.fill("#login-form [name=password]", OWNER_PASSWORD).await;
    b.click("#login-form button").await;
    b.wait_text("#today-view", "Net", WAIT).await;
    b.click("#nav a[href='#/']").await;
    b.wait_text("#receipts", "Balance shown", WAIT).await;
    let rows: Vec<String> = serde_json::from_value(
        b.run("return [...document.querySelectorAll('#receipts li')].map((li) => li.innerText.replace(/\\s+/g, ' '))")
            .await,
    )
    .unwrap();
    // Newest first: the balance inquiry, the refund, its sale, the void, its sale.
    assert_eq!(rows.len(), 5, "{rows:?}");
    assert!(
        rows[0].contains("—") && rows[0].contains("Balance shown"),
        "{}",
        rows[0]
    );
    assert!(
        rows[1].contains("−¥20.00") && rows[1].contains("Refunded"),
        "{}",
        rows[1]
    );
    // A sale refunded or voided later says so in the list too.
    assert!(
        rows[2].contains("¥50.00")
            && !rows[2].contains('−')
            && rows[2].contains("Approved · refunded ¥20.00"),
        "{}",
        rows[2]
    );
    assert!(
        rows[3].contains("−¥12.50") && rows[3].contains("Voided"),
        "{}",
        rows[3]
    );
    assert!(
        rows[4].contains("¥12.50") && rows[4].contains("VOIDED") && !rows[4].contains("Approved"),
        "{}",
        rows[4]
    );
    b.screenshot("receipts-kinds").await;

    // The search says what it found, says so when nothing matches, and
    // clears in one tap; the checkout filter lists the checkouts.
    assert_eq!(b.text("#result-count").await, "5 in all");
    assert!(b.text("#clear-filters").await.is_empty(), "no filter, no clear");
    // The search takes one row, the other filters fold: the receipts start
    // high on the screen (388 px down before).
    let top = b
        .run("return document.querySelector('#receipts li').getBoundingClientRect().top")
        .await;
    assert!(
        top.as_f64().unwrap() < 280.0,
        "the first receipt starts {top} px down a 780 px screen"
    );
    b.run("document.querySelector('#filters select[name=kind]').value = 'refund'; return true")
        .await;
    b.click("#filters button[type=submit]").await;
    b.wait_text("#result-count", "1 found", WAIT).await;
    b.wait_text("#clear-filters", "Clear filters", WAIT).await;
    assert_eq!(
        b.text("#filters summary").await,
        "Filters 1",
        "a folded filter is set"
    );
    b.fill("#filters [name=last4]", "9999").await;
    b.click("#filters button[type=submit]").await;
    b.wait_text("#empty", "No receipt matches these filters.", WAIT)
        .await;
    b.click("#filters summary").await;
    let choices = b.text("#filters select[name=terminal]").await;
    assert!(
        choices.contains("Any checkout") && choices.contains("T1"),
        "{choices}"
    );
    let widths = b
        .run(
            "const f = document.querySelector('#filters').getBoundingClientRect().width; \
             return [...document.querySelectorAll('#filters .more > *')].map((e) => e.getBoundingClientRect().right / f)",
        )
        .await;
    let rightmost = widths
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|w| w.as_f64())
        .fold(0.0, f64::max);
    assert!(rightmost > 0.95, "More filters use the whole width: {widths}");
    b.screenshot("receipts-more-filters").await;
    b.click("#clear-filters").await;
    b.wait_text("#result-count", "5 in all", WAIT).await;
    assert_eq!(
        b.run("return document.querySelector('#filters [name=last4]').value")
            .await,
        ""
    );

    // The void's page says it is a void, and leads to the sale it undid.
    b.click("#receipts li:nth-child(4) a").await;
    let said = b.wait_text("#detail-status", "Void", WAIT).await;
    assert!(
        said.contains("−¥12.50 · Voided") && !said.contains("APPROVED"),
        "{said}"
    );
    b.click("#detail-status a[data-original]").await;
    b.wait_text("#detail-status", "Sale · ¥12.50", WAIT).await;
    let said = b.text("#detail-status").await;
    assert!(said.contains("VOIDED"), "{said}");
    // ... and the sale leads to its void.
    assert!(
        said.contains("Void #") && said.contains("¥12.50 Approved"),
        "{said}"
    );
    b.click("#detail-status a[data-undoing]").await;
    b.wait_text("#detail-status", "Void · −¥12.50", WAIT).await;
    // The refund names its sale too.
    b.click("#detail-view a.back").await;
    b.wait_text("#receipts", "Refunded", WAIT).await;
    b.click("#receipts li:nth-child(2) a").await;
    let said = b.wait_text("#detail-status", "refunds sale", WAIT).await;
    assert!(said.contains(&format!("#{}", refunded["id"])), "{said}");

    // The customer's e-receipt of the voided sale says it was not charged.
    let token = voided["receipt_token"].as_str().unwrap();
    b.goto(&format!("{base}/r/{token}")).await;
    b.wait_text("#undone", "VOIDED, not charged", WAIT).await;
    b.screenshot("e-receipt-voided").await;
    let token = refunded["receipt_token"].as_str().unwrap();
    b.goto(&format!("{base}/r/{token}")).await;
    b.wait_text("#undone", "REFUNDED CNY 20.00", WAIT).await;
    // A bad link: a page that says so, in Chinese and English, not JSON.
    b.goto(&format!("{base}/r/{}", "A".repeat(26))).await;
    let page = b.wait_text("main", "找不到这张签购单", WAIT).await;
    assert!(
        page.contains("No such receipt") && !page.contains("{\""),
        "{page}"
    );
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hub_out_of_reach_is_said_in_words_and_the_page_comes_back_by_itself_still_signed_in() {
    let mut hub = Hub::start();
    let base = format!("http://127.0.0.1:{}", hub.http);
    let b = Browser::start().await;
    b.goto(&format!("{base}/")).await;
    b.fill("#login-form [name=password]", OWNER_PASSWORD).await;
    b.click("#login-form button").await;
    b.wait_text("#today-view", "Net", WAIT).await;
    // Opened again (signed in already), Today is fetched once. (The
    // troubleshooting checks the page runs note changes in their history;
    // on a hub running a while, as here after this first look, there are
    // none, so nothing changes the store as the page opens.)
    assert_eq!(hub.web().get("/api/v1/checks").0, 200);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    b.goto(&format!("{base}/#/today")).await;
    b.run("location.reload(); return true").await;
    b.wait_text("#today-view", "Net", WAIT).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let fetched = b
        .run("return performance.getEntriesByType('resource').filter((e) => e.name.endsWith('/api/v1/today')).length")
        .await;
    assert_eq!(
        fetched,
        serde_json::json!(1),
        "Today fetched once when the page opens"
    );

    tokio::task::block_in_place(|| hub.kill());
    b.click("#nav a[href='#/reports']").await;
    let said = b.wait_text("#error", "The hub cannot be reached", WAIT).await;
    assert!(!said.contains("Failed to fetch"), "{said}");
    b.screenshot("hub-away").await;

    // The hub starts again: the page notices by itself, without a tap, and
    // the owner is still signed in (sessions outlive a restart).
    tokio::task::block_in_place(|| hub.start_again());
    let started = Instant::now();
    b.wait_text("#reports-view", "By terminal", Duration::from_secs(15))
        .await;
    while b.text("#error").await.contains("cannot be reached") {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the away message stayed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "page back {} ms after the hub started",
        started.elapsed().as_millis()
    );
    assert_eq!(b.text("#login-view").await, "", "signed out by the restart");
    // Kept for the hub alone, by the token's hash: the cookie is not in it.
    use std::os::unix::fs::PermissionsExt;
    let kept = hub.data_dir().join("web-sessions.json");
    assert_eq!(
        std::fs::metadata(&kept).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let text = std::fs::read_to_string(&kept).unwrap();
    assert!(text.contains("\"owner\""), "{text}");
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_header_is_one_row_that_stays_and_times_read_as_the_stores() {
    let hub = Hub::start();
    let b = Browser::start().await;
    b.goto(&format!("http://127.0.0.1:{}/", hub.http)).await;
    b.fill("#login-form [name=password]", OWNER_PASSWORD).await;
    b.click("#login-form button").await;
    b.wait_text("#today-view", "Net", WAIT).await;
    for lang in ["en", "zh-CN"] {
        // One row of tabs under the title; the header stays on top.
        let header = b
            .run("const h = document.querySelector('header').getBoundingClientRect(); \
                  const tops = new Set([...document.querySelectorAll('#nav a')].map((a) => Math.round(a.getBoundingClientRect().top))); \
                  return [h.height, tops.size, getComputedStyle(document.querySelector('header')).position]")
            .await;
        assert!(header[0].as_f64().unwrap() <= 110.0, "{lang}: header {header}");
        assert_eq!(
            header[1],
            serde_json::json!(1),
            "{lang}: tabs on one row: {header}"
        );
        assert_eq!(header[2], serde_json::json!("sticky"));
        // Tap targets of 44 px at least.
        let small = b
            .run("return [...document.querySelectorAll('header button, #nav a')].filter((e) => !e.hidden && e.getBoundingClientRect().height < 44).map((e) => e.textContent)")
            .await;
        assert_eq!(small, serde_json::json!([]), "{lang}: small tap targets");
        b.click("#lang").await;
    }
    // Another tab starts at its top.
    b.click("#nav a[href='#/settings']").await;
    b.wait_text("#settings-view", "Cashiers", WAIT).await;
    b.run("window.scrollTo(0, 2000); return true").await;
    b.click("#nav a[href='#/troubleshooting']").await;
    b.wait_text("#check-history", "Daily self-check", WAIT).await;
    let y = b.run("return window.scrollY").await;
    assert_eq!(y, serde_json::json!(0));
    // The history's times as receipts write them, not ISO UTC.
    let history = b.text("#check-history").await;
    let first = history.lines().next().unwrap_or_default().to_string();
    let stamp: String = first.trim().chars().take(16).collect();
    assert!(
        chrono::NaiveDateTime::parse_from_str(&stamp, "%Y-%m-%d %H:%M").is_ok(),
        "{first}"
    );
    b.close().await;
}

/// Latin-script words a Chinese page may show: the product's and card
/// brands' names, and abbreviations a Chinese shop uses as they are.
const LATIN_ALLOWED: &[&str] = &[
    "Tallybox",
    "Visa",
    "Mastercard",
    "UnionPay",
    "PIN",
    "CSV",
    "Wi",
    "Fi",
    "SD",
    "USB",
    "QR",
    "ID",
    "MiB",
    "TLS",
    "TCP",
    "MAC",
    "IP",
    "CNY",
    "owner",
];

/// The Latin-script words of `text` that are not ids (a letter and digits,
/// like T1) or in [`LATIN_ALLOWED`].
fn latin_words(text: &str) -> Vec<String> {
    let mut found: Vec<String> = text
        .split(|c: char| !c.is_ascii_alphabetic())
        .filter(|w| w.len() >= 2 && !LATIN_ALLOWED.contains(w))
        .map(str::to_string)
        .collect();
    found.sort();
    found.dedup();
    found
}

fn is_han(c: char) -> bool {
    ('\u{4e00}'..='\u{9fff}').contains(&c)
}

/// ASCII punctuation written against Chinese text (`已冻结: 这台`), where a
/// Chinese sentence takes the full-width mark; each with what is around it.
fn ascii_punctuation_in_chinese(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().filter(|c| *c != ' ').collect();
    chars
        .windows(2)
        .enumerate()
        .filter(|(_, w)| (is_han(w[0]) && ",:;(".contains(w[1])) || (",:;)".contains(w[0]) && is_han(w[1])))
        .map(|(i, _)| {
            chars[i.saturating_sub(4)..(i + 6).min(chars.len())]
                .iter()
                .collect()
        })
        .collect()
}

/// What the signed-in page shows now, whole (hidden parts excluded), less
/// what is not the page's own words: the language button (which names the
/// other language in it), a slip (the copy of the paper as printed), the
/// time zones' names (IANA ids) and links.
async fn shown(b: &Browser) -> String {
    let text = b
        .run(
            "const skip = [...document.querySelectorAll('#lang, #slip, select[name=time_zone]')]; \
             for (const e of skip) e.style.display = 'none'; \
             const text = document.body.innerText; \
             for (const e of skip) e.style.display = ''; \
             return text",
        )
        .await;
    let text = text.as_str().unwrap_or_default();
    text.split_whitespace()
        .filter(|w| !w.contains("://"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The page's red line says something in Chinese, and nothing in English.
async fn refused_in_chinese(b: &Browser, what: &str, bad: &mut Vec<String>) {
    let started = Instant::now();
    let said = loop {
        let said = b.text("#error").await;
        if !said.is_empty() {
            break said;
        }
        assert!(started.elapsed() < WAIT, "{what}: no error shown");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    println!("{what}: {said}");
    let latin = latin_words(&said);
    if !latin.is_empty() || !said.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)) {
        bad.push(format!("{what}: {said}"));
    }
    b.run("document.querySelector('#error').hidden = true; document.querySelector('#error').textContent = ''; return true")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_view_and_refusal_reads_in_chinese_and_passes_axe_in_both_languages() {
    let hub = Hub::start();
    let t1 = Terminal::start("T1", hub.mqtt);
    let mut t2 = Terminal::start("T2", hub.mqtt);
    t1.wait_ready();
    t2.wait_ready();
    let wait = Duration::from_secs(10);
    tokio::task::block_in_place(|| {
        let trace_of_last = || hub.transactions("limit=1")[0]["trace_no"].as_u64().unwrap();
        // A sale, a decline, a void, a refund and a balance inquiry on T1.
        assert!(t1.sale(1250, "approved").contains("APPROVED"));
        t1.keys("C");
        t1.sale(20_000, "low-balance");
        t1.keys("C");
        assert!(t1.sale(800, "approved").contains("APPROVED"));
        t1.keys("C");
        t1.keys(&format!("B18888#{}#", trace_of_last()));
        t1.card("approved");
        t1.wait_screen("Any key", wait);
        t1.keys("C");
        assert!(t1.sale(5000, "visa").contains("APPROVED"));
        t1.keys("C");
        t1.keys(&format!("B28888#{}#2000#", trace_of_last()));
        t1.card("visa");
        t1.wait_screen("Any key", wait);
        t1.keys("C");
        t1.keys("D1");
        t1.card("low-balance");
        t1.wait_screen("Any key", wait);
        t1.keys("C");
        // Card testing on T2 freezes it (a fraud alert); then it dies.
        for _ in 0..11 {
            t2.sale(100, "invalid");
            t2.keys("C");
        }
        // T1's printer runs out of paper with a slip waiting.
        t1.call(serde_json::json!({"cmd": "printer", "paper": false}));
        t1.sale(300, "approved");
        t1.keys("C");
    });
    t2.kill();
    let ids: Vec<u64> = hub
        .transactions("limit=20")
        .iter()
        .map(|t| t["id"].as_u64().unwrap())
        .collect();

    let b = Browser::start().await;
    let base = format!("http://127.0.0.1:{}", hub.http);
    b.goto(&format!("{base}/#/today")).await;
    b.wait_text("#lang", "中文", WAIT).await;
    b.click("#lang").await;
    b.wait_text("#login-view", "登录", WAIT).await;
    let mut bad = Vec::new();
    // What axe-core finds, serious or critical, by view and language.
    let mut a11y: Vec<String> = Vec::new();
    let mut judge = async |b: &Browser, view: &str| {
        for found in b.accessibility_violations().await {
            a11y.push(format!("{view}: {found}"));
        }
    };
    judge(&b, "zh sign-in").await;
    // A wrong password, then the right one.
    b.fill("#login-form [name=password]", "not-the-password").await;
    b.click("#login-form button").await;
    refused_in_chinese(&b, "wrong password", &mut bad).await;
    b.fill("#login-form [name=password]", OWNER_PASSWORD).await;
    b.click("#login-form button").await;
    b.wait_text("#today-view", "净额", WAIT).await;

    // Every view, with what each shows in this shop's state.
    let mut views: Vec<(String, &str, &str)> = vec![
        ("#/today".into(), "#today-view", "需要处理"),
        ("#/".into(), "#receipts", "已撤销"),
        ("#/reports".into(), "#report-totals", "净额"),
        ("#/terminals".into(), "#terminal-list", "T2"),
        ("#/troubleshooting".into(), "#checks", "打印机"),
        ("#/settings".into(), "#settings-view", "收银员"),
    ];
    views.extend(
        ids.iter()
            .map(|id| (format!("#/receipt/{id}"), "#detail-status", "·")),
    );
    for (hash, css, needle) in &views {
        b.run(&format!("location.hash = '{hash}'; return true")).await;
        b.wait_text(css, needle, Duration::from_secs(20)).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let text = shown(&b).await;
        let latin = latin_words(&text);
        if !latin.is_empty() {
            bad.push(format!("{hash}: {latin:?}"));
        }
        let marks = ascii_punctuation_in_chinese(&text);
        if !marks.is_empty() {
            bad.push(format!("{hash}: ASCII punctuation in Chinese: {marks:?}"));
        }
        let name = hash.trim_start_matches("#/").replace('/', "-");
        if !name.starts_with("receipt-") || name == format!("receipt-{}", ids[0]) {
            judge(&b, &format!("zh {hash}")).await;
            b.screenshot(&format!(
                "zh-{}",
                if name.is_empty() { "receipts" } else { &name }
            ))
            .await;
        }
    }
    for period in ["week", "month"] {
        b.run(&format!(
            "location.hash = '#/reports'; document.querySelector('#report-form [name=period]').value = '{period}'; \
             document.querySelector('#report-form button').click(); return true"
        ))
        .await;
        tokio::time::sleep(Duration::from_millis(800)).await;
        let latin = latin_words(&shown(&b).await);
        if !latin.is_empty() {
            bad.push(format!("reports by {period}: {latin:?}"));
        }
    }
    b.screenshot("zh-reports-month").await;

    // Refusals, each as an owner meets it.
    b.run("location.hash = '#/'; return true").await;
    b.wait_text("#receipts", "已撤销", WAIT).await;
    b.run("document.querySelector('#filters').open = true; return true")
        .await;
    b.fill("#filters [name=last4]", "12").await;
    b.click("#filters button[type=submit]").await;
    refused_in_chinese(&b, "a card's last 4 of two digits", &mut bad).await;
    b.run("location.hash = '#/troubleshooting'; return true").await;
    b.wait_text(
        "li[data-id='terminal.T2.online']",
        "离线",
        Duration::from_secs(30),
    )
    .await;
    b.run(
        "const d = document.querySelector(\"li[data-id='terminal.T2.printer'] details\"); \
         if (d) d.open = true; \
         document.querySelector(\"li[data-id='terminal.T2.printer'] button[data-action='test-slip']\").click(); return true",
    )
    .await;
    refused_in_chinese(&b, "a test slip on the dead checkout", &mut bad).await;
    b.run("location.hash = '#/settings'; return true").await;
    b.wait_text("#settings-view", "收银员", WAIT).await;
    b.fill("#password-form [name=current]", "not-the-password").await;
    b.fill("#password-form [name=new]", "a-new-password-1").await;
    b.click("#password-form button").await;
    refused_in_chinese(&b, "a wrong current password", &mut bad).await;
    b.fill("#manager-form [name=name]", "owner").await;
    b.fill("#manager-form [name=password]", "a-new-password-1").await;
    b.click("#manager-form button").await;
    refused_in_chinese(&b, "a manager called owner", &mut bad).await;

    // The same views in English, for axe.
    b.click("#lang").await;
    b.wait_text("#nav", "Receipts", WAIT).await;
    for (hash, css, _) in views.iter().take(7) {
        b.run(&format!("location.hash = '{hash}'; return true")).await;
        b.wait_text(css, "", Duration::from_secs(20)).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        judge(&b, &format!("en {hash}")).await;
    }
    b.click("#logout").await;
    b.wait_text("#login-view", "Sign in", WAIT).await;
    judge(&b, "en sign-in").await;
    b.close().await;
    assert!(bad.is_empty(), "English on the Chinese page:\n{}", bad.join("\n"));
    assert!(
        a11y.is_empty(),
        "axe-core, serious or critical:\n{}",
        a11y.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_refunds_and_voids_from_the_phone_and_the_checkout_takes_the_card() {
    let hub = Hub::start();
    let t1 = Terminal::start("T1", hub.mqtt);
    let t2 = Terminal::start("T2", hub.mqtt);
    t1.wait_ready();
    t2.wait_ready();
    let wait = Duration::from_secs(15);
    tokio::task::block_in_place(|| {
        assert!(t1.sale(5000, "visa").contains("APPROVED"));
        t1.keys("C");
        assert!(t1.sale(1250, "approved").contains("APPROVED"));
        t1.keys("C");
    });
    let sales = hub.transactions("limit=2");
    let (small, big) = (sales[0]["id"].as_u64().unwrap(), sales[1]["id"].as_u64().unwrap());
    let b = Browser::start().await;
    let base = format!("http://127.0.0.1:{}", hub.http);
    b.goto(&format!("{base}/#/receipt/{big}")).await;
    b.fill("#login-form [name=password]", OWNER_PASSWORD).await;
    b.click("#login-form button").await;

    // A refund of 20.00 of the 50.00 sale, at T2 (not the sale's checkout).
    b.wait_text("#undo-form", "Send to the checkout", WAIT).await;
    assert_eq!(
        b.run("return document.querySelector('#undo-form [name=amount]').value")
            .await,
        serde_json::json!("50.00"),
        "the whole sale is offered"
    );
    b.fill("#undo-form [name=amount]", "20.00").await;
    b.run("document.querySelector('#undo-form [name=terminal]').value = 'T2'; return true")
        .await;
    b.click("#undo-form button[type=submit]").await;
    b.wait_text(".confirm", "Refund ¥20.00", WAIT).await;
    b.screenshot("undo-ask").await;
    b.click(".confirm [data-confirm=yes]").await;
    b.wait_text("#undo-state", "T2: asks for the customer's card", WAIT)
        .await;
    tokio::task::block_in_place(|| {
        let shown = t2.wait_screen("REFUND", wait);
        assert!(shown.contains("CNY 20.00"), "{shown}");
        t2.card("visa");
        assert!(t2.wait_screen("Any key", wait).contains("APPROVED"));
        t2.keys("C");
    });
    b.wait_text(
        "#undo-state",
        "The checkout read the card",
        Duration::from_secs(20),
    )
    .await;
    b.wait_text("#detail-status", "refunded ¥20.00", WAIT).await;
    b.screenshot("undo-refunded").await;
    let refund = &hub.transactions("kind=refund")[0];
    assert_eq!(
        (
            &refund["status"],
            &refund["terminal_id"],
            &refund["amount"],
            &refund["original_id"]
        ),
        (
            &serde_json::json!("approved"),
            &serde_json::json!("T2"),
            &serde_json::json!(2000),
            &serde_json::json!(big)
        ),
        "{refund}"
    );
    assert!(
        hub.log().contains("void or refund ordered on the web page"),
        "the hub's log names the order"
    );
    // What is left is offered next; more than that is refused in words.
    assert_eq!(
        b.run("return document.querySelector('#undo-form [name=amount]').value")
            .await,
        serde_json::json!("30.00")
    );
    b.fill("#undo-form [name=amount]", "30.01").await;
    b.click("#undo-form button[type=submit]").await;
    b.click(".confirm [data-confirm=yes]").await;
    b.wait_text("#error", "at most 30.00", WAIT).await;

    // A void of the other sale: only at its own checkout, T1.
    b.run(&format!("location.hash = '#/receipt/{small}'; return true"))
        .await;
    b.wait_text("#undo-form", "Send to the checkout", WAIT).await;
    b.run(
        "const f = document.querySelector('#undo-form'); f.kind.value = 'void'; \
         f.kind.dispatchEvent(new Event('change')); return f.terminal.value",
    )
    .await;
    let web = tallybox_e2e::web::WebClient::owner(hub.http);
    let (status, body) = web.send(
        "POST",
        &format!("/api/v1/transactions/{small}/undo"),
        serde_json::json!({"kind": "void", "terminal": "T2"}),
    );
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("void_elsewhere")),
        "{body}"
    );
    b.click("#undo-form button[type=submit]").await;
    b.click(".confirm [data-confirm=yes]").await;
    b.wait_text("#undo-state", "T1: asks for the customer's card", WAIT)
        .await;
    tokio::task::block_in_place(|| {
        t1.wait_screen("VOID", wait);
        t1.card("approved");
        assert!(t1.wait_screen("Any key", wait).contains("APPROVED"));
        t1.keys("C");
    });
    b.wait_text("#detail-status", "VOIDED", Duration::from_secs(20))
        .await;
    assert!(b.text("#undo-form").await.is_empty(), "nothing left to undo");

    // A manager may not order one.
    let (status, _) = web.send(
        "PUT",
        "/api/v1/accounts/ann",
        serde_json::json!({"password": "ann-password-1"}),
    );
    assert_eq!(status, 204, "manager added");
    let ann = tallybox_e2e::web::WebClient::login(hub.http, Some("ann"), "ann-password-1").unwrap();
    let (status, _) = ann.send(
        "POST",
        &format!("/api/v1/transactions/{big}/undo"),
        serde_json::json!({"kind": "refund", "terminal": "T1", "amount": "1.00"}),
    );
    assert_eq!(status, 403);
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_in_dark_mode_gets_a_dark_page_that_axe_passes() {
    let hub = Hub::start();
    let t1 = Terminal::start("T1", hub.mqtt);
    t1.wait_ready();
    tokio::task::block_in_place(|| {
        assert!(t1.sale(1250, "approved").contains("APPROVED"));
        t1.keys("C");
        t1.sale(20_000, "low-balance");
        t1.keys("C");
    });
    let b = Browser::start_dark().await;
    b.goto(&format!("http://127.0.0.1:{}/#/today", hub.http)).await;
    b.fill("#login-form [name=password]", OWNER_PASSWORD).await;
    b.click("#login-form button").await;
    b.wait_text("#today-view", "Net", WAIT).await;
    let background = b
        .run("return getComputedStyle(document.body).backgroundColor")
        .await;
    assert_eq!(background, serde_json::json!("rgb(17, 21, 28)"), "a dark page");
    let mut found = Vec::new();
    for (hash, css) in [
        ("#/today", "#today-totals"),
        ("#/", "#receipts"),
        ("#/reports", "#report-totals"),
        ("#/terminals", "#terminal-list"),
        ("#/troubleshooting", "#checks"),
        ("#/settings", "#settings-view"),
    ] {
        b.run(&format!("location.hash = '{hash}'; return true")).await;
        b.wait_text(css, "", WAIT).await;
        tokio::time::sleep(Duration::from_millis(400)).await;
        for v in b.accessibility_violations().await {
            found.push(format!("{hash}: {v}"));
        }
        let name = hash.trim_start_matches("#/");
        b.screenshot(&format!(
            "dark-{}",
            if name.is_empty() { "receipts" } else { name }
        ))
        .await;
    }
    b.close().await;
    assert!(found.is_empty(), "axe-core in dark mode:\n{}", found.join("\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn today_shows_the_average_sale_the_busiest_hour_and_the_same_day_last_week() {
    let hub = Hub::start();
    let t1 = Terminal::start("T1", hub.mqtt);
    t1.wait_ready();
    tokio::task::block_in_place(|| {
        for minor in [1000, 3000, 2000] {
            assert!(t1.sale(minor, "approved").contains("APPROVED"));
            t1.keys("C");
        }
    });
    // The 20.00 sale was made a week ago at this hour: last week's side.
    let moved = hub.transactions("limit=1")[0]["id"].as_i64().unwrap();
    let db = rusqlite::Connection::open(hub.data_dir().join("tallybox.db")).unwrap();
    db.busy_timeout(Duration::from_secs(5)).unwrap();
    db.execute(
        "UPDATE transactions SET local_time = datetime(local_time, '-7 days') WHERE id = ?1",
        [moved],
    )
    .unwrap();
    let hour: String = db
        .query_row(
            "SELECT substr(local_time, 12, 2) FROM transactions WHERE id = ?1",
            [moved],
            |r| r.get(0),
        )
        .unwrap();
    drop(db);
    // Today's busiest hour, from the receipts themselves.
    let mut by_hour = std::collections::BTreeMap::new();
    for t in hub
        .transactions("status=approved")
        .iter()
        .filter(|t| t["id"] != moved)
    {
        let h = t["local_time"].as_str().unwrap()[11..13].to_string();
        *by_hour.entry(h).or_insert(0) += t["amount"].as_i64().unwrap();
    }
    let (busiest, busiest_minor) = by_hour.iter().max_by_key(|(_, m)| **m).unwrap();
    let b = Browser::start().await;
    b.goto(&format!("http://127.0.0.1:{}/#/today", hub.http)).await;
    b.fill("#login-form [name=password]", OWNER_PASSWORD).await;
    b.click("#login-form button").await;
    // Today: 10.00 and 30.00, so 20.00 on average.
    b.wait_text("#average-sale", "¥20.00", WAIT).await;
    let shown = b.wait_text("#busiest-hour", &format!("{busiest}:00"), WAIT).await;
    assert!(shown.contains(&format!("¥{}.00", busiest_minor / 100)), "{shown}");
    // A week ago, to this hour: 20.00; today's 40.00 is twice that.
    let then = b.wait_text("#week-ago", "¥20.00", WAIT).await;
    assert!(then.contains("Last ") && then.contains("+100%"), "{then}");
    assert!(
        hour.as_str() <= &then[then.find("until ").unwrap() + 6..][..2],
        "{then}"
    );
    // A check not green (no backup yet, the sale moved a week back) is
    // listed on Today; it reads in Chinese once the page is.
    b.wait_text("#problem-list", "Backups", WAIT).await;
    b.click("#lang").await;
    b.wait_text("#problem-list", "备份", WAIT).await;
    let then = b.wait_text("#week-ago", "上周", WAIT).await;
    assert!(then.contains("截至") && then.contains("今天：+100%"), "{then}");
    b.screenshot("today-insights-zh").await;
    b.close().await;
}

/// Moves transaction `id` to local day `day`, keeping its time of day, as a
/// sale made then would be stored (the daily totals follow it).
fn move_to_day(hub: &Hub, id: i64, day: chrono::NaiveDate) {
    let db = rusqlite::Connection::open(hub.data_dir().join("tallybox.db")).unwrap();
    db.busy_timeout(Duration::from_secs(5)).unwrap();
    db.execute_batch(&format!(
        "BEGIN; UPDATE transactions SET status = 'failed' WHERE id = {id}; \
         UPDATE transactions SET local_time = '{day}' || substr(local_time, 11), status = 'approved' WHERE id = {id}; \
         COMMIT;"
    ))
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_compare_with_the_period_before_and_take_days_the_owner_picks() {
    let hub = Hub::start();
    let t1 = Terminal::start("T1", hub.mqtt);
    t1.wait_ready();
    tokio::task::block_in_place(|| {
        for minor in [1000, 2000, 3000] {
            assert!(t1.sale(minor, "approved").contains("APPROVED"));
            t1.keys("C");
        }
    });
    // 30.00 today, 20.00 yesterday, 10.00 three days ago.
    let sales = hub.transactions("status=approved");
    let today: chrono::NaiveDate = sales[0]["local_time"].as_str().unwrap()[..10].parse().unwrap();
    let days_ago = |n: i64| today - chrono::Duration::days(n);
    for t in &sales {
        match t["amount"].as_i64().unwrap() {
            2000 => move_to_day(&hub, t["id"].as_i64().unwrap(), days_ago(1)),
            1000 => move_to_day(&hub, t["id"].as_i64().unwrap(), days_ago(3)),
            _ => {}
        }
    }
    let b = Browser::start().await;
    b.goto(&format!("http://127.0.0.1:{}/#/reports", hub.http)).await;
    b.fill("#login-form [name=password]", OWNER_PASSWORD).await;
    b.click("#login-form button").await;
    // Today against yesterday: 30.00 against 20.00.
    let compared = b.wait_text("#compared", "¥20.00", WAIT).await;
    assert!(
        compared.contains("The day before")
            && compared.contains(&days_ago(1).to_string())
            && compared.contains("+50%"),
        "{compared}"
    );
    assert!(b.text("#report-totals").await.contains("¥30.00"));

    // The three days up to yesterday: 10.00 and 20.00; the three before: nothing.
    let pick = |from: chrono::NaiveDate, to: chrono::NaiveDate| {
        format!(
            "const f = document.querySelector('#report-form'); f.period.value = 'range'; \
             f.period.dispatchEvent(new Event('change')); f.from.value = '{from}'; f.to.value = '{to}'; \
             f.querySelector('button[type=submit]').click(); return true"
        )
    };
    b.run(&pick(days_ago(3), days_ago(1))).await;
    let compared = b.wait_text("#compared", "As many days before", WAIT).await;
    assert!(
        compared.contains(&format!("{} – {}", days_ago(6), days_ago(4)))
            && compared.contains("no sales then"),
        "{compared}"
    );
    let totals = b.wait_text("#report-totals", "¥30.00", WAIT).await;
    assert!(totals.contains("× 2"), "{totals}");
    assert!(b.text("#report-average").await.contains("¥15.00"));
    assert_eq!(
        b.run("return document.querySelectorAll('#chart rect').length")
            .await,
        3,
        "a bar a day"
    );
    let csv = b
        .run("return document.querySelector('#report-csv').getAttribute('href')")
        .await;
    assert!(
        csv.as_str()
            .unwrap()
            .contains(&format!("from={}&to={}", days_ago(3), days_ago(1))),
        "{csv}"
    );
    b.screenshot("reports-range").await;

    // Backwards: said in words, in Chinese too.
    b.click("#lang").await;
    b.run(&pick(days_ago(1), days_ago(3))).await;
    b.wait_text("#error", "开始日期不能晚于结束日期，最长 366 天", WAIT)
        .await;
    b.run(&pick(days_ago(1), today)).await;
    // (The card shows the range before in Chinese until the new one comes.)
    let compared = b.wait_text("#compared", "本期：+400%", WAIT).await;
    assert!(compared.contains("之前同样天数"), "{compared}");
    assert_eq!(
        b.text("#error").await,
        "",
        "the refusal goes once the days are right"
    );
    b.screenshot("reports-range-zh").await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_opens_from_the_phones_copy_when_the_hub_is_off_and_says_how_old_it_is() {
    let mut hub = Hub::start();
    let t1 = Terminal::start("T1", hub.mqtt);
    t1.wait_ready();
    tokio::task::block_in_place(|| assert!(t1.sale(1250, "approved").contains("APPROVED")));
    let base = format!("http://127.0.0.1:{}", hub.http);
    let b = Browser::start().await;
    b.goto(&format!("{base}/")).await;
    b.fill("#login-form [name=password]", OWNER_PASSWORD).await;
    b.click("#login-form button").await;
    b.wait_text("#today-view", "¥12.50", WAIT).await;
    // The service worker runs (a secure origin: the hub at 127.0.0.1).
    let started = Instant::now();
    while b
        .run("return !!(navigator.serviceWorker && navigator.serviceWorker.controller)")
        .await
        != serde_json::json!(true)
    {
        assert!(started.elapsed() < WAIT, "no service worker took the page");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Chromium would install it as an app: nothing in its way.
    let errors = b
        .devtools("Page.getInstallabilityErrors", serde_json::json!({}))
        .await;
    assert_eq!(
        errors["value"]["installabilityErrors"],
        serde_json::json!([]),
        "{errors}"
    );
    b.run("location.hash = '#/'; return true").await;
    b.wait_text("#receipts", "¥12.50", WAIT).await;
    // A download is not kept on the phone; what the page shows is.
    b.run("return fetch('/api/v1/transactions.csv').then((r) => r.text()).then(() => true)")
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let kept = b
        .run(
            "return caches.open('tallybox-kept-v1').then((c) => c.keys()).then((ks) => ks.map((k) => k.url))",
        )
        .await
        .to_string();
    assert!(
        kept.contains("/api/v1/transactions") && !kept.contains(".csv"),
        "{kept}"
    );

    // The hub goes off; the owner opens the page again: it opens, still
    // signed in, with the receipts as last read and how old they are.
    tokio::task::block_in_place(|| hub.kill());
    b.run("document.querySelector('#receipts').replaceChildren(); location.reload(); return true")
        .await;
    b.wait_text("#receipts", "¥12.50", WAIT).await;
    let said = b.wait_text("#away", "Shown as it was at", WAIT).await;
    assert!(
        said.contains("cannot be reached") && said.contains("ago"),
        "{said}"
    );
    assert_eq!(b.text("#login-view").await, "", "signed out by the hub being off");
    b.screenshot("hub-away-kept").await;
    b.click("#lang").await;
    b.wait_text("#away", "所显示的内容读取于", WAIT).await;
    b.click("#lang").await;

    // Back: the page says nothing more of it by itself.
    tokio::task::block_in_place(|| hub.start_again());
    let started = Instant::now();
    while !b.text("#away").await.is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the away line stayed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Signed out, nothing of the shop stays on the phone.
    b.click("#logout").await;
    b.wait_text("#login-view", "Sign in", WAIT).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let kept = b
        .run(
            "return caches.open('tallybox-kept-v1').then((c) => c.keys()) \
             .then((ks) => ks.map((k) => k.url).filter((u) => u.includes('/api/')))",
        )
        .await;
    assert_eq!(kept, serde_json::json!([]), "API copies left after signing out");
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_checks_the_days_code_payments_against_the_providers_bills() {
    let sim = ProviderSim::start(2);
    let hub = Hub::start_configured(&sim.settings());
    let t1 = Terminal::start("T1", hub.mqtt);
    t1.wait_ready();
    tokio::task::block_in_place(|| {
        t1.keys("A4250#");
        t1.scan("281234567890120000");
        t1.wait_screen("PAID", Duration::from_secs(10));
        t1.keys("C");
        sim.paid_elsewhere("elsewhere0001", "281234567890129999", 600);
    });
    let today = ProviderSim::day(0);
    let b = Browser::start().await;
    b.goto(&format!("http://127.0.0.1:{}/#/reports", hub.http)).await;
    b.fill("#login-form [name=password]", OWNER_PASSWORD).await;
    b.click("#login-form button").await;
    b.wait_text("#bills-form", "Payment codes against the providers' bills", WAIT)
        .await;
    b.run(&format!(
        "const f = document.querySelector('#bills-form'); f.day.value = '{today}'; \
         f.querySelector('button').click(); return true"
    ))
    .await;
    let alipay = b
        .wait_text("#bills [data-provider=alipay]", "1 order differs", WAIT)
        .await;
    for needle in [
        "1 order agrees",
        "hub ¥42.50",
        "bill ¥48.50",
        "no record of",
        "elsewhere0001",
        "¥6.00",
    ] {
        assert!(alipay.contains(needle), "{needle:?} not in {alipay}");
    }
    // No WeChat Pay code was taken: its bill has nothing, and agrees.
    let wechat = b.text("#bills [data-provider=wechat_pay]").await;
    assert!(wechat.contains("the bill agrees with the hub"), "{wechat}");
    b.run("document.querySelector('#bills-form').scrollIntoView(); return true")
        .await;
    b.screenshot("reports-bills").await;
    b.click("#lang").await;
    let alipay = b
        .wait_text("#bills [data-provider=alipay]", "1 笔订单不一致", WAIT)
        .await;
    assert!(alipay.contains("本主机没有这笔订单"), "{alipay}");
    b.run("document.querySelector('#bills-form').scrollIntoView(); return true")
        .await;
    b.screenshot("reports-bills-zh").await;
    b.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_owner_enters_the_shops_alipay_credentials_in_settings_and_the_hub_checks_them() {
    let sim = ProviderSim::start(2);
    let hub = Hub::start();
    let read = |name: &str| std::fs::read_to_string(sim.dir.path().join(name)).unwrap();
    let b = Browser::start().await;
    b.goto(&format!("http://127.0.0.1:{}/#/settings", hub.http)).await;
    b.fill("#login-form [name=password]", OWNER_PASSWORD).await;
    b.click("#login-form button").await;
    let listed = b
        .wait_text("#code-provider-list [data-provider=alipay]", "not set up", WAIT)
        .await;
    assert!(listed.contains("Alipay"), "{listed}");
    // Pasted as the owner would, the test host's address under its fold.
    let fields = serde_json::json!({
        "app_id": sim.info("app_id"),
        "private_key": read("app_private_key.txt"),
        "alipay_public_key": read("alipay_public_key.txt"),
        "gateway": sim.info("gateway"),
        "ca": read("ca.pem"),
    });
    b.run(&format!(
        "const f = document.querySelector('#alipay-form'); const v = {fields}; \
         f.closest('details').open = true; f.querySelector('details').open = true; \
         for (const [k, x] of Object.entries(v)) f.elements[k].value = x; return true"
    ))
    .await;
    b.run("document.querySelector('#alipay-form').scrollIntoView(); return true")
        .await;
    b.screenshot("settings-alipay-entry").await;
    b.click("#alipay-form button[type=submit]").await;
    let listed = b
        .wait_text(
            "#code-provider-list [data-provider=alipay]",
            "the provider took them",
            WAIT,
        )
        .await;
    assert!(
        listed.contains("entered here") && listed.contains(&sim.info("app_id")),
        "{listed}"
    );
    assert_eq!(
        b.run("return document.querySelector('#alipay-form').elements.private_key.value")
            .await,
        "",
        "the key leaves the page once kept"
    );
    b.run("document.querySelector('#code-providers').scrollIntoView(); return true")
        .await;
    b.screenshot("settings-code-providers").await;
    b.click("#lang").await;
    b.wait_text(
        "#code-provider-list [data-provider=alipay]",
        "支付平台已接受",
        WAIT,
    )
    .await;
    b.close().await;
}

#[tokio::test]
async fn the_owner_enters_the_off_site_bucket_in_settings_and_the_next_copy_goes_there() {
    let s3_dir = tempfile::tempdir().unwrap();
    let store = tallybox_e2e::s3::S3Store::start(s3_dir.path(), "tallybox-backups");
    let mut hub = Hub::start();
    // A settlement leaves a backup for the first copy to take.
    let t1 = Terminal::start("T1", hub.mqtt);
    t1.wait_ready();
    assert!(t1.sale(1250, "approved").contains("APPROVED"));
    t1.keys("C");
    t1.keys("D3");
    assert!(t1.wait_screen("Any key", WAIT).contains("SETTLED"));
    let b = Browser::start().await;
    b.goto(&format!("http://127.0.0.1:{}/#/settings", hub.http)).await;
    b.fill("#login-form [name=password]", OWNER_PASSWORD).await;
    b.click("#login-form button").await;
    b.wait_text("#offsite-now", "No off-site copy", WAIT).await;
    let enter = |secret: &str| {
        let fields = serde_json::json!({
            "url": format!("https://127.0.0.1:{}/{}/shop-a", store.port, store.bucket),
            "access_key_id": store.access_key,
            "secret_key": secret,
            "ca": std::fs::read_to_string(&store.ca).unwrap(),
        });
        format!(
            "const f = document.querySelector('#offsite-form'); const v = {fields}; \
             f.closest('details').open = true; f.querySelector('details').open = true; \
             for (const [k, x] of Object.entries(v)) f.elements[k].value = x; return true"
        )
    };
    // A wrong secret: the store's own words, and nothing kept.
    b.run(&enter("not the secret")).await;
    b.click("#offsite-form button[type=submit]").await;
    b.wait_text("#error", "SignatureDoesNotMatch", WAIT).await;
    assert!(b.text("#error").await.contains("nothing was kept"));
    assert!(!hub.data_dir().join("offsite").exists());

    b.run(&enter(&store.secret)).await;
    b.run("document.querySelector('#offsite-form').scrollIntoView(); return true")
        .await;
    b.screenshot("settings-offsite-entry").await;
    b.click("#offsite-form button[type=submit]").await;
    let now = b.wait_text("#offsite-now", "entered here", WAIT).await;
    assert!(now.contains(&store.access_key), "{now}");
    assert_eq!(
        b.run("return document.querySelector('#offsite-form').elements.secret_key.value")
            .await,
        "",
        "the secret leaves the page once kept"
    );
    // The copy goes within the backup job's ten seconds, and the page says so.
    let copied = tallybox_e2e::wait_for(Duration::from_secs(30), || {
        store
            .names()
            .into_iter()
            .find(|n| n.starts_with("shop-a/shop/auto-"))
    });
    assert!(copied.is_some(), "{:?}", store.names());
    b.run("location.reload(); return true").await;
    b.wait_text("#offsite-now", "last copy", WAIT).await;
    let secret = std::fs::read_to_string(hub.data_dir().join("offsite/secret")).unwrap();
    assert_eq!(secret, store.secret);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(hub.data_dir().join("offsite"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o700
    );
    b.run("document.querySelector('#offsite').scrollIntoView(); return true")
        .await;
    b.screenshot("settings-offsite").await;
    b.click("#lang").await;
    b.wait_text("#offsite-now", "在此页填写", WAIT).await;
    assert!(
        !hub.log().contains(&store.secret),
        "the secret is not in the hub's log"
    );
    // Who set where the copies go is in the audit log; the secret is not.
    let db = rusqlite::Connection::open(hub.data_dir().join("tallybox.db")).unwrap();
    let (events, all): (String, String) = db
        .query_row(
            "SELECT (SELECT group_concat(event || ' ' || detail) FROM audit_log WHERE event LIKE 'offsite_%'), \
                    (SELECT group_concat(detail) FROM audit_log)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert!(
        events.starts_with("offsite_entered")
            && events.contains(&store.access_key)
            && events.contains("owner"),
        "{events}"
    );
    assert!(!all.contains(&store.secret));
    drop(db);

    // A sale after the copy; then the owner puts the off-site copy back
    // from the page: the hub starts again on it, the sale after it gone
    // (kept in the database it replaced).
    t1.keys("C");
    assert!(t1.sale(990, "approved").contains("APPROVED"));
    b.click("#offsite-copies-show").await;
    b.wait_text("#offsite-copies", "恢复", WAIT).await;
    b.click("#offsite-copies [data-restore]").await;
    b.click("[data-confirm=yes]").await;
    b.wait_text("#notice", "重新启动", WAIT).await;
    b.close().await;
    tallybox_e2e::wait_for(WAIT, || hub.exited().then_some(())).expect("the hub stops to restore");
    hub.start_again();
    let amounts: Vec<serde_json::Value> = hub.transactions("").iter().map(|t| t["amount"].clone()).collect();
    assert_eq!(amounts, vec![serde_json::json!(1250)], "the copy's one sale");
    let (_, listed) = hub.web().get("/api/v1/backups");
    let last = &listed["last_restore"];
    assert!(
        last["file"].as_str().unwrap().starts_with("offsite-auto-")
            && last["by"] == "owner"
            && last["error"].is_null()
            && last["transactions"] == 1,
        "{listed}"
    );
}
