//! Accounts on the owner's page: the first-start setup code, login against an
//! argon2 hash, the session cookie (HttpOnly, SameSite=Strict, 12 hours), a
//! CSRF token every state-changing request must echo in `X-CSRF-Token`, and
//! the lock-out that answers repeated wrong passwords with a growing wait.
//!
//! Sessions outlive a restart of the hub: each is kept on disk under the
//! SHA-256 of its token (`Kept`), so the file holds nothing a browser
//! could present.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use warp::http::header::SET_COOKIE;
use warp::http::{Method, StatusCode};
use warp::{Filter, Rejection, Reply};

use super::error::{bad_request, internal, reject, ApiError, Code};
use super::WebState;
use crate::store::accounts::{Role, OWNER};

pub const COOKIE: &str = "tallybox_session";
pub const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Wrong passwords allowed before the first lock.
const FREE_FAILURES: u32 = 5;
const FIRST_LOCK: Duration = Duration::from_secs(30);
const LONGEST_LOCK: Duration = Duration::from_secs(3600);

/// How long an account stays locked after `failures` wrong passwords in a row:
/// none for the first five, then 30 s, doubling with each further failure, at
/// most an hour.
pub fn lock_for(failures: u32) -> Option<Duration> {
    let over = failures.checked_sub(FREE_FAILURES)?;
    let lock = FIRST_LOCK.saturating_mul(1u32.checked_shl(over.min(16)).unwrap_or(u32::MAX));
    Some(lock.min(LONGEST_LOCK))
}

/// A new password is 8 to 128 characters.
pub fn check_new_password(password: &str) -> Result<(), Rejection> {
    let n = password.chars().count();
    if !(8..=128).contains(&n) {
        return Err(bad_request(
            Code::BadPasswordLength,
            "a password has 8 to 128 characters",
        ));
    }
    Ok(())
}

pub fn hash_password(password: &str) -> Result<String, Rejection> {
    crate::passwords::hash(password).map_err(internal)
}

pub(crate) fn verify_password(password: &str, hash: &str) -> bool {
    crate::passwords::verify(password, hash)
}

fn random_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

