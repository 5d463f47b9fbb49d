//! The Lambda authorizer that other API Gateway APIs attach: one decision for access tokens
//! and API keys, and the response shapes of REST API (TOKEN and REQUEST) and HTTP API (payload
//! 2.0, simple or IAM policy) authorizers.
//!
//! API Gateway caches an authorizer's response per identity source, then applies it to every
//! route the caller requests until the cache expires. Policies therefore allow every method and
//! path of the stage, and deny the `/admin` paths explicitly to callers without the admin
//! role, so that a cached policy is right for every route. Simple responses carry no routes:
//! they are decided for the requested route, and are cache-safe only when `$context.routeKey`
//! is part of the identity source (see the README).

use std::collections::HashMap;
use std::sync::Mutex;

use serde::Serialize;
use serde_json::{json, Value};

use crate::apikeys::{KeyRejection, API_KEY_PREFIX};
use crate::app::App;
use crate::principal::{parse_scopes, AuthMethod, Principal, ROLE_ADMIN};

/// The path prefix that only the admin role may reach through the authorizer.
pub const ADMIN_PATH: &str = "/admin";

/// Strict-mode session checks that passed recently, by (user id, session id).
#[derive(Debug, Default)]
pub struct SessionCache {
    checked: Mutex<HashMap<(String, String), i64>>,
}

/// A credential found in a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credential {
    AccessToken(String),
    ApiKey(String),
}

impl Credential {
    /// Reads an `Authorization` header value: `Bearer <token or key>`. A bare API key is
    /// accepted too, for REST TOKEN authorizers whose token source is `x-api-key`.
    pub fn from_authorization(value: &str) -> Option<Credential> {
        let value = value.trim();
        let secret = match value.split_once(' ') {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => rest.trim(),
            Some(_) => return None,
            None if value.starts_with(API_KEY_PREFIX) => value,
            None => return None,
        };
        if secret.is_empty() {
            None
        } else if secret.starts_with(API_KEY_PREFIX) {
            Some(Credential::ApiKey(secret.to_owned()))
        } else {
            Some(Credential::AccessToken(secret.to_owned()))
        }
    }

    /// Finds the credential in request headers, with names compared without regard to case.
    /// An `Authorization` header decides alone, even when it is unusable. Falling back to
    /// `x-api-key` would let a response cached under one `Authorization` value (API Gateway's
    /// identity source) carry another caller's key. Without `Authorization`, `x-api-key` is read.
    pub fn from_headers<'a>(
        headers: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Option<Credential> {
        let mut api_key = None;
        for (name, value) in headers {
            if name.eq_ignore_ascii_case("authorization") {
                return Credential::from_authorization(value);
            } else if name.eq_ignore_ascii_case("x-api-key") && !value.trim().is_empty() {
                api_key = Some(Credential::ApiKey(value.trim().to_owned()));
            }
        }
        api_key
    }
}

/// The outcome of authorization.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow(Principal),
    /// Valid credentials without the scope or role the request needs: 403.
    Forbidden(Principal, &'static str),
    /// Missing or invalid credentials: 401.
    Unauthorized(&'static str),
}

/// Context the authorizer passes to the backend. Every field is a string, because API Gateway
/// accepts only strings, numbers and booleans as context values. A list or an object cannot
/// be put here.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuthorizerContext {
    pub principal_id: String,
    pub role: String,
    /// Space-separated scopes.
    pub scopes: String,
    /// The session of an access token; empty for API keys.
    pub session_id: String,
    /// The key id of an API key; empty for access tokens.
    pub key_id: String,
    /// `access_token` or `api_key`.
    pub auth_method: String,
}

impl AuthorizerContext {
    pub fn new(principal: &Principal) -> Self {
        let (session_id, key_id) = match principal.method {
            AuthMethod::AccessToken => (principal.credential_id.clone(), String::new()),
            AuthMethod::ApiKey => (String::new(), principal.credential_id.clone()),
        };
        AuthorizerContext {
            principal_id: principal.user_id.clone(),
            role: principal.role.clone(),
            scopes: principal.scopes.join(" "),
            session_id,
            key_id,
            auth_method: principal.method.as_str().to_owned(),
        }
    }

