//! Alipay face-to-face payment (当面付, 付款码支付) as its open platform
//! documents it: one gateway, a form POST per call with the common
//! parameters (`app_id`, `method`, `format=JSON`, `charset=utf-8`,
//! `sign_type=RSA2`, `timestamp` in Beijing time, `version=1.0`) and the
//! call's own in `biz_content` (JSON); `sign` is the RSA2 signature of every
//! other non-empty parameter, sorted by name, as `name=value` joined by `&`
//! (values not URL-encoded). The answer is JSON: `{"<method
//! with _>_response": {...}, "sign": "..."}`, whose signature covers the
//! response object's text exactly as it was sent, checked with Alipay's
//! public key.
//!
//! Calls: `alipay.trade.pay` (`scene=bar_code`, the buyer's `auth_code`):
//! `10000` paid, `10003` the buyer is confirming, `40004` refused with a
//! `sub_code`; `alipay.trade.query` (`trade_status`); `alipay.trade.cancel`
//! (closes the order, refunds it when it was paid meanwhile);
//! `alipay.trade.refund` (`out_request_no` makes a repeat refund once);
//! `alipay.data.dataservice.bill.downloadurl.query` (the address of a day's
//! bill, read in `bill.rs`).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde_json::{json, Map, Value};
use tallybox_core::reason;

use super::bill::BillLine;
use super::https::{post_form, send, Endpoint};
use super::rsa2::{SigningKey, VerifyingKey};
use super::{declined_if_refused, yuan, Answer, CallError, CodeProvider, Order, RefundOrder};
use crate::acquirer::iso8583::tls::TlsClient;

/// Alipay's production gateway.
pub const GATEWAY: &str = "https://openapi.alipay.com/gateway.do";

/// A merchant's access to Alipay's open platform.
pub struct Alipay {
    app_id: String,
    key: SigningKey,
    alipay_key: VerifyingKey,
    tls: TlsClient,
    /// The CA bundle, for the bill's address (another host).
    ca: std::path::PathBuf,
    gateway: Endpoint,
    timeout: Duration,
}

impl std::fmt::Debug for Alipay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Alipay({} at {})", self.app_id, self.gateway.host)
    }
}

/// What an answer says, its signature checked.
type Node = Map<String, Value>;

