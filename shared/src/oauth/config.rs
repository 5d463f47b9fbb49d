//! Sign-in providers from configuration: any OpenID Connect issuer, Google, and GitHub.

use std::fmt;

use crate::config::ConfigError;

/// Protocol of a provider.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProviderKind {
    /// An OpenID Connect issuer, found through its discovery document.
    Oidc { issuer: String },
    /// GitHub: plain OAuth 2.0, with identity and verified emails from its REST API.
    GitHub,
}

/// One configured provider.
#[derive(Clone)]
pub struct ProviderConfig {
    /// The name in the route: `/auth/oauth/{name}/authorize`.
    pub name: String,
    pub kind: ProviderKind,
    pub client_id: String,
    /// The client secret, or the ARN of a Secrets Manager secret that contains it (Lambda).
    pub client_secret: Option<String>,
    pub client_secret_arn: Option<String>,
    /// Whether the provider's `email_verified` is trusted for linking to an existing account.
    /// `OAUTH_<N>_TRUST_EMAIL_VERIFIED`; default true for Google and GitHub, which verify the
    /// addresses they assert, and false for other issuers.
    pub trust_email_verified: bool,
}

impl fmt::Debug for ProviderConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderConfig")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<hidden>"),
            )
            .field("client_secret_arn", &self.client_secret_arn)
            .field("trust_email_verified", &self.trust_email_verified)
            .finish()
    }
}

/// Everything provider sign-in needs from configuration.
#[derive(Clone, Debug, Default)]
pub struct OAuthSettings {
    pub providers: Vec<ProviderConfig>,
    /// Front-end URLs a sign-in may return to, matched exactly. `OAUTH_RETURN_URLS`.
    pub return_urls: Vec<String>,
    /// Link a provider identity to the account with the same email when the provider asserts
    /// the email is verified. `OAUTH_LINK_VERIFIED_EMAIL`, default true.
    pub link_verified_email: bool,
    /// Base of the callback URLs registered at the providers: `<base>/auth/oauth/<name>/callback`.
    /// `OAUTH_CALLBACK_BASE_URL`, default the issuer.
    pub callback_base: String,
}

impl OAuthSettings {
    pub fn provider(&self, name: &str) -> Option<&ProviderConfig> {
        self.providers.iter().find(|provider| provider.name == name)
    }

    pub fn callback_url(&self, provider: &str) -> String {
        format!("{}/auth/oauth/{provider}/callback", self.callback_base)
    }

    /// Reads `OAUTH_PROVIDERS` (comma-separated names) and the variables of each name `n`.
    /// They are `OAUTH_<N>_TYPE` (`oidc`, `google` or `github`, by default the name for google
    /// and github and `oidc` otherwise), `OAUTH_<N>_ISSUER` for oidc, `OAUTH_<N>_CLIENT_ID`, and
    /// `OAUTH_<N>_CLIENT_SECRET` or `OAUTH_<N>_CLIENT_SECRET_ARN`.
    pub fn from_env(
        env: &dyn Fn(&str) -> Option<String>,
        issuer: &str,
    ) -> Result<Self, ConfigError> {
        let invalid = |variable: &'static str, expected: &str, found: Option<String>| ConfigError {
            variable,
            expected: expected.to_owned(),
            found,
        };
        let names: Vec<String> = env("OAUTH_PROVIDERS")
            .unwrap_or_default()
            .split(',')
            .map(|name| name.trim().to_ascii_lowercase())
            .filter(|name| !name.is_empty())
            .collect();

