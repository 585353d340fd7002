//! `tallybox-provider-sim`: Alipay's open platform gateway (`/gateway.do`)
//! and WeChat Pay's API v2 (`/pay/…`, `/secapi/pay/…`, `wechat.rs`) as
//! their documentation describes them, simulated on loopback over TLS, for
//! the tests and the demo. For Alipay: It checks each call as Alipay does (the app id, the
//! common parameters, the RSA2 signature with the merchant's public key,
//! the timestamp, the call's own parameters) and answers signed with its
//! own platform key.
//!
//! At start it writes into `--dir`: `ca.pem` (the test CA its certificate
//! is from), `alipay_public_key.txt` (its platform key, for the hub to
//! check answers), the merchant's key pair as Alipay's key tool would make
//! it (`app_private_key.txt`, mode 0600, and `app_public_key.txt`) unless
//! `--app-public-key` names the merchant's; for WeChat Pay, the API key
//! (`wechat_api_key.txt`, 0600) and the API client certificate the CA
//! signed (`apiclient_cert.pem`, `apiclient_key.pem`); and `gateway.json`
//! (the addresses and ids) once it listens.
//!
//! Test payment codes (18 digits, `28` then any digits, the last four say
//! what the buyer does): `0000` pays at once; `0001` confirms in the app
//! after `--confirm-after` seconds; `0002` never confirms; `0003` has too
//! little money; `0004` is expired; `0005` is refused by risk control;
//! `0006` pays, but the gateway answers the payment with a system error
//! (the outcome must be asked for). A code that paid once is used up.
//! WeChat Pay's test codes are the same with `13` in front of `28`.

mod wechat;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use clap::Parser;
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
use serde_json::{json, Map, Value};
use tallybox::payments::alipay::signing_content;
use tallybox::payments::rsa2::{SigningKey, VerifyingKey};
use tallybox::payments::{test_buyer, TestBuyer};

#[derive(Parser)]
#[command(about = "A simulated Alipay gateway on loopback, over TLS")]
struct Args {
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Where the CA, the keys and gateway.json go.
    #[arg(long)]
    dir: PathBuf,
    /// The merchant's application public key (else a pair is made).
    #[arg(long)]
    app_public_key: Option<PathBuf>,
    /// The merchant's app id.
    #[arg(long, default_value = "2021000000000001")]
    app_id: String,
    /// Seconds a buyer takes to confirm a `…0001` code in the app.
    #[arg(long, default_value_t = 5)]
    confirm_after: u64,
    /// Each call and its answer, one JSON line each, for an independent check.
    #[arg(long)]
    log: Option<PathBuf>,
    /// The WeChat Pay merchant's app id and merchant id.
    #[arg(long, default_value = "wx2421b1c4370ec43b")]
    wechat_appid: String,
    #[arg(long, default_value = "1900000109")]
    wechat_mch_id: String,
}

/// One order as the gateway keeps it.
struct Trade {
    trade_no: String,
    code: String,
    amount: u64,
    subject: String,
    /// When the buyer confirms; `None`: never.
    pays_at: Option<Instant>,
    status: &'static str,
    refunded: u64,
    /// Refunds by `out_request_no`: a repeat refunds once.
    refunds: HashMap<String, u64>,
}

struct Gateway {
    app_id: String,
    key: SigningKey,
    app_key: VerifyingKey,
    confirm_after: Duration,
    trades: Mutex<HashMap<String, Trade>>,
    used_codes: Mutex<HashMap<String, String>>,
    log: Option<Mutex<std::fs::File>>,
    next_trade: Mutex<u64>,
    wechat: wechat::WechatPay,
    started: Instant,
    /// Every payment and refund, for the bills.
    ledger: Mutex<Vec<Movement>>,
    /// `https://ADDR`, for the bills' download addresses.
    base: String,
    /// The bills asked for and not downloaded yet, by token: the day, and
    /// until when the address works (Alipay's last 30 seconds).
    downloads: Mutex<HashMap<String, (chrono::NaiveDate, Instant)>>,
}