impl Alipay {
    /// `key`: the merchant's application private key; `alipay_key`:
    /// Alipay's public key (both as the key tool writes them); `ca`: the
    /// CA bundle the gateway's certificate is checked against.
    pub fn new(
        gateway: &str,
        app_id: &str,
        key: &str,
        alipay_key: &str,
        ca: &std::path::Path,
        timeout: Duration,
    ) -> Result<Alipay, String> {
        let gateway = Endpoint::parse(gateway)?;
        if app_id.is_empty() || !app_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("{app_id:?} is not an Alipay app id (digits)"));
        }
        Ok(Alipay {
            app_id: app_id.to_string(),
            key: SigningKey::from_text(key).map_err(|e| format!("the application private key: {e}"))?,
            alipay_key: VerifyingKey::from_text(alipay_key)
                .map_err(|e| format!("Alipay's public key: {e}"))?,
            tls: TlsClient::new(ca, None, &gateway.host)?,
            ca: ca.to_path_buf(),
            gateway,
            timeout,
        })
    }

    /// The signed form for `method` with `biz` as its `biz_content`.
    fn form(&self, method: &str, biz: &Value) -> Result<String, String> {
        let timestamp = chrono::Utc::now()
            .with_timezone(&super::beijing())
            .format("%Y-%m-%d %H:%M:%S")
            .to_string();
        let mut params = BTreeMap::from([
            ("app_id", self.app_id.clone()),
            ("method", method.to_string()),
            ("format", "JSON".to_string()),
            ("charset", "utf-8".to_string()),
            ("sign_type", "RSA2".to_string()),
            ("timestamp", timestamp),
            ("version", "1.0".to_string()),
            ("biz_content", biz.to_string()),
        ]);
        let sign = self.key.sign(signing_content(&params).as_bytes())?;
        params.insert("sign", sign);
        serde_urlencoded::to_string(&params).map_err(|e| e.to_string())
    }

    /// Calls `method`: the response node, its signature Alipay's; or why
    /// there is no answer to trust.
    async fn call(&self, method: &str, biz: Value) -> Result<Node, CallError> {
        let form = self.form(method, &biz)?;
        let (status, body) = tokio::time::timeout(self.timeout, post_form(&self.tls, &self.gateway, form))
            .await
            .map_err(|_| format!("Alipay did not answer within {:?}", self.timeout))??;
        if status != 200 {
            return Err(format!("Alipay's gateway answered HTTP {status}").into());
        }
        let node = format!("{}_response", method.replace('.', "_"));
        self.open(&body, &node)
    }

    /// The node `name` of `body`, when Alipay signed it. A call refused
    /// before it was taken (a wrong app id or signature) comes back as
    /// `error_response`, which Alipay may leave unsigned: returned as the
    /// [`refusal`] it is.
    fn open(&self, body: &str, name: &str) -> Result<Node, CallError> {
        let nodes: HashMap<String, Box<serde_json::value::RawValue>> =
            serde_json::from_str(body).map_err(|e| format!("Alipay's answer is not JSON ({e})"))?;
        let Some(raw) = nodes.get(name) else {
            let refused = nodes
                .get("error_response")
                .and_then(|r| serde_json::from_str::<Node>(r.get()).ok());
            return Err(match refused {
                Some(r) => refusal(&r),
                None => format!("Alipay's answer has no {name}").into(),
            });
        };
        let signature = nodes
            .get("sign")
            .and_then(|s| serde_json::from_str::<String>(s.get()).ok())
            .ok_or("Alipay's answer is not signed")?;
        if !self.alipay_key.verify(raw.get().as_bytes(), &signature) {
            return Err(
                "the answer's signature is not Alipay's (its public key, or the answer, is wrong)".into(),
            );
        }
        serde_json::from_str(raw.get()).map_err(|e| format!("Alipay's {name} is not an object ({e})").into())
    }
}

/// Alipay's content to sign: every parameter but `sign` with a value,
/// sorted by name, `name=value` joined by `&`.
pub fn signing_content(params: &BTreeMap<&str, String>) -> String {
    params
        .iter()
        .filter(|(k, v)| **k != "sign" && !v.is_empty())
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn text<'a>(node: &'a Node, key: &str) -> &'a str {
    node.get(key).and_then(Value::as_str).unwrap_or("")
}

fn paid(node: &Node) -> Answer {
    let buyer = text(node, "buyer_logon_id");
    Answer::Paid {
        trade_no: text(node, "trade_no").to_string(),
        buyer: (!buyer.is_empty()).then(|| buyer.to_string()),
        amount: super::from_yuan(text(node, "total_amount")),
    }
}

/// A call Alipay's gateway refused (`error_response`). Missing or invalid
/// arguments (`40001`, `40002`: among them the app id, the signature and
/// the timestamp) and missing permissions (`20001`, `40006`) are refusals
/// of the call, made before the order is looked at; anything else (`20000`,
/// the service unavailable) leaves the order unknown.
fn refusal(node: &Node) -> CallError {
    let (code, sub) = (text(node, "code"), text(node, "sub_code"));
    let words = format!("Alipay refused the call: {code} {sub} {}", text(node, "sub_msg"));
    let reason = match (code, sub) {
        (_, "isv.invalid-timestamp") => reason::CODE_CLOCK,
        (_, "isv.invalid-app-id" | "isv.invalid-signature" | "isv.invalid-signature-type")
        | (_, "isv.missing-signature" | "isv.missing-signature-key" | "isv.missing-app-id")
        | ("20001", _) => reason::CODE_KEY_REFUSED,
        ("40001" | "40002" | "40006", _) => reason::CODE_NOT_SET_UP,
        _ => return CallError::Unknown(words),
    };
    CallError::Refused(reason, words)
}

