//! The application: configuration, store, key set and hasher built once, and the route table
//! that turns a request into a response.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use http::{Method, StatusCode};

use crate::clock::Clock;
use crate::config::Config;
use crate::http::{add_security_headers, Problem, Request, Response};
use crate::password::{NormalizedPassword, PasswordHasher, Verification};
use crate::store::Store;
use crate::token::{KeySet, KeySetCache, VerificationPolicy};

/// Every route the service serves. Each is one Lambda function in `template.yaml`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route {
    Register,
    Login,
    Refresh,
    Logout,
    Me,
    Jwks,
    OpenIdConfiguration,
    /// `GET` lists and `POST` creates the caller's API keys.
    ApiKeys,
    /// `DELETE /auth/api-keys/{id}` revokes one key.
    ApiKey,
    /// `GET /auth/oauth/{provider}/authorize` starts a provider sign-in.
    OAuthAuthorize,
    /// `GET /auth/oauth/{provider}/callback` finishes it.
    OAuthCallback,
    /// `POST /auth/oauth/exchange` trades a one-time login code for tokens.
    OAuthExchange,
}

impl Route {
    pub const ALL: [Route; 12] = [
        Route::Register,
        Route::Login,
        Route::Refresh,
        Route::Logout,
        Route::Me,
        Route::Jwks,
        Route::OpenIdConfiguration,
        Route::ApiKeys,
        Route::ApiKey,
        Route::OAuthAuthorize,
        Route::OAuthCallback,
        Route::OAuthExchange,
    ];

    pub fn path(self) -> &'static str {
        match self {
            Route::Register => "/auth/register",
            Route::Login => "/auth/login",
            Route::Refresh => "/auth/refresh",
            Route::Logout => "/auth/logout",
            Route::Me => "/auth/me",
            Route::Jwks => "/.well-known/jwks.json",
            Route::OpenIdConfiguration => "/.well-known/openid-configuration",
            Route::ApiKeys => "/auth/api-keys",
            Route::ApiKey => "/auth/api-keys/{id}",
            Route::OAuthAuthorize => "/auth/oauth/{provider}/authorize",
            Route::OAuthCallback => "/auth/oauth/{provider}/callback",
            Route::OAuthExchange => "/auth/oauth/exchange",
        }
    }

    pub fn methods(self) -> &'static [Method] {
        match self {
            Route::Me
            | Route::Jwks
            | Route::OpenIdConfiguration
            | Route::OAuthAuthorize
            | Route::OAuthCallback => &[Method::GET],
            Route::ApiKeys => &[Method::GET, Method::POST],
            Route::ApiKey => &[Method::DELETE],
            _ => &[Method::POST],
        }
    }

    /// Finds the route whose path equals `path`, ignoring one trailing slash. A path parameter
    /// matches one non-empty segment.
    pub fn from_path(path: &str) -> Option<Route> {
        let path = if path.len() > 1 {
            path.strip_suffix('/').unwrap_or(path)
        } else {
            path
        };
        if let Some(id) = path.strip_prefix("/auth/api-keys/") {
            return (!id.is_empty() && !id.contains('/')).then_some(Route::ApiKey);
        }
        if let Some(rest) = path.strip_prefix("/auth/oauth/") {
            return match rest.split_once('/') {
                Some((provider, "authorize")) if !provider.is_empty() => {
                    Some(Route::OAuthAuthorize)
                }
                Some((provider, "callback")) if !provider.is_empty() => Some(Route::OAuthCallback),
                None if rest == "exchange" => Some(Route::OAuthExchange),
                _ => None,
            };
        }
        Route::ALL.into_iter().find(|route| route.path() == path)
    }
}

pub struct App {
    pub(crate) config: Config,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) keys: KeySetCache,
    pub(crate) hasher: PasswordHasher,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) policy: VerificationPolicy,
    pub(crate) api_key_cache: crate::apikeys::KeyCache,
    pub(crate) session_cache: crate::authorizer::SessionCache,
    pub(crate) oauth_discovery: crate::oauth::provider::DiscoveryCache,
    /// Built on first use, so that functions without provider sign-in skip loading TLS roots
    /// at cold start.
    oauth_http: std::sync::OnceLock<openidconnect::reqwest::Client>,
    /// Argon2 computations since start: hashes and verifications, real or dummy.
    password_hashes: AtomicU64,
}