/// Money moved on one order, for a bill.
pub struct Movement {
    pub at: chrono::DateTime<chrono::Utc>,
    pub out_trade_no: String,
    pub trade_no: String,
    pub subject: String,
    pub amount: u64,
    /// A refund's own number; `None`: a payment.
    pub refund_no: Option<String>,
}

/// The wall-clock time of `at`.
pub fn wall(at: Instant) -> chrono::DateTime<chrono::Utc> {
    let now = Instant::now();
    let ago = now.saturating_duration_since(at);
    let ahead = at.saturating_duration_since(now);
    chrono::Utc::now() - chrono::Duration::from_std(ago).unwrap_or_default()
        + chrono::Duration::from_std(ahead).unwrap_or_default()
}

/// The day of `at` in Beijing time, the providers' clock.
pub fn beijing_day(at: chrono::DateTime<chrono::Utc>) -> chrono::NaiveDate {
    at.with_timezone(&tallybox::payments::beijing()).date_naive()
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.dir)?;
    let write = |name: &str, text: &str| std::fs::write(args.dir.join(name), text);
    let platform = new_key()?;
    write("alipay_public_key.txt", &public_text(&platform)?)?;
    let app_public = match &args.app_public_key {
        Some(path) => std::fs::read_to_string(path).with_context(|| path.display().to_string())?,
        None => {
            let app = new_key()?;
            let private = args.dir.join("app_private_key.txt");
            std::fs::write(&private, app.to_pkcs8_pem(LineEnding::LF)?.as_bytes())?;
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o600))?;
            let public = public_text(&app)?;
            write("app_public_key.txt", &public)?;
            public
        }
    };
    let wechat_key: String = {
        use rand::Rng;
        let mut rng = rand::thread_rng();
        (0..32)
            .map(|_| rng.sample(rand::distributions::Alphanumeric) as char)
            .collect()
    };
    let key_file = args.dir.join("wechat_api_key.txt");
    std::fs::write(&key_file, &wechat_key)?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600))?;
    }
    let ca = certificates(&args.dir)?;
    let acceptor = acceptor(&args.dir)?;
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let addr = listener.local_addr()?;
    let gateway = Arc::new(Gateway {
        app_id: args.app_id.clone(),
        key: SigningKey::from_text(&platform.to_pkcs8_pem(LineEnding::LF)?).map_err(anyhow::Error::msg)?,
        app_key: VerifyingKey::from_text(&app_public).map_err(anyhow::Error::msg)?,
        confirm_after: Duration::from_secs(args.confirm_after),
        trades: Mutex::default(),
        used_codes: Mutex::default(),
        log: match &args.log {
            Some(path) => Some(Mutex::new(
                std::fs::OpenOptions::new().create(true).append(true).open(path)?,
            )),
            None => None,
        },
        next_trade: Mutex::new(0),
        wechat: wechat::WechatPay::new(
            &args.wechat_appid,
            &args.wechat_mch_id,
            &wechat_key,
            Duration::from_secs(args.confirm_after),
        ),
        started: Instant::now(),
        ledger: Mutex::default(),
        base: format!("https://{addr}"),
        downloads: Mutex::default(),
    });
    let info = json!({
        "gateway": format!("https://{addr}/gateway.do"),
        "app_id": args.app_id,
        "ca": ca,
        "wechat": format!("https://{addr}"),
        "wechat_appid": args.wechat_appid,
        "wechat_mch_id": args.wechat_mch_id,
    });
    write("gateway.json", &info.to_string())?;
    println!("alipay gateway on https://{addr}/gateway.do");
    loop {
        let (tcp, _) = listener.accept().await?;
        // Answers go out as written (no Nagle wait behind the handshake's last segments).
        tcp.set_nodelay(true).ok();
        let (acceptor, gateway) = (acceptor.clone(), Arc::clone(&gateway));
        tokio::spawn(async move {
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            // WeChat Pay's reversals and refunds need the merchant's certificate.
            let certified = tls.get_ref().1.peer_certificates().is_some_and(|c| !c.is_empty());
            let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                let gateway = Arc::clone(&gateway);
                async move {
                    let path = request.uri().path().to_string();
                    if path == BILL_FILE {
                        let query = request.uri().query().unwrap_or("").to_string();
                        let (status, file) = gateway.bill_file(&query);
                        gateway.note(&path, &query, &data_encoding::BASE64.encode(&file));
                        return Ok(hyper::Response::builder()
                            .status(status)
                            .header("content-type", "application/octet-stream")
                            .body(Full::new(Bytes::from(file)))
                            .expect("a response"));
                    }
                    let body = request.into_body().collect().await?.to_bytes();
                    let form = String::from_utf8_lossy(&body).to_string();
                    let answer = match path.as_str() {
                        "/gateway.do" => gateway.answer(&form).await,
                        _ => gateway.wechat.answer(&path, &form, certified),
                    };
                    gateway.note(&path, &form, &answer);
                    Ok::<_, hyper::Error>(
                        hyper::Response::builder()
                            .header("content-type", "text/html;charset=utf-8")
                            .body(Full::new(Bytes::from(answer)))
                            .expect("a response"),
                    )
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}

fn new_key() -> anyhow::Result<rsa::RsaPrivateKey> {
    Ok(rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048)?)
}

/// A public key as Alipay's key tool shows it: the X.509 key in base64.
fn public_text(key: &rsa::RsaPrivateKey) -> anyhow::Result<String> {
    let der = key.to_public_key().to_public_key_der()?;
    Ok(data_encoding::BASE64.encode(der.as_bytes()))
}

/// The gateway's TLS: its certificate, and a client certificate the CA
/// signed taken when shown (WeChat Pay's API certificate).
fn acceptor(dir: &std::path::Path) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    use tokio_rustls::rustls::{self, server::WebPkiClientVerifier, RootCertStore, ServerConfig};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(dir.join("ca.pem"))? {
        roots.add(cert?)?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider))
        .allow_unauthenticated()
        .build()?;
    let chain =
        CertificateDer::pem_file_iter(dir.join("gateway-cert.pem"))?.collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_file(dir.join("gateway-key.pem"))?;
    let config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// The test CA, a certificate it signed for 127.0.0.1, and WeChat Pay's
/// API client certificate for the merchant (PEM files); the CA's path.
fn certificates(dir: &std::path::Path) -> anyhow::Result<PathBuf> {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key)?;
    let host_key = KeyPair::generate()?;
    let issuer = Issuer::new(ca_params, ca_key);
    let host = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])?
        .signed_by(&host_key, &issuer)?;
    let client_key = KeyPair::generate()?;
    let client = CertificateParams::new(Vec::<String>::new())?.signed_by(&client_key, &issuer)?;
    let path = |what: &str| dir.join(format!("{what}.pem"));
    std::fs::write(path("ca"), ca.pem())?;
    std::fs::write(path("gateway-cert"), host.pem())?;
    std::fs::write(path("gateway-key"), host_key.serialize_pem())?;
    std::fs::write(path("apiclient_cert"), client.pem())?;
    let client_key_path = path("apiclient_key");
    std::fs::write(&client_key_path, client_key.serialize_pem())?;
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&client_key_path, std::fs::Permissions::from_mode(0o600))?;
    }
    Ok(path("ca"))
}

