//! Argon2id for everything a person types to prove who they are: the owner's
//! and managers' passwords, cashiers' PINs. Hashing takes tens of
//! milliseconds on purpose: callers run it off the async runtime and off
//! the store thread.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

/// The PHC string of `secret` with a fresh salt.
pub fn hash(secret: &str) -> Result<String, String> {
    let salt = SaltString::encode_b64(&rand::random::<[u8; 16]>()).map_err(|e| e.to_string())?;
    let hashed = Argon2::default()
        .hash_password(secret.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string());
    give_back_memory();
    hashed
}

/// Whether `secret` matches the PHC string `hash`; a damaged hash matches nothing.
pub fn verify(secret: &str, hash: &str) -> bool {
    let matches = PasswordHash::new(hash)
        .map(|h| Argon2::default().verify_password(secret.as_bytes(), &h).is_ok())
        .unwrap_or(false);
    give_back_memory();
    matches
}

/// Each hash takes 19 MiB. glibc maps the first such block and unmaps it
/// when freed, but raises its mapping threshold as it does, so later ones
/// come from the heap and stay resident (the idle hub measured 35 MiB
/// instead of 16 after two hashes at start). Trimming after a hash hands
/// them back without changing how the rest of the hub allocates.
fn give_back_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory to the system.
    unsafe {
        libc::malloc_trim(0);
    }
}
