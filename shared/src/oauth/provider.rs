//! The protocol side of provider sign-in, on the `openidconnect` and `oauth2` crates: the
//! authorization URL, the code exchange with the PKCE verifier, and the ID-token checks.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use openidconnect::core::{CoreClient, CoreProviderMetadata, CoreResponseType};
use openidconnect::{
    AuthenticationFlow, AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope,
};

use super::config::{ProviderConfig, ProviderKind};

const GITHUB_AUTHORIZE_URL: &str = "https://github.com/login/oauth/authorize";
const GITHUB_TOKEN_URL: &str = "https://github.com/login/oauth/access_token";
const GITHUB_API: &str = "https://api.github.com";

/// Identity of the person who signed in, as the provider asserts it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderIdentity {
    pub subject: String,
    pub email: Option<String>,
    pub email_verified: bool,
}

/// A started sign-in: the URL to send the browser to and the secrets kept server-side.
pub struct Authorization {
    pub url: String,
    pub state: String,
    pub pkce_verifier: String,
    pub nonce: String,
}

/// Failure of a sign-in at the provider, with a stable code for the problem response.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("the provider could not be reached or answered badly: {0}")]
    Unavailable(String),
    #[error("the provider rejected the authorization code: {0}")]
    CodeRejected(String),
    #[error("the ID token is invalid: {0}")]
    InvalidIdToken(String),
    #[error("the provider returned no usable identity: {0}")]
    NoIdentity(String),
}

impl ProviderError {
    pub fn code(&self) -> &'static str {
        match self {
            ProviderError::Unavailable(_) => "provider_unavailable",
            ProviderError::CodeRejected(_) => "invalid_grant",
            ProviderError::InvalidIdToken(_) => "invalid_id_token",
            ProviderError::NoIdentity(_) => "provider_error",
        }
    }
}

