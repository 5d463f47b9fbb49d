//! Opaque secrets: refresh tokens and ids. Only SHA-256 hashes of refresh tokens are stored.

use aws_lc_rs::digest;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

/// Length of a refresh token in random bytes (256 bits).
const REFRESH_TOKEN_BYTES: usize = 32;

/// Returns `N` bytes from the operating system's generator.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    SystemRandom::new()
        .fill(&mut bytes)
        .expect("the operating system's random generator is available");
    bytes
}

/// Returns a new random id: 128 bits, base64url.
pub fn new_id() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<16>())
}

/// Returns a new refresh token: 256 random bits, base64url (43 characters).
pub fn new_refresh_token() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<REFRESH_TOKEN_BYTES>())
}

/// Returns the SHA-256 hash of a secret as base64url: the form in which refresh tokens, API
/// keys, OAuth states and login codes are stored and looked up.
pub fn sha256_base64url(secret: &str) -> String {
    URL_SAFE_NO_PAD.encode(digest::digest(&digest::SHA256, secret.as_bytes()))
}

/// Returns the SHA-256 hash of a refresh token as base64url, the form kept in storage.
pub fn hash_refresh_token(token: &str) -> String {
    sha256_base64url(token)
}

/// Returns whether a presented string has the shape of one of our refresh tokens, so that
/// garbage is rejected before a store read.
pub fn looks_like_refresh_token(token: &str) -> bool {
    token.len() == 43
        && token
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
}
