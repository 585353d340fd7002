//! What a cashier is told when a transaction does not go through: one short
//! reason for the OLED and one hint saying what to do, in English and Chinese,
//! keyed by the ISO 8583 response code (or a local code for failures that never
//! reached the issuer).

use crate::code::{ReasonCode, ResponseCode};

/// A reason and its hint, each in both languages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Explanation {
    pub code: ResponseCode,
    pub reason_en: &'static str,
    pub reason_zh: &'static str,
    pub hint_en: &'static str,
    pub hint_zh: &'static str,
}

const fn e(
    code: ResponseCode,
    reason_en: &'static str,
    reason_zh: &'static str,
    hint_en: &'static str,
    hint_zh: &'static str,
) -> Explanation {
    Explanation {
        code,
        reason_en,
        reason_zh,
        hint_en,
        hint_zh,
    }
}

const TABLE: &[Explanation] = &[
    e(
        ResponseCode::APPROVED,
        "Approved",
        "交易成功",
        "Hand over the slip",
        "请交付签购单",
    ),
    e(
        ResponseCode::DO_NOT_HONOUR,
        "Do not honour",
        "不予承兑",
        "Ask for another card",
        "请换卡",
    ),
    e(
        ResponseCode::INVALID_CARD,
        "Invalid card",
        "无效卡号",
        "Ask for another card",
        "请换卡",
    ),
    e(
        ResponseCode::LOST_CARD,
        "Lost card",
        "挂失卡",
        "Keep card, call bank",
        "请没收卡并联系银行",
    ),
    e(
        ResponseCode::STOLEN_CARD,
        "Card frozen",
        "冻结卡",
        "Keep card, call bank",
        "请没收卡并联系银行",
    ),
    e(
        ResponseCode::INSUFFICIENT_FUNDS,
        "Insufficient funds",
        "余额不足",
        "Less, or another card",
        "请减少金额或换卡",
    ),
    e(
        ResponseCode::EXPIRED_CARD,
        "Card expired",
        "卡已过期",
        "Ask for another card",
        "请换卡",
    ),
    e(
        ResponseCode::WRONG_PIN,
        "Wrong PIN",
        "密码错误",
        "Try PIN again",
        "请重新输入密码",
    ),
    e(
        ResponseCode::OVER_LIMIT,
        "Over amount limit",
        "超出金额限制",
        "Less, or another card",
        "请减少金额或换卡",
    ),
    e(
        ResponseCode::ISSUER_UNAVAILABLE,
        "Bank unavailable",
        "发卡行无法连接",
        "Retry in a minute",
        "请稍后重试",
    ),
    e(
        ResponseCode::SIGN_IN_AGAIN,
        "Bank link reset",
        "银行要求重新签到",
        "Retry the sale",
        "请重新交易",
    ),
    e(
        ResponseCode::SYSTEM_MALFUNCTION,
        "System error",
        "系统故障",
        "Retry, then call help",
        "请重试或联系客服",
    ),
    // Local codes: the issuer never decided.
    e(
        NOT_CHARGED,
        "No answer from bank",
        "银行无应答,未扣款",
        "Retry the sale",
        "请重新交易",
    ),
    e(
        NOT_RECEIVED,
        "Sale not received",
        "交易未送达,未扣款",
        "Retry the sale",
        "请重新交易",
    ),
    e(
        WRONG_AMOUNT,
        "Wrong amount",
        "金额错误",
        "Key the amount again",
        "请重新输入金额",
    ),
    e(
        EXPIRED_AT_TERMINAL,
        "Card expired",
        "卡已过期",
        "Ask for another card",
        "请换卡",
    ),
    e(
        READ_ERROR,
        "Card read error",
        "读卡失败",
        "Swipe again slowly",
        "请重新刷卡",
    ),
    e(
        HUB_SILENT,
        "Hub not answering",
        "主机无应答",
        "Check network & phone",
        "检查网络,查看手机",
    ),
    e(
        SUPERVISOR_PIN,
        "Wrong supervisor PIN",
        "主管密码错误",
        "Ask the supervisor",
        "请主管输入密码",
    ),
    e(
        NO_ORIGINAL,
        "No such sale to undo",
        "原交易不可撤销",
        "Check the trace no.",
        "请核对凭证号",
    ),
    e(
        ORDER_GONE,
        "Phone order expired",
        "手机指令已失效",
        "Order again on phone",
        "请在手机上重新下达",
    ),
    e(
        OTHER_CARD,
        "Not the sale's card",
        "非原交易卡",
        "Use the sale's card",
        "请使用原交易卡",
    ),
    e(
        REFUND_TOO_LARGE,
        "More than the sale",
        "超出原交易可退金额",
        "Refund less",
        "请减少退货金额",
    ),
    e(
        PIN_TRIES,
        "PIN tries used up",
        "密码错误次数超限",
        "Card refused today",
        "此卡今日不能再用",
    ),
    e(
        CASHIER_WRONG,
        "Wrong cashier or PIN",
        "收银员号或密码错误",
        "Key them again",
        "请重新输入",
    ),
    e(
        CASHIER_LOCKED,
        "Cashier locked",
        "收银员已锁定",
        "Ask owner to unlock",
        "请店主在手机上解锁",
    ),
    e(
        SIGN_ON_FIRST,
        "Sign on first",
        "请先签到",
        "D menu, 4: sign on",
        "按D菜单4签到",
    ),
    e(
        FRAUD_BLOCKED,
        "Suspected fraud",
        "疑似欺诈,已拒绝",
        "Keep card, call owner",
        "请留卡并联系店主",
    ),
    e(
        FROZEN,
        "Terminal frozen",
        "终端已冻结",
        "Owner must unfreeze",
        "请店主解冻",
    ),
    e(
        NEEDS_SUPERVISOR,
        "Needs supervisor OK",
        "需主管确认",
        "Supervisor: key PIN",
        "请主管输入密码",
    ),
    e(
        HUB_STORAGE,
        "Hub cannot save",
        "主机无法保存交易",
        "Owner: see phone",
        "请店主查看手机",
    ),
    e(
        HUB_CLOCK,
        "Hub clock is wrong",
        "主机时间不正确",
        "Check its internet",
        "请检查主机网络",
    ),
    e(
        NO_BANK_TERMINAL,
        "No bank terminal id",
        "未设银行终端号",
        "Owner: see phone",
        "请店主查看手机",
    ),
    e(
        SETTLING,
        "Settling, wait",
        "正在结算",
        "Try in a moment",
        "请稍后再试",
    ),
    e(
        PIN_UNSECURED,
        "PIN cannot be sent",
        "密码无法安全发送",
        "Owner: see phone",
        "请店主查看手机",
    ),
    e(
        CODE_BALANCE,
        "Not enough in wallet",
        "付款账户余额不足",
        "Pay another way",
        "请换其他方式付款",
    ),
    e(
        CODE_EXPIRED,
        "Payment code expired",
        "付款码已过期",
        "Refresh code, rescan",
        "请刷新付款码重扫",
    ),
    e(
        CODE_USED,
        "Code already used",
        "付款码已使用",
        "Refresh code, rescan",
        "请刷新付款码重扫",
    ),
    e(
        CODE_INVALID,
        "Not a payment code",
        "无效付款码",
        "Scan it again",
        "请重新扫码",
    ),
    e(
        CODE_REFUSED,
        "Payment refused",
        "付款被拒绝",
        "Pay another way",
        "请换其他方式付款",
    ),
    e(
        CODE_CANCELLED,
        "Not confirmed",
        "顾客未确认付款",
        "Not charged",
        "未扣款",
    ),
    e(
        CODE_NOT_SET_UP,
        "Code pay not set up",
        "未开通扫码收款",
        "Owner: see phone",
        "请店主查看手机",
    ),
    e(
        CODE_KEY_REFUSED,
        "Code pay key refused",
        "扫码收款密钥被拒",
        "Owner: see phone",
        "请店主查看手机",
    ),
    e(
        CODE_CLOCK,
        "Hub clock is wrong",
        "主机时间不准",
        "Owner: see phone",
        "请店主查看手机",
    ),
    e(
        HUB_HISTORY,
        "Hub records missing",
        "主机交易记录缺失",
        "Owner: see phone",
        "请店主查看手机",
    ),
];

