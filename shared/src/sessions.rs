//! Sessions and refresh-token rotation.
//!
//! A session lives under its user (`USER#<id>` / `SESSION#<sid>`) with a `generation` counter.
//! Each refresh token is an item `REFRESH#<sha-256>` that records the generation it was issued
//! at. Presenting a token of the current generation rotates the session to the next one with a
//! conditional write. A token one generation old counts as a concurrent retry while the
//! rotation is younger than the grace period, so it gets a token of the current generation.
//! Any older presentation is reuse, which revokes the session.

use http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::accounts::User;
use crate::app::App;
use crate::audit::{self, AuditKind, Client};
use crate::http::{
    bearer_token, empty_response, json_body, no_store_json, Problem, Request, Response,
};
use crate::principal::grantable_scopes;
use crate::store::{AttrValue, Condition, Item, ItemExt, Key, StoreError, Write, EXPIRES_AT};
use crate::token::refresh::{
    hash_refresh_token, looks_like_refresh_token, new_id, new_refresh_token,
};
use crate::token::{sign, AccessClaims};

/// `client_id` claim of tokens issued to the service's own front ends (RFC 9068 requires one).
pub const FIRST_PARTY_CLIENT: &str = "lambda-auth";
/// Rounds of re-reading a session after a concurrent rotation won the conditional write.
const ROTATION_ATTEMPTS: usize = 4;

/// A token response body (RFC 6749 section 5.1).
#[derive(Serialize)]
struct TokenResponse<'a> {
    access_token: &'a str,
    token_type: &'static str,
    expires_in: i64,
    refresh_token: &'a str,
    scope: &'a str,
}

/// Tokens issued for one session.
pub struct IssuedTokens {
    pub session_id: String,
    pub access_token: String,
    pub refresh_token: String,
    pub expires_in: i64,
    pub scope: String,
}

impl IssuedTokens {
    pub fn into_response(self) -> Response {
        no_store_json(
            StatusCode::OK,
            &TokenResponse {
                access_token: &self.access_token,
                token_type: "Bearer",
                expires_in: self.expires_in,
                refresh_token: &self.refresh_token,
                scope: &self.scope,
            },
        )
    }
}

#[derive(Deserialize)]
struct RefreshRequest {
    refresh_token: String,
}

#[derive(Deserialize, Default)]
struct LogoutRequest {
    refresh_token: Option<String>,
}

/// A session as stored.
struct Session {
    id: String,
    user_id: String,
    active: bool,
    generation: i64,
    rotated_at: i64,
    absolute_expires_at: i64,
}

impl Session {
    fn from_item(item: &Item) -> Option<Session> {
        Some(Session {
            id: item.string("session_id")?.to_owned(),
            user_id: item.string("user_id")?.to_owned(),
            active: item.string("status") == Some("active"),
            generation: item.number("generation")?,
            rotated_at: item.number("rotated_at")?,
            absolute_expires_at: item.number("absolute_expires_at")?,
        })
    }
}

pub(crate) fn session_key(user_id: &str, session_id: &str) -> Key {
    Key::new(format!("USER#{user_id}"), format!("SESSION#{session_id}"))
}

fn refresh_key(token_hash: &str) -> Key {
    Key::new(format!("REFRESH#{token_hash}"), "REFRESH")
}

fn invalid_refresh_token(detail: &str) -> Problem {
    Problem::unauthorized("invalid_refresh_token", detail)
}

impl App {
    /// Signs an access token for a user's session.
    async fn access_token(&self, user_id: &str, role: &str, session_id: &str, now: i64) -> String {
        let claims = AccessClaims {
            iss: self.config.issuer.clone(),
            sub: user_id.to_owned(),
            aud: self.config.audience.clone(),
            exp: now + self.config.access_token_ttl,
            iat: now,
            nbf: now,
            jti: new_id(),
            sid: session_id.to_owned(),
            role: role.to_owned(),
            scope: grantable_scopes(role).join(" "),
            client_id: FIRST_PARTY_CLIENT.to_owned(),
        };
        sign(&*self.keys.signing_keys().await, &claims)
    }

    /// Builds the refresh-token item written next to a session update.
    fn refresh_write(&self, token: &str, session: &Session, generation: i64) -> Write {
        Write::Put {
            key: refresh_key(&hash_refresh_token(token)),
            item: Item::from([
                ("type".to_owned(), AttrValue::from("refresh_token")),
                ("user_id".to_owned(), session.user_id.clone().into()),
                ("session_id".to_owned(), session.id.clone().into()),
                ("generation".to_owned(), generation.into()),
                // Kept until the session's absolute end so that reuse is still recognised.
                (EXPIRES_AT.to_owned(), session.absolute_expires_at.into()),
            ]),
            conditions: vec![Condition::Absent],
        }
    }

