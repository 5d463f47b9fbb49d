//! The authenticated caller (principal) with its role and scopes, and the one way handlers
//! require a role or scope.

use http::StatusCode;

use crate::http::Problem;

pub const ROLE_USER: &str = "user";
pub const ROLE_ADMIN: &str = "admin";

pub const SCOPE_READ: &str = "read";
pub const SCOPE_WRITE: &str = "write";
pub const SCOPE_ADMIN: &str = "admin";
/// Every scope the service defines.
pub const ALL_SCOPES: [&str; 3] = [SCOPE_READ, SCOPE_WRITE, SCOPE_ADMIN];

/// Returns the scopes a role may hold and grant to its API keys. Password login issues all of
/// them.
pub fn grantable_scopes(role: &str) -> &'static [&'static str] {
    match role {
        ROLE_ADMIN => &[SCOPE_READ, SCOPE_WRITE, SCOPE_ADMIN],
        _ => &[SCOPE_READ, SCOPE_WRITE],
    }
}

/// Authentication method of a caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMethod {
    AccessToken,
    ApiKey,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::AccessToken => "access_token",
            AuthMethod::ApiKey => "api_key",
        }
    }
}

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub user_id: String,
    pub role: String,
    pub scopes: Vec<String>,
    pub method: AuthMethod,
    /// The session of an access token, or the key id of an API key.
    pub credential_id: String,
}

impl Principal {
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|held| held == scope)
    }

    /// Returns 403 `insufficient_scope` unless the caller has `scope`.
    pub fn require_scope(&self, scope: &str) -> Result<(), Problem> {
        if self.has_scope(scope) {
            Ok(())
        } else {
            Err(Problem::new(
                StatusCode::FORBIDDEN,
                "insufficient_scope",
                format!("this request needs the scope {scope}"),
            ))
        }
    }

    /// Returns 403 `forbidden` unless the caller has `role`.
    pub fn require_role(&self, role: &str) -> Result<(), Problem> {
        if self.role == role {
            Ok(())
        } else {
            Err(Problem::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("this request needs the role {role}"),
            ))
        }
    }
}

/// Splits a space-separated scope string (RFC 6749 section 3.3).
pub fn parse_scopes(scope: &str) -> Vec<String> {
    scope
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(role: &str, scopes: &[&str]) -> Principal {
        Principal {
            user_id: "u".into(),
            role: role.into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            method: AuthMethod::AccessToken,
            credential_id: "s".into(),
        }
    }

    #[test]
    fn missing_scope_is_insufficient_scope() {
        let problem = principal(ROLE_USER, &[SCOPE_READ])
            .require_scope(SCOPE_WRITE)
            .unwrap_err();
        assert_eq!(problem.status, StatusCode::FORBIDDEN);
        assert_eq!(problem.code, "insufficient_scope");
    }

    #[test]
    fn held_scope_passes() {
        assert!(principal(ROLE_USER, &[SCOPE_READ, SCOPE_WRITE])
            .require_scope(SCOPE_WRITE)
            .is_ok());
    }

    #[test]
    fn wrong_role_is_forbidden() {
        let problem = principal(ROLE_USER, &[SCOPE_ADMIN])
            .require_role(ROLE_ADMIN)
            .unwrap_err();
        assert_eq!(problem.code, "forbidden");
    }

    #[test]
    fn users_cannot_grant_admin() {
        assert!(!grantable_scopes(ROLE_USER).contains(&SCOPE_ADMIN));
        assert!(grantable_scopes(ROLE_ADMIN).contains(&SCOPE_ADMIN));
    }

    #[test]
    fn scope_string_splits_on_spaces() {
        assert_eq!(parse_scopes(" read  write "), vec!["read", "write"]);
    }
}