fn token_key(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Equal-time comparison, so a wrong CSRF token or setup code leaks nothing
/// through how fast it is refused.
fn same(a: &str, b: &str) -> bool {
    tallybox_core::seal::same_secret(a.as_bytes(), b.as_bytes())
}

#[derive(Debug, Clone, Serialize)]
pub struct Session {
    pub account: String,
    pub role: Role,
    pub csrf: String,
    pub expires_at: DateTime<Utc>,
    #[serde(skip)]
    expires: Instant,
    /// A fingerprint of the account's password hash at sign-in.
    #[serde(skip)]
    password: String,
}

/// A session as kept on disk, so that sign-ins outlive a restart of the hub
/// (an update, a power cut): under the SHA-256 of its token (the token
/// itself is only in the browser's cookie), with the fingerprint of the
/// account's password hash, so that an account removed or given a new
/// password while the hub was off (a restore, `reset-owner`) is not let in.
#[derive(Serialize, Deserialize)]
struct Kept {
    key: String,
    account: String,
    role: Role,
    csrf: String,
    expires_at: DateTime<Utc>,
    password: String,
}

/// What identifies an account's password without being it: the first 16
/// hex digits of the SHA-256 of its (argon2) hash.
fn fingerprint(password_hash: &str) -> String {
    hex::encode(&Sha256::digest(password_hash.as_bytes())[..8])
}

pub struct Auth {
    /// Keyed by the SHA-256 of the cookie's token.
    sessions: Mutex<HashMap<String, Session>>,
    /// Where the sessions are kept (`None`: in memory only).
    file: Option<std::path::PathBuf>,
    /// Shown at start while no owner exists (log, the hub's own checkout);
    /// used once, then `None`.
    setup_code: watch::Sender<Option<String>>,
    /// Turns for argon2 ([`HASHING_AT_ONCE`]).
    hashing: tokio::sync::Semaphore,
}

impl Auth {
    pub fn new(setup_code: Option<String>) -> Auth {
        Auth {
            sessions: Mutex::new(HashMap::new()),
            file: None,
            setup_code: watch::channel(setup_code).0,
            hashing: tokio::sync::Semaphore::new(HASHING_AT_ONCE),
        }
    }

    /// Sessions kept in `file`: those still open there whose account is
    /// among `accounts` (name, role, password hash) unchanged come back.
    pub fn kept(
        setup_code: Option<String>,
        file: std::path::PathBuf,
        accounts: &[(String, Role, String)],
    ) -> Auth {
        let kept: Vec<Kept> = match std::fs::read(&file) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!(file = %file.display(), error = %e, "kept web sessions unreadable; everyone signs in again");
                Vec::new()
            }),
            Err(_) => Vec::new(),
        };
        let (now, wall) = (Instant::now(), Utc::now());
        let sessions = kept
            .into_iter()
            .filter(|k| {
                accounts.iter().any(|(name, role, hash)| {
                    *name == k.account && *role == k.role && fingerprint(hash) == k.password
                })
            })
            .filter_map(|k| {
                let left = (k.expires_at - wall).to_std().ok()?;
                let session = Session {
                    account: k.account,
                    role: k.role,
                    csrf: k.csrf,
                    expires_at: k.expires_at,
                    expires: now + left.min(SESSION_LIFETIME),
                    password: k.password,
                };
                Some((k.key, session))
            })
            .collect();
        Auth {
            sessions: Mutex::new(sessions),
            file: Some(file),
            ..Auth::new(setup_code)
        }
    }

    /// Writes the open sessions to the file (a failure costs sign-ins at
    /// the next restart, nothing else).
    fn keep(&self, sessions: &HashMap<String, Session>) {
        let Some(file) = &self.file else {
            return;
        };
        let kept: Vec<Kept> = sessions
            .iter()
            .map(|(key, s)| Kept {
                key: key.clone(),
                account: s.account.clone(),
                role: s.role,
                csrf: s.csrf.clone(),
                expires_at: s.expires_at,
                password: s.password.clone(),
            })
            .collect();
        let written = serde_json::to_vec(&kept)
            .map_err(std::io::Error::other)
            .and_then(|bytes| tallybox_platform::fsync::write_synced(file, &bytes));
        if let Err(e) = written {
            tracing::warn!(file = %file.display(), error = %e, "cannot keep the web sessions; a restart signs everyone out");
        }
    }

    /// The setup code now and whenever it is used up.
    pub fn setup_code(&self) -> watch::Receiver<Option<String>> {
        self.setup_code.subscribe()
    }

    /// Eight digits, written as two groups of four.
    pub fn new_setup_code() -> String {
        let n = rand::random::<u32>() % 100_000_000;
        format!("{:04} {:04}", n / 10_000, n % 10_000)
    }

    /// Spends the setup code when `given` matches it (spaces ignored).
    fn take_setup_code(&self, given: &str) -> bool {
        let digits = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
        self.setup_code.send_if_modified(|code| {
            let ok = code.as_deref().is_some_and(|c| same(&digits(c), &digits(given)));
            if ok {
                *code = None;
            }
            ok
        })
    }

    /// A new session of `account`, whose password hash is `password_hash`.
    fn open(&self, account: &str, role: Role, password_hash: &str) -> (String, Session) {
        let token = random_token();
        let session = Session {
            account: account.to_string(),
            role,
            csrf: random_token(),
            expires_at: Utc::now() + SESSION_LIFETIME,
            expires: Instant::now() + SESSION_LIFETIME,
            password: fingerprint(password_hash),
        };
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        sessions.retain(|_, s| s.expires > now);
        sessions.insert(token_key(&token), session.clone());
        self.keep(&sessions);
        (token, session)
    }

    fn find(&self, token: &str) -> Option<Session> {
        let sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions
            .get(&token_key(token))
            .filter(|s| s.expires > Instant::now())
            .cloned()
    }

    fn close(&self, token: &str) {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.remove(&token_key(token));
        self.keep(&sessions);
    }

    /// Signs `account` out everywhere (its password changed, or it was removed).
    pub fn close_all_of(&self, account: &str) {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.retain(|_, s| s.account != account);
        self.keep(&sessions);
    }
}