    async fn issued(
        &self,
        user: &User,
        session_id: &str,
        refresh_token: String,
        now: i64,
    ) -> IssuedTokens {
        IssuedTokens {
            session_id: session_id.to_owned(),
            access_token: self
                .access_token(&user.id, &user.role, session_id, now)
                .await,
            refresh_token,
            expires_in: self.config.access_token_ttl,
            scope: grantable_scopes(&user.role).join(" "),
        }
    }

    /// Creates a session and its first refresh token in one transaction.
    pub(crate) async fn start_session(
        &self,
        user: &User,
        client: &Client,
    ) -> Result<IssuedTokens, Problem> {
        let now = self.now();
        let session = Session {
            id: new_id(),
            user_id: user.id.clone(),
            active: true,
            generation: 0,
            rotated_at: now,
            absolute_expires_at: now + self.config.session_absolute_ttl,
        };
        let mut item = Item::from([
            ("type".to_owned(), AttrValue::from("session")),
            ("session_id".to_owned(), session.id.clone().into()),
            ("user_id".to_owned(), user.id.clone().into()),
            ("status".to_owned(), "active".into()),
            ("generation".to_owned(), 0.into()),
            ("created_at".to_owned(), now.into()),
            ("last_used_at".to_owned(), now.into()),
            ("rotated_at".to_owned(), now.into()),
            (
                "absolute_expires_at".to_owned(),
                session.absolute_expires_at.into(),
            ),
            (
                EXPIRES_AT.to_owned(),
                self.idle_expiry(&session, now).into(),
            ),
        ]);
        if let Some(ip) = &client.ip {
            item.insert("source_ip".to_owned(), ip.clone().into());
        }
        if let Some(agent) = &client.user_agent {
            item.insert("user_agent".to_owned(), agent.clone().into());
        }

        let refresh_token = new_refresh_token();
        self.store
            .transact(
                vec![
                    Write::Put {
                        key: session_key(&user.id, &session.id),
                        item,
                        conditions: vec![Condition::Absent],
                    },
                    self.refresh_write(&refresh_token, &session, 0),
                ],
                now,
            )
            .await?;
        Ok(self.issued(user, &session.id, refresh_token, now).await)
    }

    fn idle_expiry(&self, session: &Session, now: i64) -> i64 {
        (now + self.config.session_idle_ttl).min(session.absolute_expires_at)
    }

    pub(crate) async fn session_is_active(
        &self,
        user_id: &str,
        session_id: &str,
    ) -> Result<bool, Problem> {
        let item = self
            .store
            .get(&session_key(user_id, session_id), self.now())
            .await?;
        Ok(item
            .as_ref()
            .and_then(Session::from_item)
            .is_some_and(|session| session.active))
    }

    pub(crate) async fn refresh(&self, request: &Request) -> Result<Response, Problem> {
        let body: RefreshRequest = json_body(request)?;
        let client = Client::from_request(request);
        if !looks_like_refresh_token(&body.refresh_token) {
            return Err(invalid_refresh_token(
                "refresh_token is not a refresh token issued by this service",
            ));
        }
        let token_hash = hash_refresh_token(&body.refresh_token);
        let now = self.now();

        let presented = self
            .store
            .get(&refresh_key(&token_hash), now)
            .await?
            .ok_or_else(|| invalid_refresh_token("the refresh token is unknown or expired"))?;
        let (Some(user_id), Some(session_id), Some(token_generation)) = (
            presented.string("user_id"),
            presented.string("session_id"),
            presented.number("generation"),
        ) else {
            tracing::error!("refresh token item lacks user_id, session_id or generation");
            return Err(Problem::unavailable());
        };

        let user = self
            .load_user(user_id)
            .await?
            .ok_or_else(|| invalid_refresh_token("the refresh token's user no longer exists"))?;
        if user.disabled {
            return Err(Problem::new(
                StatusCode::FORBIDDEN,
                "account_disabled",
                "this account is disabled",
            ));
        }

        for _ in 0..ROTATION_ATTEMPTS {
            let session = self
                .store
                .get(&session_key(user_id, session_id), now)
                .await?
                .as_ref()
                .and_then(Session::from_item)
                .filter(|session| session.active)
                .ok_or_else(|| invalid_refresh_token("the refresh token's session has ended"))?;

            let (new_token, writes) = if token_generation == session.generation {
                self.rotation(&session, now)
            } else if token_generation == session.generation - 1
                && now - session.rotated_at <= self.config.refresh_reuse_grace
            {
                self.grace_reissue(&session, now)
            } else {
                self.revoke(&session, "refresh_token_reused", now).await?;
                audit::record(
                    AuditKind::RefreshTokenReused,
                    &client,
                    Some(user_id),
                    Some(session_id),
                    None,
                );
                return Err(Problem::unauthorized(
                    "refresh_token_reused",
                    "this refresh token was already used; the session has been ended",
                ));
            };

            match self.store.transact(writes, now).await {
                Ok(()) => {
                    audit::record(
                        AuditKind::Refresh,
                        &client,
                        Some(user_id),
                        Some(session_id),
                        None,
                    );
                    return Ok(self
                        .issued(&user, session_id, new_token, now)
                        .await
                        .into_response());
                }
                // Another request rotated the session first: read it again and decide anew.
                Err(StoreError::ConditionFailed | StoreError::Conflict) => continue,
                Err(error) => return Err(error.into()),
            }
        }
        Err(Problem::new(
            StatusCode::CONFLICT,
            "refresh_conflict",
            "the session changed during the refresh; retry with the newest refresh token",
        ))
    }

