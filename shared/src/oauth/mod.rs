//! Sign-in with OAuth 2.0 and OpenID Connect providers.
//!
//! `GET /auth/oauth/{provider}/authorize?return_to=<url>` stores `state`, the PKCE verifier and
//! the `nonce` server-side for 10 minutes, binds them to the browser with a short-lived cookie,
//! and redirects to the provider. The callback consumes the state exactly once, checks the
//! cookie, exchanges the code, verifies the identity, and redirects to the allow-listed return
//! URL with a one-time login code. The front end trades that code for tokens at
//! `POST /auth/oauth/exchange`, so no token ever appears in a URL.
//!
//! Account rules: identities are keyed by (provider, subject), never by email. A first sign-in
//! creates an account, unless an account with the same email exists. That account is linked
//! only when the provider asserts the email is verified, the provider is trusted to verify
//! emails, and `OAUTH_LINK_VERIFIED_EMAIL` allows it. Otherwise the sign-in is refused with
//! `account_exists`. A password account's email was never verified, so linking it to a
//! verified provider identity removes its password and revokes its sessions and API keys. The
//! person who registered the address without owning it loses access, and the address's owner
//! keeps the account.

pub mod config;
pub mod provider;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use http::header::{HeaderValue, COOKIE, LOCATION, SET_COOKIE};
use http::StatusCode;
use serde::Deserialize;
use subtle::ConstantTimeEq;

use crate::accounts::{email_key, user_key, User, ROLE_USER};
use crate::app::App;
use crate::audit::{self, AuditKind, Client};
use crate::email::parse_email;
use crate::http::{empty_response, json_body, Problem, Request, Response};
use crate::store::{AttrValue, Condition, Item, ItemExt, Key, StoreError, Write, EXPIRES_AT};
use crate::token::refresh::{new_refresh_token, random_bytes};

/// Name of the cookie that binds a sign-in to the browser that started it.
pub const BINDING_COOKIE: &str = "lambda_auth_oauth";
/// Lifetime of a started sign-in, in seconds.
const STATE_TTL: i64 = 600;
/// Lifetime of a one-time login code, in seconds.
const LOGIN_CODE_TTL: i64 = 60;

fn hash(value: &str) -> String {
    crate::token::refresh::sha256_base64url(value)
}

fn state_key(state: &str) -> Key {
    Key::new(format!("OAUTHSTATE#{}", hash(state)), "STATE")
}

fn identity_key(provider: &str, subject: &str) -> Key {
    Key::new(format!("IDENTITY#{provider}#{subject}"), "IDENTITY")
}

fn login_code_key(code: &str) -> Key {
    Key::new(format!("LOGINCODE#{}", hash(code)), "CODE")
}

/// Query parameters of a request, decoded.
fn query(request: &Request) -> Vec<(String, String)> {
    url::form_urlencoded::parse(request.uri().query().unwrap_or_default().as_bytes())
        .into_owned()
        .collect()
}

fn query_value<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

/// Returns the value of a cookie from every `Cookie` header of the request.
fn cookie(request: &Request, name: &str) -> Option<String> {
    request
        .headers()
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|header| header.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
}

fn redirect(location: &str) -> Response {
    let mut response = empty_response(StatusCode::FOUND);
    response.headers_mut().insert(
        LOCATION,
        HeaderValue::from_str(location).unwrap_or_else(|_| HeaderValue::from_static("/")),
    );
    response
}

/// Appends a query parameter to a URL that may already have a query.
fn with_parameter(url: &str, name: &str, value: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    let encoded: String = url::form_urlencoded::byte_serialize(value.as_bytes()).collect();
    format!("{url}{separator}{name}={encoded}")
}

fn bad_request(code: &'static str, detail: impl Into<String>) -> Problem {
    Problem::bad_request(code, detail)
}

/// Returns the provider's name from `/auth/oauth/{provider}/...`.
fn provider_name(request: &Request) -> String {
    let mut segments = request.uri().path().trim_end_matches('/').rsplit('/');
    segments.next();
    segments.next().unwrap_or_default().to_owned()
}

