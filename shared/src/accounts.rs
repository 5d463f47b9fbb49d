//! Accounts: registration, password login and the profile route.
//!
//! A user is two items written in one transaction: the profile under `USER#<id>` and an email
//! claim under `EMAIL#<lower-cased email>`. The claim's `Absent` condition makes an email unique
//! without regard to case, even when registrations race.

use http::StatusCode;
use serde::Deserialize;
use serde_json::json;

use crate::app::App;
use crate::audit::{self, AuditKind, Client};
use crate::email::parse_email;
use crate::http::{bearer_token, json_body, json_response, Problem, Request, Response};
use crate::password::{normalize, Verification};
use crate::store::{AttrValue, Condition, Item, ItemExt, Key, StoreError, Write};
use crate::token::refresh::new_id;

/// How often a registration is retried when DynamoDB reports a conflicting transaction.
const CONFLICT_RETRIES: usize = 3;

pub const ROLE_USER: &str = "user";

#[derive(Deserialize)]
struct Credentials {
    email: String,
    password: String,
}

/// A user profile as stored.
#[derive(Clone, Debug)]
pub struct User {
    pub id: String,
    pub email: String,
    pub role: String,
    pub disabled: bool,
    pub password_hash: Option<String>,
    pub created_at: i64,
}

impl User {
    fn from_item(item: &Item) -> Option<User> {
        Some(User {
            id: item.string("user_id")?.to_owned(),
            email: item.string("email")?.to_owned(),
            role: item.string("role")?.to_owned(),
            disabled: item.string("status") == Some("disabled"),
            password_hash: item.string("password_hash").map(str::to_owned),
            created_at: item.number("created_at")?,
        })
    }

    fn profile_json(&self) -> serde_json::Value {
        json!({
            "id": self.id,
            "email": self.email,
            "role": self.role,
            "created_at": self.created_at,
        })
    }
}

pub(crate) fn user_key(user_id: &str) -> Key {
    Key::new(format!("USER#{user_id}"), "PROFILE")
}

pub(crate) fn email_key(email_key: &str) -> Key {
    Key::new(format!("EMAIL#{email_key}"), "EMAIL")
}

impl App {
    pub(crate) async fn load_user(&self, user_id: &str) -> Result<Option<User>, Problem> {
        let item = self.store.get(&user_key(user_id), self.now()).await?;
        Ok(item.as_ref().and_then(User::from_item))
    }

    pub(crate) async fn register(&self, request: &Request) -> Result<Response, Problem> {
        let credentials: Credentials = json_body(request)?;
        let client = Client::from_request(request);
        let email = parse_email(&credentials.email)
            .map_err(|reason| Problem::bad_request("invalid_email", reason))?;
        let password = self
            .config
            .password_policy
            .check(&credentials.password)
            .map_err(|rejection| Problem::bad_request(rejection.code(), rejection.to_string()))?;

        let now = self.now();
        let user = User {
            id: new_id(),
            email: email.address.clone(),
            role: ROLE_USER.to_owned(),
            disabled: false,
            password_hash: Some(self.hash_password(&password)),
            created_at: now,
        };
        let profile = Item::from([
            ("type".to_owned(), AttrValue::from("user")),
            ("user_id".to_owned(), user.id.clone().into()),
            ("email".to_owned(), user.email.clone().into()),
            ("email_key".to_owned(), email.key.clone().into()),
            ("role".to_owned(), user.role.clone().into()),
            ("status".to_owned(), "active".into()),
            (
                "password_hash".to_owned(),
                user.password_hash.clone().unwrap_or_default().into(),
            ),
            ("created_at".to_owned(), now.into()),
        ]);
        let claim = Item::from([
            ("type".to_owned(), AttrValue::from("email")),
            ("user_id".to_owned(), user.id.clone().into()),
        ]);
        let writes = vec![
            Write::Put {
                key: user_key(&user.id),
                item: profile,
                conditions: vec![Condition::Absent],
            },
            Write::Put {
                key: email_key(&email.key),
                item: claim,
                conditions: vec![Condition::Absent],
            },
        ];

        let mut attempt = 0;
        loop {
            match self.store.transact(writes.clone(), now).await {
                Ok(()) => break,
                Err(StoreError::ConditionFailed) => {
                    return Err(Problem::new(
                        StatusCode::CONFLICT,
                        "email_taken",
                        "an account with this email already exists",
                    ))
                }
                Err(StoreError::Conflict) if attempt < CONFLICT_RETRIES => {
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(20 * attempt as u64)).await;
                }
                Err(error) => return Err(error.into()),
            }
        }

