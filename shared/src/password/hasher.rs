//! Argon2id password hashing and verification, with reusable working memory so that
//! the first hash in a process costs about the same as later ones.

use std::collections::TryReserveError;
use std::fmt;
use std::num::NonZeroUsize;
use std::sync::{Mutex, PoisonError};

use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::PasswordHash;
use argon2::{Algorithm, Argon2, Block, Params, Version};
use base64::engine::general_purpose::STANDARD_NO_PAD;
use base64::Engine as _;
use subtle::ConstantTimeEq;

use super::policy::NormalizedPassword;

/// Salt length of new hashes, in bytes.
const SALT_LEN: usize = 16;

/// Output length of new hashes, in bytes.
const OUTPUT_LEN: usize = 32;

/// Largest salt and output a PHC string can hold (the `password-hash` 0.5 limits).
const MAX_STORED_SALT_LEN: usize = 64;
const MAX_STORED_OUTPUT_LEN: usize = 64;

/// Largest memory cost of a stored hash that [`PasswordHasher::verify`] runs: 2 GiB, about
/// 100 times the OWASP minimum. Without it, a corrupt stored value could make the process
/// allocate up to 4 TiB.
const MAX_STORED_MEMORY_KIB: u32 = 2 * 1024 * 1024;

/// Argon2id cost parameters of new hashes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Argon2Params {
    /// Memory cost in KiB (`m`). Default: 19456 (19 MiB).
    pub memory_kib: u32,
    /// Number of passes over the memory (`t`). Default: 2.
    pub iterations: u32,
    /// Number of lanes (`p`). Default: 1.
    pub parallelism: u32,
}

/// The minimum argon2id configuration of the OWASP Password Storage Cheat Sheet:
/// 19 MiB of memory, 2 iterations, 1 degree of parallelism.
impl Default for Argon2Params {
    fn default() -> Self {
        Self {
            memory_kib: 19 * 1024,
            iterations: 2,
            parallelism: 1,
        }
    }
}

impl Argon2Params {
    /// Lowest memory cost that [`Argon2Params::new`] accepts: 8 MiB.
    pub const MIN_MEMORY_KIB: u32 = 8 * 1024;
    /// Lowest iteration count that [`Argon2Params::new`] accepts.
    pub const MIN_ITERATIONS: u32 = 1;
    /// Lowest lane count that [`Argon2Params::new`] accepts.
    pub const MIN_PARALLELISM: u32 = 1;

    /// Builds parameters after checking them against the minimums above and the
    /// limits of the `argon2` crate. The error message names the value and the limit.
    pub fn new(memory_kib: u32, iterations: u32, parallelism: u32) -> Result<Self, String> {
        let params = Self {
            memory_kib,
            iterations,
            parallelism,
        };
        params.to_argon2_params()?;
        Ok(params)
    }

    fn to_argon2_params(self) -> Result<Params, String> {
        if self.memory_kib < Self::MIN_MEMORY_KIB {
            return Err(format!(
                "argon2 memory_kib is {} but must be at least {} (8 MiB)",
                self.memory_kib,
                Self::MIN_MEMORY_KIB
            ));
        }
        if self.iterations < Self::MIN_ITERATIONS {
            return Err(format!(
                "argon2 iterations is {} but must be at least {}",
                self.iterations,
                Self::MIN_ITERATIONS
            ));
        }
        if self.parallelism < Self::MIN_PARALLELISM {
            return Err(format!(
                "argon2 parallelism is {} but must be at least {}",
                self.parallelism,
                Self::MIN_PARALLELISM
            ));
        }

        Params::new(
            self.memory_kib,
            self.iterations,
            self.parallelism,
            Some(OUTPUT_LEN),
        )
        .map_err(|error| {
            format!(
                "argon2 rejected memory_kib {}, iterations {}, parallelism {}: {error}",
                self.memory_kib, self.iterations, self.parallelism
            )
        })
    }
}

/// Result of [`PasswordHasher::verify`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verification {
    /// The password is correct. `needs_rehash` is true when the stored hash was made with
    /// another algorithm, version, cost, salt length or output length than
    /// [`PasswordHasher::hash`] uses now, so the caller should store a fresh hash.
    Match { needs_rehash: bool },
    /// The password is wrong, or the stored hash could not be used.
    Mismatch,
}