/// A refusal before the call is taken, as Alipay writes it.
fn error_response(code: &str, msg: &str, sub_code: &str, sub_msg: &str) -> Value {
    json!({ "code": code, "msg": msg, "sub_code": sub_code, "sub_msg": sub_msg })
}

fn business(sub_code: &str, sub_msg: &str) -> Value {
    json!({ "code": "40004", "msg": "Business Failed", "sub_code": sub_code, "sub_msg": sub_msg })
}

fn yuan(minor: u64) -> String {
    format!("{}.{:02}", minor / 100, minor % 100)
}

/// `"42.50"` in fen; `None` when it is not Alipay's money format.
fn fen(text: &str) -> Option<u64> {
    let (yuan, cents) = text.split_once('.').unwrap_or((text, "00"));
    if yuan.is_empty() || cents.len() != 2 || !(yuan.bytes().chain(cents.bytes())).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    Some(yuan.parse::<u64>().ok()? * 100 + cents.parse::<u64>().ok()?)
}

impl Gateway {
    fn note(&self, path: &str, form: &str, answer: &str) {
        if let Some(log) = &self.log {
            use std::io::Write;
            let at_ms = self.started.elapsed().as_millis() as u64;
            let line = json!({ "path": path, "form": form, "answer": answer, "at_ms": at_ms }).to_string();
            let _ = writeln!(log.lock().unwrap_or_else(|e| e.into_inner()), "{line}");
        }
    }