impl fmt::Debug for App {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("App")
            .field("issuer", &self.config.issuer)
            .field("store", &self.store)
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

impl App {
    pub fn new(
        config: Config,
        store: Arc<dyn Store>,
        keys: impl Into<KeySetCache>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let keys = keys.into();
        let hasher = PasswordHasher::new(config.argon2);
        let policy = config.verification_policy();
        App {
            config,
            store,
            keys,
            hasher,
            clock,
            policy,
            api_key_cache: Default::default(),
            session_cache: Default::default(),
            oauth_discovery: Default::default(),
            oauth_http: std::sync::OnceLock::new(),
            password_hashes: AtomicU64::new(0),
        }
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Returns the cached key set.
    pub fn keys(&self) -> Arc<KeySet> {
        self.keys.keys()
    }

    pub fn key_set_cache(&self) -> &KeySetCache {
        &self.keys
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub(crate) fn now(&self) -> i64 {
        self.clock.now()
    }

    pub(crate) fn oauth_http(&self) -> &openidconnect::reqwest::Client {
        self.oauth_http
            .get_or_init(crate::oauth::provider::http_client)
    }

    /// Number of argon2 computations so far. Tests use it to prove that a request was rejected
    /// before any hashing, or that an unknown email costs the same work as a known one.
    pub fn hash_count(&self) -> u64 {
        self.password_hashes.load(Ordering::Relaxed)
    }

    pub(crate) fn hash_password(&self, password: &NormalizedPassword) -> String {
        self.password_hashes.fetch_add(1, Ordering::Relaxed);
        self.hasher.hash(password)
    }

    pub(crate) fn verify_password(&self, password: &NormalizedPassword, phc: &str) -> Verification {
        self.password_hashes.fetch_add(1, Ordering::Relaxed);
        self.hasher.verify(password, phc)
    }

    /// Spends the work of one verification without a stored hash, for unknown emails.
    pub(crate) fn verify_dummy_password(&self, password: &NormalizedPassword) {
        self.password_hashes.fetch_add(1, Ordering::Relaxed);
        self.hasher.verify_dummy(password);
    }

    /// Serves a request whose path names the route.
    pub async fn handle(&self, request: Request) -> Response {
        let route = Route::from_path(request.uri().path());
        self.handle_route(route, request).await
    }

    /// Serves a request already matched to a route (`None`: no route matched).
    pub async fn handle_route(&self, route: Option<Route>, request: Request) -> Response {
        let mut response = match route {
            None => Problem::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no route matches {}", request.uri().path()),
            )
            .into_response(),
            Some(route) if !route.methods().contains(request.method()) => {
                let allowed: Vec<&str> = route.methods().iter().map(Method::as_str).collect();
                let allowed = allowed.join(", ");
                let mut response = Problem::new(
                    StatusCode::METHOD_NOT_ALLOWED,
                    "method_not_allowed",
                    format!("{} accepts only {allowed}", route.path()),
                )
                .into_response();
                response.headers_mut().insert(
                    http::header::ALLOW,
                    http::HeaderValue::from_str(&allowed)
                        .expect("method names are a valid header value"),
                );
                response
            }
            Some(route) => self
                .dispatch(route, &request)
                .await
                .unwrap_or_else(Problem::into_response),
        };
        add_security_headers(&mut response);
        response
    }

    async fn dispatch(&self, route: Route, request: &Request) -> Result<Response, Problem> {
        match route {
            Route::Register => self.register(request).await,
            Route::Login => self.login(request).await,
            Route::Refresh => self.refresh(request).await,
            Route::Logout => self.logout(request).await,
            Route::Me => self.me(request).await,
            Route::Jwks => Ok(self.jwks().await),
            Route::OpenIdConfiguration => Ok(self.openid_configuration().await),
            Route::ApiKeys if request.method() == Method::GET => self.list_api_keys(request).await,
            Route::ApiKeys => self.create_api_key(request).await,
            Route::OAuthAuthorize => self.oauth_authorize(request).await,
            Route::OAuthCallback => self.oauth_callback(request).await,
            Route::OAuthExchange => self.oauth_exchange(request).await,
            Route::ApiKey => {
                let id = request
                    .uri()
                    .path()
                    .trim_end_matches('/')
                    .rsplit('/')
                    .next()
                    .unwrap_or_default();
                self.revoke_api_key(request, id).await
            }
        }
    }
}