    /// Moves the session to the next generation and issues a token of that generation.
    fn rotation(&self, session: &Session, now: i64) -> (String, Vec<Write>) {
        let next = session.generation + 1;
        let token = new_refresh_token();
        let update = Write::Update {
            key: session_key(&session.user_id, &session.id),
            set: Item::from([
                ("generation".to_owned(), next.into()),
                ("rotated_at".to_owned(), now.into()),
                ("last_used_at".to_owned(), now.into()),
                (EXPIRES_AT.to_owned(), self.idle_expiry(session, now).into()),
            ]),
            conditions: vec![
                Condition::Equals("generation".into(), session.generation.into()),
                Condition::Equals("status".into(), "active".into()),
            ],
        };
        let refresh = self.refresh_write(&token, session, next);
        (token, vec![update, refresh])
    }

    /// Issues another token of the current generation to a retry inside the grace period.
    fn grace_reissue(&self, session: &Session, now: i64) -> (String, Vec<Write>) {
        let token = new_refresh_token();
        let touch = Write::Update {
            key: session_key(&session.user_id, &session.id),
            set: Item::from([("last_used_at".to_owned(), now.into())]),
            conditions: vec![
                Condition::Equals("generation".into(), session.generation.into()),
                Condition::Equals("status".into(), "active".into()),
            ],
        };
        let refresh = self.refresh_write(&token, session, session.generation);
        (token, vec![touch, refresh])
    }

    /// Marks a session revoked. Its refresh tokens stop working; the item stays until it expires
    /// so that later presentations of its tokens are still recognised.
    async fn revoke(
        &self,
        session: &Session,
        reason: &'static str,
        now: i64,
    ) -> Result<(), Problem> {
        let write = Write::Update {
            key: session_key(&session.user_id, &session.id),
            set: Item::from([
                ("status".to_owned(), AttrValue::from("revoked")),
                ("revoked_reason".to_owned(), reason.into()),
                ("revoked_at".to_owned(), now.into()),
            ]),
            conditions: vec![],
        };
        match self.store.write(write, now).await {
            Ok(()) | Err(StoreError::ConditionFailed) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    pub(crate) async fn logout(&self, request: &Request) -> Result<Response, Problem> {
        let client = Client::from_request(request);
        let now = self.now();

        let (user_id, session_id) = if bearer_token(request.headers()).is_some() {
            let claims = self.authenticate(request).await?;
            (claims.sub, claims.sid)
        } else if request.body().is_empty() {
            return Err(Problem::unauthorized(
                "missing_token",
                "send an Authorization: Bearer access token or a JSON body with refresh_token",
            ));
        } else {
            let body: LogoutRequest = json_body(request)?;
            let token = body
                .refresh_token
                .filter(|token| looks_like_refresh_token(token))
                .ok_or_else(|| {
                    invalid_refresh_token("refresh_token is missing or not a refresh token")
                })?;
            let item = self
                .store
                .get(&refresh_key(&hash_refresh_token(&token)), now)
                .await?
                .ok_or_else(|| invalid_refresh_token("the refresh token is unknown or expired"))?;
            match (item.string("user_id"), item.string("session_id")) {
                (Some(user), Some(session)) => (user.to_owned(), session.to_owned()),
                _ => return Err(Problem::unavailable()),
            }
        };

        let session = self
            .store
            .get(&session_key(&user_id, &session_id), now)
            .await?
            .as_ref()
            .and_then(Session::from_item);
        if let Some(session) = session.filter(|session| session.active) {
            self.revoke(&session, "logout", now).await?;
        }
        audit::record(
            AuditKind::Logout,
            &client,
            Some(&user_id),
            Some(&session_id),
            None,
        );
        Ok(empty_response(StatusCode::NO_CONTENT))
    }

    /// Revokes every active session of a user.
    pub(crate) async fn end_all_sessions(
        &self,
        user_id: &str,
        reason: &'static str,
    ) -> Result<(), Problem> {
        let now = self.now();
        let sessions = self
            .store
            .query(&format!("USER#{user_id}"), "SESSION#", now)
            .await?;
        for (_, item) in sessions {
            if let Some(session) = Session::from_item(&item).filter(|session| session.active) {
                self.revoke(&session, reason, now).await?;
            }
        }
        Ok(())
    }
}