/// A business refusal (`40004`) as the cashier hears it.
fn declined(node: &Node) -> Answer {
    let sub = text(node, "sub_code");
    let code = match sub {
        "ACQ.BUYER_BALANCE_NOT_ENOUGH" | "ACQ.BUYER_BANKCARD_BALANCE_NOT_ENOUGH" => reason::CODE_BALANCE,
        "ACQ.PAYMENT_AUTH_CODE_INVALID" => reason::CODE_EXPIRED,
        "ACQ.TRADE_HAS_CLOSE" => reason::CODE_CANCELLED,
        "ACQ.INVALID_PARAMETER" | "ACQ.ACCESS_FORBIDDEN" | "ACQ.SELLER_BEEN_BLOCKED" => {
            reason::CODE_NOT_SET_UP
        }
        _ => reason::CODE_REFUSED,
    };
    Answer::Declined(code, format!("{sub} {}", text(node, "sub_msg")))
}

/// Whether an answer's `code` says the call's outcome is not known yet
/// (`20000` service unavailable, `ACQ.SYSTEM_ERROR`): ask again.
fn unknown(node: &Node) -> Option<String> {
    let (code, sub) = (text(node, "code"), text(node, "sub_code"));
    (code == "20000" || sub == "ACQ.SYSTEM_ERROR" || sub == "ACQ.TRADE_HAS_SUCCESS")
        .then(|| format!("Alipay: {code} {sub} {}", text(node, "sub_msg")))
}

impl CodeProvider for Alipay {
    fn pay<'a>(&'a self, order: &'a Order) -> BoxFuture<'a, Result<Answer, String>> {
        Box::pin(async move {
            let biz = json!({
                "out_trade_no": order.out_trade_no,
                "scene": "bar_code",
                "auth_code": order.code.expose(),
                "subject": order.subject,
                "total_amount": yuan(order.amount),
                "terminal_id": order.terminal,
            });
            declined_if_refused(self.call("alipay.trade.pay", biz).await, |node| {
                if let Some(why) = unknown(&node) {
                    return Err(why);
                }
                Ok(match text(&node, "code") {
                    "10000" => paid(&node),
                    "10003" => Answer::Waiting,
                    _ => declined(&node),
                })
            })
        })
    }

    fn query<'a>(&'a self, out_trade_no: &'a str) -> BoxFuture<'a, Result<Answer, String>> {
        Box::pin(async move {
            let node = self
                .call("alipay.trade.query", json!({ "out_trade_no": out_trade_no }))
                .await?;
            if text(&node, "sub_code") == "ACQ.TRADE_NOT_EXIST" {
                return Ok(Answer::Closed);
            }
            if text(&node, "code") != "10000" {
                return Err(format!(
                    "Alipay's query failed: {} {}",
                    text(&node, "code"),
                    text(&node, "sub_code")
                ));
            }
            Ok(match text(&node, "trade_status") {
                "TRADE_SUCCESS" | "TRADE_FINISHED" => paid(&node),
                "WAIT_BUYER_PAY" => Answer::Waiting,
                "TRADE_CLOSED" => Answer::Closed,
                other => return Err(format!("Alipay's trade status {other:?} is not one it documents")),
            })
        })
    }

    fn cancel<'a>(&'a self, out_trade_no: &'a str) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let node = self
                .call("alipay.trade.cancel", json!({ "out_trade_no": out_trade_no }))
                .await?;
            match (text(&node, "code"), text(&node, "sub_code")) {
                ("10000", _) | (_, "ACQ.TRADE_NOT_EXIST") => Ok(()),
                (code, sub) => Err(format!(
                    "Alipay did not cancel: {code} {sub} (retry {})",
                    text(&node, "retry_flag")
                )),
            }
        })
    }

    fn refund<'a>(&'a self, refund: &'a RefundOrder) -> BoxFuture<'a, Result<Answer, String>> {
        Box::pin(async move {
            let biz = json!({
                "out_trade_no": refund.out_trade_no,
                "refund_amount": yuan(refund.amount),
                "out_request_no": refund.out_request_no,
            });
            declined_if_refused(self.call("alipay.trade.refund", biz).await, |node| {
                if let Some(why) = unknown(&node) {
                    return Err(why);
                }
                Ok(match text(&node, "code") {
                    "10000" => paid(&node),
                    _ => declined(&node),
                })
            })
        })
    }

    fn bill<'a>(&'a self, day: chrono::NaiveDate) -> BoxFuture<'a, Result<Option<Vec<BillLine>>, String>> {
        Box::pin(async move {
            let biz = json!({ "bill_type": "trade", "bill_date": day.format("%Y-%m-%d").to_string() });
            let node = self
                .call("alipay.data.dataservice.bill.downloadurl.query", biz)
                .await?;
            if text(&node, "sub_code").eq_ignore_ascii_case("isp.bill_not_exist") {
                return Ok(None);
            }
            if text(&node, "code") != "10000" {
                return Err(format!(
                    "Alipay gives no bill of {day}: {} {}",
                    text(&node, "sub_code"),
                    text(&node, "sub_msg")
                ));
            }
            let archive = tokio::time::timeout(self.timeout, self.download(text(&node, "bill_download_url")))
                .await
                .map_err(|_| format!("Alipay's bill did not come within {:?}", self.timeout))??;
            super::bill::alipay(&archive).map(Some)
        })
    }

    fn check(&self) -> BoxFuture<'_, Result<(), CallError>> {
        Box::pin(async move {
            // Any signed answer about the order (it does not exist) will do.
            self.call(
                "alipay.trade.query",
                json!({ "out_trade_no": super::CHECK_ORDER }),
            )
            .await
            .map(|_| ())
        })
    }
}

