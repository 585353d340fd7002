//! The owner's API over real HTTP: first start with a setup code, sign-in,
//! the lock-out, CSRF, roles, security headers, reports and the CSV export,
//! backup and evidence downloads, and clear errors for bad input.

use std::time::Duration;

use serde_json::{json, Value};
use tallybox_e2e::mqtt::{sale, RawClient};
use tallybox_e2e::procs::{Hub, STORE};
use tallybox_e2e::web::{status_json, WebClient, OWNER_PASSWORD};
use tallybox_e2e::{bin, free_port, test_card, try_drive, wait_for};

/// The owner adds manager Ann (password `manager-pass-1`); Ann signed in.
fn add_manager_ann(hub: &Hub, owner: &WebClient) -> WebClient {
    let (status, body) = owner.send(
        "PUT",
        "/api/v1/accounts/ann",
        json!({"password": "manager-pass-1"}),
    );
    assert_eq!(status, 204, "{body}");
    WebClient::login(hub.http, Some("ann"), "manager-pass-1").unwrap()
}

/// A client without a session.
fn anon() -> ureq::Agent {
    ureq::AgentBuilder::new().timeout(Duration::from_secs(10)).build()
}

fn url(hub: &Hub, path: &str) -> String {
    format!("http://127.0.0.1:{}{path}", hub.http)
}

/// Spends the setup code on `password`: the session cookie and the answer.
fn set_up(hub: &Hub, code: &str, password: &str) -> (String, Value) {
    let r = anon()
        .post(&url(hub, "/api/v1/setup"))
        .send_json(json!({"code": code, "password": password}))
        .expect("setup with the right code");
    let cookie = r.header("set-cookie").unwrap_or_default();
    let cookie = cookie.split(';').next().unwrap_or_default().to_string();
    (cookie, r.into_json().unwrap())
}

#[test]
fn a_new_hub_is_set_up_with_its_one_time_code_and_locks_out_guessers() {
    let hub = Hub::start_fresh();
    let agent = anon();
    // Nothing private answers before setup, and the page is told why.
    let (status, body) = hub.get_public("/api/v1/transactions");
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "setup_required", "{body}");
    // Health and the page itself stay public.
    assert_eq!(hub.get_public("/healthz").0, 200);
    assert_eq!(agent.get(&url(&hub, "/")).call().unwrap().status(), 200);

    let code = hub.setup_code();
    assert_eq!(code.len(), 9, "{code}");
    let setup = |code: &str, password: &str| {
        status_json(
            agent
                .post(&url(&hub, "/api/v1/setup"))
                .send_json(json!({"code": code, "password": password})),
        )
    };
    let (status, body) = setup("0000 0000", "a-good-password");
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "wrong_setup_code");
    let (status, body) = setup(&code, "short");
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("8 to 128"));
    let (cookie, body) = set_up(&hub, &code, "a-good-password");
    assert_eq!(body["role"], "owner");
    // The code works once.
    assert_eq!(setup(&code, "another-password").0, 409);

    // Five wrong passwords are allowed; then the account locks, even for the
    // right password, and says for how long.
    for _ in 0..5 {
        let (status, body) = WebClient::login(hub.http, None, "guess-guess").err().unwrap();
        assert_eq!(status, 401, "{body}");
    }
    let (status, body) = WebClient::login(hub.http, None, "a-good-password").err().unwrap();
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["error"]["code"], "locked");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("locked for"),
        "{body}"
    );
    let r = agent
        .post(&url(&hub, "/api/v1/session"))
        .send_json(json!({"password": "a-good-password"}));
    match r {
        Err(ureq::Error::Status(429, r)) => {
            let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
            assert!((1..=30).contains(&wait), "{wait}");
        }
        other => panic!("expected 429, got {other:?}"),
    }
    // The owner (still signed in from the setup) sees every attempt and
    // where it came from.
    let (status, accounts) = status_json(
        agent
            .get(&url(&hub, "/api/v1/accounts"))
            .set("cookie", &cookie)
            .call(),
    );
    assert_eq!(status, 200, "{accounts}");
    let failed = accounts["logins"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["ok"] == false && l["ip"] == "127.0.0.1")
        .count();
    assert_eq!(
        failed, 6,
        "the wrong setup code and five wrong passwords: {accounts}"
    );
}

