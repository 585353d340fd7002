//! People and money at risk: accounts someone is guessing the password of,
//! cashiers locked by wrong PINs, fraud rules that fired, frozen checkouts.

use super::terminal::local;
use super::{check, ok, said, Check, Facts, Status};

/// Wrong passwords in a row that say someone is guessing (the page locks from here).
const GUESSING: u32 = 5;

pub(super) fn checks(facts: &Facts) -> Vec<Check> {
    let mut out = Vec::new();
    let guessing: Vec<_> = facts
        .login_failures
        .iter()
        .filter(|(_, n, _)| *n >= GUESSING)
        .map(|(account, n, at)| (account, n, at.as_deref().map_or("?".into(), local)))
        .collect();
    let guessed: Vec<String> = guessing
        .iter()
        .map(|(account, n, at)| format!("{account}: {n} wrong passwords in a row, the last at {at}"))
        .collect();
    let guessed_zh: Vec<String> = guessing
        .iter()
        .map(|(account, n, at)| format!("{account}：连续 {n} 次密码错误，最近一次在 {at}"))
        .collect();
    out.push(if guessed.is_empty() {
        ok(
            "accounts.lockout",
            said("no account has a run of wrong passwords", "没有账号连续输错密码"),
        )
    } else {
        check(
            "accounts.lockout",
            Status::Warn,
            said(
                format!("{}; the page locks them for a while, longer with each try", guessed.join("; ")),
                format!("{}；页面会暂时锁定，每多试一次锁得更久", guessed_zh.join("；")),
            ),
            (
                "If it was you, wait for the lock to end. Forgot the owner password: run `tallybox reset-owner` on the hub (it takes a backup first and keeps everything else). If it was not you, someone is guessing: look at the sign-in attempts under Settings.",
                "如果是您本人，请等待锁定结束。忘记店主密码：在主机上运行 `tallybox reset-owner`（会先备份，其他数据不变）。如果不是您本人，说明有人在猜密码：请在“设置”中查看登录记录。",
            ),
        )
    });
    let locked: Vec<String> = facts
        .locked_cashiers
        .iter()
        .map(|(no, name, at)| format!("cashier {no} {name} locked since {}", local(at)))
        .collect();
    let locked_zh: Vec<String> = facts
        .locked_cashiers
        .iter()
        .map(|(no, name, at)| format!("{no} 号收银员 {name} 自 {} 起被锁定", local(at)))
        .collect();
    out.push(if locked.is_empty() {
        ok("cashiers.locked", said("no cashier is locked", "没有被锁定的收银员"))
    } else {
        check(
            "cashiers.locked",
            Status::Warn,
            said(
                format!("{} after 5 wrong PINs", locked.join("; ")),
                format!("{}（连续 5 次密码错误）", locked_zh.join("；")),
            ),
            (
                "If it was them, unlock them under Settings → Cashiers (or give them a new PIN); if not, someone tried their number: ask around.",
                "如果是收银员本人输错，请在“设置 → 收银员”中解锁（或设置新密码）；如果不是，说明有人在试用其工号，请了解情况。",
            ),
        )
    });
    let fraud_fix = (
        "Look at the hits on Today. In doubt, freeze the checkout (Terminals), keep the card and the slips, download the evidence pack and give it to the acquirer's fraud line and the police.",
        "在“今日”查看命中记录。如有疑问，请冻结收银台（终端页面），保留卡片和签购单，下载证据包并交给收单机构的反欺诈部门和警方。",
    );
    out.push(if facts.fraud_hits.is_empty() {
        ok(
            "payments.fraud",
            said(
                "no fraud rule fired in the last 24 hours",
                "最近 24 小时没有触发反欺诈规则",
            ),
        )
    } else {
        let hits: Vec<String> = facts
            .fraud_hits
            .iter()
            .map(|(rule, n)| format!("{rule} ×{n}"))
            .collect();
        let hits_zh: Vec<String> = facts
            .fraud_hits
            .iter()
            .map(|(rule, n)| format!("{} ×{n}", rule_zh(rule)))
            .collect();
        check(
            "payments.fraud",
            Status::Warn,
            said(
                format!("fraud rules fired in the last 24 hours: {}", hits.join(", ")),
                format!("最近 24 小时触发的反欺诈规则：{}", hits_zh.join("，")),
            ),
            fraud_fix,
        )
    });
    for t in facts.terminals.iter().filter(|t| t.frozen.is_some()) {
        out.push(check(
            format!("terminal.{}.frozen", t.id),
            Status::Warn,
            said(
                format!(
                    "{} may not sell: frozen ({})",
                    t.id,
                    t.frozen.as_deref().unwrap_or_default()
                ),
                format!(
                    "{} 已被冻结，不能收款（{}）",
                    t.id,
                    t.frozen_zh.as_deref().unwrap_or_default()
                ),
            ),
            (
                "Once the cause is cleared (evidence kept, acquirer told), unfreeze it on Terminals.",
                "问题处理完毕（证据已保存、已通知收单机构）后，在“终端”页面解冻。",
            ),
        ));
    }
    out
}

/// A fraud rule's name in Chinese (the rules are named in `fraud.rs`).
pub fn rule_zh(rule: &str) -> &str {
    match rule {
        "card_testing" => "试卡（同一收银台短时间内多次被拒）",
        "same_card" => "同一张卡短时间内多次使用",
        "large_amount" => "金额远超平常",
        "manual_entry_burst" => "短时间内多次手工输入卡号",
        "outside_hours" => "营业时间外的交易",
        other => other,
    }
}