    /// The whole answer to one call: the response node and its signature.
    async fn answer(&self, form: &str) -> String {
        let params: BTreeMap<String, String> = serde_urlencoded::from_str(form).unwrap_or_default();
        let method = params.get("method").cloned().unwrap_or_default();
        let (name, node) = match self.check(&params) {
            Err(refusal) => ("error_response".to_string(), refusal),
            Ok(biz) => (
                format!("{}_response", method.replace('.', "_")),
                self.call(&method, &biz).await,
            ),
        };
        let text = node.to_string();
        let sign = self.key.sign(text.as_bytes()).unwrap_or_default();
        // The node's text exactly as signed, then the signature.
        format!("{{\"{name}\":{text},\"sign\":\"{sign}\"}}")
    }

    /// The common parameters and the signature, as the gateway checks them
    /// before it looks at the call: `biz_content`, or the refusal.
    fn check(&self, params: &BTreeMap<String, String>) -> Result<Map<String, Value>, Value> {
        let get = |k: &str| params.get(k).map(String::as_str).unwrap_or("");
        let missing = |what: &str| {
            error_response(
                "40001",
                "Missing Required Arguments",
                &format!("isv.missing-{what}"),
                &format!("缺少{what}参数"),
            )
        };
        for what in [
            "app_id",
            "method",
            "charset",
            "sign_type",
            "sign",
            "timestamp",
            "version",
        ] {
            if get(what).is_empty() {
                return Err(missing(what));
            }
        }
        if get("app_id") != self.app_id {
            return Err(error_response(
                "40002",
                "Invalid Arguments",
                "isv.invalid-app-id",
                "无效的AppID参数",
            ));
        }
        if get("sign_type") != "RSA2" || get("charset").to_lowercase() != "utf-8" || get("version") != "1.0" {
            return Err(error_response(
                "40002",
                "Invalid Arguments",
                "isv.invalid-signature-type",
                "无效的签名类型",
            ));
        }
        if !get("format").is_empty() && get("format") != "JSON" {
            return Err(error_response(
                "40002",
                "Invalid Arguments",
                "isv.invalid-format",
                "无效的数据格式",
            ));
        }
        let beijing = chrono::FixedOffset::east_opt(8 * 3600).expect("UTC+8");
        let at = chrono::NaiveDateTime::parse_from_str(get("timestamp"), "%Y-%m-%d %H:%M:%S")
            .ok()
            .and_then(|t| t.and_local_timezone(beijing).single());
        let fresh = at.is_some_and(|t| {
            (chrono::Utc::now() - t.with_timezone(&chrono::Utc))
                .num_minutes()
                .abs()
                <= 10
        });
        if !fresh {
            return Err(error_response(
                "40002",
                "Invalid Arguments",
                "isv.invalid-timestamp",
                "非法的时间戳参数",
            ));
        }
        let signed: BTreeMap<&str, String> = params.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        if !self
            .app_key
            .verify(signing_content(&signed).as_bytes(), get("sign"))
        {
            return Err(error_response(
                "40002",
                "Invalid Arguments",
                "isv.invalid-signature",
                "验签出错",
            ));
        }
        serde_json::from_str(get("biz_content")).map_err(|_| {
            error_response(
                "40002",
                "Invalid Arguments",
                "isv.invalid-biz-content",
                "biz_content 不是 JSON",
            )
        })
    }