#[test]
fn sessions_need_csrf_for_changes_and_managers_cannot_touch_accounts() {
    let hub = Hub::start();
    let owner = hub.web();
    let agent = anon();

    // Security headers on the page and on the API.
    let page = agent.get(&url(&hub, "/")).call().unwrap();
    let csp = page.header("content-security-policy").unwrap().to_string();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    let gz = agent
        .get(&url(&hub, "/app.js"))
        .set("accept-encoding", "gzip")
        .call()
        .unwrap();
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    let mut packed = Vec::new();
    std::io::Read::read_to_end(&mut gz.into_reader(), &mut packed).unwrap();
    let mut plain = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(packed.as_slice()), &mut plain).unwrap();
    assert!(
        plain.contains("EventSource"),
        "the gzipped page script unpacks to the script"
    );
    let br = agent
        .get(&url(&hub, "/app.js"))
        .set("accept-encoding", "gzip, deflate, br")
        .call()
        .unwrap();
    assert_eq!(br.header("content-encoding"), Some("br"));
    let plain_js = agent.get(&url(&hub, "/app.js")).call().unwrap();
    assert_eq!(plain_js.header("content-encoding"), None);
    assert_eq!(plain_js.into_string().unwrap(), plain);
    // Opened again, a file the browser has is not sent again: 304, no body.
    let first = agent.get(&url(&hub, "/app.js")).call().unwrap();
    let tag = first.header("etag").expect("an ETag").to_string();
    let again = agent
        .get(&url(&hub, "/app.js"))
        .set("if-none-match", &tag)
        .call()
        .unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(again.into_string().unwrap(), "");
    let other = agent
        .get(&url(&hub, "/style.css"))
        .set("if-none-match", &tag)
        .call()
        .unwrap();
    assert_eq!(other.status(), 200, "another file's tag is not this one's");
    // Installable: a manifest naming an icon that is served.
    let manifest: serde_json::Value = agent
        .get(&url(&hub, "/manifest.webmanifest"))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    assert_eq!(manifest["display"], "standalone");
    let icon = manifest["icons"][0]["src"].as_str().unwrap();
    let icon = agent.get(&url(&hub, icon)).call().unwrap();
    assert_eq!(icon.header("content-type"), Some("image/svg+xml"));
    let page_html = agent.get(&url(&hub, "/")).call().unwrap().into_string().unwrap();
    assert!(
        page_html.contains("rel=\"manifest\"") && page_html.contains("rel=\"icon\""),
        "{page_html}"
    );

    // The cookie is HttpOnly and SameSite=Strict.
    let r = agent
        .post(&url(&hub, "/api/v1/session"))
        .send_json(json!({"password": OWNER_PASSWORD}))
        .unwrap();
    let cookie = r.header("set-cookie").unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );

    // A change without the CSRF token is refused; with it, done.
    let no_csrf = status_json(
        agent
            .put(&url(&hub, "/api/v1/accounts/ann"))
            .set("cookie", owner.cookie())
            .send_json(json!({"password": "manager-pass-1"})),
    );
    assert_eq!(no_csrf.0, 403, "{:?}", no_csrf.1);
    assert_eq!(no_csrf.1["error"]["code"], "csrf");
    let ann = add_manager_ann(&hub, &owner);

    // A manager reads receipts but not accounts or backups.
    assert_eq!(ann.role, "manager");
    assert_eq!(ann.get("/api/v1/transactions").0, 200);
    let (status, body) = ann.get("/api/v1/accounts");
    assert_eq!(status, 403, "{body}");
    assert_eq!(ann.get("/api/v1/backup").0, 403);

    // The owner sees the sign-ins with their address.
    let (_, accounts) = owner.get("/api/v1/accounts");
    let logins = accounts["logins"].as_array().unwrap();
    assert!(logins
        .iter()
        .any(|l| l["account"] == "ann" && l["ip"] == "127.0.0.1" && l["ok"] == true));

    // A password change signs that account out everywhere.
    let (status, body) = ann.send(
        "PUT",
        "/api/v1/password",
        json!({"current": "wrong-one-x", "new": "manager-pass-2"}),
    );
    assert_eq!(status, 403, "{body}");
    let (status, body) = ann.send(
        "PUT",
        "/api/v1/password",
        json!({"current": "manager-pass-1", "new": "manager-pass-2"}),
    );
    assert_eq!(status, 204, "{body}");
    assert_eq!(ann.get("/api/v1/transactions").0, 401);
    assert!(WebClient::login(hub.http, Some("ann"), "manager-pass-2").is_ok());

    // Removing a manager; the owner cannot be removed.
    assert_eq!(owner.send("DELETE", "/api/v1/accounts/ann", Value::Null).0, 204);
    assert_eq!(owner.send("DELETE", "/api/v1/accounts/owner", Value::Null).0, 404);
    // Signing out ends the session.
    assert_eq!(owner.send("DELETE", "/api/v1/session", Value::Null).0, 204);
    assert_eq!(owner.get("/api/v1/transactions").0, 401);
}

