//! WeChat Pay payment-code payment (付款码支付, API v2) as pay.weixin.qq.com
//! documents it: a POST of a flat XML document per call, signed with the
//! merchant's API key (`sign_type=HMAC-SHA256`: every other non-empty field
//! sorted by name, `name=value` joined by `&`, then `&key=<API key>`,
//! HMAC-SHA256 keyed with the API key, upper-case hex); the answer is signed
//! the same way, and checked.
//!
//! Calls: `pay/micropay` (`result_code=SUCCESS` paid; `err_code=USERPAYING`
//! the buyer is confirming; `SYSTEMERROR` / `BANKERROR` unknown: ask),
//! `pay/orderquery` (`trade_state`), `secapi/pay/reverse` (with the
//! merchant's client certificate; no sooner than 15 s after the order, as
//! the documentation asks; `recall=Y` means call it again) and
//! `secapi/pay/refund` (client certificate; `out_refund_no` makes a repeat
//! refund once); `pay/downloadbill` (a day's bill, read in `bill.rs`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tallybox_core::reason;
use tallybox_core::secret::Secret;

use super::bill::BillLine;
use super::https::{post_body, Endpoint};
use super::{declined_if_refused, Answer, CallError, CodeProvider, Order, RefundOrder};
use crate::acquirer::iso8583::tls::TlsClient;

/// WeChat Pay's API host.
pub const GATEWAY: &str = "https://api.mch.weixin.qq.com";

/// The documentation asks for a reverse no sooner than this after the order.
pub const REVERSE_AFTER: Duration = Duration::from_secs(15);

/// A merchant's access to WeChat Pay.
pub struct WechatPay {
    appid: String,
    mch_id: String,
    key: Secret<String>,
    /// Without the client certificate (payments, queries).
    tls: TlsClient,
    /// With it (reverse, refund).
    cert_tls: TlsClient,
    gateway: Endpoint,
    timeout: Duration,
    /// When each order of this run was placed: its reverse waits until
    /// [`REVERSE_AFTER`] has passed.
    placed: Mutex<HashMap<String, Instant>>,
}

impl std::fmt::Debug for WechatPay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WechatPay({} at {})", self.mch_id, self.gateway.host)
    }
}

/// What the merchant was given by WeChat Pay.
pub struct Credentials<'a> {
    pub appid: &'a str,
    pub mch_id: &'a str,
    /// The API key (32 characters) set in the merchant platform.
    pub key: &'a str,
    /// The API client certificate and its key (PEM files).
    pub client_cert: &'a std::path::Path,
    pub client_key: &'a std::path::Path,
}

impl WechatPay {
    pub fn new(
        gateway: &str,
        credentials: &Credentials<'_>,
        ca: &std::path::Path,
        timeout: Duration,
    ) -> Result<WechatPay, String> {
        let gateway = Endpoint::parse(gateway.trim_end_matches('/'))?;
        if credentials.key.trim().len() != 32 {
            return Err("the API key is 32 characters (set in the merchant platform)".into());
        }
        if credentials.mch_id.is_empty() || !credentials.mch_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!(
                "{:?} is not a WeChat Pay merchant id (digits)",
                credentials.mch_id
            ));
        }
        if credentials.appid.is_empty() {
            return Err("no appid".into());
        }
        let client = (credentials.client_cert, credentials.client_key);
        Ok(WechatPay {
            appid: credentials.appid.to_string(),
            mch_id: credentials.mch_id.to_string(),
            key: Secret::new(credentials.key.trim().to_string()),
            tls: TlsClient::new(ca, None, &gateway.host)?,
            cert_tls: TlsClient::new(ca, Some(client), &gateway.host)?,
            gateway,
            timeout,
            placed: Mutex::default(),
        })
    }

    /// Calls `path` with `fields` (the common ones added, signed): the
    /// answer's fields once its signature is checked and `return_code` is
    /// `SUCCESS`; or why there is no answer to trust.
    async fn call(
        &self,
        path: &str,
        fields: BTreeMap<&'static str, String>,
        with_cert: bool,
    ) -> Result<BTreeMap<String, String>, CallError> {
        let answer = self.post(path, fields, with_cert).await?;
        let answer = from_xml(&answer).ok_or("WeChat Pay's answer is not the XML it documents")?;
        let get = |k: &str| answer.get(k).map(String::as_str).unwrap_or("");
        if get("return_code") != "SUCCESS" {
            // Refused before it was looked at (a bad signature, a missing
            // field): WeChat Pay leaves such an answer unsigned. Only a
            // refused signature is taken as a refusal of the call (the
            // shop's API key); anything else leaves the order unknown.
            let words = format!("WeChat Pay refused the call: {}", get("return_msg"));
            let msg = get("return_msg");
            return Err(
                if msg.starts_with("签名错误") || msg.eq_ignore_ascii_case("SIGNERROR") {
                    CallError::Refused(reason::CODE_KEY_REFUSED, words)
                } else {
                    CallError::Unknown(words)
                },
            );
        }
        let signed: BTreeMap<&str, String> = answer.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        if sign(&signed, self.key.expose()) != get("sign") {
            return Err(
                "the answer's signature is not WeChat Pay's (the API key, or the answer, is wrong)".into(),
            );
        }
        Ok(answer)
    }
}