#[derive(Deserialize)]
struct ExchangeRequest {
    code: String,
}

impl App {
    fn oauth_provider(&self, request: &Request) -> Result<&config::ProviderConfig, Problem> {
        let name = provider_name(request);
        self.config.oauth.provider(&name).ok_or_else(|| {
            Problem::new(
                StatusCode::NOT_FOUND,
                "unknown_provider",
                format!("no sign-in provider is named {name:?}"),
            )
        })
    }

    pub(crate) async fn oauth_authorize(&self, request: &Request) -> Result<Response, Problem> {
        let provider = self.oauth_provider(request)?;
        let client = Client::from_request(request);
        let parameters = query(request);
        let return_to = query_value(&parameters, "return_to")
            .ok_or_else(|| bad_request("invalid_return_to", "return_to is missing"))?;
        if !self
            .config
            .oauth
            .return_urls
            .iter()
            .any(|allowed| allowed == return_to)
        {
            audit::record(
                AuditKind::OAuthFailure,
                &client,
                None,
                None,
                Some("return_to_not_allowed"),
            );
            return Err(bad_request(
                "invalid_return_to",
                "return_to is not on the allow-list (OAUTH_RETURN_URLS)",
            ));
        }

        let callback = self.config.oauth.callback_url(&provider.name);
        let started = provider::authorize(&self.oauth_discovery, self.oauth_http(), provider, &callback)
            .await
            .map_err(|error| {
                tracing::error!(provider = %provider.name, error = %error, "starting a provider sign-in failed");
                Problem::new(StatusCode::BAD_GATEWAY, error.code(), "the sign-in provider could not be reached; retry later")
            })?;

        let binding = URL_SAFE_NO_PAD.encode(random_bytes::<32>());
        let now = self.now();
        let item = Item::from([
            ("type".to_owned(), AttrValue::from("oauth_state")),
            ("provider".to_owned(), provider.name.clone().into()),
            ("pkce_verifier".to_owned(), started.pkce_verifier.into()),
            ("nonce".to_owned(), started.nonce.into()),
            ("return_to".to_owned(), return_to.to_owned().into()),
            ("binding".to_owned(), hash(&binding).into()),
            (EXPIRES_AT.to_owned(), (now + STATE_TTL).into()),
        ]);
        self.store
            .write(
                Write::Put {
                    key: state_key(&started.state),
                    item,
                    conditions: vec![Condition::Absent],
                },
                now,
            )
            .await?;

        audit::record(AuditKind::OAuthStart, &client, None, None, None);
        let mut response = redirect(&started.url);
        let cookie = format!(
            "{BINDING_COOKIE}={binding}; Path=/auth/oauth; Max-Age={STATE_TTL}; HttpOnly; Secure; SameSite=Lax"
        );
        response.headers_mut().insert(
            SET_COOKIE,
            HeaderValue::from_str(&cookie).expect("the cookie is ASCII"),
        );
        Ok(response)
    }

    pub(crate) async fn oauth_callback(&self, request: &Request) -> Result<Response, Problem> {
        let provider = self.oauth_provider(request)?;
        let client = Client::from_request(request);
        let failure = |reason: &'static str, problem: Problem| {
            audit::record(AuditKind::OAuthFailure, &client, None, None, Some(reason));
            problem
        };
        let parameters = query(request);
        let state = query_value(&parameters, "state").ok_or_else(|| {
            failure(
                "missing_state",
                bad_request("invalid_state", "state is missing"),
            )
        })?;
        let now = self.now();