#[test]
fn reports_csv_backup_and_evidence_hold_what_was_sold() {
    let hub = Hub::start();
    let raw = RawClient::connect(hub.mqtt, STORE, "T4");
    let wait = Duration::from_secs(10);
    raw.request("T4", &sale("rep-000000001", &test_card("approved"), 1250), wait)
        .expect("sale");
    raw.request("T4", &sale("rep-000000002", &test_card("approved"), 3300), wait)
        .expect("sale");
    raw.request("T4", &sale("rep-000000003", &test_card("lost"), 999), wait)
        .expect("decline");
    let web = hub.web();

    let (status, today) = web.get("/api/v1/today");
    assert_eq!(status, 200, "{today}");
    assert_eq!(today["totals"]["sales"], 2, "{today}");
    assert_eq!(today["totals"]["sales_minor"], 4550);
    assert_eq!(today["totals"]["net_minor"], 4550);
    assert_eq!(today["totals"]["declined"], 1);
    assert_eq!(today["by_terminal"][0]["key"], "T4");

    let (status, month) = web.get("/api/v1/reports?period=month");
    assert_eq!(status, 200, "{month}");
    assert_eq!(month["totals"]["sales_minor"], 4550);
    let days = month["buckets"].as_array().unwrap();
    assert!(
        (28..=31).contains(&days.len()),
        "every day of the month is a bucket"
    );
    let (_, day) = web.get("/api/v1/reports?period=day");
    assert_eq!(day["buckets"].as_array().unwrap().len(), 24);
    let busy: i64 = day["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["net_minor"].as_i64().unwrap())
        .sum();
    assert_eq!(busy, 4550);

    // Bad input says which field and how to fix it.
    for (path, field) in [
        ("/api/v1/reports?period=year", "period"),
        ("/api/v1/reports?date=25/11/2026", "date"),
        ("/api/v1/transactions?limit=0", "limit"),
        ("/api/v1/transactions?kind=gift", "kind"),
        ("/api/v1/transactions?auth_code=%25%25", "auth_code"),
        ("/api/v1/transactions?colour=red", "colour"),
    ] {
        let (status, body) = web.get(path);
        assert_eq!(status, 400, "{path}: {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(field), "{path}: {message}");
    }
    let (status, body) = web.send("POST", "/api/v1/freezes", json!({"scope": "T 4"}));
    assert_eq!(status, 400, "{body}");
    let (status, body) = web.send("POST", "/api/v1/freezes", json!("not an object"));
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("JSON"),
        "{body}"
    );

    // Searching by the auth code and reference number from a slip.
    let approved = hub.by_request("rep-000000001").unwrap();
    for key in ["auth_code", "reference_no"] {
        let items = hub.transactions(&format!("{key}={}", approved[key].as_str().unwrap()));
        assert_eq!(items.len(), 1, "{key}");
        assert_eq!(items[0]["request_id"], "rep-000000001");
    }

    // CSV for Excel: BOM, Chinese headers, one line per transaction.
    let (status, kind, csv) = web.get_text("/api/v1/transactions.csv");
    assert_eq!(status, 200);
    assert!(kind.starts_with("text/csv"), "{kind}");
    assert!(csv.starts_with('\u{feff}'), "no byte order mark");
    let lines: Vec<&str> = csv.trim_end().split("\r\n").collect();
    assert_eq!(lines.len(), 4, "{csv}");
    assert!(lines[0].contains("金额 amount"), "{}", lines[0]);
    assert!(
        lines[1].contains("12.50") && lines[1].contains("622202******0005"),
        "{}",
        lines[1]
    );
    assert!(
        lines[3].contains("挂失") || lines[3].contains("Lost"),
        "{}",
        lines[3]
    );
    assert!(!csv.contains("6222020000000000005"), "a full card number leaked");

    // The backup is a whole SQLite database with the sales in it.
    let r = ureq::get(&url(&hub, "/api/v1/backup"))
        .set("cookie", web.cookie())
        .call()
        .unwrap();
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut r.into_reader(), &mut bytes).unwrap();
    assert!(bytes.starts_with(b"SQLite format 3\0"));
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("backup.db");
    std::fs::write(&copy, &bytes).unwrap();
    let n: i64 = rusqlite::Connection::open(&copy)
        .unwrap()
        .query_row("SELECT count(*) FROM transactions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 3);

    // The evidence pack, from the page.
    let date = today["date"].as_str().unwrap();
    let r = ureq::get(&url(&hub, &format!("/api/v1/evidence?from={date}&to={date}")))
        .set("cookie", web.cookie())
        .call()
        .unwrap();
    let mut tar = Vec::new();
    std::io::Read::read_to_end(&mut r.into_reader(), &mut tar).unwrap();
    let text = String::from_utf8_lossy(&tar);
    assert!(text.contains("evidence/transactions.csv") && text.contains("evidence/logins.csv"));

    // The customer's e-receipt and its QR code are public, by token only.
    let token = approved["receipt_token"].as_str().unwrap();
    let qr = ureq::get(&url(&hub, &format!("/r/{token}/qr.svg")))
        .call()
        .unwrap();
    assert_eq!(qr.content_type(), "image/svg+xml");
    assert!(qr.into_string().unwrap().contains("<path d=\"M"));
    assert_eq!(hub.get_public("/r/AAAAAAAAAAAAAAAAAAAAAAAAAA/qr.svg").0, 404);
}

#[test]
fn the_owner_edits_the_shop_and_the_next_slip_shows_it() {
    let mut hub = Hub::start();
    let web = hub.web();
    let edit = json!({
        "store_name": "老王便利店",
        "address": "幸福路 8 号",
        "slip_header": ["欢迎光临"],
        "slip_footer": ["谢谢惠顾 Thank you", ""],
        "supervisor_pin": "4321"
    });
    let (status, body) = web.send("PUT", "/api/v1/settings", edit.clone());
    assert_eq!(status, 204, "{body}");
    let (_, settings) = web.get("/api/v1/settings");
    assert_eq!(settings["store_name"], "老王便利店");
    assert_eq!(
        settings["slip_footer"],
        json!(["谢谢惠顾 Thank you"]),
        "blank lines dropped"
    );
    assert_eq!(settings["supervisor_pin_set"], true);
    assert!(
        settings.get("supervisor_pin").is_none(),
        "the PIN is never sent back"
    );

    // The next sale's slip, on the checkout and on the page.
    let raw = RawClient::connect(hub.mqtt, STORE, "T2");
    let answer = raw
        .request(
            "T2",
            &sale("shop-000000001", &test_card("approved"), 500),
            Duration::from_secs(10),
        )
        .expect("sale");
    assert_eq!(answer["receipt"]["merchant_name"], "老王便利店", "{answer}");
    assert_eq!(answer["receipt"]["footer"], json!(["谢谢惠顾 Thank you"]));
    let id = hub.by_request("shop-000000001").unwrap()["id"].clone();
    let (_, detail) = web.get(&format!("/api/v1/transactions/{id}"));
    let slip: Vec<&str> = detail["slip"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        slip[0].contains("老王便利店") && slip[1].contains("幸福路 8 号") && slip[2].contains("欢迎光临"),
        "{slip:?}"
    );
    let amount = slip.iter().position(|l| l.contains("AMOUNT")).unwrap();
    let footer = slip
        .iter()
        .position(|l| l.contains("谢谢惠顾"))
        .expect("the footer is printed");
    assert!(footer > amount, "the footer ends the slip body: {slip:?}");

    // What does not fit a slip is refused by name; managers cannot edit.
    let (status, body) = web.send("PUT", "/api/v1/settings", json!({"store_name": "字".repeat(17)}));
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("store_name"),
        "{body}"
    );
    let (status, _) = web.send(
        "PUT",
        "/api/v1/settings",
        json!({"store_name": "X", "supervisor_pin": "12"}),
    );
    assert_eq!(status, 400);
    web.send(
        "PUT",
        "/api/v1/accounts/mo",
        json!({"password": "manager-pass-1"}),
    );
    let mo = WebClient::login(hub.http, Some("mo"), "manager-pass-1").unwrap();
    assert_eq!(mo.send("PUT", "/api/v1/settings", edit).0, 403);

    // Kept across a restart.
    hub.restart();
    let (_, settings) = hub.get("/api/v1/settings");
    assert_eq!(settings["address"], "幸福路 8 号");
    assert_eq!(settings["supervisor_pin_set"], true);
}