impl WechatPay {
    /// Posts `fields` to `path`, the common ones added and signed: the
    /// answer's text.
    async fn post(
        &self,
        path: &str,
        mut fields: BTreeMap<&'static str, String>,
        with_cert: bool,
    ) -> Result<String, CallError> {
        fields.insert("appid", self.appid.clone());
        fields.insert("mch_id", self.mch_id.clone());
        fields.insert("nonce_str", nonce());
        fields.insert("sign_type", "HMAC-SHA256".into());
        let signature = sign(&fields, self.key.expose());
        fields.insert("sign", signature);
        let at = Endpoint {
            path: format!("{}{path}", self.gateway.path.trim_end_matches('/')),
            ..self.gateway.clone()
        };
        let tls = if with_cert { &self.cert_tls } else { &self.tls };
        let body = to_xml(&fields);
        let (status, answer) = tokio::time::timeout(self.timeout, post_body(tls, &at, "text/xml", body))
            .await
            .map_err(|_| format!("WeChat Pay did not answer within {:?}", self.timeout))??;
        if status != 200 {
            return Err(format!("WeChat Pay answered HTTP {status}").into());
        }
        Ok(answer)
    }
}

/// WeChat Pay's signature of `fields`: HMAC-SHA256 keyed with the API key
/// over the non-empty fields but `sign`, sorted, `k=v&…&key=<API key>`.
pub fn sign(fields: &BTreeMap<&str, String>, key: &str) -> String {
    let mut content = fields
        .iter()
        .filter(|(k, v)| **k != "sign" && !v.is_empty())
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    content.push_str("&key=");
    content.push_str(key);
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("HMAC takes any key");
    mac.update(content.as_bytes());
    hex::encode_upper(mac.finalize().into_bytes())
}

/// A random string of 32 letters and digits, as each call needs.
fn nonce() -> String {
    use rand::Rng;
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..32)
        .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
        .collect()
}

/// The flat `<xml>` document WeChat Pay takes, each value in CDATA.
pub fn to_xml<K: AsRef<str>>(fields: &BTreeMap<K, String>) -> String {
    let mut out = String::from("<xml>");
    for (k, v) in fields {
        let k = k.as_ref();
        out.push_str(&format!(
            "<{k}><![CDATA[{}]]></{k}>",
            v.replace("]]>", "]]]]><![CDATA[>")
        ));
    }
    out.push_str("</xml>");
    out
}

/// The fields of a flat `<xml>` document (values plain or in CDATA).
pub fn from_xml(text: &str) -> Option<BTreeMap<String, String>> {
    let body = text.trim().strip_prefix("<xml>")?.strip_suffix("</xml>")?;
    let mut fields = BTreeMap::new();
    let mut rest = body.trim_start();
    while !rest.is_empty() {
        let name_end = rest.find('>')?;
        let name = rest.strip_prefix('<')?.get(..name_end - 1)?;
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return None;
        }
        let close = format!("</{name}>");
        let after = &rest[name_end + 1..];
        let end = after.find(&close)?;
        let raw = &after[..end];
        let value = match raw.strip_prefix("<![CDATA[") {
            Some(cdata) => cdata.strip_suffix("]]>")?.replace("]]]]><![CDATA[>", "]]>"),
            None => raw
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&apos;", "'")
                .replace("&amp;", "&"),
        };
        fields.insert(name.to_string(), value);
        rest = after[end + close.len()..].trim_start();
    }
    Some(fields)
}

fn get<'a>(fields: &'a BTreeMap<String, String>, key: &str) -> &'a str {
    fields.get(key).map(String::as_str).unwrap_or("")
}