fn cookie(token: &str, max_age: u64) -> String {
    format!("{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={max_age}")
}

fn with_cookie(reply: impl Reply, cookie: String) -> warp::reply::Response {
    warp::reply::with_header(reply, SET_COOKIE, cookie).into_response()
}

/// The session a request carries, checked: signed in, allowed (`need` =
/// manager admits both roles), and for anything but a read, the CSRF token.
pub fn session(state: WebState, need: Role) -> impl Filter<Extract = (Session,), Error = Rejection> + Clone {
    warp::method()
        .and(warp::cookie::optional::<String>(COOKIE))
        .and(warp::header::optional::<String>("x-csrf-token"))
        .and(warp::any().map(move || state.clone()))
        .and_then(
            move |method: Method, token: Option<String>, csrf: Option<String>, state: WebState| async move {
                let Some(session) = token.and_then(|t| state.auth.find(&t)) else {
                    return Err(unauthorized(&state).await);
                };
                let reading = method == Method::GET || method == Method::HEAD;
                if !reading && !csrf.is_some_and(|c| same(&c, &session.csrf)) {
                    return Err(reject(
                        StatusCode::FORBIDDEN,
                        Code::Csrf,
                        "the page's security token is missing or old; reload the page",
                    ));
                }
                if need == Role::Owner && session.role != Role::Owner {
                    return Err(reject(
                        StatusCode::FORBIDDEN,
                        Code::Forbidden,
                        "only the owner can do this",
                    ));
                }
                Ok(session)
            },
        )
}

