//! The shop as its slips and screens describe it: name, address, the owner's
//! lines above and below every slip, and the supervisor PIN for voids and
//! refunds. The settings file gives the first values; the owner edits them
//! on the web page, the store keeps the edit (`settings` row `shop`), and the
//! coordinator and the page read the one shared copy, so the next slip shows
//! the change without a restart.

use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use tallybox_core::slip::{columns, WIDTH};

use crate::config::Config;

/// Lines the owner may add above or below the slip body.
pub const MAX_SLIP_LINES: usize = 3;

/// The shop settings a chain's head office may set for every shop: the
/// slips' lines and the checkouts' rules. Each shop keeps its own name,
/// address, clock and supervisor PIN (a secret never goes through the
/// chain); a setting the owner changed on the shop's page stays the owner's.
pub const CHAIN_WIDE: &[&str] = &[
    "slip_header",
    "slip_footer",
    "cashier_sign_on",
    "pairing_required",
    "managers_unfreeze",
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shop {
    pub name: String,
    #[serde(default)]
    pub address: String,
    #[serde(default)]
    pub slip_header: Vec<String>,
    #[serde(default)]
    pub slip_footer: Vec<String>,
    /// The supervisor PIN's argon2 hash (a PHC string, like the cashiers'
    /// PINs), never its digits; none: voids and refunds are refused. Kept as
    /// `supervisor_pin`, where a hub before 0.2 kept the digits in clear
    /// ([`is_hash`] tells them apart; the store upgrades such an edit).
    #[serde(default, rename = "supervisor_pin")]
    pub supervisor_pin_hash: Option<String>,
    /// A sale needs a cashier signed on at the checkout.
    #[serde(default)]
    pub cashier_sign_on: bool,
    /// Only paired terminals may sell (unpaired ones are told to pair); a
    /// saved edit that does not say is taken as yes.
    #[serde(default = "yes")]
    pub pairing_required: bool,
    /// Managers may lift a freeze; without it only the owner does (a
    /// freeze is how a fraud is stopped).
    #[serde(default)]
    pub managers_unfreeze: bool,
    /// The IANA time zone slips, reports and clocks use; none: the system's.
    #[serde(default)]
    pub time_zone: Option<String>,
    /// From the settings file only: the acquirer assigns it.
    #[serde(skip)]
    pub merchant_id: String,
    /// From the settings file only.
    #[serde(skip)]
    pub public_url: String,
}

pub type SharedShop = Arc<RwLock<Shop>>;

fn yes() -> bool {
    true
}

impl Shop {
    /// The settings file's shop; its supervisor PIN is hashed here, the
    /// only place the digits are held (argon2: tens of milliseconds).
    pub fn from_config(config: &Config) -> Result<Shop, String> {
        let supervisor_pin_hash = match &config.supervisor_pin {
            Some(pin) => Some(crate::passwords::hash(pin.expose())?),
            None => None,
        };
        Ok(Shop {
            name: config.store_name.clone(),
            address: String::new(),
            slip_header: Vec::new(),
            slip_footer: Vec::new(),
            supervisor_pin_hash,
            cashier_sign_on: false,
            pairing_required: config.pairing_required,
            managers_unfreeze: false,
            time_zone: None,
            merchant_id: config.merchant_id.clone(),
            public_url: config.public_url.clone(),
        })
    }

    /// This shop with head office's `chain` settings on top, except those
    /// the owner set on the shop's page (`local`): the shop's own choice
    /// wins. Also which of `chain`'s settings stayed local.
    pub fn with_chain(
        &self,
        local: &std::collections::BTreeSet<String>,
        chain: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<(Shop, Vec<String>), String> {
        let chain_wide = |key: &str, _: &serde_json::Map<String, serde_json::Value>| {
            if CHAIN_WIDE.contains(&key) {
                return Ok(());
            }
            Err(format!(
                "head office's shop settings name '{key}', which is not chain-wide (chain-wide: {})",
                CHAIN_WIDE.join(", ")
            ))
        };
        let (merged, kept_local) =
            crate::chain::wire::overlay(self, "shop settings", chain_wide, local, chain)?;
        let merged = self.with_edit(merged);
        merged.check().map_err(|e| e.to_string())?;
        Ok((merged, kept_local))
    }

    /// The chain-wide settings whose values differ between `self` and `other`.
    pub fn chain_wide_changes(&self, other: &Shop) -> Vec<String> {
        let (a, b) = (serde_json::to_value(self), serde_json::to_value(other));
        let (Ok(a), Ok(b)) = (a, b) else {
            return Vec::new();
        };
        CHAIN_WIDE
            .iter()
            .filter(|key| a.get(**key) != b.get(**key))
            .map(|key| key.to_string())
            .collect()
    }

    /// The owner's edit on top of the settings file's facts.
    pub fn with_edit(&self, edit: Shop) -> Shop {
        Shop {
            merchant_id: self.merchant_id.clone(),
            public_url: self.public_url.clone(),
            ..edit
        }
    }

    /// What fits a slip and a checkout: the first problem, naming its field.
    pub fn check(&self) -> Result<(), ShopError> {
        let name = self.name.trim();
        if name.is_empty() || columns(name) > WIDTH {
            return Err(ShopError::Name);
        }
        if columns(&self.address) > WIDTH {
            return Err(ShopError::Address);
        }
        for (field, lines) in [
            ("slip_header", &self.slip_header),
            ("slip_footer", &self.slip_footer),
        ] {
            if lines.len() > MAX_SLIP_LINES {
                return Err(ShopError::SlipLines(field));
            }
            if lines.iter().any(|l| columns(l) > WIDTH) {
                return Err(ShopError::SlipWidth(field));
            }
        }
        if self.supervisor_pin_hash.as_deref().is_some_and(|h| !is_hash(h)) {
            return Err(ShopError::PinNotHashed);
        }
        Ok(())
    }
}

/// A supervisor PIN as a person types it: 4 to 8 digits.
pub fn check_supervisor_pin(pin: &str) -> Result<(), ShopError> {
    if (4..=8).contains(&pin.len()) && pin.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(ShopError::Pin)
    }
}

/// A shop setting the hub refuses, by the rule it breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ShopError {
    #[error("store_name: 1 to {WIDTH} columns (a Chinese character takes 2)")]
    Name,
    #[error("address: at most {WIDTH} columns")]
    Address,
    #[error("{0}: at most {MAX_SLIP_LINES} lines")]
    SlipLines(&'static str),
    #[error("{0}: each line at most {WIDTH} columns")]
    SlipWidth(&'static str),
    #[error("supervisor_pin: 4 to 8 digits")]
    Pin,
    #[error("supervisor_pin: kept only as a hash")]
    PinNotHashed,
}

/// Whether a kept supervisor PIN is a hash (and not digits an older hub kept).
pub fn is_hash(kept: &str) -> bool {
    kept.starts_with("$argon2")
}

/// Reads the shared copy, whatever a panicked writer left.
pub fn current(shop: &SharedShop) -> Shop {
    shop.read().unwrap_or_else(|e| e.into_inner()).clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shop() -> Shop {
        Shop::from_config(&Config::default()).unwrap()
    }

    #[test]
    fn head_office_sets_chain_wide_settings_but_not_the_owners_own_nor_the_shops_identity() {
        let file = Shop {
            merchant_id: "898110248990001".into(),
            ..shop()
        };
        let chain = serde_json::json!({"slip_footer": ["Thanks from the chain"], "managers_unfreeze": true});
        let chain = chain.as_object().unwrap();
        let local = ["slip_footer".to_string()].into_iter().collect();
        let (merged, kept) = file.with_chain(&local, chain).unwrap();
        assert_eq!(kept, ["slip_footer"]);
        assert!(merged.slip_footer.is_empty() && merged.managers_unfreeze);
        assert_eq!(
            merged.merchant_id, file.merchant_id,
            "the settings file's facts stay"
        );
        let (merged, _) = file.with_chain(&Default::default(), chain).unwrap();
        assert_eq!(merged.slip_footer, ["Thanks from the chain"]);
        assert_eq!(
            file.chain_wide_changes(&merged),
            ["slip_footer", "managers_unfreeze"]
        );

        for (body, says) in [
            (
                serde_json::json!({"name": "Chain HQ"}),
                "'name', which is not chain-wide",
            ),
            (serde_json::json!({"supervisor_pin": "1234"}), "not chain-wide"),
            (
                serde_json::json!({"slip_footer": ["a", "b", "c", "d"]}),
                "slip_footer: at most 3 lines",
            ),
            (serde_json::json!({"managers_unfreeze": "yes"}), "invalid type"),
        ] {
            let refused = file
                .with_chain(&Default::default(), body.as_object().unwrap())
                .unwrap_err();
            assert!(refused.contains(says), "{refused}");
        }
    }

    #[test]
    fn what_does_not_fit_a_slip_is_refused_by_name() {
        assert_eq!(shop().check(), Ok(()));
        let cases = [
            (
                Shop {
                    name: " ".into(),
                    ..shop()
                },
                "store_name",
            ),
            (
                Shop {
                    name: "字".repeat(17),
                    ..shop()
                },
                "store_name",
            ),
            (
                Shop {
                    address: "x".repeat(33),
                    ..shop()
                },
                "address",
            ),
            (
                Shop {
                    slip_header: vec!["a".into(); 4],
                    ..shop()
                },
                "slip_header",
            ),
            (
                Shop {
                    slip_footer: vec!["谢".repeat(17)],
                    ..shop()
                },
                "slip_footer",
            ),
            (
                Shop {
                    supervisor_pin_hash: Some("1234".into()),
                    ..shop()
                },
                "supervisor_pin",
            ),
        ];
        for (s, field) in cases {
            assert!(s.check().unwrap_err().to_string().starts_with(field), "{field}");
        }
        let ok = Shop {
            name: "老王便利店".into(),
            slip_footer: vec!["谢谢惠顾 Thank you".into()],
            ..shop()
        };
        assert_eq!(ok.check(), Ok(()));
    }

    #[test]
    fn the_supervisor_pin_is_kept_as_a_hash_and_never_prints() {
        let config = Config {
            supervisor_pin: Some("8642".into()),
            ..Config::default()
        };
        let shop = Shop::from_config(&config).unwrap();
        let kept = shop.supervisor_pin_hash.clone().unwrap();
        assert!(is_hash(&kept) && !kept.contains("8642"), "{kept}");
        assert!(crate::passwords::verify("8642", &kept));
        assert!(!crate::passwords::verify("8643", &kept));
        let json = serde_json::to_string(&shop).unwrap();
        assert!(!json.contains("8642"), "{json}");
        assert!(
            !format!("{config:?}").contains("8642"),
            "the settings print no PIN"
        );
        assert_eq!(shop.check(), Ok(()));
        assert!(check_supervisor_pin("12a4").is_err() && check_supervisor_pin("1234").is_ok());
    }

    #[test]
    fn an_edit_keeps_the_facts_from_the_settings_file() {
        let edit = Shop {
            name: "New".into(),
            merchant_id: String::new(),
            public_url: String::new(),
            ..shop()
        };
        let merged = shop().with_edit(edit);
        assert_eq!(merged.name, "New");
        assert_eq!(merged.merchant_id, Config::default().merchant_id);
    }
}
