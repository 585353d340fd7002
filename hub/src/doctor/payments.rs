//! Payments: is the bank reachable, do sales get answers, is a card bad
//! everywhere (not the readers), are reversals stuck.

use std::collections::{BTreeMap, BTreeSet};
use tallybox_core::code::ResponseCode;
use tallybox_core::reason;

use super::{check, ok, said, Check, Facts, Status};

/// Answers that say the bank link failed, not the card.
const NETWORK: &[ResponseCode] = &[
    reason::NOT_CHARGED,
    ResponseCode::ISSUER_UNAVAILABLE,
    ResponseCode::SYSTEM_MALFUNCTION,
];
/// Answers that say the card itself is no good.
const BAD_CARD: &[ResponseCode] = &[
    ResponseCode::INVALID_CARD,
    ResponseCode::EXPIRED_CARD,
    reason::EXPIRED_AT_TERMINAL,
];

const NETWORK_FIX: (&str, &str) = (
    "Check the shop's internet: restart the router (unplug 30 s), check its cable; if the internet works, call the acquirer (payment provider). Customers whose sale failed were not charged.",
    "检查店内网络：重启路由器（断电 30 秒），检查网线；如网络正常，请致电收单机构。交易失败的顾客未被扣款。",
);

pub(super) fn checks(facts: &Facts) -> Vec<Check> {
    let mut out = vec![network(facts), cards(facts), declines(facts)];
    out.push(if facts.stale_pending == 0 {
        ok(
            "payments.reversals",
            said("no sale waits for a reversal", "没有等待冲正的交易"),
        )
    } else {
        check(
            "payments.reversals",
            Status::Warn,
            said(
                format!("{} sales wait for the acquirer to acknowledge a reversal", facts.stale_pending),
                format!("{} 笔交易在等待收单机构确认冲正", facts.stale_pending),
            ),
            (
                "The bank link is down or slow: those customers were told \"not charged\" only if it was true; check the network and the acquirer; the hub keeps retrying.",
                "与银行的连接中断或缓慢：哪些顾客未扣款已如实告知；请检查网络和收单机构，主机会持续重试。",
            ),
        )
    });
    if let Some(link) = &facts.acquirer {
        out.push(acquirer(link));
    }
    if facts.codes.sales > 0 {
        out.push(codes(&facts.codes));
    }
    if !facts.bills.is_empty() {
        out.push(bills(&facts.bills));
    }
    out
}