/// The explanation for `code`; unknown codes get a generic decline.
pub fn explain(code: ResponseCode) -> Explanation {
    TABLE.iter().copied().find(|x| x.code == code).unwrap_or(e(
        code,
        "Declined",
        "交易被拒",
        "Ask for another card",
        "请换卡",
    ))
}

/// Local code: reversed after an acquirer time-out; the customer was not charged.
pub const NOT_CHARGED: ReasonCode = ReasonCode::local(*b"NC");
/// Local code: the hub never received the request; nothing was charged.
pub const NOT_RECEIVED: ReasonCode = ReasonCode::local(*b"NR");
pub const WRONG_AMOUNT: ReasonCode = ReasonCode::local(*b"XA");
pub const EXPIRED_AT_TERMINAL: ReasonCode = ReasonCode::local(*b"XC");
pub const READ_ERROR: ReasonCode = ReasonCode::local(*b"XR");
pub const HUB_SILENT: ReasonCode = ReasonCode::local(*b"XH");
/// Local code: the supervisor PIN was wrong (void, refund).
pub const SUPERVISOR_PIN: ReasonCode = ReasonCode::local(*b"XS");
/// Local code: no such sale to void or refund (wrong trace number, already
/// voided, not approved, or a void outside the open batch).
pub const NO_ORIGINAL: ReasonCode = ReasonCode::local(*b"XO");
/// Local code: the void or refund the owner ordered from the phone page has
/// expired, was cancelled, or is not the one this checkout was sent.
pub const ORDER_GONE: ReasonCode = ReasonCode::local(*b"XG");
/// Local code: a void must use the card of the sale.
pub const OTHER_CARD: ReasonCode = ReasonCode::local(*b"XM");
/// Local code: the refund is more than what is left of the sale.
pub const REFUND_TOO_LARGE: ReasonCode = ReasonCode::local(*b"XF");
/// Local code: three wrong PINs today; the card is refused until tomorrow.
pub const PIN_TRIES: ReasonCode = ReasonCode::local(*b"XP");
/// Local code: a fraud rule of the store refused it.
pub const FRAUD_BLOCKED: ReasonCode = ReasonCode::local(*b"XB");
/// A cashier's sign-on with a wrong number or PIN (which one is not said).
pub const CASHIER_WRONG: ReasonCode = ReasonCode::local(*b"XK");
/// The cashier's PIN was wrong too many times: the owner unlocks them.
pub const CASHIER_LOCKED: ReasonCode = ReasonCode::local(*b"XL");
/// The store wants a cashier signed on before a sale.
pub const SIGN_ON_FIRST: ReasonCode = ReasonCode::local(*b"XN");
/// Local code: the terminal (or the store) is frozen.
pub const FROZEN: ReasonCode = ReasonCode::local(*b"XZ");
/// Local code: a store rule wants the supervisor to approve this sale.
pub const NEEDS_SUPERVISOR: ReasonCode = ReasonCode::local(*b"XV");
/// Local code: the hub's disk is full or refuses writes; nothing was charged.
pub const HUB_STORAGE: ReasonCode = ReasonCode::local(*b"XD");
/// Local code: the hub's clock is behind its last transaction (it waits for
/// the time from the network); nothing was charged.
pub const HUB_CLOCK: ReasonCode = ReasonCode::local(*b"XT");
/// Local code: the acquirer has no terminal id for this checkout (its id is
/// too long for field 41 and the owner set none); nothing was sent or charged.
pub const NO_BANK_TERMINAL: ReasonCode = ReasonCode::local(*b"XI");
/// Local code: the batch is being settled with the acquirer; nothing was
/// charged, and sales resume once its answer is recorded.
pub const SETTLING: ReasonCode = ReasonCode::local(*b"XJ");
/// Local code: a PIN could not go to the acquirer under its key (the
/// checkout is not paired, the acquirer's working PIN key is not to be had,
/// or the block does not open under the checkout's key); nothing was sent
/// or charged.
pub const PIN_UNSECURED: ReasonCode = ReasonCode::local(*b"XE");
/// Local code: the payment code's wallet has too little money in it.
pub const CODE_BALANCE: ReasonCode = ReasonCode::local(*b"QB");
/// Local code: the payment code is too old (it lives about a minute).
pub const CODE_EXPIRED: ReasonCode = ReasonCode::local(*b"QE");
/// Local code: the payment code already paid for something.
pub const CODE_USED: ReasonCode = ReasonCode::local(*b"QU");
/// Local code: no provider's payment code (wrong digits, a misread).
pub const CODE_INVALID: ReasonCode = ReasonCode::local(*b"QI");
/// Local code: the provider refused the payment (its risk control, the
/// buyer's limits, a closed account).
pub const CODE_REFUSED: ReasonCode = ReasonCode::local(*b"QR");
/// Local code: the buyer did not confirm in the app in time, or the cashier
/// stopped it; the provider closed the order: nothing was charged.
pub const CODE_CANCELLED: ReasonCode = ReasonCode::local(*b"QC");
/// Local code: the shop takes no codes of this provider (no credentials).
pub const CODE_NOT_SET_UP: ReasonCode = ReasonCode::local(*b"QX");
/// Local code: the provider refused the shop's own call (its app id or
/// merchant id, or the signature made with the shop's key): nothing was
/// charged; the owner fixes the credentials.
pub const CODE_KEY_REFUSED: ReasonCode = ReasonCode::local(*b"QK");
/// Local code: the provider refused the call for its time (the hub's clock
/// is off by more than the provider allows): nothing was charged.
pub const CODE_CLOCK: ReasonCode = ReasonCode::local(*b"QT");
/// Local code: the hub's database is behind its history's witness (records
/// lost below it); nothing was charged, and sales wait for the owner.
pub const HUB_HISTORY: ReasonCode = ReasonCode::local(*b"XW");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_text_fits_an_oled_line() {
        let columns = |t: &str| crate::slip::columns(t);
        for x in TABLE {
            for text in [x.reason_en, x.hint_en, x.reason_zh, x.hint_zh] {
                assert!(columns(text) <= 21, "{}: {text:?} is wider than the OLED", x.code);
            }
        }
    }

    #[test]
    fn every_decline_the_simulator_gives_has_its_own_words() {
        for code in ["05", "14", "41", "43", "51", "54", "55", "91", "96", "NC", "NR"] {
            let code = ResponseCode::parse(code).unwrap();
            let x = explain(code);
            assert_eq!(x.code, code);
            // OLED lines are 21 characters wide.
            assert!(x.reason_en.len() <= 21 && x.hint_en.len() <= 24, "{code}");
        }
        assert_eq!(explain(ResponseCode::parse("Z9").unwrap()).reason_en, "Declined");
    }
}