/// Builds the HTTP client for provider calls. It follows no redirects, because a redirect could
/// aim a request anywhere, and it times out after 10 seconds.
pub fn http_client() -> openidconnect::reqwest::Client {
    openidconnect::reqwest::ClientBuilder::new()
        .redirect(openidconnect::reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .expect("a reqwest client with default TLS settings builds")
}

/// How long a discovery document, with the provider's JWKS fetched alongside it, is reused.
/// A provider's new signing key is picked up within this time.
const DISCOVERY_TTL: Duration = Duration::from_secs(3600);

/// Discovery documents by issuer, with the time they were fetched.
#[derive(Debug, Default)]
pub struct DiscoveryCache {
    documents: Mutex<HashMap<String, (Instant, CoreProviderMetadata)>>,
}

impl DiscoveryCache {
    async fn metadata(
        &self,
        http: &openidconnect::reqwest::Client,
        issuer: &str,
    ) -> Result<CoreProviderMetadata, ProviderError> {
        if let Some((fetched_at, found)) = self.lock().get(issuer) {
            if fetched_at.elapsed() < DISCOVERY_TTL {
                return Ok(found.clone());
            }
        }
        let issuer_url = IssuerUrl::new(issuer.to_owned())
            .map_err(|error| ProviderError::Unavailable(error.to_string()))?;
        let metadata = CoreProviderMetadata::discover_async(issuer_url, http)
            .await
            .map_err(|error| ProviderError::Unavailable(error_chain(&error)))?;
        self.lock()
            .insert(issuer.to_owned(), (Instant::now(), metadata.clone()));
        Ok(metadata)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, CoreProviderMetadata)>> {
        self.documents
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn redirect_url(callback: &str) -> Result<RedirectUrl, ProviderError> {
    RedirectUrl::new(callback.to_owned())
        .map_err(|error| ProviderError::Unavailable(error.to_string()))
}

fn secret(provider: &ProviderConfig) -> Option<ClientSecret> {
    provider.client_secret.clone().map(ClientSecret::new)
}

/// Builds the authorization URL with a fresh `state`, PKCE S256 challenge and `nonce`.
pub async fn authorize(
    discovery: &DiscoveryCache,
    http: &openidconnect::reqwest::Client,
    provider: &ProviderConfig,
    callback: &str,
) -> Result<Authorization, ProviderError> {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    match &provider.kind {
        ProviderKind::Oidc { issuer } => {
            let metadata = discovery.metadata(http, issuer).await?;
            let client = CoreClient::from_provider_metadata(
                metadata,
                ClientId::new(provider.client_id.clone()),
                secret(provider),
            )
            .set_redirect_uri(redirect_url(callback)?);
            let (url, state, nonce) = client
                .authorize_url(
                    AuthenticationFlow::<CoreResponseType>::AuthorizationCode,
                    CsrfToken::new_random,
                    Nonce::new_random,
                )
                .add_scope(Scope::new("email".into()))
                .add_scope(Scope::new("profile".into()))
                .set_pkce_challenge(challenge)
                .url();
            Ok(Authorization {
                url: url.to_string(),
                state: state.secret().clone(),
                pkce_verifier: verifier.secret().clone(),
                nonce: nonce.secret().clone(),
            })
        }
        ProviderKind::GitHub => {
            let client = github_client(provider, callback)?;
            let (url, state) = client
                .authorize_url(CsrfToken::new_random)
                .add_scope(Scope::new("read:user".into()))
                .add_scope(Scope::new("user:email".into()))
                .set_pkce_challenge(challenge)
                .url();
            Ok(Authorization {
                url: url.to_string(),
                state: state.secret().clone(),
                pkce_verifier: verifier.secret().clone(),
                nonce: String::new(),
            })
        }
    }
}

fn github_client(
    provider: &ProviderConfig,
    callback: &str,
) -> Result<
    oauth2::basic::BasicClient<
        oauth2::EndpointSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointNotSet,
        oauth2::EndpointSet,
    >,
    ProviderError,
> {
    let invalid = |error: oauth2::url::ParseError| ProviderError::Unavailable(error.to_string());
    let mut client =
        oauth2::basic::BasicClient::new(oauth2::ClientId::new(provider.client_id.clone()))
            .set_auth_uri(oauth2::AuthUrl::new(GITHUB_AUTHORIZE_URL.into()).map_err(invalid)?)
            .set_token_uri(oauth2::TokenUrl::new(GITHUB_TOKEN_URL.into()).map_err(invalid)?)
            .set_redirect_uri(oauth2::RedirectUrl::new(callback.to_owned()).map_err(invalid)?);
    if let Some(secret) = &provider.client_secret {
        client = client.set_client_secret(oauth2::ClientSecret::new(secret.clone()));
    }
    Ok(client)
}

/// Trades the code for tokens with the PKCE verifier and returns the verified identity. For
/// OpenID Connect the ID token's signature (against the provider's JWKS), `iss`, `aud`, `exp`
/// and `nonce` are checked by `openidconnect`'s ID-token verifier.
pub async fn finish(
    discovery: &DiscoveryCache,
    http: &openidconnect::reqwest::Client,
    provider: &ProviderConfig,
    callback: &str,
    code: &str,
    pkce_verifier: &str,
    nonce: &str,
) -> Result<ProviderIdentity, ProviderError> {
    match &provider.kind {
        ProviderKind::Oidc { issuer } => {
            let metadata = discovery.metadata(http, issuer).await?;
            let client = CoreClient::from_provider_metadata(
                metadata,
                ClientId::new(provider.client_id.clone()),
                secret(provider),
            )
            .set_redirect_uri(redirect_url(callback)?);
            let response = client
                .exchange_code(AuthorizationCode::new(code.to_owned()))
                .map_err(|error| ProviderError::Unavailable(error.to_string()))?
                .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_owned()))
                .request_async(http)
                .await
                .map_err(|error| ProviderError::CodeRejected(error_chain(&error)))?;
            let id_token = response.extra_fields().id_token().ok_or_else(|| {
                ProviderError::InvalidIdToken("the token response has no id_token".into())
            })?;
            let claims = id_token
                .claims(&client.id_token_verifier(), &Nonce::new(nonce.to_owned()))
                .map_err(|error| ProviderError::InvalidIdToken(error_chain(&error)))?;
            Ok(ProviderIdentity {
                subject: claims.subject().as_str().to_owned(),
                email: claims.email().map(|email| email.as_str().to_owned()),
                email_verified: claims.email_verified() == Some(true),
            })
        }
        ProviderKind::GitHub => {
            let client = github_client(provider, callback)?;
            let response = client
                .exchange_code(oauth2::AuthorizationCode::new(code.to_owned()))
                .set_pkce_verifier(oauth2::PkceCodeVerifier::new(pkce_verifier.to_owned()))
                .request_async(http)
                .await
                .map_err(|error| ProviderError::CodeRejected(error_chain(&error)))?;
            github_identity(http, response.access_token().secret()).await
        }
    }
}

/// Reads the GitHub user id and its primary verified email from the REST API.
async fn github_identity(
    http: &openidconnect::reqwest::Client,
    access_token: &str,
) -> Result<ProviderIdentity, ProviderError> {
    let get = |path: &str| {
        http.get(format!("{GITHUB_API}{path}"))
            .bearer_auth(access_token)
            .header("accept", "application/vnd.github+json")
            .header("user-agent", "lambda-auth")
            .send()
    };
    let unavailable =
        |error: openidconnect::reqwest::Error| ProviderError::Unavailable(error.to_string());
    let user: serde_json::Value = get("/user")
        .await
        .and_then(|response| response.error_for_status())
        .map_err(unavailable)?
        .json()
        .await
        .map_err(unavailable)?;
    let subject = user["id"]
        .as_i64()
        .ok_or_else(|| ProviderError::NoIdentity("GitHub's /user has no numeric id".into()))?
        .to_string();
    let emails: serde_json::Value = get("/user/emails")
        .await
        .and_then(|response| response.error_for_status())
        .map_err(unavailable)?
        .json()
        .await
        .map_err(unavailable)?;
    let primary = emails
        .as_array()
        .and_then(|emails| emails.iter().find(|email| email["primary"] == true));
    Ok(ProviderIdentity {
        subject,
        email: primary
            .and_then(|email| email["email"].as_str())
            .map(str::to_owned),
        email_verified: primary.is_some_and(|email| email["verified"] == true),
    })
}