/// Argon2id hasher for one set of parameters, built once per process and shared.
pub struct PasswordHasher {
    params: Argon2Params,
    argon2: Argon2<'static>,
    /// PHC string with the configured parameters that [`PasswordHasher::verify_dummy`]
    /// verifies against. Its salt and output are random, so in practice no password
    /// matches it (the chance is 2^-256).
    dummy_phc: String,
    memory_pool: MemoryPool,
}

impl PasswordHasher {
    /// Builds a hasher and allocates one working-memory buffer for `params`.
    ///
    /// The allocation writes every block, so its page faults happen here, at process
    /// start, and not in the first request that hashes a password. The pool lends that
    /// buffer to whichever thread hashes first.
    ///
    /// # Panics
    ///
    /// Panics if `params` fails the checks of [`Argon2Params::new`] (the fields are
    /// public, so this is the last place to catch a value built without `new`), or if
    /// the buffer cannot be allocated.
    pub fn new(params: Argon2Params) -> Self {
        let argon2_params = params
            .to_argon2_params()
            .unwrap_or_else(|message| panic!("invalid Argon2 parameters: {message}"));
        let memory_pool = MemoryPool::new(argon2_params.block_count());
        let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, argon2_params);

        let mut salt = [0u8; SALT_LEN];
        let mut output = [0u8; OUTPUT_LEN];
        OsRng.fill_bytes(&mut salt);
        OsRng.fill_bytes(&mut output);
        let dummy_phc = format_phc(&params, &salt, &output);

        Self {
            params,
            argon2,
            dummy_phc,
            memory_pool,
        }
    }

    /// Returns the configured parameters.
    pub fn params(&self) -> Argon2Params {
        self.params
    }

    /// Hashes a password with a fresh 16-byte salt from the OS random generator and
    /// returns the PHC string `$argon2id$v=19$m=…,t=…,p=…$<salt>$<hash>` with a
    /// 32-byte hash, both in unpadded standard base64.
    ///
    /// # Panics
    ///
    /// Panics if the OS random generator fails, or if the password is longer than argon2
    /// allows (4 GiB). [`super::PasswordPolicy::check_max_bytes`] rejects such input first.
    pub fn hash(&self, password: &NormalizedPassword) -> String {
        let mut salt = [0u8; SALT_LEN];
        OsRng.fill_bytes(&mut salt);

        let mut output = [0u8; OUTPUT_LEN];
        self.compute(&self.argon2, password.as_bytes(), &salt, &mut output)
            .expect("argon2id accepts every password up to 4 GiB with validated params, a 16-byte salt and a 32-byte output");

        format_phc(&self.params, &salt, &output)
    }

    /// Verifies a password against a stored PHC string.
    ///
    /// Stored hashes of argon2d, argon2i and argon2id are verified at any valid cost up to
    /// 2 GiB of memory. A string that does not parse or that argon2 rejects is logged as a
    /// warning, without the string, and reported as [`Verification::Mismatch`].
    pub fn verify(&self, password: &NormalizedPassword, phc: &str) -> Verification {
        let stored = match StoredHash::parse(phc) {
            Ok(stored) => stored,
            Err(error) => {
                tracing::warn!(%error, "stored password hash is not a usable argon2 PHC string, so verification fails");
                return Verification::Mismatch;
            }
        };

        let argon2 = Argon2::new(stored.algorithm, stored.version, stored.params.clone());
        let mut computed = [0u8; MAX_STORED_OUTPUT_LEN];
        let computed = &mut computed[..stored.output_len];
        if let Err(error) = self.compute(&argon2, password.as_bytes(), stored.salt(), computed) {
            tracing::warn!(%error, "argon2 rejected the stored password hash, so verification fails");
            return Verification::Mismatch;
        }

        if bool::from(computed.ct_eq(stored.output())) {
            Verification::Match {
                needs_rehash: self.needs_rehash(&stored),
            }
        } else {
            Verification::Mismatch
        }
    }

    /// Does the work of [`PasswordHasher::verify`] against a hash with the configured
    /// parameters that no password matches, so that a login for an unknown account
    /// takes as long as a login with a wrong password.
    ///
    /// The dummy hash is made at construction from random bytes, without running
    /// argon2, so the first call costs no more than later ones.
    pub fn verify_dummy(&self, password: &NormalizedPassword) {
        std::hint::black_box(self.verify(password, &self.dummy_phc));
    }

    /// Runs argon2 in a buffer from the memory pool. A buffer that cannot be allocated
    /// is reported as [`argon2::Error::MemoryTooMuch`].
    fn compute(
        &self,
        argon2: &Argon2<'_>,
        password: &[u8],
        salt: &[u8],
        output: &mut [u8],
    ) -> argon2::Result<()> {
        let block_count = argon2.params().block_count();
        let mut memory = self
            .memory_pool
            .take(block_count)
            .map_err(|_| argon2::Error::MemoryTooMuch)?;

        let result = argon2.hash_password_into_with_memory(password, salt, output, &mut memory);

        self.memory_pool.give_back(memory);
        result
    }

    fn needs_rehash(&self, stored: &StoredHash) -> bool {
        stored.algorithm != Algorithm::Argon2id
            || stored.version != Version::V0x13
            || stored.params.m_cost() != self.params.memory_kib
            || stored.params.t_cost() != self.params.iterations
            || stored.params.p_cost() != self.params.parallelism
            || !stored.params.keyid().is_empty()
            || !stored.params.data().is_empty()
            || stored.salt_len != SALT_LEN
            || stored.output_len != OUTPUT_LEN
    }
}

