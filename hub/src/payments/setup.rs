//! The merchant's access to each provider: from the settings file's
//! `[alipay]` / `[wechat_pay]` tables, or entered by the owner on the page,
//! which wins once saved. What the owner enters is checked first (the keys
//! read, then a call that touches no order: the provider must take the
//! shop's credentials and answer with its own signature), then kept in the
//! data directory, each file readable by the hub alone, and taken by the
//! next sale. Nothing of it is ever sent back to the page, logged, or put
//! in the support bundle (which takes nothing from `codes/`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tallybox_core::protocol::Provider;
use tallybox_core::secret::Secret;

use super::alipay::Alipay;
use super::wechat::{Credentials, WechatPay};
use super::{CallError, CodeProvider, Codes};
use crate::config::{AlipayConfig, WechatPayConfig};

/// Alipay's client for the settings' `[alipay]` table.
pub fn alipay_client(c: &AlipayConfig, timeout: Duration) -> Result<Alipay, String> {
    let key = crate::store::read_private(&c.private_key)?;
    let public = std::fs::read_to_string(&c.alipay_public_key)
        .map_err(|e| format!("{}: {e}", c.alipay_public_key.display()))?;
    Alipay::new(&c.gateway, &c.app_id, &key, &public, &c.ca, timeout)
}

/// WeChat Pay's client for the settings' `[wechat_pay]` table.
pub fn wechat_client(c: &WechatPayConfig, timeout: Duration) -> Result<WechatPay, String> {
    let key = crate::store::read_private(&c.api_key)?;
    let credentials = Credentials {
        appid: &c.appid,
        mch_id: &c.mch_id,
        key: &key,
        client_cert: &c.client_cert,
        client_key: &c.client_key,
    };
    WechatPay::new(&c.gateway, &credentials, &c.ca, timeout)
}

/// What the owner enters for Alipay: the app id, the application private
/// key and Alipay's public key as Alipay's key tool shows them.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlipayEntered {
    pub app_id: String,
    pub private_key: Secret<String>,
    pub alipay_public_key: String,
    /// Another gateway than Alipay's (a test host), and the CA (PEM) its
    /// certificate is checked against; the system's bundle when absent.
    #[serde(default)]
    pub gateway: Option<String>,
    #[serde(default)]
    pub ca: Option<String>,
}

/// What the owner enters for WeChat Pay: the ids, the API key and the API
/// client certificate with its key (PEM).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WechatEntered {
    pub appid: String,
    pub mch_id: String,
    pub api_key: Secret<String>,
    pub client_cert: String,
    pub client_key: Secret<String>,
    #[serde(default)]
    pub gateway: Option<String>,
    #[serde(default)]
    pub ca: Option<String>,
}

/// Credentials as the owner enters them.
pub enum Entered {
    Alipay(AlipayEntered),
    Wechat(WechatEntered),
}

impl Entered {
    pub fn provider(&self) -> Provider {
        match self {
            Entered::Alipay(_) => Provider::Alipay,
            Entered::Wechat(_) => Provider::WechatPay,
        }
    }

    /// The merchant's id at the provider (not a secret).
    fn id(&self) -> &str {
        match self {
            Entered::Alipay(a) => &a.app_id,
            Entered::Wechat(w) => &w.mch_id,
        }
    }

    /// Writes the key files into `dir` (made anew), each readable by the
    /// hub alone; [`Kept::client`] reads them.
    fn write_files(&self, dir: &Path) -> Result<(), String> {
        let file =
            |name: &str, text: &str| crate::store::write_private(&dir.join(name), text.trim().as_bytes());
        let ca = match self {
            Entered::Alipay(a) => {
                file("app_private_key.txt", a.private_key.expose())?;
                file("alipay_public_key.txt", &a.alipay_public_key)?;
                &a.ca
            }
            Entered::Wechat(w) => {
                file("api_key.txt", w.api_key.expose())?;
                file("apiclient_cert.pem", &w.client_cert)?;
                file("apiclient_key.pem", w.client_key.expose())?;
                &w.ca
            }
        };
        match given(ca) {
            Some(pem) => file("ca.pem", &pem),
            None => Ok(()),
        }
    }
}

/// An optional field as entered: trimmed, absent when blank.
pub(crate) fn given(field: &Option<String>) -> Option<String> {
    field
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_string)
}

