//! RSA2, as Alipay's open platform names it: SHA256withRSA (RSASSA-PKCS1-v1_5
//! over SHA-256) with a key of at least 2048 bits, the signature in base64.
//! Keys come as the providers' key tools write them: base64 text, with or
//! without PEM armour; a private key as PKCS#8 or PKCS#1, a public key as
//! X.509 SubjectPublicKeyInfo.

use data_encoding::BASE64;
use ring::rand::SystemRandom;
use ring::signature::{self, RsaKeyPair, UnparsedPublicKey};
use spki::der::Decode;

/// The merchant's private key: signs what the hub sends.
pub struct SigningKey(RsaKeyPair);

/// The provider's public key: checks what it answers.
pub struct VerifyingKey(Vec<u8>);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SigningKey({} bits)", self.0.public().modulus_len() * 8)
    }
}

impl std::fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VerifyingKey(..)")
    }
}

/// The DER inside a key's text: PEM armour and white space dropped.
fn der(text: &str) -> Result<Vec<u8>, String> {
    let body: String = text
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .flat_map(|l| l.chars().filter(|c| !c.is_whitespace()))
        .collect();
    BASE64
        .decode(body.as_bytes())
        .map_err(|e| format!("not base64 ({e})"))
}

impl SigningKey {
    pub fn from_text(text: &str) -> Result<SigningKey, String> {
        let der = der(text)?;
        RsaKeyPair::from_pkcs8(&der)
            .or_else(|_| RsaKeyPair::from_der(&der))
            .map(SigningKey)
            .map_err(|e| format!("not an RSA private key of 2048 bits or more, PKCS#8 or PKCS#1 ({e})"))
    }

    /// The base64 RSA2 signature of `content`.
    pub fn sign(&self, content: &[u8]) -> Result<String, String> {
        let mut signature = vec![0; self.0.public().modulus_len()];
        self.0
            .sign(
                &signature::RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                content,
                &mut signature,
            )
            .map_err(|_| "the RSA signature failed".to_string())?;
        Ok(BASE64.encode(&signature))
    }
}

impl VerifyingKey {
    pub fn from_text(text: &str) -> Result<VerifyingKey, String> {
        let der = der(text)?;
        let spki = spki::SubjectPublicKeyInfoRef::from_der(&der)
            .map_err(|e| format!("not an X.509 public key ({e})"))?;
        let rsa = spki
            .subject_public_key
            .as_bytes()
            .ok_or("the public key has a partial byte")?;
        Ok(VerifyingKey(rsa.to_vec()))
    }

    /// Whether `signature` (base64) is this key's RSA2 signature of `content`.
    pub fn verify(&self, content: &[u8], signature: &str) -> bool {
        let Ok(signature) = BASE64.decode(signature.as_bytes()) else {
            return false;
        };
        UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, &self.0)
            .verify(content, &signature)
            .is_ok()
    }
}
