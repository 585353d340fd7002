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

use crate::yuan;

/// One order as WeChat Pay keeps it.
struct Trade {
    transaction_id: String,
    code: String,
    total_fee: u64,
    body: String,
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
    /// Every payment, refund and reversal, for the bills.
    ledger: Mutex<Vec<Line>>,
}

/// One line of a bill: an order paid (`SUCCESS`, or `REVOKED` once
/// reversed) or a refund (`REFUND`).
struct Line {
    at: chrono::DateTime<chrono::Utc>,
    out_trade_no: String,
    transaction_id: String,
    body: String,
    state: &'static str,
    total_fee: u64,
    /// A refund's own number and amount.
    refund: Option<(String, u64)>,
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
            ledger: Mutex::default(),
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
        if path == "/pay/downloadbill" {
            return self.bill(&get("bill_date"), &get("bill_type"));
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
            body: body.into(),
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
        if paid_now {
            self.paid_line(chrono::Utc::now(), out_trade_no, &trade);
        }
        trades.insert(out_trade_no.into(), trade);
        fields
    }

    fn query(&self, out_trade_no: &str) -> Fields {
        let mut trades = self.trades.lock().unwrap_or_else(|e| e.into_inner());
        let Some(trade) = trades.get_mut(out_trade_no) else {
            return fail("ORDERNOTEXIST", "此交易订单号不存在");
        };
        self.confirm(out_trade_no, trade);
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
        self.confirm(out_trade_no, trade);
        if trade.state == "SUCCESS" {
            let mut ledger = self.ledger.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(line) = ledger
                .iter_mut()
                .find(|l| l.out_trade_no == out_trade_no && l.refund.is_none())
            {
                line.state = "REVOKED";
            }
        }
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
            self.ledger.lock().unwrap_or_else(|e| e.into_inner()).push(Line {
                at: chrono::Utc::now(),
                out_trade_no: out_trade_no.into(),
                transaction_id: trade.transaction_id.clone(),
                body: trade.body.clone(),
                state: "REFUND",
                total_fee: trade.total_fee,
                refund: Some((out_refund_no.into(), refund_fee)),
            });
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

/// The header of the `ALL` bill, as WeChat Pay writes it.
const BILL_HEADER: &str = "交易时间,公众账号ID,商户号,特约商户号,设备号,微信订单号,商户订单号,用户标识,交易类型,交易状态,付款银行,货币种类,应结订单金额,代金券金额,微信退款单号,商户退款单号,退款金额,充值券退款金额,退款类型,退款状态,商品名称,商户数据包,手续费,费率,订单金额,申请退款金额,费率备注";

impl WechatPay {
    /// A buyer who confirmed in the app by now has paid.
    fn confirm(&self, out_trade_no: &str, trade: &mut Trade) {
        if trade.state == "USERPAYING" && trade.pays_at.is_some_and(|at| at <= Instant::now()) {
            trade.state = "SUCCESS";
            let at = trade.pays_at.map_or_else(chrono::Utc::now, crate::wall);
            self.paid_line(at, out_trade_no, trade);
        }
    }

    fn paid_line(&self, at: chrono::DateTime<chrono::Utc>, out_trade_no: &str, trade: &Trade) {
        self.ledger.lock().unwrap_or_else(|e| e.into_inner()).push(Line {
            at,
            out_trade_no: out_trade_no.into(),
            transaction_id: trade.transaction_id.clone(),
            body: trade.body.clone(),
            state: "SUCCESS",
            total_fee: trade.total_fee,
            refund: None,
        });
    }

    /// `pay/downloadbill`: the bill of a day begun (WeChat Pay writes a
    /// day's bill the next morning; the sim gives today's as far as it
    /// goes), as text; `No Bill Exist` when the day has no line.
    fn bill(&self, bill_date: &str, bill_type: &str) -> String {
        let no_bill = |msg: &str, code: &str| {
            to_xml(&BTreeMap::from([
                ("return_code".to_string(), "FAIL".to_string()),
                ("return_msg".to_string(), msg.to_string()),
                ("error_code".to_string(), code.to_string()),
            ]))
        };
        let Ok(day) = chrono::NaiveDate::parse_from_str(bill_date, "%Y%m%d") else {
            return no_bill("invalid bill_date", "20001");
        };
        if !matches!(bill_type, "" | "ALL") {
            return no_bill("the sim writes the ALL bill only", "20001");
        }
        if day > crate::beijing_day(chrono::Utc::now()) {
            return no_bill("No Bill Exist", "20002");
        }
        for (no, trade) in self.trades.lock().unwrap_or_else(|e| e.into_inner()).iter_mut() {
            self.confirm(no, trade);
        }
        let beijing = tallybox::payments::beijing();
        let mut text = format!("{BILL_HEADER}\r\n");
        let (mut count, mut settled, mut refunded, mut total, mut asked) = (0, 0, 0, 0, 0);
        for line in self.ledger.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            if crate::beijing_day(line.at) != day {
                continue;
            }
            let settle = if line.state == "SUCCESS" {
                line.total_fee
            } else {
                0
            };
            let (refund_no, refund_fee) = line.refund.clone().unwrap_or_default();
            count += 1;
            settled += settle;
            refunded += refund_fee;
            total += line.total_fee;
            asked += refund_fee;
            let cells = [
                line.at
                    .with_timezone(&beijing)
                    .format("%Y-%m-%d %H:%M:%S")
                    .to_string(),
                self.appid.clone(),
                self.mch_id.clone(),
                "0".into(),
                String::new(),
                line.transaction_id.clone(),
                line.out_trade_no.clone(),
                "oUpF8uMuAJO_M2pxb1Q9zNjWeS6o".into(),
                "MICROPAY".into(),
                line.state.into(),
                "CMC".into(),
                "CNY".into(),
                yuan(settle),
                "0.00".into(),
                if line.refund.is_some() {
                    format!("5000{refund_no}")
                } else {
                    "0".into()
                },
                if line.refund.is_some() {
                    refund_no.clone()
                } else {
                    "0".into()
                },
                yuan(refund_fee),
                "0.00".into(),
                if line.refund.is_some() {
                    "ORIGINAL".into()
                } else {
                    String::new()
                },
                if line.refund.is_some() {
                    "SUCCESS".into()
                } else {
                    String::new()
                },
                line.body.clone(),
                String::new(),
                "0.00000".into(),
                "0.60%".into(),
                yuan(line.total_fee),
                yuan(refund_fee),
                String::new(),
            ];
            let row: Vec<String> = cells.iter().map(|c| format!("`{c}")).collect();
            text.push_str(&row.join(","));
            text.push_str("\r\n");
        }
        if count == 0 {
            return no_bill("No Bill Exist", "20002");
        }
        text.push_str("总交易单数,应结订单总金额,退款总金额,充值券退款总金额,手续费总金额,订单总金额,申请退款总金额\r\n");
        text.push_str(&format!(
            "`{count},`{},`{},`0.00,`0.00000,`{},`{}\r\n",
            yuan(settled),
            yuan(refunded),
            yuan(total),
            yuan(asked)
        ));
        text
    }
}

fn fail(code: &str, description: &str) -> Fields {
    BTreeMap::from([
        ("result_code".into(), "FAIL".into()),
        ("err_code".into(), code.into()),
        ("err_code_des".into(), description.into()),
    ])
}