impl fmt::Debug for PasswordHasher {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("PasswordHasher")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

fn format_phc(params: &Argon2Params, salt: &[u8], output: &[u8]) -> String {
    format!(
        "$argon2id$v=19$m={},t={},p={}${}${}",
        params.memory_kib,
        params.iterations,
        params.parallelism,
        STANDARD_NO_PAD.encode(salt),
        STANDARD_NO_PAD.encode(output)
    )
}

/// The parts of a stored PHC string that verification needs, decoded.
struct StoredHash {
    algorithm: Algorithm,
    version: Version,
    params: Params,
    salt: [u8; MAX_STORED_SALT_LEN],
    salt_len: usize,
    output: [u8; MAX_STORED_OUTPUT_LEN],
    output_len: usize,
}

impl StoredHash {
    /// Parses a PHC string. Error messages come from the `password-hash` and `argon2`
    /// crates and describe the problem without quoting the input.
    fn parse(phc: &str) -> Result<Self, String> {
        let hash = PasswordHash::new(phc).map_err(|error| error.to_string())?;
        let algorithm = Algorithm::try_from(hash.algorithm).map_err(|error| error.to_string())?;
        // The `argon2` crate reads a missing version as 0x13, and so does this.
        let version = match hash.version {
            Some(number) => Version::try_from(number).map_err(|error| error.to_string())?,
            None => Version::V0x13,
        };
        let params = Params::try_from(&hash).map_err(|error| error.to_string())?;
        if params.m_cost() > MAX_STORED_MEMORY_KIB {
            return Err(format!(
                "memory cost {} KiB is above the limit of {MAX_STORED_MEMORY_KIB} KiB",
                params.m_cost()
            ));
        }

        let mut salt = [0u8; MAX_STORED_SALT_LEN];
        let salt_len = hash
            .salt
            .ok_or("the salt is missing")?
            .decode_b64(&mut salt)
            .map_err(|error| error.to_string())?
            .len();

        let stored_output = hash.hash.ok_or("the hash output is missing")?;
        let output_len = stored_output.len();
        let mut output = [0u8; MAX_STORED_OUTPUT_LEN];
        output[..output_len].copy_from_slice(stored_output.as_bytes());

        Ok(Self {
            algorithm,
            version,
            params,
            salt,
            salt_len,
            output,
            output_len,
        })
    }

    fn salt(&self) -> &[u8] {
        &self.salt[..self.salt_len]
    }

    fn output(&self) -> &[u8] {
        &self.output[..self.output_len]
    }
}

/// Argon2 working memory kept between hashes.
///
/// A fresh 19 MiB buffer costs its page faults on every first touch (about 9 ms per hash
/// on the 2-core development machine), and the allocator returns such large buffers to
/// the OS when they are freed. Keeping the buffers avoids that cost after the first use.
///
/// The pool is shared by all threads, unlike a `thread_local!` buffer, because the hasher
/// may run on any tokio worker or `spawn_blocking` thread. Tokio 1.54 also ends a blocking
/// thread after 10 idle seconds by default, which would drop a thread-local buffer. So the
/// buffer that [`PasswordHasher::new`] allocates serves whichever thread hashes first.
struct MemoryPool {
    /// Blocks of one buffer: the block count of the configured parameters.
    block_count: usize,
    /// Most buffers kept while idle. More buffers than cores can run argon2 at once
    /// would only hold memory.
    max_idle: usize,
    idle: Mutex<Vec<Vec<Block>>>,
}

impl MemoryPool {
    /// Builds the pool with one buffer.
    ///
    /// # Panics
    ///
    /// Panics if the buffer cannot be allocated.
    fn new(block_count: usize) -> Self {
        let max_idle = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        let first_buffer = allocate_blocks(block_count).unwrap_or_else(|error| {
            panic!("failed to allocate {block_count} KiB of argon2 memory: {error}")
        });

        Self {
            block_count,
            max_idle,
            idle: Mutex::new(vec![first_buffer]),
        }
    }