fn paid(fields: &BTreeMap<String, String>) -> Answer {
    // WeChat Pay names the buyer only by an openid, which is no one's to
    // read: the receipt shows none.
    Answer::Paid {
        trade_no: get(fields, "transaction_id").to_string(),
        buyer: None,
        amount: get(fields, "total_fee")
            .parse()
            .ok()
            .and_then(|fen| tallybox_core::money::Amount::from_minor(fen).ok()),
    }
}

/// A business refusal (`result_code=FAIL`) as the cashier hears it; `Err`
/// when its outcome is not known yet.
fn result(fields: &BTreeMap<String, String>) -> Result<Answer, String> {
    if get(fields, "result_code") == "SUCCESS" {
        return Ok(paid(fields));
    }
    let code = get(fields, "err_code");
    let detail = format!("{code} {}", get(fields, "err_code_des"));
    let reason = match code {
        "USERPAYING" => return Ok(Answer::Waiting),
        "SYSTEMERROR" | "BANKERROR" | "ORDERPAID" => return Err(format!("WeChat Pay: {detail}")),
        "NOTENOUGH" => reason::CODE_BALANCE,
        "AUTHCODEEXPIRE" | "AUTH_CODE_INVALID" | "AUTH_CODE_ERROR" => reason::CODE_EXPIRED,
        "ORDERCLOSED" | "ORDERREVERSED" => return Ok(Answer::Closed),
        "APPID_NOT_EXIST" | "MCHID_NOT_EXIST" | "APPID_MCHID_NOT_MATCH" | "SIGNERROR" => {
            reason::CODE_KEY_REFUSED
        }
        "NOAUTH" => reason::CODE_NOT_SET_UP,
        _ => reason::CODE_REFUSED,
    };
    Ok(Answer::Declined(reason, detail))
}

impl CodeProvider for WechatPay {
    fn pay<'a>(&'a self, order: &'a Order) -> BoxFuture<'a, Result<Answer, String>> {
        Box::pin(async move {
            let fields = BTreeMap::from([
                ("body", order.subject.clone()),
                ("out_trade_no", order.out_trade_no.clone()),
                ("total_fee", order.amount.minor().to_string()),
                ("fee_type", "CNY".to_string()),
                ("spbill_create_ip", "127.0.0.1".to_string()),
                ("device_info", order.terminal.clone()),
                ("auth_code", order.code.expose().clone()),
            ]);
            let answer = self.call("/pay/micropay", fields, false).await;
            // The order is WeChat Pay's from when it answered (or might have):
            // its 15 s before a reversal count from then, not from the asking.
            self.placed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .entry(order.out_trade_no.clone())
                .or_insert_with(Instant::now);
            declined_if_refused(answer, |fields| result(&fields))
        })
    }

    fn query<'a>(&'a self, out_trade_no: &'a str) -> BoxFuture<'a, Result<Answer, String>> {
        Box::pin(async move {
            let fields = BTreeMap::from([("out_trade_no", out_trade_no.to_string())]);
            let answer = self.call("/pay/orderquery", fields, false).await?;
            if get(&answer, "result_code") != "SUCCESS" {
                return match get(&answer, "err_code") {
                    "ORDERNOTEXIST" => Ok(Answer::Closed),
                    code => Err(format!("WeChat Pay's query failed: {code}")),
                };
            }
            Ok(match get(&answer, "trade_state") {
                "SUCCESS" | "REFUND" => paid(&answer),
                "USERPAYING" | "NOTPAY" => Answer::Waiting,
                "CLOSED" | "REVOKED" | "PAYERROR" => Answer::Closed,
                other => {
                    return Err(format!(
                        "WeChat Pay's trade state {other:?} is not one it documents"
                    ))
                }
            })
        })
    }

