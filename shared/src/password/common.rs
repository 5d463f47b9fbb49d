//! Common-password check: two bundled lists of common passwords, plus the repeated,
//! sequential and "list entry plus run" patterns that a list lookup alone misses.
//!
//! NIST SP 800-63B requires comparing new passwords against a blocklist, which may hold
//! breached passwords, dictionary words, and repetitive or sequential characters. With a
//! 15-character minimum most list entries are too short to be accepted anyway, so the
//! patterns catch the longer passwords that people build from them, such as `password1234567`.
//!
//! Lists, under `shared/data/` (`shared/data/README.md` says how they were extracted):
//! - `common-passwords-django.txt`: the 19,640 passwords of
//!   `django/contrib/auth/common-passwords.txt.gz` in Django 5.2.19 (PyPI package `django`),
//!   which Django credits to Royce Williams. Licence: BSD-3-Clause, in `LICENSE-django.txt`.
//! - `common-passwords-zxcvbn.txt`: the 30,000 entries of the `passwords` frequency list in
//!   `src/frequency_lists.coffee` of zxcvbn 4.4.2 (npm package `zxcvbn`), whose README
//!   credits Mark Burnett's corpus of 10 million passwords. Licence: MIT, in `LICENSE-zxcvbn.txt`.
//!
//! The zxcvbn list omits passwords that zxcvbn files under its name and word lists
//! (`michael`, `jennifer`), and the Django list fills that gap.

use std::collections::HashSet;
use std::sync::LazyLock;

use super::policy::NormalizedPassword;

const DJANGO_LIST: &str = include_str!("../../data/common-passwords-django.txt");
const ZXCVBN_LIST: &str = include_str!("../../data/common-passwords-zxcvbn.txt");

/// Union of both lists. Every entry is lowercase and in NFKC form, which a test checks.
static COMMON_PASSWORDS: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    DJANGO_LIST
        .lines()
        .chain(ZXCVBN_LIST.lines())
        .filter(|line| !line.is_empty())
        .collect()
});

/// Checks whether a password is on the common-password lists or follows an easily
/// guessed pattern. Letters are compared in lowercase.
///
/// These whole passwords are rejected:
/// - a list entry, such as `qwerty123456789`.
/// - a repetition of a unit at most half as long as the password, such as
///   `aaaaaaaaaaaaaaa` or `abcabcabcabcabc`.
/// - a sequential run of digits or letters, ascending or descending, which may wrap
///   from 9 to 0 and from z to a, such as `123456789012345` or `zyxwvutsrqponml`.
/// - a list entry or a run as above, followed or preceded by a repetition or sequential
///   run of digits or symbols, such as `password1234567`, `1111111iloveyou` or
///   `dragon!@#$%^&*(`. The shifted digit row `!@#$%^&*()` of a US keyboard counts as a
///   sequence like the digits below it.
// NOTE: keyboard walks such as `qwertyuiopasdfgh` and leetspeak such as `p4ssw0rd` are
// caught only where the list contains them.
pub fn is_common_password(password: &NormalizedPassword) -> bool {
    let folded = password.as_str().to_lowercase();
    let chars: Vec<char> = folded.chars().collect();

    is_listed(&folded) || is_run(&chars) || is_base_with_affix_run(&folded, &chars)
}

fn is_listed(folded: &str) -> bool {
    COMMON_PASSWORDS.contains(folded)
}

/// Checks every split of the password into a base (list entry or run) and an affix
/// (run of digits or symbols), with the affix either after or before the base.
fn is_base_with_affix_run(folded: &str, chars: &[char]) -> bool {
    let byte_offsets: Vec<usize> = folded.char_indices().map(|(offset, _)| offset).collect();

    (1..chars.len()).any(|split| {
        let (head_chars, tail_chars) = chars.split_at(split);
        let (head, tail) = folded.split_at(byte_offsets[split]);

        let base_then_affix = is_affix_run(tail_chars) && is_base(head, head_chars);
        let affix_then_base = is_affix_run(head_chars) && is_base(tail, tail_chars);
        base_then_affix || affix_then_base
    })
}

fn is_base(text: &str, chars: &[char]) -> bool {
    is_run(chars) || is_listed(text)
}

/// Checks for a run made only of digits and symbols (any character that is not a letter).
fn is_affix_run(chars: &[char]) -> bool {
    let digits_and_symbols = chars
        .iter()
        .all(|&c| c.is_ascii_digit() || !c.is_alphanumeric());

    digits_and_symbols && is_run(chars)
}

/// Checks for a single character, a repetition or a sequential run.
fn is_run(chars: &[char]) -> bool {
    chars.len() == 1 || is_repetition(chars) || is_sequential(chars)
}

/// Checks whether `chars` repeats a unit at most half its length, with an incomplete
/// last copy allowed: `aaaa`, `abab`, `abcabcab`.
fn is_repetition(chars: &[char]) -> bool {
    let length = chars.len();
    length >= 2 && smallest_period(chars) <= length / 2
}

