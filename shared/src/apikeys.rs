//! API keys for machine clients: the key format, the three routes, and verification.
//!
//! A key reads `lak_<43 base62 characters: 256 random bits><6 base62 characters: CRC-32>`. The
//! fixed prefix lets secret scanners find leaked keys, and the checksum rejects a mistyped or
//! truncated key without a store read. Only the SHA-256 hash is stored, under
//! `APIKEY#<hash>`. Each key also fills one of its owner's numbered slots
//! (`USER#<id>` / `APIKEYSLOT#nn`), and the slot's `Absent` condition enforces the per-user
//! limit even when creations race.

use std::collections::HashMap;
use std::sync::Mutex;

use http::StatusCode;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::app::App;
use crate::audit::{self, AuditKind, Client};
use crate::http::{
    empty_response, json_body, json_response, no_store_json, Problem, Request, Response,
};
use crate::principal::{
    grantable_scopes, parse_scopes, AuthMethod, Principal, SCOPE_READ, SCOPE_WRITE,
};
use crate::store::{AttrValue, Condition, Item, ItemExt, Key, StoreError, Write, EXPIRES_AT};
use crate::token::refresh::{new_id, random_bytes, sha256_base64url};

/// Product prefix of every key.
pub const API_KEY_PREFIX: &str = "lak_";
/// Base62 digits of the random part: 62^43 > 2^256.
const RANDOM_DIGITS: usize = 43;
/// Base62 digits of the CRC-32 checksum: 62^6 > 2^32.
const CHECKSUM_DIGITS: usize = 6;
pub const API_KEY_LENGTH: usize = API_KEY_PREFIX.len() + RANDOM_DIGITS + CHECKSUM_DIGITS;
/// Characters of the random part shown in listings, enough to tell keys apart.
const VISIBLE_DIGITS: usize = 6;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const MAX_NAME_CHARS: usize = 100;
const MAX_EXPIRY_DAYS: i64 = 3650;
/// Rounds of picking a free slot when another creation took the chosen one first.
const SLOT_ATTEMPTS: usize = 4;
/// Upper bound of the in-memory key cache, so that many distinct keys cannot grow it forever.
const CACHE_ENTRIES: usize = 10_000;

/// Encodes `bytes` as a big-endian number in exactly `width` base62 digits.
fn base62(bytes: &[u8], width: usize) -> String {
    let mut number = bytes.to_vec();
    let mut digits = vec![b'0'; width];
    for slot in digits.iter_mut().rev() {
        let mut remainder = 0u32;
        for byte in number.iter_mut() {
            let value = (remainder << 8) | u32::from(*byte);
            *byte = (value / 62) as u8;
            remainder = value % 62;
        }
        *slot = BASE62[remainder as usize];
    }
    String::from_utf8(digits).expect("base62 digits are ASCII")
}

/// CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320), as in zlib and PNG.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for byte in data {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn checksum(body: &str) -> String {
    base62(&crc32(body.as_bytes()).to_be_bytes(), CHECKSUM_DIGITS)
}

/// Returns a new API key.
pub fn new_api_key() -> String {
    let body = format!(
        "{API_KEY_PREFIX}{}",
        base62(&random_bytes::<32>(), RANDOM_DIGITS)
    );
    let sum = checksum(&body);
    format!("{body}{sum}")
}

/// Checks that a string has the prefix, length, alphabet and checksum of an API key. Needs no
/// store read, so mistyped keys and keys pasted in the wrong place are rejected cheaply.
pub fn is_well_formed(key: &str) -> bool {
    if key.len() != API_KEY_LENGTH || !key.starts_with(API_KEY_PREFIX) {
        return false;
    }
    if !key[API_KEY_PREFIX.len()..]
        .bytes()
        .all(|byte| byte.is_ascii_alphanumeric())
    {
        return false;
    }
    let (body, sum) = key.split_at(API_KEY_LENGTH - CHECKSUM_DIGITS);
    checksum(body).as_bytes().ct_eq(sum.as_bytes()).into()
}

fn hash_key(key: &str) -> String {
    sha256_base64url(key)
}