#[test]
fn a_new_hubs_own_checkout_shows_and_prints_the_setup_code_until_it_is_used() {
    let control = free_port();
    let hub = Hub::start_fresh_with(&["--devices", "sim", "--control", &format!("127.0.0.1:{control}")]);
    let code = hub.setup_code();
    let screen = wait_for(Duration::from_secs(10), || {
        let s = try_drive(control, &["screen"]).unwrap_or_default();
        s.contains(&code).then_some(s)
    })
    .unwrap_or_else(|| {
        panic!(
            "the OLED never showed {code}: {}",
            try_drive(control, &["screen"]).unwrap_or_default()
        )
    });
    assert!(screen.contains("Owner setup code"), "{screen}");
    let paper = wait_for(Duration::from_secs(10), || {
        let p = try_drive(control, &["paper"]).unwrap_or_default();
        p.contains(&code).then_some(p)
    })
    .unwrap_or_else(|| {
        panic!(
            "no setup slip: {}",
            try_drive(control, &["paper"]).unwrap_or_default()
        )
    });
    assert!(
        paper.contains("OWNER SETUP CODE") && paper.contains("http://tallybox.local"),
        "{paper}"
    );

    let (status, body) = status_json(
        anon()
            .post(&url(&hub, "/api/v1/setup"))
            .send_json(json!({"code": code, "password": "a-good-password"})),
    );
    assert_eq!(status, 200, "{body}");
    let screen = wait_for(Duration::from_secs(10), || {
        let s = try_drive(control, &["screen"]).unwrap_or_default();
        (!s.contains(&code) && s.contains("Ready")).then_some(s)
    });
    assert!(
        screen.is_some(),
        "the code stayed on the OLED: {}",
        try_drive(control, &["screen"]).unwrap_or_default()
    );
}