/// Returns the smallest `p > 0` with `chars[i] == chars[i + p]` for every valid `i`.
///
/// It uses the Knuth-Morris-Pratt prefix function: the longest proper prefix of the whole
/// string that is also its suffix has length `length - p`. This takes linear time, which
/// matters because [`is_base_with_affix_run`] calls it once per split.
fn smallest_period(chars: &[char]) -> usize {
    let mut border = vec![0usize; chars.len()];

    for i in 1..chars.len() {
        let mut candidate = border[i - 1];
        while candidate > 0 && chars[i] != chars[candidate] {
            candidate = border[candidate - 1];
        }
        if chars[i] == chars[candidate] {
            candidate += 1;
        }
        border[i] = candidate;
    }

    chars.len() - border.last().copied().unwrap_or(0)
}

/// Cyclic alphabets in which neighbouring characters form a sequential run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Alphabet {
    Digits,
    Letters,
    /// `!@#$%^&*()`, the characters above the digits 1 to 0 on a US keyboard.
    ShiftedDigits,
}

impl Alphabet {
    fn size(self) -> u32 {
        match self {
            Self::Digits | Self::ShiftedDigits => 10,
            Self::Letters => 26,
        }
    }
}

/// Shifted digit characters, indexed by the digit they share a key with.
const SHIFTED_DIGITS: [char; 10] = [')', '!', '@', '#', '$', '%', '^', '&', '*', '('];

/// Returns the alphabet of a lowercase character and its position in it.
fn locate(c: char) -> Option<(Alphabet, u32)> {
    if let Some(digit) = c.to_digit(10) {
        return Some((Alphabet::Digits, digit));
    }
    if c.is_ascii_lowercase() {
        return Some((Alphabet::Letters, u32::from(c) - u32::from('a')));
    }
    SHIFTED_DIGITS
        .iter()
        .zip(0u32..)
        .find(|&(&shifted, _)| shifted == c)
        .map(|(_, digit)| (Alphabet::ShiftedDigits, digit))
}

/// Checks whether all characters come from one alphabet and each is the previous one
/// plus one, or each the previous one minus one, wrapping at the end of the alphabet.
fn is_sequential(chars: &[char]) -> bool {
    let Some((&first, rest)) = chars.split_first() else {
        return false;
    };
    let Some((alphabet, mut previous)) = locate(first) else {
        return false;
    };

    let size = alphabet.size();
    let mut step = None;
    for &c in rest {
        let Some((next_alphabet, next)) = locate(c) else {
            return false;
        };
        if next_alphabet != alphabet {
            return false;
        }

        // Forward distance on the cycle: 1 is ascending, size - 1 is descending.
        let distance = (next + size - previous) % size;
        if distance != 1 && distance != size - 1 {
            return false;
        }
        if *step.get_or_insert(distance) != distance {
            return false;
        }

        previous = next;
    }

    true
}

#[cfg(test)]
mod tests {
    use unicode_normalization::UnicodeNormalization;

    use super::*;
    use crate::password::normalize;

    fn is_common(raw: &str) -> bool {
        is_common_password(&normalize(raw))
    }

    #[test]
    fn lists_have_enough_entries() {
        let django_count = DJANGO_LIST.lines().filter(|line| !line.is_empty()).count();
        let zxcvbn_count = ZXCVBN_LIST.lines().filter(|line| !line.is_empty()).count();

        assert_eq!(django_count, 19_640);
        assert_eq!(zxcvbn_count, 30_000);
        assert!(
            COMMON_PASSWORDS.len() >= 40_000,
            "{}",
            COMMON_PASSWORDS.len()
        );
    }

    #[test]
    fn list_entries_are_lowercase_nfkc() {
        for entry in COMMON_PASSWORDS.iter() {
            let folded: String = entry.nfkc().collect::<String>().to_lowercase();
            assert_eq!(&folded, entry);
        }
    }

    #[test]
    fn listed_passwords_rejected() {
        for password in [
            "password",
            "123456",
            "michael",
            "jennifer",
            "qwerty123456789",
        ] {
            assert!(is_listed(password), "{password} should be on a list");
            assert!(is_common(password), "{password}");
        }
    }

    #[test]
    fn listed_comparison_ignores_case() {
        assert!(is_common("PassWord"));
        assert!(is_common("QWERTY123456789"));
    }

    #[test]
    fn listed_comparison_uses_nfkc() {
        // Fullwidth letters normalise to ASCII "password".
        assert!(is_common("ｐａｓｓｗｏｒｄ"));
    }

    #[test]
    fn repeated_character_rejected() {
        for password in [
            "aaaaaaaaaaaaaaa",
            "777777777777777",
            "               ",
            "ßßßßßßßßßßßßßßß",
        ] {
            assert!(
                !is_listed(password),
                "{password} tests the pattern, not the list"
            );
            assert!(is_common(password), "{password:?}");
        }
    }

