//! The key set as functions keep it: cached across warm invocations, and refetched when it is
//! older than its maximum age. A token that names a `kid` the cache does not have causes an
//! early refetch (at most once per interval), because a rotation may have added that key.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::jwt::{verify, AccessClaims, TokenError, VerificationPolicy};
use super::keyset::{KeySet, StoredKeySet};

/// Source of a key set: Secrets Manager in Lambda, the data folder locally.
#[async_trait]
pub trait KeySetSource: Send + Sync + fmt::Debug {
    async fn fetch(&self) -> Result<StoredKeySet, String>;
}

/// Reads the `AWSCURRENT` version of a Secrets Manager secret.
#[derive(Debug)]
pub struct SecretsManagerSource {
    pub client: aws_sdk_secretsmanager::Client,
    pub secret_id: String,
}

#[async_trait]
impl KeySetSource for SecretsManagerSource {
    async fn fetch(&self) -> Result<StoredKeySet, String> {
        let output = self
            .client
            .get_secret_value()
            .secret_id(&self.secret_id)
            .version_stage("AWSCURRENT")
            .send()
            .await
            .map_err(|error| {
                aws_sdk_secretsmanager::error::DisplayErrorContext(&error).to_string()
            })?;
        let text = output
            .secret_string()
            .ok_or_else(|| format!("secret {} has no string value", self.secret_id))?;
        StoredKeySet::from_json(text).map_err(|error| error.to_string())
    }
}

/// How often the cache goes back to its source.
#[derive(Clone, Copy, Debug)]
pub struct RefreshPolicy {
    /// A key set older than this is refetched before the next signature, so that a warm
    /// function does not sign with a key that a rotation has retired.
    pub max_age: Duration,
    /// An unknown `kid` triggers a refetch at most this often, so that a flood of forged
    /// `kid`s cannot cause a flood of fetches.
    pub min_refetch_interval: Duration,
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        RefreshPolicy {
            max_age: Duration::from_secs(300),
            min_refetch_interval: Duration::from_secs(30),
        }
    }
}

struct Cached {
    keys: Arc<KeySet>,
    fetched_at: Instant,
    /// Time of the last refetch attempt, successful or not. The load at start-up does not count,
    /// so that the first unknown `kid` after a cold start can still be looked up.
    attempted_at: Option<Instant>,
}

/// A key set cache. Without a source it keeps one key set for good.
pub struct KeySetCache {
    source: Option<Arc<dyn KeySetSource>>,
    policy: RefreshPolicy,
    cached: RwLock<Cached>,
    refetch: tokio::sync::Mutex<()>,
    fetches: AtomicU64,
}

impl fmt::Debug for KeySetCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySetCache")
            .field("source", &self.source)
            .field("keys", &self.keys())
            .finish_non_exhaustive()
    }
}

impl From<KeySet> for KeySetCache {
    fn from(keys: KeySet) -> Self {
        KeySetCache::fixed(Arc::new(keys))
    }
}

impl From<Arc<KeySet>> for KeySetCache {
    fn from(keys: Arc<KeySet>) -> Self {
        KeySetCache::fixed(keys)
    }
}

impl KeySetCache {
    /// Creates a cache that never refetches.
    pub fn fixed(keys: Arc<KeySet>) -> Self {
        let now = Instant::now();
        KeySetCache {
            source: None,
            policy: RefreshPolicy::default(),
            cached: RwLock::new(Cached {
                keys,
                fetched_at: now,
                attempted_at: None,
            }),
            refetch: tokio::sync::Mutex::new(()),
            fetches: AtomicU64::new(0),
        }
    }

    /// Fetches the key set once; a failure here stops start-up.
    pub async fn load(
        source: Arc<dyn KeySetSource>,
        policy: RefreshPolicy,
    ) -> Result<Self, String> {
        let stored = source.fetch().await?;
        let keys = KeySet::from_stored(&stored).map_err(|error| error.to_string())?;
        let cache = KeySetCache::fixed(Arc::new(keys));
        cache.fetches.store(1, Ordering::Relaxed);
        Ok(KeySetCache {
            source: Some(source),
            policy,
            ..cache
        })
    }

    /// Returns the cached key set, whatever its age.
    pub fn keys(&self) -> Arc<KeySet> {
        Arc::clone(&self.read().keys)
    }

    /// Number of fetches from the source so far, the first one included.
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Cached> {
        self.cached
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Returns the key set to sign and verify with, refetched first when older than the maximum
    /// age. A failed refetch keeps the cached set, which still verifies everywhere until its key is
    /// retired.
    pub async fn signing_keys(&self) -> Arc<KeySet> {
        let stale = self.read().fetched_at.elapsed() >= self.policy.max_age;
        if stale {
            self.refetch(self.policy.min_refetch_interval.min(self.policy.max_age))
                .await;
        }
        self.keys()
    }

    /// Verifies a token. An unknown `kid` causes one rate-limited refetch and a second attempt.
    pub async fn verify(
        &self,
        policy: &VerificationPolicy,
        token: &str,
        now: i64,
    ) -> Result<AccessClaims, TokenError> {
        let keys = self.signing_keys().await;
        match verify(&keys, policy, token, now) {
            Err(TokenError::UnknownKey) if self.source.is_some() => {
                if self.refetch(self.policy.min_refetch_interval).await {
                    verify(&self.keys(), policy, token, now)
                } else {
                    Err(TokenError::UnknownKey)
                }
            }
            result => result,
        }
    }

    /// Refetches unless another attempt happened within `interval`. Returns whether the key set
    /// changed.
    async fn refetch(&self, interval: Duration) -> bool {
        let Some(source) = &self.source else {
            return false;
        };
        let _only_one = self.refetch.lock().await;
        if self
            .read()
            .attempted_at
            .is_some_and(|at| at.elapsed() < interval)
        {
            return false;
        }
        self.cached
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .attempted_at = Some(Instant::now());

        self.fetches.fetch_add(1, Ordering::Relaxed);
        let fetched = source
            .fetch()
            .await
            .and_then(|stored| KeySet::from_stored(&stored).map_err(|error| error.to_string()));
        let keys = match fetched {
            Ok(keys) => keys,
            Err(error) => {
                tracing::error!(error = %error, "refetching the key set failed; keeping the cached one");
                return false;
            }
        };

        let mut cached = self
            .cached
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let changed = keys.kids() != cached.keys.kids();
        if changed {
            tracing::info!(kid = keys.current_kid(), "key set changed");
        }
        cached.keys = Arc::new(keys);
        cached.fetched_at = Instant::now();
        changed
    }
}
