//! WeChat Pay's API v2 for payment codes, as pay.weixin.qq.com documents
//! it: `pay/micropay`, `pay/orderquery`, `secapi/pay/reverse` and
//! `secapi/pay/refund` (the last two only with the merchant's client
//! certificate), flat XML both ways, signed HMAC-SHA256 with the API key.
//! Test codes: 18 digits, `13` then ten digits, the last four as for
//! Alipay's (`0000` pays, `0001` confirms after a while, `0002` never,
//! `0003` too little money, `0004` expired, `0005` refused, `0006` a
//! system error on a payment that went through).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tallybox::payments::wechat::{from_xml, sign, to_xml};
use tallybox::payments::{test_buyer, TestBuyer};

/// One order as WeChat Pay keeps it.
struct Trade {
    transaction_id: String,
    code: String,
    total_fee: u64,
    pays_at: Option<Instant>,
    placed: Instant,
    state: &'static str,
    refunded: u64,
    refunds: HashMap<String, u64>,
}

pub struct WechatPay {
    pub appid: String,
    pub mch_id: String,
    pub key: String,
    pub confirm_after: Duration,
    trades: Mutex<HashMap<String, Trade>>,
    used_codes: Mutex<HashMap<String, String>>,
    next: Mutex<u64>,
}

type Fields = BTreeMap<String, String>;

impl WechatPay {
    pub fn new(appid: &str, mch_id: &str, key: &str, confirm_after: Duration) -> WechatPay {
        WechatPay {
            appid: appid.into(),
            mch_id: mch_id.into(),
            key: key.into(),
            confirm_after,
            trades: Mutex::default(),
            used_codes: Mutex::default(),
            next: Mutex::new(0),
        }
    }

    /// The XML answer to a call on `path`; `certified`: the caller showed
    /// a client certificate the sim's CA signed.
    pub fn answer(&self, path: &str, body: &str, certified: bool) -> String {
        let refused = |msg: &str| {
            to_xml(&BTreeMap::from([
                ("return_code".to_string(), "FAIL".to_string()),
                ("return_msg".to_string(), msg.to_string()),
            ]))
        };
        let Some(request) = from_xml(body) else {
            return refused("XML格式错误");
        };
        let get = |k: &str| request.get(k).cloned().unwrap_or_default();
        for field in ["appid", "mch_id", "nonce_str", "sign"] {
            if get(field).is_empty() {
                return refused(&format!("缺少参数{field}"));
            }
        }
        if get("sign_type") != "HMAC-SHA256" {
            return refused("签名类型错误: 只收 HMAC-SHA256");
        }
        let signed: BTreeMap<&str, String> = request.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        if sign(&signed, &self.key) != get("sign") {
            return refused("签名错误");
        }
        if get("appid") != self.appid || get("mch_id") != self.mch_id {
            return self.signed(fail("APPID_MCHID_NOT_MATCH", "appid和mch_id不匹配"));
        }
        if path.starts_with("/secapi/") && !certified {
            return refused("证书错误: 请使用商户API证书");
        }
        let out_trade_no = get("out_trade_no");
        if out_trade_no.is_empty() || out_trade_no.len() > 32 {
            return self.signed(fail("PARAM_ERROR", "out_trade_no 无效"));
        }
        let fields = match path {
            "/pay/micropay" => {
                self.micropay(&out_trade_no, &get("auth_code"), &get("body"), &get("total_fee"))
            }
            "/pay/orderquery" => self.query(&out_trade_no),
            "/secapi/pay/reverse" => self.reverse(&out_trade_no),
            "/secapi/pay/refund" => self.refund(
                &out_trade_no,
                &get("out_refund_no"),
                &get("total_fee"),
                &get("refund_fee"),
            ),
            _ => return refused("接口不存在"),
        };
        self.signed(fields)
    }