async fn unauthorized(state: &WebState) -> Rejection {
    let has_owner = super::read(state, |s| s.has_owner().map_err(internal)).await;
    match has_owner {
        Ok(false) => reject(
            StatusCode::UNAUTHORIZED,
            Code::SetupRequired,
            "no owner password yet: enter the setup code shown on the hub's screen and in its log",
        ),
        Ok(true) => reject(StatusCode::UNAUTHORIZED, Code::Unauthorized, "sign in first"),
        Err(e) => e,
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    #[serde(default)]
    name: Option<String>,
    password: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SetupBody {
    code: String,
    password: String,
}

fn ip_text(addr: Option<SocketAddr>) -> String {
    addr.map(|a| a.ip().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// Takes a sign-in attempt on `account` from `ip` before any password is
/// checked, or refuses it while this address is locked out of the account
/// (then the password is not even checked, so a lock cannot be probed for
/// the right one). Counted per address: a guesser elsewhere on the LAN does
/// not lock the owner out of their phone. Mark it good with [`succeeded`].
async fn begin_attempt(state: &WebState, account: &str, ip: &str) -> Result<i64, Rejection> {
    let (account, ip) = (account.to_string(), ip.to_string());
    let taken = super::write(state, move |s| {
        s.begin_login(&account, &ip, lock_for).map_err(internal)
    })
    .await?;
    taken.map_err(|wait| {
        let mut locked = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            Code::Locked,
            format!(
                "too many wrong passwords from this address: signing in is locked for {wait} s more; the owner sees every attempt under Settings"
            ),
        )
        .with("seconds", wait);
        locked.retry_after = Some(wait);
        warp::reject::custom(locked)
    })
}

async fn succeeded(state: &WebState, attempt: i64) -> Result<(), Rejection> {
    super::write(state, move |s| s.login_succeeded(attempt).map_err(internal)).await
}

/// Hashes (argon2, 19 MiB each) run at most this many at once; more
/// wait their turn, so a crowd of logins cannot take the hub's memory.
pub const HASHING_AT_ONCE: usize = 1;

/// Runs `work` (an argon2 hash or check) on a blocking thread, when one of
/// the [`HASHING_AT_ONCE`] turns is free.
async fn hashing<R: Send + 'static>(
    state: &WebState,
    work: impl FnOnce() -> R + Send + 'static,
) -> Result<R, Rejection> {
    let _turn = state.auth.hashing.acquire().await.map_err(internal)?;
    tokio::task::spawn_blocking(|| {
        let done = work();
        // Each hash's 19 MiB is freed on whichever blocking thread ran it;
        // glibc keeps freed memory in that thread's arena, so hashes on
        // different threads would each keep theirs. Given back at once,
        // the hub's memory stays at one hash's worth.
        #[cfg(target_env = "gnu")]
        // SAFETY: malloc_trim only returns free memory to the system.
        unsafe {
            libc::malloc_trim(0);
        }
        done
    })
    .await
    .map_err(internal)
}

fn signed_in(token: &str, session: &Session) -> warp::reply::Response {
    let reply = warp::reply::json(session);
    with_cookie(reply, cookie(token, SESSION_LIFETIME.as_secs()))
}

async fn login(
    body: LoginBody,
    addr: Option<SocketAddr>,
    state: WebState,
) -> Result<warp::reply::Response, Rejection> {
    let name = body.name.unwrap_or_else(|| OWNER.to_string());
    if name.is_empty() || name.chars().count() > 32 {
        return Err(bad_request(Code::BadAccountName, "name: 1 to 32 characters"));
    }
    let ip = ip_text(addr);
    let attempt = begin_attempt(&state, &name, &ip).await?;
    let lookup = name.clone();
    let account = super::read(&state, move |s| s.account(&lookup).map_err(internal)).await?;
    let hash = account
        .as_ref()
        .map(|a| a.password_hash.clone())
        .unwrap_or_default();
    let password = body.password;
    let ok = hashing(&state, move || match &account {
        Some(a) => verify_password(&password, &a.password_hash).then_some(a.role),
        // Same work for an unknown name, so timing does not tell which names exist.
        None => {
            let _ = hash_password(&password);
            None
        }
    })
    .await?;
    let Some(role) = ok else {
        tracing::warn!(account = %name, %ip, "wrong password on the web page");
        return Err(reject(
            StatusCode::UNAUTHORIZED,
            Code::WrongPassword,
            "wrong name or password",
        ));
    };
    succeeded(&state, attempt).await?;
    tracing::info!(account = %name, %ip, "signed in to the web page");
    let (token, session) = state.auth.open(&name, role, &hash);
    Ok(signed_in(&token, &session))
}

async fn setup(
    body: SetupBody,
    addr: Option<SocketAddr>,
    state: WebState,
) -> Result<warp::reply::Response, Rejection> {
    if super::read(&state, |s| s.has_owner().map_err(internal)).await? {
        return Err(reject(
            StatusCode::CONFLICT,
            Code::AlreadySetUp,
            "the owner password is already set; sign in",
        ));
    }
    let ip = ip_text(addr);
    check_new_password(&body.password)?;
    let attempt = begin_attempt(&state, OWNER, &ip).await?;
    if !state.auth.take_setup_code(&body.code) {
        return Err(reject(
            StatusCode::FORBIDDEN,
            Code::SetupCodeWrong,
            "that is not the setup code; it is shown on the hub's screen and in its log",
        ));
    }
    let password = body.password;
    let hash = hashing(&state, move || hash_password(&password)).await??;
    let kept = hash.clone();
    super::write(&state, move |s| {
        s.set_account(OWNER, Role::Owner, &kept).map_err(internal)
    })
    .await?;
    succeeded(&state, attempt).await?;
    tracing::info!(%ip, "owner password set with the setup code");
    let (token, session) = state.auth.open(OWNER, Role::Owner, &hash);
    Ok(signed_in(&token, &session))
}

async fn logout(token: Option<String>, state: WebState) -> Result<warp::reply::Response, Rejection> {
    if let Some(t) = token {
        state.auth.close(&t);
    }
    Ok(with_cookie(StatusCode::NO_CONTENT, cookie("", 0)))
}

/// A JSON body of at most 16 KiB.
pub fn json_body<T: serde::de::DeserializeOwned + Send>(
) -> impl Filter<Extract = (T,), Error = Rejection> + Clone {
    warp::body::content_length_limit(16 * 1024).and(warp::body::json())
}

pub fn routes(state: WebState) -> impl Filter<Extract = (impl Reply,), Error = Rejection> + Clone {
    let with_state = {
        let state = state.clone();
        warp::any().map(move || state.clone())
    };
    let login = warp::path!("api" / "v1" / "session")
        .and(warp::post())
        .and(json_body())
        .and(super::serve::client_addr())
        .and(with_state.clone())
        .and_then(login);
    let current = warp::path!("api" / "v1" / "session")
        .and(warp::get())
        .and(session(state.clone(), Role::Manager))
        .map(|s: Session| warp::reply::json(&s));
    let logout = warp::path!("api" / "v1" / "session")
        .and(warp::delete())
        .and(session(state.clone(), Role::Manager))
        .and(warp::cookie::optional::<String>(COOKIE))
        .and(with_state.clone())
        .and_then(|_: Session, token, state| logout(token, state));
    let setup = warp::path!("api" / "v1" / "setup")
        .and(warp::post())
        .and(json_body())
        .and(super::serve::client_addr())
        .and(with_state)
        .and_then(setup);
    login.or(current).or(logout).or(setup)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lock_grows_and_stops_at_an_hour() {
        assert_eq!(lock_for(0), None);
        assert_eq!(lock_for(4), None);
        assert_eq!(lock_for(5), Some(Duration::from_secs(30)));
        assert_eq!(lock_for(6), Some(Duration::from_secs(60)));
        assert_eq!(lock_for(8), Some(Duration::from_secs(240)));
        assert_eq!(lock_for(12), Some(Duration::from_secs(3600)));
        assert_eq!(lock_for(u32::MAX), Some(Duration::from_secs(3600)));
    }

    #[test]
    fn a_password_hash_verifies_only_its_password() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("correct hors", &hash));
        assert!(!verify_password("correct horse", "not a hash"));
    }

    #[test]
    fn the_setup_code_works_once_with_or_without_its_space() {
        let auth = Auth::new(Some("1234 5678".into()));
        assert!(!auth.take_setup_code("1234 5679"));
        assert!(auth.take_setup_code("12345678"));
        assert!(!auth.take_setup_code("1234 5678"));
    }

    #[test]
    fn kept_sessions_come_back_after_a_restart_unless_their_account_changed() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("web-sessions.json");
        let accounts = |ann: &str| {
            vec![
                ("owner".to_string(), Role::Owner, "h1".to_string()),
                ("ann".to_string(), Role::Manager, ann.to_string()),
            ]
        };
        let before = Auth::kept(None, file.clone(), &accounts("h2"));
        let (owner, s1) = before.open("owner", Role::Owner, "h1");
        let (ann, _) = before.open("ann", Role::Manager, "h2");
        let (gone, _) = before.open("owner", Role::Owner, "h1");
        before.close(&gone);
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            !text.contains(&owner) && !text.contains(&ann),
            "tokens on disk: {text}"
        );
        // Restarted, with ann's password changed meanwhile.
        let after = Auth::kept(None, file.clone(), &accounts("h3"));
        assert_eq!(after.find(&owner).unwrap().csrf, s1.csrf);
        assert!(
            after.find(&ann).is_none(),
            "a changed password lets nobody back in"
        );
        assert!(after.find(&gone).is_none(), "a signed-out session stays out");
        // A damaged file signs everyone out, and says so.
        std::fs::write(&file, b"{half").unwrap();
        assert!(Auth::kept(None, file, &accounts("h2")).find(&owner).is_none());
    }

    #[test]
    fn sessions_are_found_by_token_and_closed_per_account() {
        let auth = Auth::new(None);
        let (t1, s1) = auth.open("owner", Role::Owner, "h1");
        let (t2, _) = auth.open("ann", Role::Manager, "h2");
        assert_eq!(auth.find(&t1).unwrap().csrf, s1.csrf);
        assert!(auth.find("nope").is_none());
        auth.close_all_of("owner");
        assert!(auth.find(&t1).is_none());
        assert!(auth.find(&t2).is_some());
        auth.close(&t2);
        assert!(auth.find(&t2).is_none());
    }
}