/// How a provider's codes are taken, as the page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Access {
    pub provider: &'static str,
    /// `page` (entered by the owner), `settings` (the settings file),
    /// `simulated` (the demo) or `none`.
    pub source: &'static str,
    /// The app id (Alipay) or merchant id (WeChat Pay), when entered here.
    pub id: Option<String>,
    /// When the entered credentials were checked with the provider, and
    /// what it said (`taken`, or `not_checked` with why).
    pub checked_at: Option<String>,
    pub check: Option<String>,
    pub why: Option<String>,
}

/// What the owner's entry came to.
#[derive(Debug)]
pub enum SaveError {
    /// The keys cannot be read: why.
    Bad(String),
    /// The provider refused them: its words.
    Refused(String),
    /// They could not be kept.
    Failed(String),
}

/// The owner's part of the providers' set-up.
pub struct Setup {
    /// `DATA/codes`: a folder per provider entered on the page.
    dir: PathBuf,
    timeout: Duration,
    codes: Codes,
    /// Where each provider came from at start, and the entries since.
    sources: Mutex<HashMap<Provider, Access>>,
    /// The clients from the settings file or the demo, for when the owner
    /// forgets what was entered.
    base: HashMap<Provider, (Arc<dyn CodeProvider>, &'static str)>,
    /// One entry at a time (two would share the folder being written).
    saving: tokio::sync::Mutex<()>,
}

impl Setup {
    /// Takes over `codes` as the settings made them (`simulated`: the
    /// demo's), then what the owner entered before, which wins.
    pub fn start(data_dir: &Path, timeout: Duration, codes: Codes, simulated: bool) -> Setup {
        let base: HashMap<_, _> = codes
            .each()
            .into_iter()
            .map(|(p, c)| (p, (c, if simulated { "simulated" } else { "settings" })))
            .collect();
        let setup = Setup {
            dir: data_dir.join("codes"),
            timeout,
            codes,
            sources: Mutex::default(),
            base,
            saving: tokio::sync::Mutex::new(()),
        };
        for provider in [Provider::Alipay, Provider::WechatPay] {
            let folder = setup.dir.join(provider.as_str());
            let Ok(text) = std::fs::read_to_string(folder.join("access.json")) else {
                continue;
            };
            let Ok(access) = serde_json::from_str::<Kept>(&text) else {
                tracing::error!(
                    provider = provider.as_str(),
                    "the credentials entered on the page cannot be read: enter them again"
                );
                continue;
            };
            match access.client(&folder, timeout) {
                Ok(client) => {
                    setup.codes.set(provider, Some(client));
                    setup.note(provider, access.access());
                }
                Err(e) => {
                    tracing::error!(provider = provider.as_str(), error = %e, "the credentials entered on the page cannot be used: enter them again")
                }
            }
        }
        setup
    }

    fn note(&self, provider: Provider, access: Access) {
        self.sources
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(provider, access);
    }

    /// Each provider and how its codes are taken.
    pub fn access(&self) -> Vec<Access> {
        let sources = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        [Provider::Alipay, Provider::WechatPay]
            .into_iter()
            .map(|p| {
                sources.get(&p).cloned().unwrap_or(Access {
                    provider: p.as_str(),
                    source: self.base.get(&p).map_or("none", |(_, s)| *s),
                    id: None,
                    checked_at: None,
                    check: None,
                    why: None,
                })
            })
            .collect()
    }

    /// Checks `entered` and, unless the provider refused it, keeps it and
    /// takes its codes through it from the next sale.
    pub async fn save(&self, entered: &Entered) -> Result<Access, SaveError> {
        let _one_at_a_time = self.saving.lock().await;
        let provider = entered.provider();
        let trying = self.dir.join(format!("{}.new", provider.as_str()));
        let _ = std::fs::remove_dir_all(&trying);
        make_private_dir(&trying).map_err(SaveError::Failed)?;
        let mut kept = Kept::of(entered);
        let client = match entered
            .write_files(&trying)
            .and_then(|()| kept.client(&trying, self.timeout))
        {
            Ok(client) => client,
            Err(why) => {
                let _ = std::fs::remove_dir_all(&trying);
                return Err(SaveError::Bad(why));
            }
        };
        let (check, why) = match client.check().await {
            Ok(()) => ("taken", None),
            Err(CallError::Refused(_, words)) => {
                let _ = std::fs::remove_dir_all(&trying);
                return Err(SaveError::Refused(words));
            }
            Err(CallError::Unknown(why)) => ("not_checked", Some(why)),
        };
        kept.checked_at = Some(chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string());
        kept.check = Some(check.to_string());
        kept.why = why;
        let kept_json = serde_json::to_string(&kept).expect("credentials are JSON");
        crate::store::write_private(&trying.join("access.json"), kept_json.as_bytes())
            .map_err(SaveError::Failed)?;
        // The new folder takes the old one's place whole.
        let folder = self.dir.join(provider.as_str());
        let _ = std::fs::remove_dir_all(&folder);
        std::fs::rename(&trying, &folder).map_err(|e| SaveError::Failed(e.to_string()))?;
        // The client reads its files again from where they now are.
        let client = kept.client(&folder, self.timeout).map_err(SaveError::Failed)?;
        let access = kept.access();
        self.codes.set(provider, Some(client));
        self.note(provider, access.clone());
        tracing::info!(
            provider = provider.as_str(),
            id = access.id.as_deref().unwrap_or(""),
            check,
            "payment-code credentials entered on the page"
        );
        Ok(access)
    }

