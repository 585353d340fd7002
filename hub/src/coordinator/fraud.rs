//! Fraud rules, judged on every sale before it goes to the acquirer (sans-IO:
//! facts in, hits out). Each rule either lets the sale through and records
//! the hit for the owner (`allow`), lets it through only with the
//! supervisor's PIN (`ask_supervisor`), or refuses it (`block`). Card testing — a
//! run of declines at one terminal, the pattern of someone trying stolen
//! numbers — also freezes that terminal until the owner unfreezes it.

use chrono::NaiveTime;
use serde::{Deserialize, Serialize};
use tallybox_core::card::EntryMode;
use tallybox_core::money::{Amount, Currency};

pub use crate::store::fraud::Action;
use crate::store::fraud::{FactLimits, Facts, Hit};

/// The `[fraud]` settings; every rule has a working default.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FraudRules {
    /// The same card more than this many times in the window.
    pub same_card_max: u32,
    pub same_card_window_secs: u64,
    pub same_card_action: Action,
    /// This many declines at one terminal in the window: card testing.
    pub card_testing_declines: u32,
    pub card_testing_window_secs: u64,
    pub card_testing_action: Action,
    pub freeze_on_card_testing: bool,
    /// A sale this many times the store's average (once it has enough history).
    pub amount_factor: u32,
    pub amount_min_history: u32,
    pub amount_action: Action,
    /// More than this many keyed-in cards at one terminal in the window.
    pub manual_max: u32,
    pub manual_window_secs: u64,
    pub manual_action: Action,
    /// A refund to a card other than the sale's.
    pub refund_other_card_action: Action,
    /// A refund that takes the day's refunds above the day's sales (store-wide).
    pub refunds_over_sales_action: Action,
    /// Opening hours, `HH:MM-HH:MM`; sales outside them are a hit.
    pub opening_hours: Option<String>,
    pub outside_hours_action: Action,
}

impl Default for FraudRules {
    fn default() -> Self {
        FraudRules {
            same_card_max: 5,
            same_card_window_secs: 600,
            same_card_action: Action::Allow,
            // A busy counter sees a few declines; a card tester, dozens.
            card_testing_declines: 10,
            card_testing_window_secs: 600,
            card_testing_action: Action::Block,
            freeze_on_card_testing: true,
            amount_factor: 10,
            amount_min_history: 20,
            amount_action: Action::Allow,
            manual_max: 3,
            manual_window_secs: 600,
            manual_action: Action::Block,
            // Money sent to a card that did not pay is the commonest refund
            // fraud at a counter: refused unless the owner allows it
            // (`refund_other_card_action = "allow"` or `"ask_supervisor"`).
            refund_other_card_action: Action::Block,
            refunds_over_sales_action: Action::Allow,
            opening_hours: None,
            outside_hours_action: Action::Allow,
        }
    }
}

/// The rules in force, shared by every request and replaced whole when
/// head office publishes new ones ([`FraudRules::with_chain`]).
#[derive(Debug, Clone)]
pub struct SharedRules(std::sync::Arc<std::sync::RwLock<FraudRules>>);

impl SharedRules {
    pub fn new(rules: FraudRules) -> SharedRules {
        SharedRules(std::sync::Arc::new(std::sync::RwLock::new(rules)))
    }

    pub fn get(&self) -> FraudRules {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn set(&self, rules: FraudRules) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = rules;
    }
}

pub const CARD_TESTING: &str = "card_testing";
pub const REFUND_OTHER_CARD: &str = "refund_other_card";
pub const REFUNDS_OVER_SALES: &str = "refunds_over_sales";

fn hours(spec: &str) -> Option<(NaiveTime, NaiveTime)> {
    let (a, b) = spec.split_once('-')?;
    Some((
        NaiveTime::parse_from_str(a.trim(), "%H:%M").ok()?,
        NaiveTime::parse_from_str(b.trim(), "%H:%M").ok()?,
    ))
}

impl FraudRules {
    /// What the store counts for these rules.
    pub fn limits(&self) -> FactLimits {
        FactLimits {
            same_card: (self.same_card_window_secs, self.same_card_max),
            declines: (self.card_testing_window_secs, self.card_testing_declines),
            manual: (self.manual_window_secs, self.manual_max),
        }
    }