    async fn call(&self, method: &str, biz: &Map<String, Value>) -> Value {
        let get = |k: &str| biz.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        if method == "alipay.data.dataservice.bill.downloadurl.query" {
            return self.bill_address(&get("bill_type"), &get("bill_date"));
        }
        let out_trade_no = get("out_trade_no");
        if out_trade_no.is_empty() || out_trade_no.len() > 64 {
            return business("ACQ.INVALID_PARAMETER", "参数无效: out_trade_no");
        }
        match method {
            "alipay.trade.pay" => {
                self.pay(
                    &out_trade_no,
                    &get("auth_code"),
                    &get("scene"),
                    &get("subject"),
                    &get("total_amount"),
                )
                .await
            }
            "alipay.trade.query" => self.query(&out_trade_no),
            "alipay.trade.cancel" => self.cancel(&out_trade_no),
            "alipay.trade.refund" => {
                self.refund(&out_trade_no, &get("refund_amount"), &get("out_request_no"))
            }
            _ => error_response("40004", "Business Failed", "isv.invalid-method", "不存在的方法名"),
        }
    }

    fn paid_node(&self, out_trade_no: &str, trade: &Trade) -> Value {
        json!({
            "code": "10000", "msg": "Success",
            "trade_no": trade.trade_no, "out_trade_no": out_trade_no,
            "buyer_logon_id": "159****5620",
            "total_amount": yuan(trade.amount), "receipt_amount": yuan(trade.amount),
            "gmt_payment": chrono::Utc::now().format("%Y-%m-%d %H:%M:%S").to_string(),
        })
    }

    async fn pay(&self, out_trade_no: &str, code: &str, scene: &str, subject: &str, amount: &str) -> Value {
        if scene != "bar_code" || subject.is_empty() {
            return business("ACQ.INVALID_PARAMETER", "参数无效: scene 或 subject");
        }
        let Some(amount) = fen(amount).filter(|a| (1..=10_000_000_000).contains(a)) else {
            return business("ACQ.INVALID_PARAMETER", "参数无效: total_amount");
        };
        let mut trades = self.trades.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(trade) = trades.get(out_trade_no) {
            // The same order again: Alipay says it is paid (or asks to query).
            if trade.code != code || trade.amount != amount {
                return business("ACQ.CONTEXT_INCONSISTENT", "交易信息被篡改");
            }
            return match trade.status {
                "TRADE_SUCCESS" => business("ACQ.TRADE_HAS_SUCCESS", "交易已被支付"),
                "TRADE_CLOSED" => business("ACQ.TRADE_HAS_CLOSE", "交易已经关闭"),
                _ => {
                    json!({ "code": "10003", "msg": "order success pay inprocess", "out_trade_no": out_trade_no })
                }
            };
        }
        let digits_ok =
            code.len() == 18 && code.starts_with("28") && code.bytes().all(|b| b.is_ascii_digit());
        if !digits_ok {
            return business(
                "ACQ.PAYMENT_AUTH_CODE_INVALID",
                "支付失败，获取顾客账户信息失败，请顾客刷新付款码后重新收款",
            );
        }
        let used = self
            .used_codes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(code)
            .cloned();
        if used.is_some_and(|o| o != out_trade_no) {
            return business(
                "ACQ.PAYMENT_AUTH_CODE_INVALID",
                "支付失败，获取顾客账户信息失败，请顾客刷新付款码后重新收款",
            );
        }
        let buyer = test_buyer(code);
        let pays_at = match buyer {
            TestBuyer::Pays | TestBuyer::PaysUnanswered => Some(Instant::now()),
            TestBuyer::ConfirmsLater => Some(Instant::now() + self.confirm_after),
            TestBuyer::NeverConfirms => None,
            TestBuyer::TooLittle => return business("ACQ.BUYER_BALANCE_NOT_ENOUGH", "买家余额不足"),
            TestBuyer::Expired => {
                return business(
                    "ACQ.PAYMENT_AUTH_CODE_INVALID",
                    "支付失败，获取顾客账户信息失败，请顾客刷新付款码后重新收款",
                )
            }
            TestBuyer::Refused => return business("ACQ.PAYMENT_REQUEST_HAS_RISK", "支付有风险"),
        };
        let trade_no = {
            let mut next = self.next_trade.lock().unwrap_or_else(|e| e.into_inner());
            *next += 1;
            format!("{}2200{:016}", chrono::Utc::now().format("%Y%m%d"), *next)
        };
        let paid_now = pays_at.is_some_and(|at| at <= Instant::now());
        let trade = Trade {
            trade_no,
            code: code.to_string(),
            amount,
            subject: subject.to_string(),
            pays_at,
            status: if paid_now {
                "TRADE_SUCCESS"
            } else {
                "WAIT_BUYER_PAY"
            },
            refunded: 0,
            refunds: HashMap::new(),
        };
        self.used_codes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(code.to_string(), out_trade_no.to_string());
        let node = match (paid_now, buyer) {
            (true, TestBuyer::PaysUnanswered) => {
                json!({ "code": "20000", "msg": "Service Currently Unavailable", "sub_code": "ACQ.SYSTEM_ERROR", "sub_msg": "系统异常" })
            }
            (true, _) => self.paid_node(out_trade_no, &trade),
            (false, _) => json!({
                "code": "10003", "msg": "order success pay inprocess",
                "trade_no": trade.trade_no, "out_trade_no": out_trade_no,
                "buyer_logon_id": "159****5620", "total_amount": yuan(amount),
            }),
        };
        if paid_now {
            self.moved(chrono::Utc::now(), out_trade_no, &trade, trade.amount, None);
        }
        trades.insert(out_trade_no.to_string(), trade);
        node
    }