    /// Returns the context as header pairs, for the local gateway mode.
    pub fn headers(&self) -> [(&'static str, &str); 6] {
        [
            ("x-auth-principal-id", &self.principal_id),
            ("x-auth-role", &self.role),
            ("x-auth-scopes", &self.scopes),
            ("x-auth-session-id", &self.session_id),
            ("x-auth-key-id", &self.key_id),
            ("x-auth-method", &self.auth_method),
        ]
    }
}

/// Failure of an authorizer event to get a policy. `Unauthorized` becomes the Lambda error message that
/// API Gateway turns into 401.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthorizerError {
    #[error("Unauthorized")]
    Unauthorized,
    #[error("the event is not an API Gateway authorizer event: {0}")]
    InvalidEvent(&'static str),
}

impl App {
    /// Decides a request: verifies the credential, applies strict mode and the required scope.
    /// `path` is the requested path when the decision may depend on it (simple responses and
    /// the local gateway). Policies pass `None` and encode path rules instead.
    pub async fn authorize(&self, credential: Option<Credential>, path: Option<&str>) -> Decision {
        let principal = match credential {
            None => return Decision::Unauthorized("missing_credentials"),
            Some(Credential::ApiKey(key)) => match self.verify_api_key(&key).await {
                Ok(principal) => principal,
                Err(KeyRejection::Malformed) => return Decision::Unauthorized("malformed_api_key"),
                Err(KeyRejection::Unknown) => return Decision::Unauthorized("unknown_api_key"),
                Err(KeyRejection::OwnerDisabled) => {
                    return Decision::Unauthorized("account_disabled")
                }
            },
            Some(Credential::AccessToken(token)) => {
                let claims = match self.keys.verify(&self.policy, &token, self.now()).await {
                    Ok(claims) => claims,
                    Err(_) => return Decision::Unauthorized("invalid_token"),
                };
                if self.config.authorizer_strict
                    && !self.strict_check(&claims.sub, &claims.sid).await
                {
                    return Decision::Unauthorized("session_ended");
                }
                Principal {
                    user_id: claims.sub,
                    role: claims.role,
                    scopes: parse_scopes(&claims.scope),
                    method: AuthMethod::AccessToken,
                    credential_id: claims.sid,
                }
            }
        };

        if let Some(scope) = &self.config.authorizer_required_scope {
            if !principal.has_scope(scope) {
                return Decision::Forbidden(principal, "insufficient_scope");
            }
        }
        if path.is_some_and(is_admin_path) && principal.role != ROLE_ADMIN {
            return Decision::Forbidden(principal, "forbidden");
        }
        Decision::Allow(principal)
    }

    /// Checks that the session is active and its user enabled, trusting a passed check for
    /// `STRICT_CACHE_SECONDS`. A store failure counts as a failed check.
    async fn strict_check(&self, user_id: &str, session_id: &str) -> bool {
        let now = self.now();
        let cache_key = (user_id.to_owned(), session_id.to_owned());
        let fresh = self
            .session_cache
            .checked
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .get(&cache_key)
            .is_some_and(|checked_at| now - checked_at < self.config.strict_cache_seconds);
        if fresh {
            return true;
        }

        let active = matches!(self.session_is_active(user_id, session_id).await, Ok(true));
        let enabled = matches!(self.load_user(user_id).await, Ok(Some(user)) if !user.disabled);
        if active && enabled {
            let mut checked = self
                .session_cache
                .checked
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if checked.len() >= 10_000 {
                checked.clear();
            }
            checked.insert(cache_key, now);
        }
        active && enabled
    }

