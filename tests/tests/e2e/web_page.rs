//! The owner's page in a real headless Chromium at phone size, against a real
//! hub and a simulated checkout: sign in, watch a sale arrive live, search
//! and open receipts, switch to Chinese, export CSV, read reports, freeze a
//! terminal and see its next sale refused. Screenshots of every page land in
//! `target/screenshots/`.

use std::time::{Duration, Instant};

use tallybox_e2e::browser::Browser;
use tallybox_e2e::procs::{Hub, Terminal};
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
    b.wait_text("#error", "wrong name or password", WAIT).await;
    b.fill("#login-form [name=password]", OWNER_PASSWORD).await;
    b.click("#login-form button").await;
    b.wait_text("#today-view", "Net", WAIT).await;
    b.wait_text("#today-totals", "CNY 0.00", WAIT).await;

    // A sale on the checkout shows on Today without a reload.
    let screen = tokio::task::block_in_place(|| t1.sale(1250, "approved"));
    assert!(screen.contains("APPROVED"), "{screen}");
    let approved_at = Instant::now();
    t1.keys("C");
    b.wait_text("#today-totals", "CNY 12.50", WAIT).await;
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
    b.wait_text("#receipts", "CNY 33.00", WAIT).await;
    let list = b.text("#receipts").await;
    assert!(
        list.contains("CNY 12.50") && list.contains("Declined · Lost card"),
        "{list}"
    );
    b.screenshot("receipts").await;
    b.run("document.querySelector('#filters [name=status]').value = 'approved'")
        .await;
    b.click("#filters button[type=submit]").await;
    let started = Instant::now();
    loop {
        let list = b.text("#receipts").await;
        if list.contains("CNY 12.50") && !list.contains("CNY 33.00") {
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
    b.wait_text("#detail-status", "APPROVED · refunded CNY 5.00", WAIT)
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
    b.wait_text("#notice", "Sent to the printer", WAIT).await;
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
    b.wait_text("#report-totals", "CNY 12.50", WAIT).await;
    let bars = b
        .run("return document.querySelectorAll('#chart rect').length")
        .await;
    assert_eq!(bars, serde_json::json!(24));
    b.screenshot("reports").await;

    // Terminals: freeze T1 from the phone; its next sale is refused.
    b.click("#nav a[href='#/terminals']").await;
    b.wait_text("#terminal-list", "online", WAIT).await;
    b.fill("li[data-id=T1] [name=reason]", "card testing seen").await;
    b.click("li[data-id=T1] button.danger").await;
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
    b.wait_text("li[data-id='terminal.T1.online']", "T1 is online", WAIT)
        .await;
    b.wait_text("#checks", "store.integrity", WAIT).await;
    b.wait_text("#checks", "hub.broker", WAIT).await;
    b.wait_text("#areas", "T1", WAIT).await;
    b.wait_text("#check-history", "self_check", WAIT).await;
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