    #[test]
    fn repeated_unit_rejected() {
        for password in [
            "abcabcabcabcabc",
            "passwordpassword",
            "xk9xk9xk9xk9xk9x",
            "Ab1aB1ab1AB1ab1",
            "correct horse correct horse ",
        ] {
            assert!(!is_listed(&password.to_lowercase()), "{password}");
            assert!(is_common(password), "{password}");
        }
    }

    #[test]
    fn sequential_run_rejected() {
        for password in [
            "123456789012345",
            "9876543210987",
            "abcdefghijklmnop",
            "zyxwvutsrqponml",
            "xyzabcdefghijkl",
            "ABCDEFGHIJKLMNO",
        ] {
            assert!(!is_listed(&password.to_lowercase()), "{password}");
            assert!(is_common(password), "{password}");
        }
    }

    #[test]
    fn listed_with_affix_run_rejected() {
        for password in [
            "password1234567",
            "iloveyou1111111",
            "Password7654321",
            "sunshine!!!!!!!",
            "dragon!@#$%^&*(",
            "1234567password",
            "0000000football",
            "princess8901234",
        ] {
            assert!(!is_listed(&password.to_lowercase()), "{password}");
            assert!(is_common(password), "{password}");
        }
    }

    #[test]
    fn listed_entry_with_run_rejected() {
        // On the zxcvbn list, and also the pattern "qwerty" + ascending digits.
        assert!(is_common("qwerty123456789"));
        assert!(is_base_with_affix_run(
            "qwerty123456789",
            &chars_of("qwerty123456789")
        ));
    }

    #[test]
    fn run_with_affix_run_rejected() {
        for password in [
            "aaaaaaaa1234567",
            "abcdefgh1111111",
            "1234567zzzzzzzz",
            "xyzxyzxyz!!!!!!",
        ] {
            assert!(!is_listed(password), "{password}");
            assert!(is_common(password), "{password}");
        }
    }

    #[test]
    fn passphrases_accepted() {
        for password in [
            "correct horse battery staple",
            "tree river lamp cloud",
            "my password is not password",
            "blue coffee mug 42",
            "river 1984 lamp stone",
            "Tr0ub4dor&3-moonlight-gravel",
            "щукаводамостлес",
        ] {
            assert!(!is_common(password), "{password}");
        }
    }

    #[test]
    fn random_strings_accepted() {
        for password in [
            "k7#Pq9!vZm2@Lx4",
            "G8rT2mWq5ZpX1nB",
            "804126937516284",
            "vq3ZL9x!a7Mb2Rt",
        ] {
            assert!(!is_common(password), "{password}");
        }
    }

    #[test]
    fn near_runs_accepted() {
        // A letter run broken once, digits with steps that vary, and a run of two
        // alphabets joined: none is a single run.
        assert!(!is_common("abcdefgxyzhijklmn"));
        assert!(!is_common("135792468013579x"));
        assert!(!is_common("abcdefg1234567hijk"));
    }

    #[test]
    fn repetition_needs_two_full_copies() {
        assert!(is_repetition(&chars_of("abab")));
        assert!(is_repetition(&chars_of("abcabca")));
        assert!(!is_repetition(&chars_of("abcab")));
        assert!(!is_repetition(&chars_of("a")));
        assert!(!is_repetition(&chars_of("")));
    }

    #[test]
    fn smallest_period_values() {
        assert_eq!(smallest_period(&chars_of("aaaa")), 1);
        assert_eq!(smallest_period(&chars_of("abcabcab")), 3);
        assert_eq!(smallest_period(&chars_of("aabaab")), 3);
        assert_eq!(smallest_period(&chars_of("abcd")), 4);
        assert_eq!(smallest_period(&chars_of("")), 0);
    }

    #[test]
    fn sequential_directions_and_wrap() {
        assert!(is_sequential(&chars_of("0123")));
        assert!(is_sequential(&chars_of("3210")));
        assert!(is_sequential(&chars_of("8901")));
        assert!(is_sequential(&chars_of("yzab")));
        assert!(is_sequential(&chars_of("!@#$")));
        assert!(is_sequential(&chars_of("()!@")));
        assert!(!is_sequential(&chars_of("0121")));
        assert!(!is_sequential(&chars_of("0246")));
        assert!(!is_sequential(&chars_of("89ab")));
        assert!(!is_sequential(&chars_of("")));
    }

    #[test]
    fn affix_run_excludes_letters() {
        assert!(is_affix_run(&chars_of("1234")));
        assert!(is_affix_run(&chars_of("----")));
        assert!(is_affix_run(&chars_of("7")));
        assert!(!is_affix_run(&chars_of("abcd")));
        assert!(!is_affix_run(&chars_of("1a1a")));
    }

    fn chars_of(text: &str) -> Vec<char> {
        text.chars().collect()
    }
}