impl Alipay {
    /// The file at Alipay's bill address (valid for 30 seconds). The
    /// address Alipay documents starts `http://`: it is fetched over
    /// HTTPS from the same host, checked against the same CA bundle.
    async fn download(&self, url: &str) -> Result<bytes::Bytes, String> {
        let https = match url.strip_prefix("http://") {
            Some(rest) => format!("https://{rest}"),
            None => url.to_string(),
        };
        let at = Endpoint::parse(&https).map_err(|e| format!("Alipay's bill address: {e}"))?;
        let tls = TlsClient::new(&self.ca, None, &at.host)?;
        let request = hyper::Request::get(&at.path)
            .header(hyper::header::HOST, &at.host)
            .body(http_body_util::Empty::<bytes::Bytes>::new())
            .map_err(|e| e.to_string())?;
        match send(&tls, &at.host, at.port, request).await? {
            (200, body) => Ok(body),
            (status, _) => Err(format!("Alipay's bill address answered HTTP {status}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_content_signed_is_every_other_parameter_sorted_unencoded() {
        let params = BTreeMap::from([
            ("method", "alipay.trade.pay".to_string()),
            ("app_id", "2014072300007148".to_string()),
            ("biz_content", r#"{"a":"b & c"}"#.to_string()),
            ("sign", "xyz".to_string()),
            ("notify_url", String::new()),
        ]);
        assert_eq!(
            signing_content(&params),
            r#"app_id=2014072300007148&biz_content={"a":"b & c"}&method=alipay.trade.pay"#
        );
    }

    fn error_response(code: &str, sub_code: &str) -> Node {
        json!({"code": code, "msg": "Invalid Arguments", "sub_code": sub_code, "sub_msg": "…"})
            .as_object()
            .unwrap()
            .clone()
    }

    #[test]
    fn a_call_the_gateway_refused_says_why_and_an_unavailable_one_stays_unknown() {
        let refused = |code, sub| match refusal(&error_response(code, sub)) {
            CallError::Refused(reason, _) => Some(reason),
            CallError::Unknown(_) => None,
        };
        assert_eq!(
            refused("40002", "isv.invalid-signature"),
            Some(reason::CODE_KEY_REFUSED)
        );
        assert_eq!(
            refused("40002", "isv.invalid-app-id"),
            Some(reason::CODE_KEY_REFUSED)
        );
        assert_eq!(
            refused("40002", "isv.invalid-timestamp"),
            Some(reason::CODE_CLOCK)
        );
        assert_eq!(
            refused("20001", "aop.invalid-auth-token"),
            Some(reason::CODE_KEY_REFUSED)
        );
        assert_eq!(
            refused("40001", "isv.missing-method"),
            Some(reason::CODE_NOT_SET_UP)
        );
        // The service unavailable: what became of the order is not known.
        assert_eq!(refused("20000", "isp.unknow-error"), None);
        assert_eq!(refused("", ""), None);
    }
}
