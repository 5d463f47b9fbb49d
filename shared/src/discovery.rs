//! Public metadata: the JWK Set and the OpenID Provider configuration document.

use http::header::{HeaderValue, CACHE_CONTROL};
use http::StatusCode;
use serde_json::json;

use crate::app::{App, Route};
use crate::http::{json_response, Response};

/// How long clients may cache the JWK Set, in seconds. Short, so that a key added by a rotation
/// is picked up well before it signs.
const JWKS_MAX_AGE_SECONDS: u32 = 300;

impl App {
    pub(crate) async fn jwks(&self) -> Response {
        let keys = self.keys.signing_keys().await;
        let mut response = json_response(StatusCode::OK, keys.jwks());
        response.headers_mut().insert(
            CACHE_CONTROL,
            HeaderValue::from_str(&format!("public, max-age={JWKS_MAX_AGE_SECONDS}"))
                .expect("ASCII header value"),
        );
        response
    }

    /// Builds the discovery document (OpenID Connect Discovery 1.0 section 3), limited to what the
    /// service implements today: the issuer and its keys, which is what API Gateway's JWT
    /// authorizer and JWT libraries read. The service is not an OpenID provider, so it publishes
    /// no authorization or token endpoint.
    pub(crate) async fn openid_configuration(&self) -> Response {
        let issuer = &self.config.issuer;
        let document = json!({
            "issuer": issuer,
            "jwks_uri": format!("{issuer}{}", Route::Jwks.path()),
            "subject_types_supported": ["public"],
            "access_token_signing_alg_values_supported": [self.keys.signing_keys().await.current_alg().as_str()],
            "claims_supported": ["iss", "sub", "aud", "exp", "iat", "nbf", "jti", "sid", "role", "scope", "client_id"],
            "scopes_supported": crate::principal::ALL_SCOPES,
        });
        let mut response = json_response(StatusCode::OK, &document);
        response.headers_mut().insert(
            CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=3600"),
        );
        response
    }
}