        audit::record(AuditKind::Register, &client, Some(&user.id), None, None);
        Ok(json_response(StatusCode::CREATED, &user.profile_json()))
    }

    pub(crate) async fn login(&self, request: &Request) -> Result<Response, Problem> {
        let credentials: Credentials = json_body(request)?;
        let client = Client::from_request(request);
        let email = parse_email(&credentials.email)
            .map_err(|reason| Problem::bad_request("invalid_email", reason))?;
        let max_bytes = self.config.password_policy.max_bytes;
        if credentials.password.len() > max_bytes {
            return Err(Problem::bad_request(
                "password_too_long",
                format!("password is longer than {max_bytes} bytes"),
            ));
        }
        let password = normalize(&credentials.password);

        let failure = |reason: &'static str, user_id: Option<&str>| {
            audit::record(
                AuditKind::LoginFailure,
                &client,
                user_id,
                None,
                Some(reason),
            );
            Problem::unauthorized("invalid_credentials", "the email or password is incorrect")
        };

        let now = self.now();
        let claim = self.store.get(&email_key(&email.key), now).await?;
        let user = match claim.as_ref().and_then(|item| item.string("user_id")) {
            Some(user_id) => self.load_user(user_id).await?,
            None => None,
        };
        let Some(user) = user else {
            // Same argon2 work as a real verification, so timing does not reveal unknown emails.
            self.verify_dummy_password(&password);
            return Err(failure("unknown_email", None));
        };
        let Some(stored_hash) = user
            .password_hash
            .as_deref()
            .filter(|hash| !hash.is_empty())
        else {
            self.verify_dummy_password(&password);
            return Err(failure("no_password", Some(&user.id)));
        };

        let needs_rehash = match self.verify_password(&password, stored_hash) {
            Verification::Mismatch => return Err(failure("wrong_password", Some(&user.id))),
            Verification::Match { needs_rehash } => needs_rehash,
        };
        if user.disabled {
            audit::record(
                AuditKind::LoginFailure,
                &client,
                Some(&user.id),
                None,
                Some("account_disabled"),
            );
            return Err(Problem::new(
                StatusCode::FORBIDDEN,
                "account_disabled",
                "this account is disabled",
            ));
        }
        if needs_rehash {
            self.upgrade_hash(&user, stored_hash, &password).await;
        }

        let tokens = self.start_session(&user, &client).await?;
        audit::record(
            AuditKind::LoginSuccess,
            &client,
            Some(&user.id),
            Some(&tokens.session_id),
            None,
        );
        Ok(tokens.into_response())
    }

    /// Replaces a hash made with old parameters. A failure is logged and login goes on, because
    /// the old hash still verifies.
    async fn upgrade_hash(
        &self,
        user: &User,
        old_hash: &str,
        password: &crate::password::NormalizedPassword,
    ) {
        let write = Write::Update {
            key: user_key(&user.id),
            set: Item::from([(
                "password_hash".to_owned(),
                self.hash_password(password).into(),
            )]),
            conditions: vec![Condition::Equals("password_hash".into(), old_hash.into())],
        };
        match self.store.write(write, self.now()).await {
            Ok(()) => {
                tracing::info!(user_id = %user.id, "password hash upgraded to the configured parameters")
            }
            Err(error) => {
                tracing::warn!(user_id = %user.id, error = %error, "password hash upgrade failed")
            }
        }
    }

    pub(crate) async fn me(&self, request: &Request) -> Result<Response, Problem> {
        let claims = self.authenticate(request).await?;
        let user = self.load_user(&claims.sub).await?.ok_or_else(|| {
            Problem::unauthorized("invalid_token", "the token's user no longer exists")
        })?;
        if user.disabled {
            return Err(Problem::new(
                StatusCode::FORBIDDEN,
                "account_disabled",
                "this account is disabled",
            ));
        }
        Ok(json_response(StatusCode::OK, &user.profile_json()))
    }

    /// Verifies the bearer access token and checks that its session is still active, so that
    /// this service's own routes honour logout at once.
    pub(crate) async fn authenticate(
        &self,
        request: &Request,
    ) -> Result<crate::token::AccessClaims, Problem> {
        let token = bearer_token(request.headers()).unwrap_or_else(|| {
            Err(Problem::unauthorized(
                "missing_token",
                "an Authorization: Bearer access token is required",
            ))
        })?;
        if token.starts_with(crate::apikeys::API_KEY_PREFIX) {
            return Err(Problem::unauthorized(
                "invalid_token",
                "API keys cannot be used on the /auth routes; send an access token",
            ));
        }
        let claims = self
            .keys
            .verify(&self.policy, token, self.now())
            .await
            .map_err(|error| Problem::unauthorized(error.code(), error.to_string()))?;
        if !self.session_is_active(&claims.sub, &claims.sid).await? {
            return Err(Problem::unauthorized(
                "invalid_token",
                "the token's session has ended",
            ));
        }
        Ok(claims)
    }
}