    /// Builds the response to one authorizer event in the shape its API type expects.
    pub async fn authorizer_response(&self, event: &Value) -> Result<Value, AuthorizerError> {
        let kind = AuthorizerEvent::parse(event)?;
        let (credential, arn, path, simple) = match &kind {
            AuthorizerEvent::RestToken { token, method_arn } => (
                Credential::from_authorization(token),
                method_arn.as_str(),
                None,
                false,
            ),
            AuthorizerEvent::RestRequest {
                headers,
                method_arn,
            } => (
                credential_from_json(headers),
                method_arn.as_str(),
                None,
                false,
            ),
            AuthorizerEvent::HttpApi {
                headers,
                route_arn,
                path,
            } => {
                let simple = !self.config.authorizer_http_iam;
                let path = simple.then_some(path.as_str());
                (
                    credential_from_json(headers),
                    route_arn.as_str(),
                    path,
                    simple,
                )
            }
        };

        let decision = self.authorize(credential, path).await;
        let outcome = match &decision {
            Decision::Allow(_) => "allow",
            Decision::Forbidden(_, reason) | Decision::Unauthorized(reason) => reason,
        };
        tracing::info!(
            target: "audit",
            event = "authorize",
            outcome,
            principal_id = match &decision {
                Decision::Allow(principal) | Decision::Forbidden(principal, _) => principal.user_id.as_str(),
                Decision::Unauthorized(_) => "",
            },
            "authorizer decision"
        );

        match decision {
            Decision::Unauthorized(_) => Err(AuthorizerError::Unauthorized),
            Decision::Allow(principal) if simple => Ok(json!({
                "isAuthorized": true,
                "context": AuthorizerContext::new(&principal),
            })),
            Decision::Forbidden(_, _) if simple => Ok(json!({ "isAuthorized": false })),
            Decision::Allow(principal) => Ok(policy_response(&principal, arn, true)),
            Decision::Forbidden(principal, _) => Ok(policy_response(&principal, arn, false)),
        }
    }
}

/// Returns whether a path is `/admin` or below it, compared without regard to case, because
/// an upstream router may match routes without case even though API Gateway does not.
fn is_admin_path(path: &str) -> bool {
    let path = path.to_ascii_lowercase();
    path == ADMIN_PATH || path.starts_with("/admin/")
}

/// The three event kinds, with what the decision needs from each.
enum AuthorizerEvent {
    RestToken {
        token: String,
        method_arn: String,
    },
    RestRequest {
        headers: Value,
        method_arn: String,
    },
    HttpApi {
        headers: Value,
        route_arn: String,
        path: String,
    },
}

impl AuthorizerEvent {
    fn parse(event: &Value) -> Result<Self, AuthorizerError> {
        let text = |name: &str| event.get(name).and_then(Value::as_str).map(str::to_owned);
        if event.get("version").and_then(Value::as_str) == Some("2.0") {
            let route_arn =
                text("routeArn").ok_or(AuthorizerError::InvalidEvent("routeArn is missing"))?;
            // The route key names the matched route template ("GET /admin/{id}"), free of the
            // stage and of a custom domain's base path. Only the `$default` route has no path,
            // and then the request path without the stage is used.
            // A greedy route (`/{proxy+}`) names no concrete path, so it is decided on the request
            // path as well.
            let route_path = text("routeKey")
                .and_then(|route_key| route_key.split_once(' ').map(|(_, path)| path.to_owned()))
                .filter(|path| !path.contains("+}"));
            let path = match route_path {
                Some(path) => path,
                None => {
                    let path = event
                        .pointer("/requestContext/http/path")
                        .and_then(Value::as_str)
                        .or_else(|| event.get("rawPath").and_then(Value::as_str))
                        .unwrap_or("/");
                    strip_stage(
                        path,
                        event
                            .pointer("/requestContext/stage")
                            .and_then(Value::as_str),
                    )
                }
            };
            return Ok(AuthorizerEvent::HttpApi {
                headers: event.get("headers").cloned().unwrap_or(Value::Null),
                route_arn,
                path,
            });
        }
        let method_arn =
            text("methodArn").ok_or(AuthorizerError::InvalidEvent("methodArn is missing"))?;
        match event.get("type").and_then(Value::as_str) {
            Some("TOKEN") => Ok(AuthorizerEvent::RestToken {
                token: text("authorizationToken").unwrap_or_default(),
                method_arn,
            }),
            Some("REQUEST") => Ok(AuthorizerEvent::RestRequest {
                headers: event.get("headers").cloned().unwrap_or(Value::Null),
                method_arn,
            }),
            _ => Err(AuthorizerError::InvalidEvent(
                "type is neither TOKEN nor REQUEST",
            )),
        }
    }
}

fn strip_stage(path: &str, stage: Option<&str>) -> String {
    match stage.filter(|stage| *stage != "$default") {
        Some(stage) => path
            .strip_prefix(&format!("/{stage}"))
            .filter(|rest| rest.starts_with('/'))
            .unwrap_or(path)
            .to_owned(),
        None => path.to_owned(),
    }
}

fn credential_from_json(headers: &Value) -> Option<Credential> {
    let map = headers.as_object()?;
    Credential::from_headers(
        map.iter()
            .filter_map(|(name, value)| Some((name.as_str(), value.as_str()?))),
    )
}

/// The stage part of a method or route ARN:
/// `arn:aws:execute-api:<region>:<account>:<api id>/<stage>`.
fn stage_arn(arn: &str) -> &str {
    let mut slashes = arn.match_indices('/').map(|(index, _)| index);
    match (slashes.next(), slashes.next()) {
        (Some(_), Some(second)) => &arn[..second],
        _ => arn,
    }
}

/// Methods named in policies' Deny statements. A method ARN names the request's own method,
/// also for `ANY` routes.
const POLICY_METHODS: [&str; 7] = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/// Builds an IAM policy response that stays right for every route of the stage.
fn policy_response(principal: &Principal, arn: &str, allow: bool) -> Value {
    let stage = stage_arn(arn);
    let every_route = format!("{stage}/*/*");
    let mut statements = vec![json!({
        "Action": "execute-api:Invoke",
        "Effect": if allow { "Allow" } else { "Deny" },
        "Resource": [every_route],
    })];
    if allow && principal.role != ROLE_ADMIN {
        // One pair per method instead of `*/admin`, because `*` in an ARN pattern also matches
        // `/`, and `<stage>/*/admin` would deny `/orders/admin` as well.
        let resources: Vec<String> = POLICY_METHODS
            .iter()
            .flat_map(|method| {
                [
                    format!("{stage}/{method}{ADMIN_PATH}"),
                    format!("{stage}/{method}{ADMIN_PATH}/*"),
                ]
            })
            .collect();
        statements.push(json!({
            "Action": "execute-api:Invoke",
            "Effect": "Deny",
            "Resource": resources,
        }));
    }
    json!({
        "principalId": principal.user_id,
        "policyDocument": { "Version": "2012-10-17", "Statement": statements },
        "context": AuthorizerContext::new(principal),
    })
}

/// Runs the authorizer function.
pub async fn run() -> Result<(), lambda_http::Error> {
    use lambda_http::lambda_runtime::{self, service_fn, LambdaEvent};
    use std::sync::Arc;

    crate::logging::init(true);
    let app = match crate::lambda::app_from_env().await {
        Ok(app) => Arc::new(app),
        Err(error) => {
            tracing::error!(error = %error, "start-up failed");
            return Err(error.into());
        }
    };
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let app = Arc::clone(&app);
        async move {
            app.authorizer_response(&event.payload)
                .await
                .map_err(lambda_http::Error::from)
        }
    }))
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_key_is_api_key() {
        let credential = Credential::from_authorization("bearer lak_abc");
        assert_eq!(credential, Some(Credential::ApiKey("lak_abc".into())));
    }

    #[test]
    fn bearer_jwt_is_access_token() {
        let credential = Credential::from_authorization("Bearer eyJ.x.y");
        assert_eq!(credential, Some(Credential::AccessToken("eyJ.x.y".into())));
    }

    #[test]
    fn basic_scheme_is_no_credential() {
        assert_eq!(Credential::from_authorization("Basic YWRhOnB3"), None);
        assert_eq!(Credential::from_authorization("Bearer "), None);
    }

    #[test]
    fn unusable_authorization_ignores_api_key() {
        let headers = [("Authorization", "Basic YTpi"), ("x-api-key", "lak_x")];
        assert_eq!(Credential::from_headers(headers), None);
    }

    #[test]
    fn admin_check_ignores_case() {
        assert!(is_admin_path("/Admin"));
        assert!(is_admin_path("/ADMIN/users"));
    }

    #[test]
    fn header_names_ignore_case() {
        let headers = [("X-Api-Key", "lak_x"), ("Content-Type", "application/json")];
        assert_eq!(
            Credential::from_headers(headers),
            Some(Credential::ApiKey("lak_x".into()))
        );
        let headers = [("AUTHORIZATION", "Bearer t.t.t"), ("x-api-key", "lak_x")];
        assert_eq!(
            Credential::from_headers(headers),
            Some(Credential::AccessToken("t.t.t".into()))
        );
    }

    #[test]
    fn stage_arn_drops_method_and_path() {
        let arn = "arn:aws:execute-api:us-east-1:123456789012:a1b2c3/prod/GET/orders/1";
        assert_eq!(
            stage_arn(arn),
            "arn:aws:execute-api:us-east-1:123456789012:a1b2c3/prod"
        );
    }

    #[test]
    fn admin_paths_recognised() {
        assert!(is_admin_path("/admin"));
        assert!(is_admin_path("/admin/users"));
        assert!(!is_admin_path("/administrator"));
        assert!(!is_admin_path("/orders"));
    }
}