    fn cancel<'a>(&'a self, out_trade_no: &'a str) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let placed = self
                .placed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(out_trade_no)
                .copied();
            if let Some(placed) = placed {
                tokio::time::sleep((placed + REVERSE_AFTER).saturating_duration_since(Instant::now())).await;
            }
            let fields = BTreeMap::from([("out_trade_no", out_trade_no.to_string())]);
            let answer = self.call("/secapi/pay/reverse", fields, true).await?;
            let done =
                get(&answer, "result_code") == "SUCCESS" || get(&answer, "err_code") == "ORDERNOTEXIST";
            if done && get(&answer, "recall") != "Y" {
                self.placed
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(out_trade_no);
                return Ok(());
            }
            Err(format!(
                "WeChat Pay did not reverse yet: {} (recall {})",
                get(&answer, "err_code"),
                get(&answer, "recall")
            ))
        })
    }

    fn refund<'a>(&'a self, refund: &'a RefundOrder) -> BoxFuture<'a, Result<Answer, String>> {
        Box::pin(async move {
            let fields = BTreeMap::from([
                ("out_trade_no", refund.out_trade_no.clone()),
                ("out_refund_no", refund.out_request_no.clone()),
                ("total_fee", refund.sale_amount.minor().to_string()),
                ("refund_fee", refund.amount.minor().to_string()),
            ]);
            let answer = self.call("/secapi/pay/refund", fields, true).await;
            declined_if_refused(answer, |fields| refunded(&fields))
        })
    }

    fn bill<'a>(&'a self, day: chrono::NaiveDate) -> BoxFuture<'a, Result<Option<Vec<BillLine>>, String>> {
        Box::pin(async move {
            let fields = BTreeMap::from([
                ("bill_date", day.format("%Y%m%d").to_string()),
                ("bill_type", "ALL".to_string()),
            ]);
            let answer = self.post("/pay/downloadbill", fields, false).await?;
            // A bill is text; a refusal (no bill that day, a bad signature) is XML.
            if answer.trim_start().starts_with("<xml>") {
                let fields = from_xml(&answer).unwrap_or_default();
                // `20002`: "No Bill Exist".
                if get(&fields, "error_code") == "20002" {
                    return Ok(None);
                }
                return Err(format!(
                    "WeChat Pay gives no bill of {day}: {} {}",
                    get(&fields, "return_msg"),
                    get(&fields, "error_code")
                ));
            }
            super::bill::wechat(&answer).map(Some)
        })
    }

    fn check(&self) -> BoxFuture<'_, Result<(), CallError>> {
        Box::pin(async move {
            // Any signed answer about the order (it does not exist) will do.
            let fields = BTreeMap::from([("out_trade_no", super::CHECK_ORDER.to_string())]);
            self.call("/pay/orderquery", fields, false).await.map(|_| ())
        })
    }
}

/// A refund's answer (`result_code`) as the hub records it; `Err` when its
/// outcome is not known yet.
fn refunded(answer: &BTreeMap<String, String>) -> Result<Answer, String> {
    if get(answer, "result_code") == "SUCCESS" {
        return Ok(Answer::Paid {
            trade_no: get(answer, "refund_id").to_string(),
            buyer: None,
            amount: get(answer, "refund_fee")
                .parse()
                .ok()
                .and_then(|fen| tallybox_core::money::Amount::from_minor(fen).ok()),
        });
    }
    match get(answer, "err_code") {
        "SYSTEMERROR" | "BIZERR_NEED_RETRY" | "FREQUENCY_LIMITED" => {
            Err(format!("WeChat Pay: {}", get(answer, "err_code")))
        }
        "NOTENOUGH" => Ok(Answer::Declined(
            reason::CODE_REFUSED,
            "NOTENOUGH: the merchant's balance cannot cover the refund".into(),
        )),
        code => Ok(Answer::Declined(
            reason::CODE_REFUSED,
            format!("{code} {}", get(answer, "err_code_des")),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_the_documented_hmac_of_the_sorted_fields_and_the_key() {
        // WeChat Pay's own example in its signature guide (签名算法), with
        // sign_type HMAC-SHA256.
        let fields = BTreeMap::from([
            ("appid", "wxd930ea5d5a258f4f".to_string()),
            ("mch_id", "10000100".to_string()),
            ("device_info", "1000".to_string()),
            ("body", "test".to_string()),
            ("nonce_str", "ibuaiVcKdpRxkhJA".to_string()),
            ("sign", "ignored".to_string()),
            ("empty", String::new()),
        ]);
        assert_eq!(
            sign(&fields, "192006250b4c09247ec02edce69f6a2d"),
            "6A9AE1657590FD6257D693A078E1C3E4BB6BA4DC30B23E0EE2496E54170DACD6"
        );
    }

    #[test]
    fn the_flat_xml_reads_back_what_was_written_cdata_and_all() {
        let fields = BTreeMap::from([
            ("body".to_string(), "糖果 <1> & ]]> x".to_string()),
            ("total_fee".to_string(), "4250".to_string()),
        ]);
        let xml = to_xml(&fields);
        assert_eq!(from_xml(&xml).unwrap(), fields);
        let plain =
            "<xml>\n <return_code>SUCCESS</return_code>\n <return_msg>OK &amp; fine</return_msg>\n</xml>";
        let read = from_xml(plain).unwrap();
        assert_eq!(read["return_msg"], "OK & fine");
        assert!(from_xml("<xml><a>1</b></xml>").is_none());
        assert!(from_xml("not xml").is_none());
    }
}