    /// Forgets what the owner entered for `provider`: the settings file's
    /// (or the demo's) provider comes back, or none.
    pub fn forget(&self, provider: Provider) -> Result<(), String> {
        let folder = self.dir.join(provider.as_str());
        if folder.exists() {
            std::fs::remove_dir_all(&folder)
                .map_err(|e| format!("cannot remove {}: {e}", folder.display()))?;
        }
        self.codes
            .set(provider, self.base.get(&provider).map(|(c, _)| Arc::clone(c)));
        self.sources
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&provider);
        tracing::info!(
            provider = provider.as_str(),
            "payment-code credentials entered on the page forgotten"
        );
        Ok(())
    }
}

pub(crate) fn make_private_dir(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| format!("cannot make {}: {e}", dir.display()))
}

/// What is kept of an entry beside its key files: the ids, the gateway, and
/// the check.
#[derive(Serialize, Deserialize)]
struct Kept {
    provider: String,
    id: String,
    /// Alipay's app id, or WeChat Pay's app id.
    app_id: String,
    gateway: String,
    /// A CA file was entered (`ca.pem`).
    own_ca: bool,
    checked_at: Option<String>,
    check: Option<String>,
    why: Option<String>,
}

impl Kept {
    /// An entry, not checked yet.
    fn of(entered: &Entered) -> Kept {
        let (app_id, gateway, ca) = match entered {
            Entered::Alipay(a) => (&a.app_id, &a.gateway, &a.ca),
            Entered::Wechat(w) => (&w.appid, &w.gateway, &w.ca),
        };
        Kept {
            provider: entered.provider().as_str().to_string(),
            id: entered.id().trim().to_string(),
            app_id: app_id.trim().to_string(),
            gateway: given(gateway).unwrap_or_default(),
            own_ca: given(ca).is_some(),
            checked_at: None,
            check: None,
            why: None,
        }
    }

    /// How the page shows it.
    fn access(&self) -> Access {
        Access {
            provider: Provider::parse(&self.provider).map_or("", Provider::as_str),
            source: "page",
            id: Some(self.id.clone()),
            checked_at: self.checked_at.clone(),
            check: self.check.clone(),
            why: self.why.clone(),
        }
    }

    /// The client of the credentials kept in `folder`.
    fn client(&self, folder: &Path, timeout: Duration) -> Result<Arc<dyn CodeProvider>, String> {
        let ca = if self.own_ca {
            folder.join("ca.pem")
        } else {
            crate::config::system_ca()
        };
        let gateway = |default: &str| {
            if self.gateway.is_empty() {
                default.to_string()
            } else {
                self.gateway.clone()
            }
        };
        Ok(match Provider::parse(&self.provider) {
            Some(Provider::Alipay) => Arc::new(alipay_client(
                &AlipayConfig {
                    app_id: self.app_id.clone(),
                    private_key: folder.join("app_private_key.txt"),
                    alipay_public_key: folder.join("alipay_public_key.txt"),
                    gateway: gateway(super::alipay::GATEWAY),
                    ca,
                },
                timeout,
            )?),
            Some(Provider::WechatPay) => Arc::new(wechat_client(
                &WechatPayConfig {
                    appid: self.app_id.clone(),
                    mch_id: self.id.clone(),
                    api_key: folder.join("api_key.txt"),
                    client_cert: folder.join("apiclient_cert.pem"),
                    client_key: folder.join("apiclient_key.pem"),
                    gateway: gateway(super::wechat::GATEWAY),
                    ca,
                },
                timeout,
            )?),
            _ => return Err(format!("{}: not a provider taken here", self.provider)),
        })
    }
}
