//! Access tokens, refresh tokens and the signing key set.

mod cache;
mod jwt;
mod keyset;
pub mod refresh;

pub use cache::{KeySetCache, KeySetSource, RefreshPolicy, SecretsManagerSource};
pub use jwt::{sign, verify, AccessClaims, TokenError, VerificationPolicy, ACCESS_TOKEN_TYPE};
pub use keyset::{
    generate_key, Algorithm, KeySet, KeySetError, KeyStatus, StoredKey, StoredKeySet,
};
