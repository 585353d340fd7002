//! The owner's edit of the shop's name, address, slip lines and supervisor
//! PIN, kept as one JSON row in `settings` and audited.

use rusqlite::OptionalExtension;

use super::{audit, exec, now_utc, Store, StoreError};
use crate::shop::Shop;

impl Store {
    /// The chain-wide shop settings ([`crate::shop::CHAIN_WIDE`]) the owner
    /// set on this shop's page: head office's documents leave them be.
    /// Before the first is noted, those in which the owner's edit differs
    /// from `file` (set before the shop joined the chain).
    pub fn shop_local(&self, file: &Shop) -> Result<std::collections::BTreeSet<String>, StoreError> {
        if let Some(keys) = self
            .setting("shop_local")?
            .and_then(|j| serde_json::from_str(&j).ok())
        {
            return Ok(keys);
        }
        Ok(match self.shop_edit()? {
            Some(edit) => file.chain_wide_changes(&edit).into_iter().collect(),
            None => Default::default(),
        })
    }

    /// The owner's edit from the shop's page, and which chain-wide settings
    /// it changed (`own`: they stay the owner's), in one transaction.
    pub fn set_shop_edit_by_owner(
        &mut self,
        shop: &Shop,
        by: &str,
        file: &Shop,
        own: &[String],
    ) -> Result<(), StoreError> {
        self.on_own(|s| {
            s.set_shop_edit(shop, by)?;
            if own.is_empty() {
                return Ok(());
            }
            s.note_shop_local(file, own)
        })
    }

    /// Notes that the owner set `keys` on this shop's page.
    pub fn note_shop_local(&mut self, file: &Shop, keys: &[String]) -> Result<(), StoreError> {
        let mut local = self.shop_local(file)?;
        local.extend(keys.iter().cloned());
        self.put_setting("shop_local", &serde_json::to_string(&local).unwrap_or_default())
    }

    /// The owner's last edit, if any.
    pub fn shop_edit(&self) -> Result<Option<Shop>, StoreError> {
        let json: Option<String> = self
            .conn
            .query_row("SELECT value FROM settings WHERE key = 'shop'", [], |r| r.get(0))
            .optional()?;
        Ok(json.and_then(|j| serde_json::from_str(&j).ok()))
    }

    /// An edit kept by a hub before 0.2 holds the supervisor PIN's digits
    /// in clear: hash them and keep the edit again, once, at start.
    pub fn hash_clear_supervisor_pin(&mut self) -> Result<(), StoreError> {
        let Some(mut shop) = self.shop_edit()? else {
            return Ok(());
        };
        let Some(clear) = shop
            .supervisor_pin_hash
            .take_if(|kept| !crate::shop::is_hash(kept))
        else {
            return Ok(());
        };
        shop.supervisor_pin_hash = Some(crate::passwords::hash(&clear).map_err(StoreError::Hash)?);
        self.set_shop_edit(&shop, "upgrade: supervisor PIN kept as a hash")?;
        tracing::info!("the supervisor PIN is now kept as a hash, no longer in clear");
        Ok(())
    }

    pub fn set_shop_edit(&mut self, shop: &Shop, by: &str) -> Result<(), StoreError> {
        let utc = now_utc();
        let json = serde_json::to_string(shop).unwrap_or_default();
        let tx = self.conn.savepoint()?;
        exec(
            &tx,
            "INSERT INTO settings (key, value) VALUES ('shop', ?1) ON CONFLICT (key) DO UPDATE SET value = ?1",
            [&json],
        )?;
        // The audit record names what changed, never the PIN itself.
        let detail = serde_json::json!({
            "by": by,
            "store_name": shop.name,
            "address": shop.address,
            "slip_header": shop.slip_header,
            "slip_footer": shop.slip_footer,
            "supervisor_pin_set": shop.supervisor_pin_hash.is_some(),
            "cashier_sign_on": shop.cashier_sign_on,
            "time_zone": shop.time_zone,
            "pairing_required": shop.pairing_required,
            "managers_unfreeze": shop.managers_unfreeze,
        });
        audit::append(&tx, &utc, "shop_settings_changed", None, &detail.to_string())?;
        tx.commit()?;
        Ok(())
    }
}