#[test]
fn a_forgotten_owner_password_is_reset_on_the_hub_without_losing_anything() {
    let mut hub = Hub::start_fresh();
    let code = hub.setup_code();
    let (status, _) = status_json(
        anon()
            .post(&url(&hub, "/api/v1/setup"))
            .send_json(json!({"code": code, "password": "first-password"})),
    );
    assert_eq!(status, 200);
    let raw = RawClient::connect(hub.mqtt, STORE, "T3");
    raw.request(
        "T3",
        &sale("reset-000000001", &test_card("approved"), 700),
        Duration::from_secs(10),
    )
    .expect("sale");
    // Locked out by guesses, then the password forgotten.
    for _ in 0..6 {
        assert!(WebClient::login(hub.http, None, "no-idea-at-all").is_err());
    }
    hub.stop();
    let out = std::process::Command::new(bin("tallybox"))
        .args(["reset-owner", "--data-dir"])
        .arg(hub.data_dir())
        .output()
        .unwrap();
    assert!(out.status.success());
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(said.contains("new setup code"), "{said}");
    // A backup of everything was taken first, the owner's password in it.
    let backup = said
        .lines()
        .find_map(|l| l.strip_prefix("backup of everything taken first: "))
        .unwrap_or_else(|| panic!("no backup named: {said}"));
    let copy = rusqlite::Connection::open(backup).unwrap();
    let owners: u32 = copy
        .query_row("SELECT count(*) FROM accounts WHERE role = 'owner'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(owners, 1, "the backup holds the state before the reset");
    hub.restart();
    let code = hub.setup_code();
    // A new setup code sets a new password, the lock gone.
    let (cookie, _) = set_up(&hub, &code, "second-password");
    assert!(WebClient::login(hub.http, None, "second-password").is_ok());
    assert!(WebClient::login(hub.http, None, "first-password").is_err());
    // Nothing else was lost: the sale and the record of the guesses.
    let (_, list) = status_json(
        anon()
            .get(&url(&hub, "/api/v1/transactions"))
            .set("cookie", &cookie)
            .call(),
    );
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");
    let (_, accounts) = status_json(
        anon()
            .get(&url(&hub, "/api/v1/accounts"))
            .set("cookie", &cookie)
            .call(),
    );
    let guesses = accounts["logins"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["ok"] == false)
        .count();
    assert!(guesses >= 5, "{accounts}");
}

#[test]
fn the_owners_time_zone_sets_slip_times_reports_and_the_checkouts_clock() {
    use chrono::NaiveDateTime;
    let mut hub = Hub::start();
    let web = hub.web();
    let t1 = tallybox_e2e::procs::Terminal::start("T1", hub.mqtt);
    t1.wait_ready();
    for bad in ["../../etc/passwd", "CST-8", "Nowhere/City"] {
        let (status, body) = web.send(
            "PUT",
            "/api/v1/settings",
            json!({"store_name": "Corner Shop", "time_zone": bad}),
        );
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("time_zone"),
            "{body}"
        );
    }
    let (_, zones) = web.get("/api/v1/time-zones");
    assert!(zones["zones"]
        .as_array()
        .unwrap()
        .iter()
        .any(|z| z == "Pacific/Kiritimati"));
    // UTC+14, no summer time: every local time is 14 hours ahead.
    let (status, body) = web.send(
        "PUT",
        "/api/v1/settings",
        json!({"store_name": "Corner Shop", "time_zone": "Pacific/Kiritimati"}),
    );
    assert_eq!(status, 204, "{body}");
    assert_eq!(web.get("/api/v1/settings").1["time_zone"], "Pacific/Kiritimati");

    // The checkout's clock follows without a restart.
    follows_the_zone(&t1);

    let sold = t1.sale(1250, "approved");
    assert!(sold.contains("APPROVED"), "{sold}");
    let slip = &t1.wait_paper(2)[0];
    let txn = &hub.transactions("")[0];
    let local =
        NaiveDateTime::parse_from_str(txn["local_time"].as_str().unwrap(), "%Y-%m-%d %H:%M:%S").unwrap();
    let utc = NaiveDateTime::parse_from_str(&txn["created_at"].as_str().unwrap()[..19], "%Y-%m-%dT%H:%M:%S")
        .unwrap();
    let ahead = (local - utc).num_seconds();
    assert!(
        (14 * 3600 - 1..=14 * 3600 + 1).contains(&ahead),
        "local {local} is {ahead} s ahead of {utc}"
    );
    assert!(slip.contains(txn["local_time"].as_str().unwrap()), "{slip}");
    // The day's report is the store's day.
    let (_, report) = web.get("/api/v1/reports?period=day");
    assert_eq!(report["from"], local.format("%Y-%m-%d").to_string());
    assert_eq!(report["totals"]["sales"], 1);

    // A restart keeps the zone, and a checkout that starts later learns it at sign-in.
    drop(t1);
    hub.restart();
    let t2 = tallybox_e2e::procs::Terminal::start("T2", hub.mqtt);
    t2.wait_ready();
    follows_the_zone(&t2);
}