    /// Returns a buffer of at least `min_blocks` blocks: an idle one if there is one,
    /// otherwise a new one. A stored hash with more memory than the configured parameters
    /// gets a one-off buffer of its size, and `give_back` drops it.
    fn take(&self, min_blocks: usize) -> Result<Vec<Block>, TryReserveError> {
        if min_blocks > self.block_count {
            return allocate_blocks(min_blocks);
        }

        let idle_buffer = self.lock_idle().pop();
        match idle_buffer {
            Some(buffer) => Ok(buffer),
            None => allocate_blocks(self.block_count),
        }
    }

    fn give_back(&self, buffer: Vec<Block>) {
        if buffer.len() != self.block_count {
            return;
        }

        let mut idle = self.lock_idle();
        if idle.len() < self.max_idle {
            idle.push(buffer);
        }
    }

    /// Locks the idle list. A panic while the lock was held cannot leave the list in a
    /// broken state, because only `push` and `pop` run under it, so poisoning is ignored.
    fn lock_idle(&self) -> std::sync::MutexGuard<'_, Vec<Vec<Block>>> {
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Allocates a zeroed buffer, or returns an error where a plain `vec!` would abort the
/// process. Writing every block faults in all pages of the buffer now, not during the
/// first hash that uses it.
fn allocate_blocks(block_count: usize) -> Result<Vec<Block>, TryReserveError> {
    let mut buffer = Vec::new();
    buffer.try_reserve_exact(block_count)?;
    buffer.resize(block_count, Block::new());
    Ok(buffer)
}

#[cfg(test)]
mod tests {
    use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _, SaltString};

    use super::*;
    use crate::password::normalize;

    /// Small parameters keep the tests quick where the defaults are not the point.
    fn small_params() -> Argon2Params {
        Argon2Params::new(8 * 1024, 1, 1).unwrap()
    }

    fn password(raw: &str) -> NormalizedPassword {
        normalize(raw)
    }

    #[test]
    fn default_params_are_owasp_minimum() {
        assert_eq!(
            Argon2Params::default(),
            Argon2Params {
                memory_kib: 19456,
                iterations: 2,
                parallelism: 1
            }
        );
    }

    #[test]
    fn params_new_accepts_minimum() {
        assert_eq!(
            Argon2Params::new(8192, 1, 1),
            Ok(Argon2Params {
                memory_kib: 8192,
                iterations: 1,
                parallelism: 1
            })
        );
    }

    #[test]
    fn params_new_rejects_low_memory() {
        let error = Argon2Params::new(8191, 2, 1).unwrap_err();

        assert!(error.contains("memory_kib is 8191"), "{error}");
        assert!(error.contains("at least 8192 (8 MiB)"), "{error}");
    }

    #[test]
    fn params_new_rejects_zero_iterations() {
        let error = Argon2Params::new(19456, 0, 1).unwrap_err();

        assert!(error.contains("iterations is 0"), "{error}");
        assert!(error.contains("at least 1"), "{error}");
    }

    #[test]
    fn params_new_rejects_zero_parallelism() {
        let error = Argon2Params::new(19456, 2, 0).unwrap_err();

        assert!(error.contains("parallelism is 0"), "{error}");
        assert!(error.contains("at least 1"), "{error}");
    }

    #[test]
    fn params_new_reports_argon2_limit() {
        // Argon2 needs at least 8 KiB per lane.
        let error = Argon2Params::new(8192, 1, 2048).unwrap_err();

        assert!(error.contains("argon2 rejected"), "{error}");
        assert!(error.contains("parallelism 2048"), "{error}");
    }

    #[test]
    #[should_panic(expected = "invalid Argon2 parameters")]
    fn hasher_new_panics_on_invalid_params() {
        PasswordHasher::new(Argon2Params {
            memory_kib: 1024,
            iterations: 1,
            parallelism: 1,
        });
    }