/// The latest day's bills of the code providers against the hub's records.
fn bills(checks: &[crate::store::bills::BillCheck]) -> Check {
    let name = |provider: &str| match provider {
        "alipay" => ("Alipay", "支付宝"),
        "wechat_pay" => ("WeChat Pay", "微信支付"),
        _ => ("UnionPay", "银联"),
    };
    let day = checks.first().map_or("", |c| c.day.as_str());
    let mut serious = Vec::new();
    let mut other = Vec::new();
    for c in checks {
        let differences = c
            .result
            .as_ref()
            .and_then(|r| r["differences"].as_array())
            .cloned()
            .unwrap_or_default();
        for d in differences {
            let what = d["what"].as_str().unwrap_or("");
            let line = (
                name(&c.provider),
                d["out_trade_no"].as_str().unwrap_or("").to_string(),
            );
            match what {
                "not_in_hub" | "charged_not_sold" => serious.push(line),
                _ => other.push(line),
            }
        }
    }
    let listed = |lines: &[((&str, &str), String)], zh: bool| {
        lines
            .iter()
            .map(|((en, cn), no)| format!("{} {no}", if zh { cn } else { en }))
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !serious.is_empty() {
        return check(
            "payments.bills",
            Status::Fail,
            said(
                format!(
                    "the providers' bills of {day} show money taken that the hub did not record as a sale: {}",
                    listed(&serious, false)
                ),
                format!("{day} 的对账单中有主机未记为收款的扣款：{}", listed(&serious, true)),
            ),
            (
                "Open Reports, then \"Payment codes against the providers' bills\": each difference says what to do. A customer charged while the hub said \"not charged\" is owed the money: refund it on the provider's merchant site. Money taken on orders this hub never made means the shop's account is used elsewhere: if nobody in the shop did it, change the app key (Alipay) or API key (WeChat Pay).",
                "打开“报表”中的“付款码收款与平台对账单核对”：每条不一致都写明了处理办法。主机告知“未扣款”但顾客被扣了款，应在平台商户后台退款给顾客。本主机从未发起的订单被扣款，说明商户账号在别处被使用：如非本店所为，请更换应用密钥（支付宝）或 API 密钥（微信支付）。",
            ),
        );
    }
    if !other.is_empty() {
        return check(
            "payments.bills",
            Status::Warn,
            said(
                format!(
                    "the providers' bills of {day} differ from the hub's records: {}",
                    listed(&other, false)
                ),
                format!("{day} 的对账单与主机记录不一致：{}", listed(&other, true)),
            ),
            (
                "Open Reports, then \"Payment codes against the providers' bills\": a sale the hub is still asking about settles by itself (check again later); for the others, ask the provider with the order number shown.",
                "打开“报表”中的“付款码收款与平台对账单核对”：主机仍在查询的交易会自行确定（稍后再核对）；其他不一致请凭所示订单号联系支付平台。",
            ),
        );
    }
    if let Some(c) = checks.iter().find(|c| c.error.is_some()) {
        let why = c.error.clone().unwrap_or_default();
        let (en, cn) = name(&c.provider);
        return check(
            "payments.bills",
            Status::Warn,
            said(
                format!("{en}'s bill of {day} could not be compared: {why}"),
                format!("{cn} {day} 的对账单无法核对：{why}"),
            ),
            (
                "A day's bill is written the next morning: the hub tries again every half hour. If it keeps failing, check the shop's internet and the provider's settings.",
                "对账单在次日上午生成：主机每半小时重试一次。如持续失败，请检查店内网络和支付平台的设置。",
            ),
        );
    }
    ok(
        "payments.bills",
        said(
            format!("the providers' bills of {day} agree with the hub's records"),
            format!("{day} 的对账单与主机记录一致"),
        ),
    )
}

/// Payment codes, once the shop has taken one today: orders the provider
/// has not decided, and buyers who do not confirm in time.
fn codes(c: &super::CodeFacts) -> Check {
    if c.key_refused_hour > 0 {
        return check(
            "payments.codes",
            Status::Fail,
            said(
                format!(
                    "{} code payments or refunds in the last hour were refused: the provider did not accept the shop's app id, merchant id or key",
                    c.key_refused_hour
                ),
                format!("最近一小时 {} 笔扫码收款或退款被拒：支付机构不认可本店的应用 ID、商户号或密钥", c.key_refused_hour),
            ),
            (
                "Nobody was charged. In the settings file: for Alipay, [alipay] app_id and the app private key whose public key is uploaded on Alipay's open platform; for WeChat Pay, [wechat_pay] appid, mch_id and the API key set in the merchant platform. Then restart the hub. The hub's log names the provider's refusal.",
                "顾客未被扣款。请在设置文件中核对：支付宝为 [alipay] 的 app_id，以及与开放平台上所传公钥配对的应用私钥；微信支付为 [wechat_pay] 的 appid、mch_id 和商户平台设置的 API 密钥。然后重启主机。主机日志中有支付机构拒绝的原因。",
            ),
        );
    }
    if c.clock_refused_hour > 0 {
        return check(
            "payments.codes",
            Status::Fail,
            said(
                format!(
                    "{} code payments or refunds in the last hour were refused for the hub's clock",
                    c.clock_refused_hour
                ),
                format!("最近一小时 {} 笔扫码收款或退款因主机时间不准被拒", c.clock_refused_hour),
            ),
            (
                "Nobody was charged. The hub's clock is off by more than the provider allows (Alipay: 10 minutes): let it reach a time server on the internet (the SD image keeps time with systemd-timesyncd), then sell again.",
                "顾客未被扣款。主机时间与支付机构相差超过允许范围（支付宝为 10 分钟）：请让主机能连上互联网上的时间服务器（SD 卡系统用 systemd-timesyncd 自动校时），然后再收款。",
            ),
        );
    }
    if c.undecided > 0 {
        return check(
            "payments.codes",
            Status::Fail,
            said(
                format!("{} code payments are undecided: the provider has not answered", c.undecided),
                format!("{} 笔扫码支付尚无结果：支付机构未应答", c.undecided),
            ),
            (
                "Check the shop's internet (the providers are on it); the hub keeps asking and cancels what was not paid. The buyer's app shows whether they paid.",
                "检查店内网络（支付机构经由互联网连接）；主机会持续查询，并撤销未支付的订单。顾客手机上可查看是否已付款。",
            ),
        );
    }
    if c.not_confirmed_hour >= 3 && c.not_confirmed_hour > c.paid_hour {
        return check(
            "payments.codes",
            Status::Warn,
            said(
                format!(
                    "{} buyers did not confirm in their app in time in the last hour ({} paid)",
                    c.not_confirmed_hour, c.paid_hour
                ),
                format!("最近一小时 {} 位顾客未及时在手机上确认付款（{} 笔已付）", c.not_confirmed_hour, c.paid_hour),
            ),
            (
                "Nobody was charged for them. Ask buyers to confirm the payment in the app; if their phones have no signal in the shop, give them more time (code_wait_secs).",
                "这些顾客未被扣款。请提醒顾客在手机上确认付款；如店内手机信号差，可延长等待时间（code_wait_secs）。",
            ),
        );
    }
    ok(
        "payments.codes",
        said(
            format!(
                "{} code payments today; in the last hour {} paid, {} not confirmed",
                c.sales, c.paid_hour, c.not_confirmed_hour
            ),
            format!(
                "今日 {} 笔扫码支付；最近一小时 {} 笔已付，{} 笔未确认",
                c.sales, c.paid_hour, c.not_confirmed_hour
            ),
        ),
    )
}

/// The last 15 minutes: the newest transaction failing on the link is a failure;
/// failures the link has since recovered from, a warning.
fn network(facts: &Facts) -> Check {
    let cutoff = (facts.now - chrono::Duration::minutes(15))
        .format("%Y-%m-%d %H:%M:%S")
        .to_string();
    let window: Vec<_> = facts.recent.iter().filter(|r| r.local_time >= cutoff).collect();
    let failed = |r: &super::Recent| r.response_code.is_some_and(|c| NETWORK.contains(&c));
    let failures = window.iter().filter(|r| failed(r)).count();
    let n = window.len();
    let evidence = said(
        format!("{failures} of {n} transactions in the last 15 minutes got no answer from the bank"),
        format!("最近 15 分钟 {n} 笔交易中有 {failures} 笔没有收到银行的应答"),
    );
    if window.first().is_some_and(|r| failed(r)) {
        check(
            "payments.network",
            Status::Fail,
            said(
                format!("{}, the latest too", evidence.en),
                format!("{}，最近一笔也是", evidence.zh),
            ),
            NETWORK_FIX,
        )
    } else if failures > 0 {
        check(
            "payments.network",
            Status::Warn,
            said(
                format!("{}; the latest went through", evidence.en),
                format!("{}；最近一笔已成功", evidence.zh),
            ),
            NETWORK_FIX,
        )
    } else {
        ok("payments.network", evidence)
    }
}

/// One card refused as invalid or expired at several checkouts is the card,
/// not the readers.
fn cards(facts: &Facts) -> Check {
    let mut by_card: BTreeMap<&str, (&str, BTreeSet<&str>, u32)> = BTreeMap::new();
    for r in facts
        .recent
        .iter()
        .filter(|r| r.response_code.is_some_and(|c| BAD_CARD.contains(&c)))
    {
        let e = by_card
            .entry(&r.pan_hash)
            .or_insert((&r.last4, BTreeSet::new(), 0));
        e.1.insert(&r.terminal_id);
        e.2 += 1;
    }
    let bad: Vec<(String, String)> = by_card
        .values()
        .filter(|(_, terminals, tries)| terminals.len() >= 2 || *tries >= 3)
        .map(|(last4, terminals, tries)| {
            let at: Vec<&str> = terminals.iter().copied().collect();
            (
                format!("card ····{last4} refused {tries} times at {}", at.join(", ")),
                format!("尾号 {last4} 的卡在 {} 被拒 {tries} 次", at.join("、")),
            )
        })
        .collect();
    if bad.is_empty() {
        return ok(
            "payments.cards",
            said(
                "no card was refused as invalid or expired again and again in the last hour",
                "最近一小时没有卡片因无效或过期被反复拒绝",
            ),
        );
    }
    let (bad, bad_zh): (Vec<String>, Vec<String>) = bad.into_iter().unzip();
    check(
        "payments.cards",
        Status::Warn,
        said(
            format!(
                "{} in the last hour: the card is bad, not the readers",
                bad.join("; ")
            ),
            format!("最近一小时{}：是卡的问题，不是读卡器", bad_zh.join("；")),
        ),
        (
            "Ask for another card; the customer should call their bank about this one. The readers are fine.",
            "请顾客换一张卡，并联系其发卡银行处理此卡。读卡器正常。",
        ),
    )
}

/// Why transactions were declined in the last hour, by cause.
const CAUSES: &[((&str, &str), &[ResponseCode])] = &[
    (
        (
            "card invalid, expired, lost or frozen",
            "卡无效、过期、挂失或冻结",
        ),
        &[
            ResponseCode::INVALID_CARD,
            ResponseCode::EXPIRED_CARD,
            reason::EXPIRED_AT_TERMINAL,
            ResponseCode::LOST_CARD,
            ResponseCode::STOLEN_CARD,
        ],
    ),
    (
        ("insufficient funds or over the limit", "余额不足或超限"),
        &[ResponseCode::INSUFFICIENT_FUNDS, ResponseCode::OVER_LIMIT],
    ),
    (
        ("wrong PIN", "密码错误"),
        &[ResponseCode::WRONG_PIN, reason::PIN_TRIES],
    ),
    (
        ("wrong amount", "金额不对"),
        &[reason::WRONG_AMOUNT, reason::REFUND_TOO_LARGE],
    ),
    (
        ("refused by the fraud rules", "被反欺诈规则拒绝"),
        &[reason::FRAUD_BLOCKED],
    ),
];
/// Attempts before the decline share means anything.
const MIN_ATTEMPTS: usize = 10;

/// The last hour's declines by cause; many of them is worth a look.
fn declines(facts: &Facts) -> Check {
    // Decided by the issuer or the hub; no answer from the bank is the network check's.
    let decided: Vec<&super::Recent> = facts
        .recent
        .iter()
        .filter(|r| !r.response_code.is_some_and(|c| NETWORK.contains(&c)))
        .filter(|r| r.status == "approved" || r.status == "declined" || r.status == "failed")
        .collect();
    let attempts = decided.len();
    let declined: Vec<&&super::Recent> = decided
        .iter()
        .filter(|r| r.status == "declined" || r.status == "failed")
        .collect();
    let mut causes: Vec<((&str, &str), usize)> = CAUSES
        .iter()
        .filter_map(|(cause, codes)| {
            let n = declined
                .iter()
                .filter(|r| r.response_code.is_some_and(|c| codes.contains(&c)))
                .count();
            (n > 0).then_some((*cause, n))
        })
        .collect();
    let other = declined
        .iter()
        .filter(|r| {
            !CAUSES
                .iter()
                .any(|(_, codes)| r.response_code.is_some_and(|c| codes.contains(&c)))
        })
        .count();
    if other > 0 {
        causes.push((("other", "其他"), other));
    }
    let refused = declined.len();
    let listed = |zh: bool| {
        let each = causes
            .iter()
            .map(|((en, in_zh), n)| format!("{} {n}", if zh { in_zh } else { en }));
        each.collect::<Vec<_>>().join(if zh { "，" } else { ", " })
    };
    let evidence = if causes.is_empty() {
        said(
            format!("{attempts} transactions in the last hour, none declined"),
            format!("最近一小时 {attempts} 笔交易，没有被拒的"),
        )
    } else {
        said(
            format!(
                "{refused} of {attempts} transactions declined in the last hour: {}",
                listed(false)
            ),
            format!(
                "最近一小时 {attempts} 笔交易中 {refused} 笔被拒：{}",
                listed(true)
            ),
        )
    };
    if attempts >= MIN_ATTEMPTS && refused * 2 >= attempts {
        return check(
            "payments.declines",
            Status::Warn,
            evidence,
            (
                "Half the cards are declined: check the amount keyed and the currency; many declines on one checkout can be card testing (see the fraud check). Each decline told the cashier why on the screen.",
                "一半的交易被拒：请核对输入的金额和币种；同一收银台大量被拒可能是盗卡测试（见欺诈检查）。每次拒绝的原因都已显示在收银台屏幕上。",
            ),
        );
    }
    ok("payments.declines", evidence)
}

fn acquirer(link: &crate::acquirer::LinkHealth) -> Check {
    let since = link.since.as_deref().unwrap_or("start");
    let since_zh = link.since.as_deref().unwrap_or("启动");
    if link.sign_in_refused {
        return check(
            "network.acquirer",
            Status::Fail,
            said(
                format!(
                    "the acquirer at {} answers but does not let the hub sign in since {since}: {}; no sale goes out until it does",
                    link.addr,
                    link.last_error.as_deref().unwrap_or("refused")
                ),
                format!(
                    "收单机构（{}）自 {since_zh} 起有应答但不让主机签到：{}；签到成功前不会发出任何交易",
                    link.addr,
                    link.last_error.as_deref().unwrap_or("被拒绝")
                ),
            ),
            (
                "Call the acquirer's help desk with this message: the merchant id, the terminal id or the terminal master key (acquirer_master_keys; compare its check value with theirs: tallybox acquirer-keys list) may not be theirs, or the terminal may be blocked at their end. Customers whose sale failed were not charged.",
                "请将此信息告知收单机构客服：设置中的商户号、终端号或终端主密钥（acquirer_master_keys；用 tallybox acquirer-keys list 核对校验值）可能与其不符，或终端在收单方被停用。交易失败的顾客未被扣款。",
            ),
        );
    }
    if !link.up {
        return check(
            "network.acquirer",
            Status::Fail,
            said(
                format!(
                    "the hub cannot reach the acquirer at {} since {since}: {}",
                    link.addr,
                    link.last_error.as_deref().unwrap_or("no connection yet")
                ),
                format!(
                    "主机自 {since_zh} 起连不上收单机构（{}）：{}",
                    link.addr,
                    link.last_error.as_deref().unwrap_or("尚未连接")
                ),
            ),
            NETWORK_FIX,
        );
    }
    if link.refused_answers_last_hour > 0 {
        return check(
            "network.acquirer",
            Status::Fail,
            said(
                format!(
                    "{} answers from the acquirer refused in the last hour, each sale reversed and the cashier told not charged; the last: {}",
                    link.refused_answers_last_hour,
                    link.last_refused.as_deref().unwrap_or("?")
                ),
                format!(
                    "最近一小时拒收了收单机构的 {} 个应答，每笔交易都已冲正并告知收银员未扣款；最近一个：{}",
                    link.refused_answers_last_hour,
                    link.last_refused.as_deref().unwrap_or("?")
                ),
            ),
            (
                "An answer is taken only if its MAC is right and it gives back the request's amount, trace number, terminal, merchant and currency. A wrong MAC: the working keys of the last sign-in are not the acquirer's (the hub signs in again after an A0 answer). Other differences: call the acquirer's help desk with this message; someone may be changing messages on the line.",
                "只有MAC正确、且金额、流水号、终端号、商户号和币种与请求一致的应答才会被接受。MAC错误：上次签到下发的工作密钥与收单机构的不一致（收到A0应答后会重新签到）。其他不一致：请将此信息告知收单机构客服；线路上的报文可能被篡改。",
            ),
        );
    }
    // Answers taking half the time-out come close to reversed sales.
    let slowest = link.max_round_trip_ms.unwrap_or(0);
    let evidence = said(
        format!(
            "the acquirer link at {} ({}, {} layout) is up since {since}; signed in: {}; it dropped {} times in the last hour; slowest of the last 5 answers {slowest} ms (sales are reversed after {} ms)",
            link.addr,
            if link.tls { "TLS" } else { "plain TCP, for a dedicated line" },
            link.dialect,
            if link.signed_in.is_empty() { "none yet".to_string() } else { link.signed_in.join(", ") },
            link.drops_last_hour,
            link.timeout_ms
        ),
        format!(
            "与收单机构（{}，{}，{} 报文格式）的连接自 {since_zh} 起正常；已签到：{}；最近一小时断开 {} 次；最近 5 个应答最慢 {slowest} 毫秒（超过 {} 毫秒的交易会被冲正）",
            link.addr,
            if link.tls { "TLS 加密" } else { "专线明文 TCP" },
            link.dialect,
            if link.signed_in.is_empty() { "还没有".to_string() } else { link.signed_in.join("、") },
            link.drops_last_hour,
            link.timeout_ms
        ),
    );
    if link.drops_last_hour >= 3 || slowest * 2 > link.timeout_ms {
        check("network.acquirer", Status::Warn, evidence, NETWORK_FIX)
    } else {
        ok("network.acquirer", evidence)
    }
}
