//! Audit events: one structured log line per authentication decision, under the `audit` target.
//!
//! Events carry ids, the outcome, the source IP and the user agent. They never carry a password,
//! token, refresh token or hash.

use crate::http::{Request, SourceIp};

/// Request origin as far as the service can tell: source IP and user agent.
#[derive(Clone, Debug, Default)]
pub struct Client {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

impl Client {
    pub fn from_request(request: &Request) -> Self {
        Client {
            ip: request
                .extensions()
                .get::<SourceIp>()
                .map(|SourceIp(ip)| ip.clone()),
            user_agent: crate::http::user_agent(request.headers()),
        }
    }
}

/// The kinds of audit event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditKind {
    Register,
    LoginSuccess,
    LoginFailure,
    Refresh,
    RefreshTokenReused,
    Logout,
    ApiKeyCreated,
    ApiKeyRevoked,
    OAuthStart,
    OAuthSuccess,
    OAuthFailure,
    OAuthLink,
    OAuthRefused,
}

impl AuditKind {
    pub fn as_str(self) -> &'static str {
        match self {
            AuditKind::Register => "register",
            AuditKind::LoginSuccess => "login_success",
            AuditKind::LoginFailure => "login_failure",
            AuditKind::Refresh => "refresh",
            AuditKind::RefreshTokenReused => "refresh_token_reused",
            AuditKind::Logout => "logout",
            AuditKind::ApiKeyCreated => "api_key_created",
            AuditKind::ApiKeyRevoked => "api_key_revoked",
            AuditKind::OAuthStart => "oauth_start",
            AuditKind::OAuthSuccess => "oauth_success",
            AuditKind::OAuthFailure => "oauth_failure",
            AuditKind::OAuthLink => "oauth_link",
            AuditKind::OAuthRefused => "oauth_refused",
        }
    }
}

/// Emits one audit event. `reason` explains failures and is a fixed code, never user input.
pub fn record(
    kind: AuditKind,
    client: &Client,
    user_id: Option<&str>,
    session_id: Option<&str>,
    reason: Option<&'static str>,
) {
    tracing::info!(
        target: "audit",
        event = kind.as_str(),
        user_id = user_id.unwrap_or(""),
        session_id = session_id.unwrap_or(""),
        reason = reason.unwrap_or(""),
        source_ip = client.ip.as_deref().unwrap_or(""),
        user_agent = client.user_agent.as_deref().unwrap_or(""),
        "audit"
    );
}

/// Emits one audit event about an API key, naming the key by its id.
pub fn record_key(kind: AuditKind, client: &Client, user_id: &str, key_id: &str) {
    tracing::info!(
        target: "audit",
        event = kind.as_str(),
        user_id,
        key_id,
        source_ip = client.ip.as_deref().unwrap_or(""),
        user_agent = client.user_agent.as_deref().unwrap_or(""),
        "audit"
    );
}
