//! Rules for new passwords and the Unicode normalisation applied to every password.
//!
//! The rules follow NIST SP 800-63B: a minimum length counted in Unicode code points
//! after NFKC normalisation, room for at least 64 characters, a check against common
//! passwords, and no composition rules.

use std::fmt;

use unicode_normalization::UnicodeNormalization;

use super::common::is_common_password;

/// Length limits for new passwords.
///
/// The fields are public so that a policy can be built directly in tests, but
/// [`PasswordPolicy::new`] is the constructor that checks them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PasswordPolicy {
    /// Minimum length in Unicode code points, counted after NFKC normalisation.
    /// Default: 15, the minimum NIST SP 800-63B Rev. 4 sets for a password used as the only factor.
    pub min_chars: usize,
    /// Maximum length in UTF-8 bytes of the raw input, checked before any other work.
    /// Default: 256, which fits 64 characters of any script.
    pub max_bytes: usize,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self {
            min_chars: 15,
            max_bytes: 256,
        }
    }
}

impl PasswordPolicy {
    /// Lowest `min_chars` that [`PasswordPolicy::new`] accepts. NIST SP 800-63B requires at least 8.
    pub const LOWEST_MIN_CHARS: usize = 8;

    /// Highest `min_chars` that [`PasswordPolicy::new`] accepts. Because `max_bytes` fits at
    /// least 64 characters of any script, every password of `min_chars` characters fits too.
    pub const HIGHEST_MIN_CHARS: usize = 64;

    /// Lowest `max_bytes` that [`PasswordPolicy::new`] accepts: 64 characters of 4 UTF-8 bytes,
    /// the longest encoding of a code point.
    pub const LOWEST_MAX_BYTES: usize = 4 * 64;

    /// Builds a policy after checking both limits against the bounds above.
    ///
    /// The error message names the field, its value and the bound it breaks.
    pub fn new(min_chars: usize, max_bytes: usize) -> Result<Self, String> {
        if min_chars < Self::LOWEST_MIN_CHARS {
            return Err(format!(
                "min_chars is {min_chars} but must be at least {}, the minimum of NIST SP 800-63B",
                Self::LOWEST_MIN_CHARS
            ));
        }
        if min_chars > Self::HIGHEST_MIN_CHARS {
            return Err(format!(
                "min_chars is {min_chars} but must be at most {}, so that max_bytes always fits a password of the minimum length",
                Self::HIGHEST_MIN_CHARS
            ));
        }
        if max_bytes < Self::LOWEST_MAX_BYTES {
            return Err(format!(
                "max_bytes is {max_bytes} but must be at least {}, so that 64 characters of any script fit",
                Self::LOWEST_MAX_BYTES
            ));
        }

        Ok(Self {
            min_chars,
            max_bytes,
        })
    }

    /// Checks a new password and returns its normalised form.
    ///
    /// The steps run in this order: the byte length of the raw input against `max_bytes`,
    /// so that a huge input costs nothing more, then NFKC normalisation, then the minimum
    /// length in code points, then [`is_common_password`].
    pub fn check(&self, raw: &str) -> Result<NormalizedPassword, PasswordRejection> {
        self.check_max_bytes(raw)?;

        let password = normalize(raw);

        if password.char_count() < self.min_chars {
            return Err(PasswordRejection::TooShort {
                min_chars: self.min_chars,
            });
        }

        if is_common_password(&password) {
            return Err(PasswordRejection::Common);
        }

        Ok(password)
    }

    /// Checks only the byte length of the raw input against `max_bytes`.
    ///
    /// Login calls this before [`normalize`], because it applies no other rule to an
    /// existing password.
    pub fn check_max_bytes(&self, raw: &str) -> Result<(), PasswordRejection> {
        if raw.len() > self.max_bytes {
            return Err(PasswordRejection::TooLong {
                max_bytes: self.max_bytes,
            });
        }
        Ok(())
    }
}