/// Waits until `t`'s idle clock shows UTC+14 (this minute or the last).
fn follows_the_zone(t: &tallybox_e2e::procs::Terminal) {
    let shows_plus_14 = |clock: &str| {
        let now = chrono::Utc::now() + chrono::Duration::hours(14);
        let before = now - chrono::Duration::minutes(1);
        clock == now.format("%H:%M").to_string() || clock == before.format("%H:%M").to_string()
    };
    let clock = wait_for(Duration::from_secs(10), || {
        let screen = t.call(json!({"cmd": "screen"}));
        let clock = screen["status"]["clock"].as_str().unwrap_or_default().to_string();
        shows_plus_14(&clock).then_some(clock)
    });
    assert!(
        clock.is_some(),
        "{}'s clock: {}",
        t.id,
        t.call(json!({"cmd": "screen"}))
    );
}

#[test]
fn the_owner_password_comes_from_a_file_and_on_the_command_line_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("owner-password");
    std::fs::write(&file, "from-a-file-123\n").unwrap();
    let hub = Hub::start_fresh_with(&["--owner-password-file", file.to_str().unwrap()]);
    WebClient::login(hub.http, None, "from-a-file-123").expect("the file's password, its newline dropped");
    assert!(!hub.log().contains("on the command line"), "{}", hub.log());
    // Given in argv (as these tests do), it works and the log says where it can be read.
    let argv = Hub::start();
    assert!(
        argv.log()
            .contains("the owner password was given on the command line"),
        "{}",
        argv.log()
    );
}