fn hash_item_key(hash: &str) -> Key {
    Key::new(format!("APIKEY#{hash}"), "APIKEY")
}

fn slot_key(user_id: &str, slot: usize) -> Key {
    Key::new(format!("USER#{user_id}"), format!("APIKEYSLOT#{slot:03}"))
}

#[derive(Deserialize)]
struct CreateRequest {
    name: String,
    scopes: Option<Vec<String>>,
    expires_in_days: Option<i64>,
}

/// Metadata of a key as listed; never the key or its hash.
#[derive(Serialize)]
struct KeyMetadata {
    id: String,
    name: String,
    prefix: String,
    scopes: Vec<String>,
    created_at: i64,
    expires_at: Option<i64>,
    last_used_at: Option<i64>,
}

impl KeyMetadata {
    fn from_slot(item: &Item) -> Option<KeyMetadata> {
        Some(KeyMetadata {
            id: item.string("key_id")?.to_owned(),
            name: item.string("name")?.to_owned(),
            prefix: item.string("prefix")?.to_owned(),
            scopes: parse_scopes(item.string("scopes")?),
            created_at: item.number("created_at")?,
            expires_at: item.number(EXPIRES_AT),
            last_used_at: item.number("last_used_at"),
        })
    }
}

/// A verified key as cached: the principal, when it was read, and when the key expires.
#[derive(Clone, Debug)]
struct CachedKey {
    principal: Principal,
    read_at: i64,
    expires_at: Option<i64>,
}

/// Recently verified keys of this process, by hash.
#[derive(Debug, Default)]
pub(crate) struct KeyCache {
    entries: Mutex<HashMap<String, CachedKey>>,
    /// When each key's last-used time was last written, by key id.
    last_used_written: Mutex<HashMap<String, i64>>,
}

/// Reason a presented API key was rejected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyRejection {
    /// Wrong prefix, length, alphabet or checksum: rejected without a store read.
    Malformed,
    /// Unknown, revoked or expired.
    Unknown,
    /// The owner's account is disabled.
    OwnerDisabled,
}

impl App {
    /// Verifies an API key: format first, then the cache, then the store.
    pub async fn verify_api_key(&self, key: &str) -> Result<Principal, KeyRejection> {
        if !is_well_formed(key) {
            return Err(KeyRejection::Malformed);
        }
        let hash = hash_key(key);
        let now = self.now();
        let ttl = self.config.api_key_cache_seconds;
        if let Some(cached) = self.lock_key_cache().get(&hash) {
            let expired = cached
                .expires_at
                .is_some_and(|expires_at| expires_at <= now);
            if now - cached.read_at < ttl && !expired {
                return Ok(cached.principal.clone());
            }
        }

        let item = self
            .store
            .get(&hash_item_key(&hash), now)
            .await
            .map_err(|error| {
                tracing::error!(error = %error, "API key lookup failed");
                KeyRejection::Unknown
            })?
            .ok_or(KeyRejection::Unknown)?;
        let stored_hash = item.string("key_hash").unwrap_or_default();
        if !bool::from(stored_hash.as_bytes().ct_eq(hash.as_bytes())) {
            return Err(KeyRejection::Unknown);
        }
        let (Some(key_id), Some(user_id), Some(scopes), Some(slot)) = (
            item.string("key_id"),
            item.string("user_id"),
            item.string("scopes"),
            item.number("slot"),
        ) else {
            tracing::error!("API key item lacks key_id, user_id, scopes or slot");
            return Err(KeyRejection::Unknown);
        };
        let user = match self.load_user(user_id).await {
            Ok(Some(user)) => user,
            Ok(None) => return Err(KeyRejection::Unknown),
            Err(_) => return Err(KeyRejection::Unknown),
        };
        if user.disabled {
            return Err(KeyRejection::OwnerDisabled);
        }

        // The owner's current role bounds the key's scopes, so a key granted `admin` loses it
        // when its owner loses the admin role.
        let allowed = grantable_scopes(&user.role);
        let principal = Principal {
            user_id: user.id.clone(),
            role: user.role.clone(),
            scopes: parse_scopes(scopes)
                .into_iter()
                .filter(|scope| allowed.contains(&scope.as_str()))
                .collect(),
            method: AuthMethod::ApiKey,
            credential_id: key_id.to_owned(),
        };
        {
            let mut cache = self.lock_key_cache();
            if cache.len() >= CACHE_ENTRIES {
                cache.clear();
            }
            let cached = CachedKey {
                principal: principal.clone(),
                read_at: now,
                expires_at: item.number(EXPIRES_AT),
            };
            cache.insert(hash, cached);
        }
        self.record_last_use(user_id, slot as usize, key_id, now)
            .await;
        Ok(principal)
    }