/// Reason why [`PasswordPolicy::check`] rejected a password.
///
/// `Display` is a sentence for the user, and [`PasswordRejection::code`] is the
/// machine-readable error code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PasswordRejection {
    #[error(
        "Passwords can be at most {max_bytes} bytes long. That is at least {} characters in any language, or {max_bytes} unaccented Latin letters and digits.",
        max_bytes / 4
    )]
    TooLong { max_bytes: usize },

    #[error("Passwords must be at least {min_chars} characters long.")]
    TooShort { min_chars: usize },

    #[error(
        "This password is too common or too easy to guess. Try a longer phrase of unrelated words, or let a password manager generate one."
    )]
    Common,
}

impl PasswordRejection {
    /// Returns the stable error code for API responses.
    pub fn code(&self) -> &'static str {
        match self {
            Self::TooLong { .. } => "password_too_long",
            Self::TooShort { .. } => "password_too_short",
            Self::Common => "weak_password",
        }
    }
}

/// A password in Unicode NFKC form, the form that is checked, hashed and verified.
///
/// `Debug` prints `NormalizedPassword(<hidden>)` and there is no `Display`, so the
/// password cannot end up in a log by accident.
// NOTE: the memory is not zeroed on drop.
#[derive(Clone)]
pub struct NormalizedPassword(String);

impl NormalizedPassword {
    /// Returns the UTF-8 bytes of the normalised password, the input of the password hash.
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    pub(super) fn as_str(&self) -> &str {
        &self.0
    }

    fn char_count(&self) -> usize {
        self.0.chars().count()
    }
}

impl fmt::Debug for NormalizedPassword {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str("NormalizedPassword(<hidden>)")
    }
}