#[test]
fn only_the_owner_lifts_a_freeze_unless_the_owner_lets_managers() {
    let hub = Hub::start();
    let owner = WebClient::owner(hub.http);
    let ann = add_manager_ann(&hub, &owner);

    // A manager freezes the store (a fraud is stopped at once) ...
    let (status, body) = ann.send(
        "POST",
        "/api/v1/freezes",
        json!({"scope": "store", "reason": "odd refunds"}),
    );
    assert_eq!(status, 200, "{body}");
    // ... but cannot lift it, nor one the owner made.
    let (status, body) = ann.send("DELETE", "/api/v1/freezes/store", json!({}));
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("owner_only")),
        "{body}"
    );
    let (_, settings) = owner.get("/api/v1/settings");
    assert_eq!(settings["managers_unfreeze"], false, "as shipped: {settings}");

    // The owner lets managers do it: now Ann can.
    let (status, body) = owner.send(
        "PUT",
        "/api/v1/settings",
        json!({"store_name": settings["store_name"], "managers_unfreeze": true}),
    );
    assert_eq!(status, 204, "{body}");
    let (status, body) = ann.send("DELETE", "/api/v1/freezes/store", json!({}));
    assert_eq!(status, 200, "{body}");
}

#[test]
fn answers_go_gzipped_to_a_browser_that_accepts_it_and_plain_to_one_that_does_not() {
    let hub = Hub::start();
    let owner = hub.web();
    let agent = anon();
    let ask = |path: &str, accept: Option<&str>| {
        let mut request = agent.get(&url(&hub, path)).set("cookie", owner.cookie());
        if let Some(accept) = accept {
            request = request.set("accept-encoding", accept);
        }
        let reply = request.call().unwrap();
        let encoding = reply.header("content-encoding").map(str::to_string);
        let vary = reply.header("vary").map(str::to_string);
        let mut body = Vec::new();
        std::io::Read::read_to_end(&mut reply.into_reader(), &mut body).unwrap();
        (encoding, vary, body)
    };
    // A month's report: a day's line for each of 28 to 31 days.
    let (encoding, _, plain) = ask("/api/v1/reports?period=month", None);
    assert_eq!(encoding, None);
    // What Chromium sends.
    let (encoding, vary, packed) = ask("/api/v1/reports?period=month", Some("gzip, deflate, br, zstd"));
    assert_eq!(encoding.as_deref(), Some("gzip"));
    assert_eq!(vary.as_deref(), Some("accept-encoding"));
    let mut unpacked = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(packed.as_slice()),
        &mut unpacked,
    )
    .unwrap();
    let as_json = |bytes: &[u8]| serde_json::from_slice::<Value>(bytes).unwrap();
    assert_eq!(as_json(&unpacked), as_json(&plain));
    assert!(
        packed.len() * 4 < plain.len(),
        "{} bytes for {}",
        packed.len(),
        plain.len()
    );
    // Refused by q=0: plain.
    let (encoding, _, body) = ask("/api/v1/reports?period=month", Some("gzip;q=0, br"));
    assert_eq!(encoding, None);
    assert_eq!(as_json(&body), as_json(&plain));
    // The live feed is never held back to be packed.
    let feed = agent
        .get(&url(&hub, "/api/v1/events"))
        .set("cookie", owner.cookie())
        .set("accept-encoding", "gzip")
        .call()
        .unwrap();
    assert_eq!(feed.content_type(), "text/event-stream");
    assert_eq!(feed.header("content-encoding"), None);
}
