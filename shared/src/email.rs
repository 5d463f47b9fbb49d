//! Email addresses: trimmed, syntax-checked, and compared without regard to case.

/// Longest accepted address (RFC 5321 section 4.5.3.1.3 limits a path to 256 octets including
/// the angle brackets).
pub const MAX_EMAIL_BYTES: usize = 254;
const MAX_LOCAL_BYTES: usize = 64;

/// A syntactically valid address and its lookup key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email {
    /// As entered, without surrounding whitespace.
    pub address: String,
    /// Lower-cased form used for uniqueness and lookup.
    pub key: String,
}

/// Checks an address with rules deliberately simpler than RFC 5322. An address needs one `@`
/// and a non-empty local part without spaces, quotes or control characters. Its domain needs
/// at least two dot-separated labels of letters, digits and hyphens, in any script so that IDN
/// domains pass.
pub fn parse_email(input: &str) -> Result<Email, String> {
    let address = input.trim();
    if address.len() > MAX_EMAIL_BYTES {
        return Err(format!(
            "email is {} bytes long; the limit is {MAX_EMAIL_BYTES}",
            address.len()
        ));
    }
    let Some((local, domain)) = address.split_once('@') else {
        return Err("email must contain an @".into());
    };
    if local.is_empty() || local.len() > MAX_LOCAL_BYTES {
        return Err(format!(
            "the part of email before @ must be 1 to {MAX_LOCAL_BYTES} bytes long"
        ));
    }
    let local_ok = local.chars().all(|c| {
        !c.is_whitespace()
            && !c.is_control()
            && !matches!(c, '@' | '"' | '<' | '>' | ',' | ';' | '\\')
    }) && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..");
    if !local_ok {
        return Err("the part of email before @ contains characters that are not allowed".into());
    }

    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
    if !domain_ok {
        return Err("the domain of email is not a valid host name such as example.com".into());
    }

    Ok(Email {
        address: address.to_owned(),
        key: address.to_lowercase(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_address_accepted() {
        let email = parse_email("  Ada.Lovelace+test@Example.COM ").unwrap();
        assert_eq!(email.address, "Ada.Lovelace+test@Example.COM");
        assert_eq!(email.key, "ada.lovelace+test@example.com");
    }

    #[test]
    fn address_without_at_rejected() {
        assert!(parse_email("ada.example.com").unwrap_err().contains("@"));
    }

    #[test]
    fn overlong_address_rejected() {
        let long = format!("{}@example.com", "a".repeat(288));
        assert!(parse_email(&long).unwrap_err().contains("limit is 254"));
    }

    #[test]
    fn malformed_addresses_rejected() {
        for input in [
            "@example.com",
            "ada@",
            "ada@localhost",
            "ada@exa mple.com",
            "a b@example.com",
            "ada@-x.com",
            "ada@@example.com",
            ".ada@example.com",
        ] {
            assert!(parse_email(input).is_err(), "{input} was accepted");
        }
    }

    #[test]
    fn idn_domain_accepted() {
        assert!(parse_email("jose@bücher.example").is_ok());
    }
}