    fn query(&self, out_trade_no: &str) -> Value {
        let mut trades = self.trades.lock().unwrap_or_else(|e| e.into_inner());
        let Some(trade) = trades.get_mut(out_trade_no) else {
            return business("ACQ.TRADE_NOT_EXIST", "交易不存在");
        };
        self.confirm(out_trade_no, trade);
        let mut node = match trade.status {
            "TRADE_SUCCESS" => self.paid_node(out_trade_no, trade),
            _ => json!({
                "code": "10000", "msg": "Success", "trade_no": trade.trade_no,
                "out_trade_no": out_trade_no, "total_amount": yuan(trade.amount),
            }),
        };
        node["trade_status"] = trade.status.into();
        node
    }

    fn cancel(&self, out_trade_no: &str) -> Value {
        let mut trades = self.trades.lock().unwrap_or_else(|e| e.into_inner());
        let Some(trade) = trades.get_mut(out_trade_no) else {
            // Nothing to close: Alipay answers that it does not exist.
            return json!({ "code": "40004", "msg": "Business Failed", "sub_code": "ACQ.TRADE_NOT_EXIST", "sub_msg": "交易不存在", "retry_flag": "N" });
        };
        self.confirm(out_trade_no, trade);
        // A paid trade is refunded in full; an unpaid one closed.
        let action = if trade.status == "TRADE_SUCCESS" {
            let left = trade.amount - trade.refunded;
            self.moved(chrono::Utc::now(), out_trade_no, trade, left, Some(String::new()));
            "refund"
        } else {
            "close"
        };
        trade.status = "TRADE_CLOSED";
        trade.pays_at = None;
        json!({
            "code": "10000", "msg": "Success", "trade_no": trade.trade_no,
            "out_trade_no": out_trade_no, "retry_flag": "N", "action": action,
        })
    }