/// Applies Unicode NFKC normalisation, so that the same password typed on different
/// keyboards or systems hashes to the same value.
///
/// It checks no rule. Callers check [`PasswordPolicy::check_max_bytes`] first, because
/// NFKC can make a string longer (up to 18 code points from one, for U+FDFA).
pub fn normalize(raw: &str) -> NormalizedPassword {
    NormalizedPassword(raw.nfkc().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_policy_limits() {
        let policy = PasswordPolicy::default();

        assert_eq!(policy.min_chars, 15);
        assert_eq!(policy.max_bytes, 256);
    }

    #[test]
    fn new_accepts_bounds() {
        assert_eq!(
            PasswordPolicy::new(8, 256),
            Ok(PasswordPolicy {
                min_chars: 8,
                max_bytes: 256
            })
        );
        assert!(PasswordPolicy::new(64, 1024).is_ok());
    }

    #[test]
    fn new_rejects_min_below_eight() {
        let error = PasswordPolicy::new(7, 256).unwrap_err();

        assert!(error.contains("min_chars is 7"), "{error}");
        assert!(error.contains("at least 8"), "{error}");
    }

    #[test]
    fn new_rejects_min_above_sixty_four() {
        let error = PasswordPolicy::new(65, 1024).unwrap_err();

        assert!(error.contains("min_chars is 65"), "{error}");
        assert!(error.contains("at most 64"), "{error}");
    }

    #[test]
    fn new_rejects_max_bytes_below_256() {
        let error = PasswordPolicy::new(15, 255).unwrap_err();

        assert!(error.contains("max_bytes is 255"), "{error}");
        assert!(error.contains("at least 256"), "{error}");
    }

    #[test]
    fn check_accepts_passphrase() {
        let password = PasswordPolicy::default()
            .check("correct horse battery staple")
            .unwrap();

        assert_eq!(password.as_bytes(), b"correct horse battery staple");
    }

    #[test]
    fn check_rejects_too_long_input() {
        let policy = PasswordPolicy::default();
        let raw = "x".repeat(257);

        assert_eq!(
            policy.check(&raw).unwrap_err(),
            PasswordRejection::TooLong { max_bytes: 256 }
        );
    }

    #[test]
    fn check_counts_max_in_bytes() {
        let policy = PasswordPolicy::default();
        // 64 distinct four-byte code points are exactly 256 bytes, and one more is too many.
        let emoji_64: String = (0..64u32)
            .map(|i| char::from_u32(0x1F600 + (i * 7) % 64).unwrap())
            .collect();
        let emoji_65 = format!("{emoji_64}\u{1F680}");

        assert!(policy.check(&emoji_64).is_ok());
        assert_eq!(
            policy.check(&emoji_65).unwrap_err(),
            PasswordRejection::TooLong { max_bytes: 256 }
        );
    }

    #[test]
    fn check_tests_max_before_other_rules() {
        // A repeated character is also a common password, but the byte limit runs first.
        let policy = PasswordPolicy::default();
        let raw = "a".repeat(1_000_000);

        assert_eq!(
            policy.check(&raw).unwrap_err(),
            PasswordRejection::TooLong { max_bytes: 256 }
        );
    }

    #[test]
    fn check_max_bytes_alone() {
        let policy = PasswordPolicy::default();

        assert_eq!(policy.check_max_bytes(&"a".repeat(256)), Ok(()));
        assert_eq!(
            policy.check_max_bytes(&"a".repeat(257)),
            Err(PasswordRejection::TooLong { max_bytes: 256 })
        );
    }

    #[test]
    fn check_rejects_too_short() {
        let policy = PasswordPolicy::default();

        assert_eq!(
            policy.check("river-lamp-fog").unwrap_err(),
            PasswordRejection::TooShort { min_chars: 15 }
        );
        assert!(policy.check("river-lamp-fogs").is_ok());
    }

    #[test]
    fn check_counts_min_in_code_points() {
        let policy = PasswordPolicy::default();
        // 15 Cyrillic letters are 30 bytes but 15 characters.
        let cyrillic = "щукаводамостлес";

        assert_eq!(cyrillic.chars().count(), 15);
        assert!(policy.check(cyrillic).is_ok());
    }

    #[test]
    fn check_counts_min_after_normalisation() {
        let policy = PasswordPolicy::default();
        // "e" + U+0301 COMBINING ACUTE ACCENT composes to one code point under NFKC,
        // so 15 code points of raw input become 14.
        let raw = "cafe\u{301} with milk";

        assert_eq!(raw.chars().count(), 15);
        assert_eq!(
            policy.check(raw).unwrap_err(),
            PasswordRejection::TooShort { min_chars: 15 }
        );
    }

    #[test]
    fn check_rejects_common_password() {
        let policy = PasswordPolicy::default();

        assert_eq!(
            policy.check("password1234567").unwrap_err(),
            PasswordRejection::Common
        );
        assert_eq!(
            policy.check("123456789012345").unwrap_err(),
            PasswordRejection::Common
        );
    }

    #[test]
    fn check_allows_no_composition_rules() {
        let policy = PasswordPolicy::default();

        // Only lowercase letters, and only digits that are not a run.
        assert!(policy.check("quietlymarbleoven").is_ok());
        assert!(policy.check("804126937516284").is_ok());
    }

    #[test]
    fn normalize_applies_nfkc() {
        // Fullwidth letters, the "fi" ligature and a superscript two all have
        // compatibility decompositions to plain ASCII.
        let password = normalize("ＡＢＣ\u{FB01}x\u{00B2}");

        assert_eq!(password.as_bytes(), b"ABCfix2");
    }

    #[test]
    fn normalize_keeps_case_and_spaces() {
        let password = normalize("  Mixed Case  ");

        assert_eq!(password.as_bytes(), b"  Mixed Case  ");
    }

    #[test]
    fn normalized_password_debug_hides_value() {
        let password = normalize("correct horse battery staple");

        assert_eq!(format!("{password:?}"), "NormalizedPassword(<hidden>)");
    }

    #[test]
    fn rejection_codes() {
        assert_eq!(
            PasswordRejection::TooLong { max_bytes: 256 }.code(),
            "password_too_long"
        );
        assert_eq!(
            PasswordRejection::TooShort { min_chars: 15 }.code(),
            "password_too_short"
        );
        assert_eq!(PasswordRejection::Common.code(), "weak_password");
    }

    #[test]
    fn rejection_messages_state_rule() {
        assert_eq!(
            PasswordRejection::TooLong { max_bytes: 256 }.to_string(),
            "Passwords can be at most 256 bytes long. That is at least 64 characters in any language, or 256 unaccented Latin letters and digits."
        );
        assert_eq!(
            PasswordRejection::TooShort { min_chars: 15 }.to_string(),
            "Passwords must be at least 15 characters long."
        );
        assert!(PasswordRejection::Common
            .to_string()
            .starts_with("This password is too common or too easy to guess."));
    }
}
