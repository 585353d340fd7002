//! The off-site bucket on the owner's page (Settings): the store's address,
//! the access key and its secret, entered on a phone instead of in the
//! settings file. What the owner enters is checked with the store first
//! (a listing of this shop's folder must be answered), then kept in the
//! data directory's `offsite/` (the folder 0700, each file 0600), where it
//! wins over the settings file's `[offsite]` table; "Forget" brings that
//! one back, or none. The secret never goes back to the page, the log or
//! the support bundle.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use tallybox_core::secret::Secret;

use super::Bucket;
use crate::config::OffsiteConfig;
use crate::payments::setup::{given, make_private_dir, SaveError};

/// What the owner enters.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entered {
    /// `https://HOST[:PORT]/BUCKET[/FOLDER]`.
    pub url: String,
    /// `us-east-1` when blank.
    #[serde(default)]
    pub region: Option<String>,
    pub access_key_id: String,
    pub secret_key: Secret<String>,
    /// The CA (PEM) the store's certificate is checked against; the
    /// system's bundle when blank.
    #[serde(default)]
    pub ca: Option<String>,
}

/// What is kept beside the secret.
#[derive(Serialize, Deserialize)]
struct Kept {
    url: String,
    region: String,
    access_key_id: String,
    /// Whether `ca.pem` is kept too.
    own_ca: bool,
}

impl Kept {
    /// The settings these files in `dir` amount to.
    fn config(&self, dir: &Path) -> OffsiteConfig {
        OffsiteConfig {
            url: self.url.clone(),
            region: self.region.clone(),
            access_key_id: self.access_key_id.clone(),
            secret_key: dir.join("secret"),
            ca: match self.own_ca {
                true => dir.join("ca.pem"),
                false => crate::config::system_ca(),
            },
        }
    }
}

/// Where the copies go, as the page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Access {
    /// `page` (entered by the owner), `settings` (the settings file) or `none`.
    pub source: &'static str,
    pub url: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    /// The store answered the check (`taken`), or could not be reached
    /// then (`not_checked`, with why): the copies will say.
    pub check: Option<&'static str>,
    pub why: Option<String>,
}

/// The bucket the backup job copies to: the page's, else the settings file's.
pub type Current = Arc<RwLock<Option<Arc<Bucket>>>>;

pub struct Setup {
    /// `DATA/offsite`.
    dir: PathBuf,
    data_dir: PathBuf,
    store_id: String,
    file: Option<OffsiteConfig>,
    current: Current,
    shown: RwLock<Access>,
    saving: tokio::sync::Mutex<()>,
}

fn shown(source: &'static str, config: Option<&OffsiteConfig>) -> Access {
    Access {
        source,
        url: config.map(|c| c.url.clone()),
        region: config.map(|c| c.region.clone()),
        access_key_id: config.map(|c| c.access_key_id.clone()),
        check: None,
        why: None,
    }
}

impl Setup {
    /// The kept entry in `data_dir` if there is one (one that no longer
    /// reads is said in the log and left for the settings file's), else
    /// `file`, the settings file's table (an error if it does not read).
    pub fn start(data_dir: &Path, store_id: &str, file: Option<OffsiteConfig>) -> Result<Setup, String> {
        let dir = data_dir.join("offsite");
        let kept = std::fs::read(dir.join("access.json")).ok().and_then(|bytes| {
            let kept: Kept = serde_json::from_slice(&bytes).ok()?;
            let config = kept.config(&dir);
            match Bucket::new(&config, store_id) {
                Ok(bucket) => Some((bucket, config)),
                Err(e) => {
                    tracing::error!(error = %e, "the off-site bucket entered on the page cannot be used; the settings file's is");
                    None
                }
            }
        });
        let (bucket, access) = match (kept, &file) {
            (Some((bucket, config)), _) => (Some(bucket), shown("page", Some(&config))),
            (None, Some(config)) => (
                Some(Bucket::new(config, store_id)?),
                shown("settings", Some(config)),
            ),
            (None, None) => (None, shown("none", None)),
        };
        Ok(Setup {
            dir,
            data_dir: data_dir.to_path_buf(),
            store_id: store_id.to_string(),
            file,
            current: Arc::new(RwLock::new(bucket.map(Arc::new))),
            shown: RwLock::new(access),
            saving: tokio::sync::Mutex::new(()),
        })
    }