    fn lock_key_cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, CachedKey>> {
        self.api_key_cache
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Writes the key's last-used time at most once a minute per key and process, so that a
    /// busy key does not cost a write per request.
    async fn record_last_use(&self, user_id: &str, slot: usize, key_id: &str, now: i64) {
        {
            let mut written = self
                .api_key_cache
                .last_used_written
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if written.get(key_id).is_some_and(|at| now - at < 60) {
                return;
            }
            if written.len() >= CACHE_ENTRIES {
                written.clear();
            }
            written.insert(key_id.to_owned(), now);
        }
        let write = Write::Update {
            key: slot_key(user_id, slot),
            set: Item::from([("last_used_at".to_owned(), now.into())]),
            conditions: vec![Condition::Equals("key_id".into(), key_id.into())],
        };
        if let Err(error) = self.store.write(write, now).await {
            tracing::warn!(key_id = %key_id, error = %error, "recording the key's last use failed");
        }
    }

    /// Authenticates the key routes: an access token only, so that a key cannot mint keys.
    async fn key_route_principal(&self, request: &Request) -> Result<Principal, Problem> {
        let claims = self.authenticate(request).await?;
        Ok(Principal {
            user_id: claims.sub,
            role: claims.role,
            scopes: parse_scopes(&claims.scope),
            method: AuthMethod::AccessToken,
            credential_id: claims.sid,
        })
    }

    pub(crate) async fn create_api_key(&self, request: &Request) -> Result<Response, Problem> {
        let principal = self.key_route_principal(request).await?;
        principal.require_scope(SCOPE_WRITE)?;
        let body: CreateRequest = json_body(request)?;
        let client = Client::from_request(request);

        let name = body.name.trim().to_owned();
        if name.is_empty() || name.chars().count() > MAX_NAME_CHARS {
            return Err(Problem::bad_request(
                "invalid_request",
                format!("name must be 1 to {MAX_NAME_CHARS} characters long"),
            ));
        }
        let scopes = body.scopes.unwrap_or_else(|| vec![SCOPE_READ.to_owned()]);
        let scopes = self.grantable(&principal, scopes)?;
        let now = self.now();
        let expires_at = match body.expires_in_days {
            None => None,
            Some(days) if (1..=MAX_EXPIRY_DAYS).contains(&days) => Some(now + days * 86_400),
            Some(days) => {
                return Err(Problem::bad_request(
                    "invalid_request",
                    format!("expires_in_days is {days}; expected 1 to {MAX_EXPIRY_DAYS}"),
                ))
            }
        };

        let key = new_api_key();
        let hash = hash_key(&key);
        let key_id = new_id();
        let prefix = key[..API_KEY_PREFIX.len() + VISIBLE_DIGITS].to_owned();
        let scope_string = scopes.join(" ");

        for _ in 0..SLOT_ATTEMPTS {
            let slot = self.free_slot(&principal.user_id, now).await?;
            let mut slot_item = Item::from([
                ("type".to_owned(), AttrValue::from("api_key_slot")),
                ("key_id".to_owned(), key_id.clone().into()),
                ("name".to_owned(), name.clone().into()),
                ("prefix".to_owned(), prefix.clone().into()),
                ("scopes".to_owned(), scope_string.clone().into()),
                ("key_hash".to_owned(), hash.clone().into()),
                ("created_at".to_owned(), now.into()),
            ]);
            let mut hash_item = Item::from([
                ("type".to_owned(), AttrValue::from("api_key")),
                ("key_id".to_owned(), key_id.clone().into()),
                ("key_hash".to_owned(), hash.clone().into()),
                ("user_id".to_owned(), principal.user_id.clone().into()),
                ("scopes".to_owned(), scope_string.clone().into()),
                ("slot".to_owned(), (slot as i64).into()),
                ("created_at".to_owned(), now.into()),
            ]);
            if let Some(expires_at) = expires_at {
                slot_item.insert(EXPIRES_AT.to_owned(), expires_at.into());
                hash_item.insert(EXPIRES_AT.to_owned(), expires_at.into());
            }
            let writes = vec![
                Write::Put {
                    key: slot_key(&principal.user_id, slot),
                    item: slot_item,
                    conditions: vec![Condition::Absent],
                },
                Write::Put {
                    key: hash_item_key(&hash),
                    item: hash_item,
                    conditions: vec![Condition::Absent],
                },
            ];
            match self.store.transact(writes, now).await {
                Ok(()) => {
                    audit::record_key(
                        AuditKind::ApiKeyCreated,
                        &client,
                        &principal.user_id,
                        &key_id,
                    );
                    let body = serde_json::json!({
                        "id": key_id,
                        "key": key,
                        "name": name,
                        "prefix": prefix,
                        "scopes": scopes,
                        "created_at": now,
                        "expires_at": expires_at,
                    });
                    return Ok(no_store_json(StatusCode::CREATED, &body));
                }
                Err(StoreError::ConditionFailed | StoreError::Conflict) => continue,
                Err(error) => return Err(error.into()),
            }
        }
        Err(Problem::new(
            StatusCode::CONFLICT,
            "api_key_conflict",
            "other keys were created at the same time; retry",
        ))
    }

    /// Checks requested scopes: known names only (400), within the owner's role and the
    /// creating token's scopes (403).
    fn grantable(
        &self,
        principal: &Principal,
        requested: Vec<String>,
    ) -> Result<Vec<String>, Problem> {
        let allowed = grantable_scopes(&principal.role);
        let mut scopes: Vec<String> = Vec::new();
        for scope in requested {
            if !crate::principal::ALL_SCOPES.contains(&scope.as_str()) {
                return Err(Problem::bad_request(
                    "invalid_scope",
                    format!(
                        "unknown scope {scope:?}; known scopes are {}",
                        crate::principal::ALL_SCOPES.join(", ")
                    ),
                ));
            }
            if !allowed.contains(&scope.as_str()) || !principal.has_scope(&scope) {
                return Err(Problem::new(
                    StatusCode::FORBIDDEN,
                    "insufficient_scope",
                    format!("you cannot grant the scope {scope}"),
                ));
            }
            if !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
        if scopes.is_empty() {
            return Err(Problem::bad_request(
                "invalid_scope",
                "scopes must name at least one scope",
            ));
        }
        Ok(scopes)
    }

    async fn free_slot(&self, user_id: &str, now: i64) -> Result<usize, Problem> {
        let taken = self
            .store
            .query(&format!("USER#{user_id}"), "APIKEYSLOT#", now)
            .await?;
        let limit = self.config.api_key_limit;
        (0..limit)
            .find(|slot| {
                !taken
                    .iter()
                    .any(|(key, _)| key.sk == slot_key(user_id, *slot).sk)
            })
            .ok_or_else(|| {
                Problem::new(
                    StatusCode::CONFLICT,
                    "api_key_limit_reached",
                    format!("an account can hold {limit} active keys; revoke one first"),
                )
            })
    }

    /// Deletes every API key of a user, for when an account changes hands.
    pub(crate) async fn revoke_all_api_keys(&self, user_id: &str) -> Result<(), Problem> {
        let now = self.now();
        let slots = self
            .store
            .query(&format!("USER#{user_id}"), "APIKEYSLOT#", now)
            .await?;
        for (slot, item) in slots {
            let Some(hash) = item.string("key_hash").map(str::to_owned) else {
                continue;
            };
            let writes = vec![
                Write::Delete {
                    key: slot,
                    conditions: vec![],
                },
                Write::Delete {
                    key: hash_item_key(&hash),
                    conditions: vec![],
                },
            ];
            self.store.transact(writes, now).await?;
            self.lock_key_cache().remove(&hash);
        }
        Ok(())
    }

    pub(crate) async fn list_api_keys(&self, request: &Request) -> Result<Response, Problem> {
        let principal = self.key_route_principal(request).await?;
        principal.require_scope(SCOPE_READ)?;
        let slots = self
            .store
            .query(
                &format!("USER#{}", principal.user_id),
                "APIKEYSLOT#",
                self.now(),
            )
            .await?;
        let keys: Vec<KeyMetadata> = slots
            .iter()
            .filter_map(|(_, item)| KeyMetadata::from_slot(item))
            .collect();
        Ok(json_response(
            StatusCode::OK,
            &serde_json::json!({ "keys": keys }),
        ))
    }

    pub(crate) async fn revoke_api_key(
        &self,
        request: &Request,
        key_id: &str,
    ) -> Result<Response, Problem> {
        let principal = self.key_route_principal(request).await?;
        principal.require_scope(SCOPE_WRITE)?;
        let client = Client::from_request(request);
        let now = self.now();
        let not_found = || {
            Problem::new(
                StatusCode::NOT_FOUND,
                "not_found",
                "no API key with this id",
            )
        };

        let slots = self
            .store
            .query(&format!("USER#{}", principal.user_id), "APIKEYSLOT#", now)
            .await?;
        let (slot, item) = slots
            .into_iter()
            .find(|(_, item)| item.string("key_id") == Some(key_id))
            .ok_or_else(not_found)?;
        let hash = item.string("key_hash").ok_or_else(not_found)?.to_owned();

        let writes = vec![
            Write::Delete {
                key: slot,
                conditions: vec![Condition::Equals("key_id".into(), key_id.into())],
            },
            Write::Delete {
                key: hash_item_key(&hash),
                conditions: vec![],
            },
        ];
        match self.store.transact(writes, now).await {
            Ok(()) => {}
            Err(StoreError::ConditionFailed) => return Err(not_found()),
            Err(error) => return Err(error.into()),
        }
        self.lock_key_cache().remove(&hash);
        audit::record_key(
            AuditKind::ApiKeyRevoked,
            &client,
            &principal.user_id,
            key_id,
        );
        Ok(empty_response(StatusCode::NO_CONTENT))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_key_is_well_formed() {
        let key = new_api_key();
        assert_eq!(key.len(), API_KEY_LENGTH);
        assert!(key.starts_with("lak_"));
        assert!(is_well_formed(&key));
    }

    #[test]
    fn keys_differ() {
        assert_ne!(new_api_key(), new_api_key());
    }

    #[test]
    fn one_changed_character_fails_checksum() {
        let key = new_api_key();
        for position in API_KEY_PREFIX.len()..API_KEY_LENGTH {
            let mut bytes = key.clone().into_bytes();
            bytes[position] = if bytes[position] == b'a' { b'b' } else { b'a' };
            let changed = String::from_utf8(bytes).unwrap();
            assert!(!is_well_formed(&changed), "a change at {position} passed");
        }
    }

    #[test]
    fn wrong_prefix_and_length_rejected() {
        let key = new_api_key();
        assert!(!is_well_formed(&key.replacen("lak_", "lax_", 1)));
        assert!(!is_well_formed(&key[..key.len() - 1]));
        assert!(!is_well_formed(&format!("{key}0")));
        assert!(!is_well_formed(""));
    }

    #[test]
    fn crc32_matches_reference_value() {
        // The CRC-32 check value of the nine ASCII digits "123456789" is 0xCBF43926.
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn base62_encodes_fixed_width() {
        assert_eq!(base62(&[0, 0, 0, 61], 3), "00z");
        assert_eq!(base62(&[0, 0, 0, 62], 3), "010");
        assert_eq!(base62(&[0xFF; 32], RANDOM_DIGITS).len(), RANDOM_DIGITS);
    }
}