    fn refund(&self, out_trade_no: &str, amount: &str, out_request_no: &str) -> Value {
        let mut trades = self.trades.lock().unwrap_or_else(|e| e.into_inner());
        let Some(trade) = trades.get_mut(out_trade_no) else {
            return business("ACQ.TRADE_NOT_EXIST", "交易不存在");
        };
        let Some(amount) = fen(amount).filter(|a| *a > 0) else {
            return business("ACQ.INVALID_PARAMETER", "参数无效: refund_amount");
        };
        let request = if out_request_no.is_empty() {
            out_trade_no
        } else {
            out_request_no
        };
        if let Some(done) = trade.refunds.get(request) {
            if *done != amount {
                return business("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "退款金额与原退款请求不一致");
            }
        } else {
            if trade.status != "TRADE_SUCCESS" {
                return business("ACQ.TRADE_STATUS_ERROR", "交易状态不合法");
            }
            if trade.refunded + amount > trade.amount {
                return business("ACQ.REFUND_AMT_NOT_EQUAL_TOTAL", "退款金额超限");
            }
            trade.refunded += amount;
            trade.refunds.insert(request.to_string(), amount);
            self.moved(
                chrono::Utc::now(),
                out_trade_no,
                trade,
                amount,
                Some(request.to_string()),
            );
        }
        json!({
            "code": "10000", "msg": "Success", "trade_no": trade.trade_no,
            "out_trade_no": out_trade_no, "buyer_logon_id": "159****5620",
            "fund_change": "Y", "refund_fee": yuan(trade.refunded),
        })
    }
}

/// Where the bills are downloaded.
const BILL_FILE: &str = "/downloadBillFile.resource";

/// The business details' header, as Alipay's bill writes it.
const DETAILS_HEADER: &str = "支付宝交易号,商户订单号,业务类型,商品名称,创建时间,完成时间,门店编号,门店名称,操作员,终端号,对方账户,订单金额（元）,商家实收（元）,支付宝红包（元）,集分宝（元）,支付宝优惠（元）,商家优惠（元）,券核销金额（元）,券名称,商家红包消费金额（元）,卡消费金额（元）,退款批次号/请求号,服务费（元）,分润（元）,备注";

impl Gateway {
    /// A buyer who confirmed in the app by now has paid.
    fn confirm(&self, out_trade_no: &str, trade: &mut Trade) {
        if trade.status == "WAIT_BUYER_PAY" && trade.pays_at.is_some_and(|at| at <= Instant::now()) {
            trade.status = "TRADE_SUCCESS";
            let at = trade.pays_at.map_or_else(chrono::Utc::now, wall);
            self.moved(at, out_trade_no, trade, trade.amount, None);
        }
    }

    fn moved(
        &self,
        at: chrono::DateTime<chrono::Utc>,
        out_trade_no: &str,
        trade: &Trade,
        amount: u64,
        refund_no: Option<String>,
    ) {
        self.ledger
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Movement {
                at,
                out_trade_no: out_trade_no.to_string(),
                trade_no: trade.trade_no.clone(),
                subject: trade.subject.clone(),
                amount,
                refund_no,
            });
    }

    /// `alipay.data.dataservice.bill.downloadurl.query`: the address of a
    /// day's trade bill. Alipay writes a day's bill the next morning; the
    /// sim gives the bill of any day begun, today's as far as it goes.
    fn bill_address(&self, bill_type: &str, bill_date: &str) -> Value {
        if bill_type != "trade" && bill_type != "signcustomer" {
            return business("isv.invalid-parameter", "bill_type 无效");
        }
        let Ok(day) = chrono::NaiveDate::parse_from_str(bill_date, "%Y-%m-%d") else {
            return business("isv.invalid-parameter", "bill_date 无效");
        };
        if day > beijing_day(chrono::Utc::now()) {
            return business("isp.bill_not_exist", "账单不存在");
        }
        {
            let mut trades = self.trades.lock().unwrap_or_else(|e| e.into_inner());
            for (no, trade) in trades.iter_mut() {
                self.confirm(no, trade);
            }
        }
        let token = format!("{:032x}", rand::random::<u128>());
        self.downloads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(token.clone(), (day, Instant::now() + Duration::from_secs(30)));
        json!({
            "code": "10000", "msg": "Success",
            "bill_download_url": format!(
                "{}{BILL_FILE}?bizType=trade&bizDates={}&fileType=csv.zip&token={token}",
                self.base,
                day.format("%Y%m%d")
            ),
        })
    }