    /// These rules (the settings file's) with head office's `chain` on top,
    /// except the rules the owner wrote in the file (`local`): the shop's
    /// own choice wins. Also which of `chain`'s rules stayed local.
    pub fn with_chain(
        &self,
        local: &std::collections::BTreeSet<String>,
        chain: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<(FraudRules, Vec<String>), String> {
        let known = |key: &str, fields: &serde_json::Map<String, serde_json::Value>| {
            if fields.contains_key(key) {
                return Ok(());
            }
            Err(format!(
                "head office's fraud rules name '{key}', which this version does not know"
            ))
        };
        let (rules, kept_local) = crate::chain::wire::overlay(self, "fraud rules", known, local, chain)?;
        rules.validate()?;
        Ok((rules, kept_local))
    }

    pub fn validate(&self) -> Result<(), String> {
        if let Some(spec) = &self.opening_hours {
            hours(spec).ok_or("fraud.opening_hours: write it as HH:MM-HH:MM, e.g. 08:00-22:00")?;
        }
        if self.card_testing_declines == 0 || self.same_card_max == 0 || self.amount_factor == 0 {
            return Err("fraud: limits must be at least 1".into());
        }
        Ok(())
    }

    fn hit(rule: &'static str, action: Action, (detail, detail_zh): (String, String)) -> Hit {
        Hit {
            rule,
            action,
            detail,
            detail_zh,
            card: None,
        }
    }

    /// The rules a sale of `amount` breaks, given `facts` and the local time;
    /// `entry` is how the card was read (none for cash).
    pub fn check(
        &self,
        facts: &Facts,
        amount: Amount,
        currency: Currency,
        entry: Option<EntryMode>,
        now: NaiveTime,
    ) -> Vec<Hit> {
        let mut hits = Vec::new();
        if facts.declines >= self.card_testing_declines {
            hits.push(Self::hit(
                CARD_TESTING,
                self.card_testing_action,
                (
                    format!(
                        "at least {} declines at this terminal in {} s: someone may be trying card numbers",
                        facts.declines, self.card_testing_window_secs
                    ),
                    format!(
                        "这台收银台 {} 秒内至少被拒 {} 次：可能有人在试卡号",
                        self.card_testing_window_secs, facts.declines
                    ),
                ),
            ));
        }
        if facts.same_card >= self.same_card_max {
            hits.push(Hit {
                card: Some(facts.card.clone()),
                ..Self::hit(
                    "same_card",
                    self.same_card_action,
                    (
                        format!(
                            "the same card more than {} times in {} s",
                            facts.same_card, self.same_card_window_secs
                        ),
                        format!(
                            "同一张卡 {} 秒内使用超过 {} 次",
                            self.same_card_window_secs, facts.same_card
                        ),
                    ),
                )
            });
        }
        if facts.usual_of >= self.amount_min_history
            && amount.minor() > facts.usual_minor.saturating_mul(self.amount_factor as u64).max(1)
        {
            hits.push(Self::hit(
                "large_amount",
                self.amount_action,
                (
                    format!(
                        "{} is more than {}× the usual {}",
                        currency.format(amount),
                        self.amount_factor,
                        currency.format_minor(facts.usual_minor)
                    ),
                    format!(
                        "{} 超过平常金额 {} 的 {} 倍",
                        currency.format(amount),
                        currency.format_minor(facts.usual_minor),
                        self.amount_factor
                    ),
                ),
            ));
        }
        if entry == Some(EntryMode::Manual) && facts.manual >= self.manual_max {
            hits.push(Self::hit(
                "manual_entry_burst",
                self.manual_action,
                (
                    format!(
                        "more than {} keyed-in cards in {} s",
                        facts.manual, self.manual_window_secs
                    ),
                    format!(
                        "{} 秒内手工输入卡号超过 {} 次",
                        self.manual_window_secs, facts.manual
                    ),
                ),
            ));
        }
        if let Some((open, close)) = self.opening_hours.as_deref().and_then(hours) {
            let inside = if open <= close {
                now >= open && now < close
            } else {
                now >= open || now < close
            };
            if !inside {
                hits.push(Self::hit(
                    "outside_hours",
                    self.outside_hours_action,
                    (
                        format!(
                            "a sale at {} outside opening hours {}",
                            now.format("%H:%M"),
                            self.opening_hours.as_deref().unwrap_or_default()
                        ),
                        format!(
                            "{} 的交易在营业时间 {} 之外",
                            now.format("%H:%M"),
                            self.opening_hours.as_deref().unwrap_or_default()
                        ),
                    ),
                ));
            }
        }
        hits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    fn amount(minor: u64) -> Amount {
        Amount::from_minor(minor).unwrap()
    }

    #[test]
    fn head_office_rules_apply_where_the_owner_wrote_none_and_bad_ones_change_nothing() {
        let file = FraudRules {
            same_card_max: 3,
            ..FraudRules::default()
        };
        let local = ["same_card_max".to_string()].into_iter().collect();
        let chain = serde_json::json!({"same_card_max": 9, "manual_max": 1, "opening_hours": "08:00-22:00"});
        let (rules, kept) = file.with_chain(&local, chain.as_object().unwrap()).unwrap();
        assert_eq!(rules.same_card_max, 3, "the owner's own limit wins");
        assert_eq!(kept, ["same_card_max"]);
        assert_eq!(rules.manual_max, 1);
        assert_eq!(rules.opening_hours.as_deref(), Some("08:00-22:00"));
        for bad in [
            serde_json::json!({"same_card_limit": 2}),
            serde_json::json!({"manual_max": "many"}),
            serde_json::json!({"opening_hours": "all day"}),
            serde_json::json!({"amount_factor": 0}),
        ] {
            assert!(
                file.with_chain(&local, bad.as_object().unwrap()).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_quiet_sale_breaks_nothing() {
        let rules = FraudRules::default();
        assert!(rules
            .check(
                &Facts::default(),
                amount(1250),
                Currency::CNY,
                Some(EntryMode::Swipe),
                at(12, 0)
            )
            .is_empty());
    }

    #[test]
    fn card_testing_blocks_and_same_card_only_alerts_by_default() {
        let rules = FraudRules::default();
        let facts = Facts {
            declines: 10,
            same_card: 5,
            ..Default::default()
        };
        let hits = rules.check(
            &facts,
            amount(100),
            Currency::CNY,
            Some(EntryMode::Swipe),
            at(12, 0),
        );
        let rule = |name: &str| hits.iter().find(|h| h.rule == name).cloned().unwrap();
        assert_eq!(rule(CARD_TESTING).action, Action::Block);
        assert_eq!(rule("same_card").action, Action::Allow);
    }

    #[test]
    fn a_large_amount_needs_history_first() {
        let rules = FraudRules::default();
        let mut facts = Facts {
            usual_minor: 2_000,
            usual_of: 5,
            ..Default::default()
        };
        assert!(rules
            .check(
                &facts,
                amount(50_000),
                Currency::CNY,
                Some(EntryMode::Swipe),
                at(12, 0)
            )
            .is_empty());
        facts.usual_of = 50;
        let hits = rules.check(
            &facts,
            amount(50_000),
            Currency::CNY,
            Some(EntryMode::Swipe),
            at(12, 0),
        );
        assert_eq!(hits[0].rule, "large_amount");
        assert!(rules
            .check(
                &facts,
                amount(19_000),
                Currency::CNY,
                Some(EntryMode::Swipe),
                at(12, 0)
            )
            .is_empty());
    }

    #[test]
    fn opening_hours_also_span_midnight() {
        let rules = FraudRules {
            opening_hours: Some("22:00-06:00".into()),
            outside_hours_action: Action::Block,
            ..Default::default()
        };
        rules.validate().unwrap();
        let f = Facts::default();
        assert!(rules
            .check(&f, amount(1), Currency::CNY, Some(EntryMode::Swipe), at(23, 0))
            .is_empty());
        assert!(rules
            .check(&f, amount(1), Currency::CNY, Some(EntryMode::Swipe), at(5, 59))
            .is_empty());
        assert_eq!(
            rules.check(&f, amount(1), Currency::CNY, Some(EntryMode::Swipe), at(12, 0))[0].action,
            Action::Block
        );
        assert!(FraudRules {
            opening_hours: Some("8-22".into()),
            ..Default::default()
        }
        .validate()
        .is_err());
    }

    #[test]
    fn keyed_in_bursts_are_blocked() {
        let rules = FraudRules::default();
        let facts = Facts {
            manual: 3,
            ..Default::default()
        };
        assert_eq!(
            rules.check(
                &facts,
                amount(1),
                Currency::CNY,
                Some(EntryMode::Manual),
                at(12, 0)
            )[0]
            .action,
            Action::Block
        );
        assert!(rules
            .check(
                &facts,
                amount(1),
                Currency::CNY,
                Some(EntryMode::Swipe),
                at(12, 0)
            )
            .is_empty());
    }
}