        let stored = self
            .store
            .get(&state_key(state), now)
            .await?
            .ok_or_else(|| {
                failure(
                    "unknown_state",
                    bad_request(
                        "invalid_state",
                        "the sign-in is unknown, expired or already finished",
                    ),
                )
            })?;
        let binding = cookie(request, BINDING_COOKIE).unwrap_or_default();
        let binding_matches: bool = hash(&binding)
            .as_bytes()
            .ct_eq(stored.string("binding").unwrap_or_default().as_bytes())
            .into();
        if !binding_matches || stored.string("provider") != Some(provider.name.as_str()) {
            return Err(failure(
                "state_mismatch",
                bad_request(
                    "state_mismatch",
                    "the sign-in was started in another browser or for another provider",
                ),
            ));
        }
        // Consuming the state with a conditional delete makes a replayed callback fail.
        match self
            .store
            .write(
                Write::Delete {
                    key: state_key(state),
                    conditions: vec![Condition::Present],
                },
                now,
            )
            .await
        {
            Ok(()) => {}
            Err(StoreError::ConditionFailed) => {
                return Err(failure(
                    "state_replayed",
                    bad_request("invalid_state", "this sign-in was already finished"),
                ))
            }
            Err(error) => return Err(error.into()),
        }

        if let Some(error) = query_value(&parameters, "error") {
            let reason = if error == "access_denied" {
                "access_denied"
            } else {
                "provider_error"
            };
            return Err(failure(
                reason,
                bad_request(
                    if error == "access_denied" {
                        "access_denied"
                    } else {
                        "provider_error"
                    },
                    format!("the provider returned the error {error:?}"),
                ),
            ));
        }
        // RFC 9207: a provider that names itself in the callback must name the issuer this
        // sign-in was started with, so that a response from another provider is not accepted.
        if let (Some(returned), config::ProviderKind::Oidc { issuer }) =
            (query_value(&parameters, "iss"), &provider.kind)
        {
            if returned.trim_end_matches('/') != issuer.trim_end_matches('/') {
                return Err(failure(
                    "issuer_mismatch",
                    bad_request("issuer_mismatch", "the callback's iss names another issuer"),
                ));
            }
        }
        let code = query_value(&parameters, "code").ok_or_else(|| {
            failure(
                "missing_code",
                bad_request("provider_error", "the callback has neither code nor error"),
            )
        })?;

        let callback = self.config.oauth.callback_url(&provider.name);
        let identity = provider::finish(
            &self.oauth_discovery,
            self.oauth_http(),
            provider,
            &callback,
            code,
            stored.string("pkce_verifier").unwrap_or_default(),
            stored.string("nonce").unwrap_or_default(),
        )
        .await
        .map_err(|error| {
            tracing::warn!(provider = %provider.name, error = %error, "provider sign-in failed");
            let code = error.code();
            let status = if code == "provider_unavailable" {
                StatusCode::BAD_GATEWAY
            } else {
                StatusCode::UNAUTHORIZED
            };
            // The error chain stays in the log: it can name provider hosts and responses.
            let detail = match code {
                "invalid_id_token" => "the provider's ID token did not verify",
                "invalid_grant" => "the provider rejected the authorization code",
                "provider_unavailable" => "the sign-in provider could not be reached; retry later",
                _ => "the provider returned no usable identity",
            };
            failure(code, Problem::new(status, code, detail))
        })?;

        let user = self
            .account_for_identity(&provider.name, &identity, &client)
            .await?;
        if user.disabled {
            return Err(failure(
                "account_disabled",
                Problem::new(
                    StatusCode::FORBIDDEN,
                    "account_disabled",
                    "this account is disabled",
                ),
            ));
        }

        let code = new_refresh_token();
        let item = Item::from([
            ("type".to_owned(), AttrValue::from("login_code")),
            ("user_id".to_owned(), user.id.clone().into()),
            ("provider".to_owned(), provider.name.clone().into()),
            (EXPIRES_AT.to_owned(), (now + LOGIN_CODE_TTL).into()),
        ]);
        self.store
            .write(
                Write::Put {
                    key: login_code_key(&code),
                    item,
                    conditions: vec![Condition::Absent],
                },
                now,
            )
            .await?;
        audit::record(AuditKind::OAuthSuccess, &client, Some(&user.id), None, None);