    /// The bucket the copies go to, shared with the backup job.
    pub fn current(&self) -> Current {
        Arc::clone(&self.current)
    }

    /// The bucket the copies go to now, if any.
    pub fn bucket(&self) -> Option<Arc<Bucket>> {
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn access(&self) -> Access {
        self.shown.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn set(&self, bucket: Option<Bucket>, access: Access) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = bucket.map(Arc::new);
        *self.shown.write().unwrap_or_else(|e| e.into_inner()) = access;
        // The next copy goes at once (after the next backup, if there is none yet).
        let _ = std::fs::remove_file(self.data_dir.join(super::STATUS_FILE));
    }

    /// Checks what the owner entered with the store and keeps it; the
    /// next copy goes to it.
    pub async fn save(&self, entered: &Entered) -> Result<Access, SaveError> {
        let _one_at_a_time = self.saving.lock().await;
        let trying = self.dir.with_extension("new");
        let _ = std::fs::remove_dir_all(&trying);
        let kept = Kept {
            url: entered.url.trim().to_string(),
            region: given(&entered.region).unwrap_or_else(|| "us-east-1".into()),
            access_key_id: entered.access_key_id.trim().to_string(),
            own_ca: given(&entered.ca).is_some(),
        };
        let written = make_private_dir(&trying).and_then(|()| {
            let file = |name: &str, text: &str| {
                crate::store::write_private(&trying.join(name), text.trim().as_bytes())
            };
            file("secret", entered.secret_key.expose())?;
            match given(&entered.ca) {
                Some(pem) => file("ca.pem", &pem),
                None => Ok(()),
            }
        });
        let bucket = match written.and_then(|()| Bucket::new(&kept.config(&trying), &self.store_id)) {
            Ok(bucket) => bucket,
            Err(why) => {
                let _ = std::fs::remove_dir_all(&trying);
                return Err(SaveError::Bad(why));
            }
        };
        let (check, why) = match bucket.check().await {
            Ok(()) => ("taken", None),
            Err(super::Unchecked::Refused(words)) => {
                let _ = std::fs::remove_dir_all(&trying);
                return Err(SaveError::Refused(words));
            }
            Err(super::Unchecked::Unreachable(why)) => ("not_checked", Some(why)),
        };
        let kept_json = serde_json::to_string(&kept).expect("the bucket's settings are JSON");
        crate::store::write_private(&trying.join("access.json"), kept_json.as_bytes())
            .map_err(SaveError::Failed)?;
        // The new folder takes the old one's place whole.
        let _ = std::fs::remove_dir_all(&self.dir);
        std::fs::rename(&trying, &self.dir).map_err(|e| SaveError::Failed(e.to_string()))?;
        let config = kept.config(&self.dir);
        let bucket = Bucket::new(&config, &self.store_id).map_err(SaveError::Failed)?;
        let access = Access {
            check: Some(check),
            why,
            ..shown("page", Some(&config))
        };
        tracing::info!(?bucket, check, "the off-site bucket entered on the page");
        self.set(Some(bucket), access.clone());
        Ok(access)
    }

    /// Forgets what the owner entered: the settings file's bucket comes
    /// back, or none.
    pub fn forget(&self) -> Result<Access, String> {
        if self.dir.exists() {
            std::fs::remove_dir_all(&self.dir)
                .map_err(|e| format!("cannot remove {}: {e}", self.dir.display()))?;
        }
        let (bucket, access) = match &self.file {
            Some(config) => (
                Some(Bucket::new(config, &self.store_id)?),
                shown("settings", Some(config)),
            ),
            None => (None, shown("none", None)),
        };
        self.set(bucket, access.clone());
        Ok(access)
    }
}