    /// `fields` with the common answer fields, signed with the API key.
    fn signed(&self, mut fields: Fields) -> String {
        fields.insert("return_code".into(), "SUCCESS".into());
        fields.insert("return_msg".into(), "OK".into());
        fields.insert("appid".into(), self.appid.clone());
        fields.insert("mch_id".into(), self.mch_id.clone());
        fields.insert("nonce_str".into(), format!("{:032x}", rand::random::<u128>()));
        let signed: BTreeMap<&str, String> = fields.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
        let signature = sign(&signed, &self.key);
        fields.insert("sign".into(), signature);
        to_xml(&fields)
    }

    fn paid(&self, out_trade_no: &str, trade: &Trade) -> Fields {
        BTreeMap::from([
            ("result_code".into(), "SUCCESS".into()),
            ("openid".into(), "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o".into()),
            ("trade_type".into(), "MICROPAY".into()),
            ("bank_type".into(), "CMC".into()),
            ("total_fee".into(), trade.total_fee.to_string()),
            ("cash_fee".into(), trade.total_fee.to_string()),
            ("transaction_id".into(), trade.transaction_id.clone()),
            ("out_trade_no".into(), out_trade_no.into()),
            (
                "time_end".into(),
                chrono::Utc::now().format("%Y%m%d%H%M%S").to_string(),
            ),
        ])
    }

    fn micropay(&self, out_trade_no: &str, code: &str, body: &str, total_fee: &str) -> Fields {
        let Some(total_fee) = total_fee.parse::<u64>().ok().filter(|f| *f > 0) else {
            return fail("PARAM_ERROR", "total_fee 无效");
        };
        if body.is_empty() {
            return fail("PARAM_ERROR", "body 不能为空");
        }
        let mut trades = self.trades.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(trade) = trades.get(out_trade_no) {
            if trade.code != code || trade.total_fee != total_fee {
                return fail("OUT_TRADE_NO_USED", "商户订单号重复");
            }
            return match trade.state {
                "SUCCESS" => fail("ORDERPAID", "该订单已支付"),
                "REVOKED" => fail("ORDERREVERSED", "订单已撤销"),
                _ => fail("USERPAYING", "需要用户输入支付密码"),
            };
        }
        let ok = code.len() == 18 && code.starts_with("13") && code.bytes().all(|b| b.is_ascii_digit());
        let used = self
            .used_codes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(code)
            .cloned();
        if !ok || used.is_some_and(|o| o != out_trade_no) {
            return fail("AUTH_CODE_INVALID", "付款码无效，请重新扫码");
        }
        let buyer = test_buyer(code);
        let pays_at = match buyer {
            TestBuyer::ConfirmsLater => Some(Instant::now() + self.confirm_after),
            TestBuyer::NeverConfirms => None,
            TestBuyer::TooLittle => return fail("NOTENOUGH", "余额不足"),
            TestBuyer::Expired => return fail("AUTHCODEEXPIRE", "二维码已过期，请用户在微信上刷新后再试"),
            TestBuyer::Refused => return fail("TRADE_ERROR", "交易错误"),
            TestBuyer::Pays | TestBuyer::PaysUnanswered => Some(Instant::now()),
        };
        let transaction_id = {
            let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
            *next += 1;
            format!("4200{}{:014}", chrono::Utc::now().format("%Y%m%d"), *next)
        };
        let paid_now = pays_at.is_some_and(|at| at <= Instant::now());
        let trade = Trade {
            transaction_id,
            code: code.into(),
            total_fee,
            pays_at,
            placed: Instant::now(),
            state: if paid_now { "SUCCESS" } else { "USERPAYING" },
            refunded: 0,
            refunds: HashMap::new(),
        };
        self.used_codes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(code.into(), out_trade_no.into());
        let fields = match (paid_now, buyer) {
            (true, TestBuyer::PaysUnanswered) => fail("SYSTEMERROR", "接口返回错误"),
            (true, _) => self.paid(out_trade_no, &trade),
            (false, _) => fail("USERPAYING", "需要用户输入支付密码"),
        };
        trades.insert(out_trade_no.into(), trade);
        fields
    }