        let return_to = stored.string("return_to").unwrap_or_default();
        let mut response = redirect(&with_parameter(return_to, "code", &code));
        let expired = format!(
            "{BINDING_COOKIE}=; Path=/auth/oauth; Max-Age=0; HttpOnly; Secure; SameSite=Lax"
        );
        response.headers_mut().insert(
            SET_COOKIE,
            HeaderValue::from_str(&expired).expect("the cookie is ASCII"),
        );
        Ok(response)
    }

    /// Finds or creates the account of a provider identity, under the rules in the module
    /// documentation.
    async fn account_for_identity(
        &self,
        provider: &str,
        identity: &provider::ProviderIdentity,
        client: &Client,
    ) -> Result<User, Problem> {
        let trust_email_verified = self
            .config
            .oauth
            .provider(provider)
            .is_some_and(|config| config.trust_email_verified);
        let now = self.now();
        if let Some(linked) = self
            .store
            .get(&identity_key(provider, &identity.subject), now)
            .await?
        {
            let user_id = linked.string("user_id").unwrap_or_default();
            return self.load_user(user_id).await?.ok_or_else(|| {
                Problem::unauthorized("account_not_found", "the linked account no longer exists")
            });
        }

        let email = identity
            .email
            .as_deref()
            .and_then(|email| parse_email(email).ok());
        let existing = match &email {
            Some(email) => self.store.get(&email_key(&email.key), now).await?,
            None => None,
        };
        let identity_item = |user_id: &str| {
            Item::from([
                ("type".to_owned(), AttrValue::from("identity")),
                ("user_id".to_owned(), user_id.to_owned().into()),
                ("provider".to_owned(), provider.to_owned().into()),
                ("subject".to_owned(), identity.subject.clone().into()),
                ("created_at".to_owned(), now.into()),
            ])
        };

        if let Some(existing) = existing {
            let user_id = existing.string("user_id").unwrap_or_default().to_owned();
            let trusted = identity.email_verified && trust_email_verified;
            if !(trusted && self.config.oauth.link_verified_email) {
                let reason = if !self.config.oauth.link_verified_email {
                    "linking_turned_off"
                } else {
                    "email_not_verified_by_provider"
                };
                audit::record(
                    AuditKind::OAuthRefused,
                    client,
                    Some(&user_id),
                    None,
                    Some(reason),
                );
                return Err(Problem::new(
                    StatusCode::CONFLICT,
                    "account_exists",
                    "an account with this email exists; sign in with its password first",
                ));
            }
            let user = self.load_user(&user_id).await?.ok_or_else(|| {
                Problem::unauthorized("account_not_found", "the account no longer exists")
            })?;
            if user.disabled {
                return Err(Problem::new(
                    StatusCode::FORBIDDEN,
                    "account_disabled",
                    "this account is disabled",
                ));
            }
            let mut writes = vec![Write::Put {
                key: identity_key(provider, &identity.subject),
                item: identity_item(&user_id),
                conditions: vec![Condition::Absent],
            }];
            let previously_unverified = !self.email_verified(&user_id).await?;
            if previously_unverified {
                writes.push(Write::Update {
                    key: user_key(&user_id),
                    set: Item::from([
                        ("password_hash".to_owned(), AttrValue::from("")),
                        ("email_verified".to_owned(), true.into()),
                    ]),
                    conditions: vec![],
                });
            }
            self.store
                .transact(writes, now)
                .await
                .map_err(|error| match error {
                    StoreError::ConditionFailed | StoreError::Conflict => Problem::new(
                        StatusCode::CONFLICT,
                        "sign_in_conflict",
                        "another sign-in linked this identity at the same time; retry",
                    ),
                    other => other.into(),
                })?;
            if previously_unverified {
                // The person who registered the address loses every credential.
                self.end_all_sessions(&user_id, "email_owner_signed_in")
                    .await?;
                self.revoke_all_api_keys(&user_id).await?;
            }
            audit::record(AuditKind::OAuthLink, client, Some(&user_id), None, None);
            return Ok(user);
        }

        // A new account. An unverified email is kept on the profile but does not claim the
        // address, so it cannot block the address's owner.
        let user = User {
            id: crate::token::refresh::new_id(),
            email: email
                .as_ref()
                .map(|email| email.address.clone())
                .unwrap_or_default(),
            role: ROLE_USER.to_owned(),
            disabled: false,
            password_hash: None,
            created_at: now,
        };
        let profile = Item::from([
            ("type".to_owned(), AttrValue::from("user")),
            ("user_id".to_owned(), user.id.clone().into()),
            ("email".to_owned(), user.email.clone().into()),
            ("role".to_owned(), user.role.clone().into()),
            ("status".to_owned(), "active".into()),
            ("password_hash".to_owned(), "".into()),
            ("email_verified".to_owned(), identity.email_verified.into()),
            ("created_at".to_owned(), now.into()),
        ]);
        let mut writes = vec![
            Write::Put {
                key: user_key(&user.id),
                item: profile,
                conditions: vec![Condition::Absent],
            },
            Write::Put {
                key: identity_key(provider, &identity.subject),
                item: identity_item(&user.id),
                conditions: vec![Condition::Absent],
            },
        ];
        if let (Some(email), true) = (&email, identity.email_verified && trust_email_verified) {
            writes.push(Write::Put {
                key: email_key(&email.key),
                item: Item::from([
                    ("type".to_owned(), AttrValue::from("email")),
                    ("user_id".to_owned(), user.id.clone().into()),
                ]),
                conditions: vec![Condition::Absent],
            });
        }
        self.store
            .transact(writes, now)
            .await
            .map_err(|error| match error {
                StoreError::ConditionFailed | StoreError::Conflict => Problem::new(
                    StatusCode::CONFLICT,
                    "sign_in_conflict",
                    "another sign-in created this account at the same time; retry",
                ),
                other => other.into(),
            })?;
        audit::record(
            AuditKind::Register,
            client,
            Some(&user.id),
            None,
            Some("provider"),
        );
        Ok(user)
    }

    async fn email_verified(&self, user_id: &str) -> Result<bool, Problem> {
        let profile = self.store.get(&user_key(user_id), self.now()).await?;
        Ok(profile
            .as_ref()
            .and_then(|item| item.boolean("email_verified"))
            == Some(true))
    }

    pub(crate) async fn oauth_exchange(&self, request: &Request) -> Result<Response, Problem> {
        let body: ExchangeRequest = json_body(request)?;
        let client = Client::from_request(request);
        let invalid = || {
            Problem::new(
                StatusCode::BAD_REQUEST,
                "invalid_grant",
                "the login code is unknown, expired or already used",
            )
        };
        if !crate::token::refresh::looks_like_refresh_token(&body.code) {
            return Err(invalid());
        }

        // The conditional delete consumes the code, so a second exchange fails.
        let now = self.now();
        let item = self
            .store
            .get(&login_code_key(&body.code), now)
            .await?
            .ok_or_else(invalid)?;
        match self
            .store
            .write(
                Write::Delete {
                    key: login_code_key(&body.code),
                    conditions: vec![Condition::Present],
                },
                now,
            )
            .await
        {
            Ok(()) => {}
            Err(StoreError::ConditionFailed) => return Err(invalid()),
            Err(error) => return Err(error.into()),
        }

        let user = self
            .load_user(item.string("user_id").unwrap_or_default())
            .await?
            .ok_or_else(invalid)?;
        if user.disabled {
            return Err(Problem::new(
                StatusCode::FORBIDDEN,
                "account_disabled",
                "this account is disabled",
            ));
        }

        let tokens = self.start_session(&user, &client).await?;
        audit::record(
            AuditKind::LoginSuccess,
            &client,
            Some(&user.id),
            Some(&tokens.session_id),
            Some("provider"),
        );
        Ok(tokens.into_response())
    }
}