    /// The zip archive at a bill's address: the day's business details
    /// and their summary, in GBK.
    fn bill_file(&self, query: &str) -> (u16, Vec<u8>) {
        let params: BTreeMap<String, String> = serde_urlencoded::from_str(query).unwrap_or_default();
        let token = params.get("token").cloned().unwrap_or_default();
        let found = self
            .downloads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&token);
        let Some((day, _)) = found.filter(|(_, until)| *until > Instant::now()) else {
            return (404, b"the address has expired".to_vec());
        };
        let money = |fen: u64, sign: &str| format!("{sign}{}", yuan(fen));
        let mut details = format!(
            "#支付宝业务明细查询\r\n#账号：[{}0156]\r\n#起始日期：[{} 00:00:00]   终止日期：[{} 00:00:00]\r\n\
             #-----------------------------------------业务明细列表----------------------------------------\r\n{DETAILS_HEADER}\r\n",
            self.app_id,
            day.format("%Y年%m月%d日"),
            (day + chrono::Duration::days(1)).format("%Y年%m月%d日"),
        );
        let (mut paid, mut refunded) = ((0, 0u64), (0, 0u64));
        let beijing = tallybox::payments::beijing();
        for m in self.ledger.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            if beijing_day(m.at) != day {
                continue;
            }
            let at = m.at.with_timezone(&beijing).format("%Y-%m-%d %H:%M:%S");
            let (kind, sign, batch) = match &m.refund_no {
                None => ("交易", "", String::new()),
                Some(no) => ("退款", "-", no.clone()),
            };
            if m.refund_no.is_none() {
                paid = (paid.0 + 1, paid.1 + m.amount);
            } else {
                refunded = (refunded.0 + 1, refunded.1 + m.amount);
            }
            let amount = money(m.amount, sign);
            details.push_str(&format!(
                "{}\t,{}\t,{kind}\t,{},{at},{at},\t,\t,\t,\t,159****5620\t,{amount},{amount},0.00,0.00,0.00,0.00,0.00,,0.00\t,0.00,{batch}\t,0.00,0.00,\r\n",
                m.trade_no, m.out_trade_no, m.subject
            ));
        }
        details.push_str(&format!(
            "#-----------------------------------------业务明细列表结束------------------------------------\r\n\
             #交易合计：{}笔，商家实收共{}元\r\n#退款合计：{}笔，商家实收共{}元\r\n#导出时间：[{}]\r\n",
            paid.0,
            yuan(paid.1),
            refunded.0,
            money(refunded.1, "-"),
            chrono::Utc::now().with_timezone(&beijing).format("%Y年%m月%d日 %H:%M:%S"),
        ));
        let summary = format!(
            "#支付宝业务汇总查询\r\n门店编号,门店名称,交易订单总笔数,退款订单总笔数,订单金额（元）,商家实收（元）\r\n,合计,{},{},{},{}\r\n",
            paid.0,
            refunded.0,
            yuan(paid.1),
            yuan(paid.1 - refunded.1.min(paid.1)),
        );
        let gbk = |text: &str| encoding_rs::GBK.encode(text).0.into_owned();
        let name = |what: &str| {
            gbk(&format!(
                "{}0156_{}_{what}.csv",
                self.app_id,
                day.format("%Y%m%d")
            ))
        };
        let archive = tallybox::payments::zip::write(&[
            (name("业务明细"), gbk(&details)),
            (name("业务明细(汇总)"), gbk(&summary)),
        ]);
        (200, archive)
    }
}