    fn query(&self, out_trade_no: &str) -> Fields {
        let mut trades = self.trades.lock().unwrap_or_else(|e| e.into_inner());
        let Some(trade) = trades.get_mut(out_trade_no) else {
            return fail("ORDERNOTEXIST", "此交易订单号不存在");
        };
        if trade.state == "USERPAYING" && trade.pays_at.is_some_and(|at| at <= Instant::now()) {
            trade.state = "SUCCESS";
        }
        let mut fields = match trade.state {
            "SUCCESS" => self.paid(out_trade_no, trade),
            _ => BTreeMap::from([
                ("result_code".into(), "SUCCESS".into()),
                ("out_trade_no".into(), out_trade_no.into()),
            ]),
        };
        fields.insert("trade_state".into(), trade.state.into());
        fields
    }

    fn reverse(&self, out_trade_no: &str) -> Fields {
        let mut trades = self.trades.lock().unwrap_or_else(|e| e.into_inner());
        let Some(trade) = trades.get_mut(out_trade_no) else {
            return fail("ORDERNOTEXIST", "此交易订单号不存在");
        };
        if trade.placed.elapsed() < Duration::from_secs(15) {
            // The documentation asks for 15 s first; the sim keeps the order open.
            let mut f = fail("SYSTEMERROR", "请在支付后至少15秒再撤销");
            f.insert("recall".into(), "Y".into());
            return f;
        }
        // A paid trade's money goes back; an unpaid one is closed.
        trade.state = "REVOKED";
        trade.pays_at = None;
        BTreeMap::from([
            ("result_code".into(), "SUCCESS".into()),
            ("recall".into(), "N".into()),
        ])
    }

    fn refund(&self, out_trade_no: &str, out_refund_no: &str, total_fee: &str, refund_fee: &str) -> Fields {
        let mut trades = self.trades.lock().unwrap_or_else(|e| e.into_inner());
        let Some(trade) = trades.get_mut(out_trade_no) else {
            return fail("ORDERNOTEXIST", "此交易订单号不存在");
        };
        let (Ok(total_fee), Ok(refund_fee)) = (total_fee.parse::<u64>(), refund_fee.parse::<u64>()) else {
            return fail("PARAM_ERROR", "total_fee 或 refund_fee 无效");
        };
        if total_fee != trade.total_fee || refund_fee == 0 || out_refund_no.is_empty() {
            return fail("PARAM_ERROR", "订单金额或退款金额与之前请求不一致");
        }
        if let Some(done) = trade.refunds.get(out_refund_no) {
            if *done != refund_fee {
                return fail("PARAM_ERROR", "退款金额与之前请求不一致");
            }
        } else {
            if trade.state != "SUCCESS" && trade.state != "REFUND" {
                return fail("TRADE_STATE_ERROR", "订单状态错误");
            }
            if trade.refunded + refund_fee > trade.total_fee {
                return fail("INVALID_REQUEST", "退款金额超过订单可退金额");
            }
            trade.refunded += refund_fee;
            trade.refunds.insert(out_refund_no.into(), refund_fee);
            trade.state = "REFUND";
        }
        BTreeMap::from([
            ("result_code".into(), "SUCCESS".into()),
            ("transaction_id".into(), trade.transaction_id.clone()),
            ("out_trade_no".into(), out_trade_no.into()),
            ("out_refund_no".into(), out_refund_no.into()),
            (
                "refund_id".into(),
                format!(
                    "50000{}{:012}",
                    chrono::Utc::now().format("%Y%m%d"),
                    trade.refunds.len()
                ),
            ),
            ("refund_fee".into(), refund_fee.to_string()),
            ("total_fee".into(), trade.total_fee.to_string()),
        ])
    }
}

fn fail(code: &str, description: &str) -> Fields {
    BTreeMap::from([
        ("result_code".into(), "FAIL".into()),
        ("err_code".into(), code.into()),
        ("err_code_des".into(), description.into()),
    ])
}