    #[test]
    fn hash_then_verify_matches() {
        let hasher = PasswordHasher::new(small_params());
        let phc = hasher.hash(&password("correct horse battery staple"));

        assert_eq!(
            hasher.verify(&password("correct horse battery staple"), &phc),
            Verification::Match {
                needs_rehash: false
            }
        );
    }

    #[test]
    fn verify_uses_normalized_form() {
        let hasher = PasswordHasher::new(small_params());
        let phc = hasher.hash(&password("ＡＢＣ battery staple"));

        assert_eq!(
            hasher.verify(&password("ABC battery staple"), &phc),
            Verification::Match {
                needs_rehash: false
            }
        );
    }

    #[test]
    fn wrong_password_mismatches() {
        let hasher = PasswordHasher::new(small_params());
        let phc = hasher.hash(&password("correct horse battery staple"));

        assert_eq!(
            hasher.verify(&password("correct horse battery stapler"), &phc),
            Verification::Mismatch
        );
        assert_eq!(
            hasher.verify(&password("Correct horse battery staple"), &phc),
            Verification::Mismatch
        );
    }

    #[test]
    fn same_password_gets_new_salt() {
        let hasher = PasswordHasher::new(small_params());

        let first = hasher.hash(&password("correct horse battery staple"));
        let second = hasher.hash(&password("correct horse battery staple"));

        assert_ne!(first, second);
    }

    #[test]
    fn other_params_need_rehash() {
        let old_hasher = PasswordHasher::new(small_params());
        let new_hasher = PasswordHasher::new(Argon2Params::new(8 * 1024, 2, 1).unwrap());
        let phc = old_hasher.hash(&password("correct horse battery staple"));

        assert_eq!(
            new_hasher.verify(&password("correct horse battery staple"), &phc),
            Verification::Match { needs_rehash: true }
        );
        assert_eq!(
            new_hasher.verify(&password("wrong horse battery staple"), &phc),
            Verification::Mismatch
        );
    }

    #[test]
    fn larger_stored_memory_verifies() {
        // The stored hash needs more memory than the pool buffers hold.
        let old_hasher = PasswordHasher::new(Argon2Params::new(12 * 1024, 1, 1).unwrap());
        let new_hasher = PasswordHasher::new(small_params());
        let phc = old_hasher.hash(&password("correct horse battery staple"));

        assert_eq!(
            new_hasher.verify(&password("correct horse battery staple"), &phc),
            Verification::Match { needs_rehash: true }
        );
        assert_eq!(new_hasher.memory_pool.lock_idle().len(), 1);
    }

    #[test]
    fn smaller_stored_memory_verifies() {
        // The stored hash uses the first part of a pool buffer.
        let old_hasher = PasswordHasher::new(small_params());
        let new_hasher = PasswordHasher::new(Argon2Params::default());
        let phc = old_hasher.hash(&password("correct horse battery staple"));

        assert_eq!(
            new_hasher.verify(&password("correct horse battery staple"), &phc),
            Verification::Match { needs_rehash: true }
        );
        assert_eq!(new_hasher.memory_pool.lock_idle().len(), 1);
    }

    #[test]
    fn other_algorithm_needs_rehash() {
        let hasher = PasswordHasher::new(small_params());
        let argon2i = Argon2::new(
            Algorithm::Argon2i,
            Version::V0x13,
            Params::new(8 * 1024, 1, 1, None).unwrap(),
        );
        let salt = SaltString::generate(&mut OsRng);
        let phc = argon2i
            .hash_password(b"correct horse battery staple", &salt)
            .unwrap()
            .to_string();

        assert!(phc.starts_with("$argon2i$"), "{phc}");
        assert_eq!(
            hasher.verify(&password("correct horse battery staple"), &phc),
            Verification::Match { needs_rehash: true }
        );
    }

    #[test]
    fn garbage_phc_mismatches() {
        let hasher = PasswordHasher::new(small_params());
        let valid = hasher.hash(&password("correct horse battery staple"));
        let truncated = &valid[..valid.len() - 10];
        let garbage = [
            "",
            "not a hash",
            "$argon2id$v=19$m=8192,t=1,p=1$!!!$???",
            "$argon2id$v=19$m=8192,t=1,p=1$c2FsdHNhbHRzYWx0",
            "$argon2id$v=99$m=8192,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
            "$argon2id$v=19$m=1,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
            "$scrypt$ln=16,r=8,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaA",
            "$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW",
            truncated,
        ];

        for phc in garbage {
            assert_eq!(
                hasher.verify(&password("correct horse battery staple"), phc),
                Verification::Mismatch,
                "{phc:?}"
            );
        }
    }