        let mut providers = Vec::new();
        for name in names {
            if !name
                .bytes()
                .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-')
            {
                return Err(invalid(
                    "OAUTH_PROVIDERS",
                    "comma-separated names of lowercase letters, digits and hyphens",
                    Some(name),
                ));
            }
            let prefix = format!("OAUTH_{}_", name.to_ascii_uppercase().replace('-', "_"));
            let variable = |suffix: &str| env(&format!("{prefix}{suffix}"));
            let missing = |suffix: &str, expected: &str| ConfigError {
                variable: "OAUTH_PROVIDERS",
                expected: format!("{prefix}{suffix} to be set to {expected} for provider {name}"),
                found: None,
            };

            let kind_name = variable("TYPE").unwrap_or_else(|| match name.as_str() {
                "google" | "github" => name.clone(),
                _ => "oidc".to_owned(),
            });
            let kind = match kind_name.as_str() {
                "google" => ProviderKind::Oidc {
                    issuer: "https://accounts.google.com".to_owned(),
                },
                "github" => ProviderKind::GitHub,
                "oidc" => {
                    let issuer =
                        variable("ISSUER").ok_or_else(|| missing("ISSUER", "the issuer URL"))?;
                    if !(issuer.starts_with("https://") || issuer.starts_with("http://127.0.0.1:"))
                    {
                        return Err(missing("ISSUER", "an https URL (http only for 127.0.0.1)"));
                    }
                    ProviderKind::Oidc { issuer }
                }
                other => {
                    return Err(ConfigError {
                        variable: "OAUTH_PROVIDERS",
                        expected: format!("{prefix}TYPE to be oidc, google or github"),
                        found: Some(other.to_owned()),
                    })
                }
            };
            let client_id =
                variable("CLIENT_ID").ok_or_else(|| missing("CLIENT_ID", "the client id"))?;
            // An empty value counts as unset: the template passes empty parameters through.
            let client_secret = variable("CLIENT_SECRET").filter(|value| !value.is_empty());
            let client_secret_arn = variable("CLIENT_SECRET_ARN").filter(|value| !value.is_empty());
            let trust_email_verified = match variable("TRUST_EMAIL_VERIFIED").as_deref() {
                None | Some("") => kind_name != "oidc",
                Some("true") => true,
                Some("false") => false,
                Some(other) => {
                    return Err(ConfigError {
                        variable: "OAUTH_PROVIDERS",
                        expected: format!("{prefix}TRUST_EMAIL_VERIFIED to be true or false"),
                        found: Some(other.to_owned()),
                    })
                }
            };
            if client_secret.is_none() && client_secret_arn.is_none() {
                return Err(missing(
                    "CLIENT_SECRET",
                    "the client secret (or CLIENT_SECRET_ARN)",
                ));
            }
            providers.push(ProviderConfig {
                name,
                kind,
                client_id,
                client_secret,
                client_secret_arn,
                trust_email_verified,
            });
        }

        let return_urls: Vec<String> = env("OAUTH_RETURN_URLS")
            .unwrap_or_default()
            .split(',')
            .map(|url| url.trim().to_owned())
            .filter(|url| !url.is_empty())
            .collect();
        for url in &return_urls {
            let allowed = url::Url::parse(url).ok().is_some_and(|parsed| {
                let local = matches!(parsed.host_str(), Some("127.0.0.1" | "localhost"));
                let scheme_ok = parsed.scheme() == "https" || (parsed.scheme() == "http" && local);
                scheme_ok && parsed.fragment().is_none()
            });
            if !allowed {
                return Err(invalid(
                    "OAUTH_RETURN_URLS",
                    "https URLs without a fragment (http only for localhost and 127.0.0.1)",
                    Some(url.clone()),
                ));
            }
        }
        if !providers.is_empty() && return_urls.is_empty() {
            return Err(invalid(
                "OAUTH_RETURN_URLS",
                "at least one front-end URL when OAUTH_PROVIDERS is set",
                None,
            ));
        }
        let link_verified_email = match env("OAUTH_LINK_VERIFIED_EMAIL").as_deref() {
            None | Some("true") | Some("1") => true,
            Some("false") | Some("0") => false,
            Some(other) => {
                return Err(invalid(
                    "OAUTH_LINK_VERIFIED_EMAIL",
                    "true or false",
                    Some(other.to_owned()),
                ))
            }
        };
        let callback_base = env("OAUTH_CALLBACK_BASE_URL").unwrap_or_else(|| issuer.to_owned());

        Ok(OAuthSettings {
            providers,
            return_urls,
            link_verified_email,
            callback_base: callback_base.trim_end_matches('/').to_owned(),
        })
    }
}
