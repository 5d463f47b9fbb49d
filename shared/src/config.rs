//! Configuration from environment variables, validated once at start-up.
//!
//! Each variable is listed in the README with its default. A missing or invalid value stops
//! start-up with a [`ConfigError`] that names the variable and the expected form.

use std::fmt;

use crate::password::{Argon2Params, PasswordPolicy};
use crate::token::{Algorithm, VerificationPolicy};

#[derive(Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub variable: &'static str,
    pub expected: String,
    pub found: Option<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.found {
            None => write!(
                f,
                "{} is not set; expected {}",
                self.variable, self.expected
            ),
            Some(found) => write!(
                f,
                "{} is invalid ({found:?}); expected {}",
                self.variable, self.expected
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Settings shared by Lambda and local mode.
#[derive(Clone, Debug)]
pub struct Config {
    /// `iss` of every access token and the base of the discovery document. `AUTH_ISSUER`.
    pub issuer: String,
    /// `aud` of every access token. `AUTH_AUDIENCE`, default `lambda-auth`.
    pub audience: String,
    /// Access-token lifetime in seconds. `ACCESS_TOKEN_TTL_SECONDS`, default 900.
    pub access_token_ttl: i64,
    /// A session ends this long after its last refresh. `SESSION_IDLE_TTL_SECONDS`, default 7 days.
    pub session_idle_ttl: i64,
    /// A session ends this long after login, however active. `SESSION_ABSOLUTE_TTL_SECONDS`,
    /// default 30 days.
    pub session_absolute_ttl: i64,
    /// How long a rotated refresh token still yields tokens for a concurrent retry.
    /// `REFRESH_REUSE_GRACE_SECONDS`, default 10.
    pub refresh_reuse_grace: i64,
    /// Clock skew accepted on token times. `TOKEN_LEEWAY_SECONDS`, default 30, at most 30.
    pub token_leeway: i64,
    /// Algorithm of newly generated signing keys. `SIGNING_ALGORITHM`, default RS256.
    pub signing_algorithm: Algorithm,
    /// `PASSWORD_MIN_LENGTH` (default 15, at least 8) and `PASSWORD_MAX_BYTES` (default 256).
    pub password_policy: PasswordPolicy,
    /// `ARGON2_MEMORY_KIB` (default 19456), `ARGON2_ITERATIONS` (2), `ARGON2_PARALLELISM` (1).
    pub argon2: Argon2Params,
    /// Active API keys an account may hold. `API_KEY_LIMIT`, default 10.
    pub api_key_limit: usize,
    /// How long a process reuses a verified API key before reading it again, in seconds. A
    /// revoked key keeps working in other processes for at most this long.
    /// `API_KEY_CACHE_SECONDS`, default 5.
    pub api_key_cache_seconds: i64,
    /// Authorizer strict mode: also reject access tokens whose session has ended or whose user
    /// is disabled. `AUTHORIZER_STRICT`, default false.
    pub authorizer_strict: bool,
    /// How long strict mode trusts a session check, in seconds. `STRICT_CACHE_SECONDS`,
    /// default 5.
    pub strict_cache_seconds: i64,
    /// A scope every request through the authorizer must carry (403 otherwise).
    /// `AUTHORIZER_REQUIRED_SCOPE`, default none.
    pub authorizer_required_scope: Option<String>,
    /// Response format for HTTP API (payload 2.0) authorizer events: `simple` or `iam`.
    /// `AUTHORIZER_HTTP_RESPONSE`, default `simple`.
    pub authorizer_http_iam: bool,
    /// Sign-in providers (`OAUTH_*` variables, see `oauth::config`).
    pub oauth: crate::oauth::config::OAuthSettings,
}

impl Config {
    /// Reads the shared settings. `default_issuer` is used when `AUTH_ISSUER` is unset; Lambda
    /// passes `None` because it has no address of its own to default to.
    pub fn from_env(
        env: &dyn Fn(&str) -> Option<String>,
        default_issuer: Option<&str>,
    ) -> Result<Self, ConfigError> {
        let issuer = match (env("AUTH_ISSUER"), default_issuer) {
            (Some(value), _) => value,
            (None, Some(default)) => default.to_owned(),
            (None, None) => {
                return Err(ConfigError {
                    variable: "AUTH_ISSUER",
                    expected: "an https URL such as https://auth.example.com".into(),
                    found: None,
                })
            }
        };
        if !(issuer.starts_with("https://") || issuer.starts_with("http://"))
            || issuer.ends_with('/')
        {
            return Err(ConfigError {
                variable: "AUTH_ISSUER",
                expected: "an http(s) URL without a trailing slash".into(),
                found: Some(issuer),
            });
        }

        let audience = env("AUTH_AUDIENCE").unwrap_or_else(|| "lambda-auth".into());
        if audience.trim().is_empty() {
            return Err(ConfigError {
                variable: "AUTH_AUDIENCE",
                expected: "a non-empty audience name".into(),
                found: Some(audience),
            });
        }

        let signing_algorithm = match env("SIGNING_ALGORITHM") {
            None => Algorithm::RS256,
            Some(value) => Algorithm::parse(&value).ok_or(ConfigError {
                variable: "SIGNING_ALGORITHM",
                expected: "one of RS256, ES256, EdDSA, HS256".into(),
                found: Some(value),
            })?,
        };

        let min_chars = number(env, "PASSWORD_MIN_LENGTH", 15, 8, 64)?;
        let max_bytes = number(env, "PASSWORD_MAX_BYTES", 256, 256, 4096)?;
        let password_policy =
            PasswordPolicy::new(min_chars as usize, max_bytes as usize).map_err(|reason| {
                ConfigError {
                    variable: "PASSWORD_MIN_LENGTH",
                    expected: reason,
                    found: Some(min_chars.to_string()),
                }
            })?;

        let memory = number(env, "ARGON2_MEMORY_KIB", 19_456, 8_192, 1_048_576)?;
        let iterations = number(env, "ARGON2_ITERATIONS", 2, 1, 100)?;
        let parallelism = number(env, "ARGON2_PARALLELISM", 1, 1, 16)?;
        let argon2 = Argon2Params::new(memory as u32, iterations as u32, parallelism as u32)
            .map_err(|reason| ConfigError {
                variable: "ARGON2_MEMORY_KIB",
                expected: reason,
                found: Some(memory.to_string()),
            })?;

        let session_idle_ttl = number(
            env,
            "SESSION_IDLE_TTL_SECONDS",
            7 * 86_400,
            60,
            365 * 86_400,
        )?;
        let session_absolute_ttl = number(
            env,
            "SESSION_ABSOLUTE_TTL_SECONDS",
            30 * 86_400,
            60,
            365 * 86_400,
        )?;
        if session_absolute_ttl < session_idle_ttl {
            return Err(ConfigError {
                variable: "SESSION_ABSOLUTE_TTL_SECONDS",
                expected: format!("at least SESSION_IDLE_TTL_SECONDS ({session_idle_ttl})"),
                found: Some(session_absolute_ttl.to_string()),
            });
        }

        let authorizer_strict = match env("AUTHORIZER_STRICT").as_deref() {
            None | Some("false") | Some("0") => false,
            Some("true") | Some("1") => true,
            Some(other) => {
                return Err(ConfigError {
                    variable: "AUTHORIZER_STRICT",
                    expected: "true or false".into(),
                    found: Some(other.to_owned()),
                })
            }
        };
        let authorizer_required_scope = match env("AUTHORIZER_REQUIRED_SCOPE") {
            None => None,
            Some(scope) if scope.is_empty() => None,
            Some(scope) if crate::principal::ALL_SCOPES.contains(&scope.as_str()) => Some(scope),
            Some(other) => {
                return Err(ConfigError {
                    variable: "AUTHORIZER_REQUIRED_SCOPE",
                    expected: format!("one of {}", crate::principal::ALL_SCOPES.join(", ")),
                    found: Some(other),
                })
            }
        };
        let authorizer_http_iam = match env("AUTHORIZER_HTTP_RESPONSE").as_deref() {
            None | Some("simple") => false,
            Some("iam") => true,
            Some(other) => {
                return Err(ConfigError {
                    variable: "AUTHORIZER_HTTP_RESPONSE",
                    expected: "simple or iam".into(),
                    found: Some(other.to_owned()),
                })
            }
        };

        let oauth = crate::oauth::config::OAuthSettings::from_env(env, &issuer)?;

        Ok(Config {
            issuer,
            audience,
            access_token_ttl: number(env, "ACCESS_TOKEN_TTL_SECONDS", 900, 60, 86_400)?,
            session_idle_ttl,
            session_absolute_ttl,
            refresh_reuse_grace: number(env, "REFRESH_REUSE_GRACE_SECONDS", 10, 0, 300)?,
            token_leeway: number(
                env,
                "TOKEN_LEEWAY_SECONDS",
                30,
                0,
                VerificationPolicy::MAX_LEEWAY_SECONDS,
            )?,
            signing_algorithm,
            password_policy,
            argon2,
            api_key_limit: number(env, "API_KEY_LIMIT", 10, 1, 100)? as usize,
            api_key_cache_seconds: number(env, "API_KEY_CACHE_SECONDS", 5, 0, 300)?,
            authorizer_strict,
            strict_cache_seconds: number(env, "STRICT_CACHE_SECONDS", 5, 0, 300)?,
            authorizer_required_scope,
            authorizer_http_iam,
            oauth,
        })
    }

    /// Returns the verifier policy for tokens this service issued.
    pub fn verification_policy(&self) -> VerificationPolicy {
        VerificationPolicy::new(&self.issuer, &self.audience, self.token_leeway)
    }
}

/// Reads an optional integer variable within `[min, max]`.
pub fn number(
    env: &dyn Fn(&str) -> Option<String>,
    variable: &'static str,
    default: i64,
    min: i64,
    max: i64,
) -> Result<i64, ConfigError> {
    let Some(text) = env(variable) else {
        return Ok(default);
    };
    match text.trim().parse::<i64>() {
        Ok(value) if (min..=max).contains(&value) => Ok(value),
        _ => Err(ConfigError {
            variable,
            expected: format!("an integer from {min} to {max}"),
            found: Some(text),
        }),
    }
}

/// Reads a required, non-empty variable.
pub fn required(
    env: &dyn Fn(&str) -> Option<String>,
    variable: &'static str,
    expected: &str,
) -> Result<String, ConfigError> {
    match env(variable) {
        Some(value) if !value.trim().is_empty() => Ok(value),
        found => Err(ConfigError {
            variable,
            expected: expected.to_owned(),
            found,
        }),
    }
}

/// Reads the process environment; the usual argument to [`Config::from_env`].
pub fn process_env(variable: &str) -> Option<String> {
    std::env::var(variable).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config_with(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_env(
            &|name| map.get(name).cloned(),
            Some("http://127.0.0.1:3000"),
        )
    }

    #[test]
    fn defaults_apply_when_unset() {
        let config = config_with(&[]).unwrap();
        assert_eq!(config.issuer, "http://127.0.0.1:3000");
        assert_eq!(config.audience, "lambda-auth");
        assert_eq!(config.access_token_ttl, 900);
        assert_eq!(config.session_idle_ttl, 604_800);
        assert_eq!(config.session_absolute_ttl, 2_592_000);
        assert_eq!(config.refresh_reuse_grace, 10);
        assert_eq!(config.token_leeway, 30);
        assert_eq!(config.signing_algorithm, Algorithm::RS256);
        assert_eq!(config.password_policy.min_chars, 15);
    }

    #[test]
    fn invalid_number_names_variable() {
        let error = config_with(&[("ACCESS_TOKEN_TTL_SECONDS", "soon")]).unwrap_err();
        assert_eq!(error.variable, "ACCESS_TOKEN_TTL_SECONDS");
        assert!(error.to_string().contains("an integer from 60 to 86400"));
    }

    #[test]
    fn leeway_above_thirty_rejected() {
        let error = config_with(&[("TOKEN_LEEWAY_SECONDS", "60")]).unwrap_err();
        assert_eq!(error.variable, "TOKEN_LEEWAY_SECONDS");
    }

    #[test]
    fn password_minimum_below_eight_rejected() {
        let error = config_with(&[("PASSWORD_MIN_LENGTH", "6")]).unwrap_err();
        assert_eq!(error.variable, "PASSWORD_MIN_LENGTH");
    }

    #[test]
    fn unknown_algorithm_rejected() {
        let error = config_with(&[("SIGNING_ALGORITHM", "none")]).unwrap_err();
        assert_eq!(error.variable, "SIGNING_ALGORITHM");
        assert!(error.to_string().contains("RS256"));
    }

    #[test]
    fn missing_issuer_without_default_rejected() {
        let error = Config::from_env(&|_| None, None).unwrap_err();
        assert_eq!(error.variable, "AUTH_ISSUER");
        assert!(error.to_string().contains("is not set"));
    }

    #[test]
    fn issuer_with_trailing_slash_rejected() {
        let error = config_with(&[("AUTH_ISSUER", "https://auth.example.com/")]).unwrap_err();
        assert_eq!(error.variable, "AUTH_ISSUER");
    }
}