    #[test]
    fn output_is_phc_with_configured_params() {
        let hasher = PasswordHasher::new(Argon2Params::default());
        let phc = hasher.hash(&password("correct horse battery staple"));

        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");

        let parsed = PasswordHash::new(&phc).unwrap();
        assert_eq!(parsed.algorithm, Algorithm::Argon2id.ident());
        assert_eq!(parsed.version, Some(0x13));
        assert_eq!(parsed.params.get_decimal("m"), Some(19456));
        assert_eq!(parsed.params.get_decimal("t"), Some(2));
        assert_eq!(parsed.params.get_decimal("p"), Some(1));

        let mut salt = [0u8; MAX_STORED_SALT_LEN];
        let salt = parsed.salt.unwrap().decode_b64(&mut salt).unwrap();
        assert_eq!(salt.len(), 16);
        assert_eq!(parsed.hash.unwrap().len(), 32);
    }

    #[test]
    fn stock_argon2_hash_verifies() {
        let hasher = PasswordHasher::new(small_params());
        let stock = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(8 * 1024, 1, 1, None).unwrap(),
        );
        let salt = SaltString::generate(&mut OsRng);
        let phc = stock
            .hash_password(b"correct horse battery staple", &salt)
            .unwrap()
            .to_string();

        assert_eq!(
            hasher.verify(&password("correct horse battery staple"), &phc),
            Verification::Match {
                needs_rehash: false
            }
        );
        assert_eq!(
            hasher.verify(&password("wrong horse battery staple"), &phc),
            Verification::Mismatch
        );
    }

    #[test]
    fn hash_verifies_with_stock_argon2() {
        let hasher = PasswordHasher::new(small_params());
        let phc = hasher.hash(&password("correct horse battery staple"));
        let parsed = PasswordHash::new(&phc).unwrap();

        assert!(Argon2::default()
            .verify_password(b"correct horse battery staple", &parsed)
            .is_ok());
        assert!(Argon2::default()
            .verify_password(b"wrong horse battery staple", &parsed)
            .is_err());
    }

    #[test]
    fn dummy_hash_uses_configured_params() {
        let hasher = PasswordHasher::new(small_params());
        let parsed = PasswordHash::new(&hasher.dummy_phc).unwrap();

        assert_eq!(parsed.algorithm, Algorithm::Argon2id.ident());
        assert_eq!(parsed.params.get_decimal("m"), Some(8192));
        assert_eq!(parsed.params.get_decimal("t"), Some(1));
        assert_eq!(parsed.params.get_decimal("p"), Some(1));
        assert_eq!(
            hasher.verify(&password("correct horse battery staple"), &hasher.dummy_phc),
            Verification::Mismatch
        );

        hasher.verify_dummy(&password("correct horse battery staple"));
    }

    #[test]
    fn huge_stored_memory_mismatches() {
        let hasher = PasswordHasher::new(small_params());
        let phc = "$argon2id$v=19$m=4294967295,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g";

        assert_eq!(
            hasher.verify(&password("correct horse battery staple"), phc),
            Verification::Mismatch
        );
    }

    #[test]
    fn memory_pool_reuses_buffer() {
        let hasher = PasswordHasher::new(small_params());
        assert_eq!(hasher.memory_pool.lock_idle().len(), 1);

        let phc = hasher.hash(&password("correct horse battery staple"));
        hasher.verify(&password("correct horse battery staple"), &phc);

        assert_eq!(hasher.memory_pool.lock_idle().len(), 1);
    }

    #[test]
    fn memory_pool_caps_idle_buffers() {
        let pool = MemoryPool::new(8);
        let buffers: Vec<_> = (0..pool.max_idle + 2)
            .map(|_| pool.take(8).unwrap())
            .collect();
        assert!(pool.lock_idle().is_empty());

        for buffer in buffers {
            pool.give_back(buffer);
        }

        assert_eq!(pool.lock_idle().len(), pool.max_idle);
    }

    #[test]
    fn debug_shows_only_params() {
        let hasher = PasswordHasher::new(small_params());

        assert_eq!(
            format!("{hasher:?}"),
            "PasswordHasher { params: Argon2Params { memory_kib: 8192, iterations: 1, parallelism: 1 }, .. }"
        );
    }
}
