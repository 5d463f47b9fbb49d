//! Access tokens: JWTs following RFC 9068, signed and verified with prepared keys.
//!
//! The verifier's whole policy sits in [`VerificationPolicy`]; nothing else decides whether a
//! token is accepted.

use aws_lc_rs::hmac;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::keyset::{Algorithm, KeySet, Signer, Verifier};

/// The `typ` header of an access token (RFC 9068 section 2.1).
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";

/// Tokens longer than this are rejected before any decoding.
const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Header parameters that would let a token choose its own verification key. They are never
/// honoured, and a token that carries one is rejected.
const FORBIDDEN_HEADERS: [&str; 5] = ["jku", "x5u", "jwk", "x5c", "x5t#S256"];

/// Claims of an access token. No email or other personal data: `sub` is the user id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    pub jti: String,
    /// Session id: the session this token was issued in.
    pub sid: String,
    pub role: String,
    /// Space-separated scopes (RFC 8693 section 4.2).
    pub scope: String,
    /// The client the token was issued to (RFC 9068 requires the claim).
    pub client_id: String,
}

/// Everything the verifier checks, with its defaults. `Default` is the policy used everywhere.
#[derive(Clone, Debug)]
pub struct VerificationPolicy {
    /// Required `iss`, compared exactly.
    pub issuer: String,
    /// Required audience: `aud` must equal it or, as an array, contain it.
    pub audience: String,
    /// Clock skew allowed on `exp`, `nbf` and `iat`, in seconds. At most 30.
    pub leeway_seconds: i64,
    /// Required `typ` header, compared without regard to case, with or without the
    /// `application/` prefix.
    pub token_type: &'static str,
}

impl VerificationPolicy {
    pub const MAX_LEEWAY_SECONDS: i64 = 30;

    pub fn new(issuer: &str, audience: &str, leeway_seconds: i64) -> Self {
        VerificationPolicy {
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            leeway_seconds: leeway_seconds.clamp(0, Self::MAX_LEEWAY_SECONDS),
            token_type: ACCESS_TOKEN_TYPE,
        }
    }
}

/// Reason a token was rejected. Every variant maps to 401, and only `Expired` has its own code.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is not a compact JWS of three base64url parts")]
    Malformed,
    #[error("the token header is invalid: {0}")]
    Header(&'static str),
    #[error("the token's kid is not in the key set")]
    UnknownKey,
    #[error("the token's alg does not match its key")]
    AlgorithmMismatch,
    #[error("the token signature is invalid")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token claim {0} is missing or invalid")]
    Claim(&'static str),
    #[error("the token was issued by another issuer")]
    WrongIssuer,
    #[error("the token was issued for another audience")]
    WrongAudience,
}

impl TokenError {
    /// Returns the problem code sent to the client.
    pub fn code(&self) -> &'static str {
        match self {
            TokenError::Expired => "token_expired",
            _ => "invalid_token",
        }
    }
}

/// Signs claims with the key set's current key.
pub fn sign(keys: &KeySet, claims: &AccessClaims) -> String {
    let header = serde_json::json!({
        "alg": keys.current_alg().as_str(),
        "typ": ACCESS_TOKEN_TYPE,
        "kid": keys.current_kid(),
    });
    let mut token = String::with_capacity(512);
    URL_SAFE_NO_PAD.encode_string(header.to_string(), &mut token);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(
        serde_json::to_vec(claims).expect("claims always serialise"),
        &mut token,
    );
    let signature = sign_bytes(keys.signer(), token.as_bytes());
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(signature, &mut token);
    token
}

fn sign_bytes(signer: &Signer, message: &[u8]) -> Vec<u8> {
    match signer {
        Signer::Rsa(pair) => {
            let mut signature = vec![0u8; pair.public_modulus_len()];
            pair.sign(
                &signature::RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                message,
                &mut signature,
            )
            .expect("RSA signing with a validated key does not fail");
            signature
        }
        Signer::Ecdsa(pair) => pair
            .sign(&SystemRandom::new(), message)
            .expect("ECDSA signing with a validated key does not fail")
            .as_ref()
            .to_vec(),
        Signer::Ed25519(pair) => pair.sign(message).as_ref().to_vec(),
        Signer::Hmac(key) => hmac::sign(key, message).as_ref().to_vec(),
    }
}

/// Verifies a token and returns its claims, or the first reason to reject it.
///
/// Order: size and shape, header (typ, forbidden parameters, crit, kid), the key's algorithm
/// against the header's `alg`, the signature, then the claims. Claims are read only after the
/// signature holds.
pub fn verify(
    keys: &KeySet,
    policy: &VerificationPolicy,
    token: &str,
    now: i64,
) -> Result<AccessClaims, TokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::Malformed);
    }
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };

    let header = decode_object(header_b64)?;
    check_header(&header, policy)?;
    let kid = header
        .get("kid")
        .and_then(Value::as_str)
        .ok_or(TokenError::Header("kid is missing"))?;
    let (alg, verifier) = keys.verifier(kid).ok_or(TokenError::UnknownKey)?;
    if header.get("alg").and_then(Value::as_str) != Some(alg.as_str()) {
        return Err(TokenError::AlgorithmMismatch);
    }

    let signature = URL_SAFE_NO_PAD
        .decode(signature_b64)
        .map_err(|_| TokenError::Malformed)?;
    let signed = &token[..header_b64.len() + 1 + payload_b64.len()];
    verify_bytes(*alg, verifier, signed.as_bytes(), &signature)?;

    let payload = decode_object(payload_b64)?;
    check_claims(&payload, policy, now)
}

fn decode_object(part: &str) -> Result<Map<String, Value>, TokenError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| TokenError::Malformed)?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(TokenError::Malformed),
    }
}

fn check_header(
    header: &Map<String, Value>,
    policy: &VerificationPolicy,
) -> Result<(), TokenError> {
    let typ = header
        .get("typ")
        .and_then(Value::as_str)
        .ok_or(TokenError::Header("typ is missing"))?
        .to_ascii_lowercase();
    let typ = typ.strip_prefix("application/").unwrap_or(&typ);
    if typ != policy.token_type {
        return Err(TokenError::Header("typ is not at+jwt"));
    }
    if FORBIDDEN_HEADERS
        .iter()
        .any(|name| header.contains_key(*name))
    {
        return Err(TokenError::Header(
            "embedded or remote key references are not accepted",
        ));
    }
    // No extension is understood, so any `crit` list names one we do not support (RFC 7515
    // section 4.1.11).
    if header.contains_key("crit") {
        return Err(TokenError::Header("crit names an unsupported extension"));
    }
    Ok(())
}

fn verify_bytes(
    alg: Algorithm,
    verifier: &Verifier,
    message: &[u8],
    signature: &[u8],
) -> Result<(), TokenError> {
    let verified = match (alg, verifier) {
        (Algorithm::HS256, Verifier::Hmac(key)) => hmac::verify(key, message, signature).is_ok(),
        (Algorithm::HS256, Verifier::Public(_)) | (_, Verifier::Hmac(_)) => false,
        (_, Verifier::Public(key)) => key.verify_sig(message, signature).is_ok(),
    };
    if verified {
        Ok(())
    } else {
        Err(TokenError::BadSignature)
    }
}

fn check_claims(
    claims: &Map<String, Value>,
    policy: &VerificationPolicy,
    now: i64,
) -> Result<AccessClaims, TokenError> {
    let exp = integer(claims, "exp")?;
    let nbf = integer(claims, "nbf")?;
    let iat = integer(claims, "iat")?;
    // Saturating: `exp` comes from a signed token, but an extreme value must not overflow.
    if now > exp.saturating_add(policy.leeway_seconds) {
        return Err(TokenError::Expired);
    }
    let latest_start = now.saturating_add(policy.leeway_seconds);
    if nbf > latest_start || iat > latest_start {
        return Err(TokenError::NotYetValid);
    }

    let iss = string(claims, "iss")?;
    if iss != policy.issuer {
        return Err(TokenError::WrongIssuer);
    }
    let audience_matches = match claims.get("aud") {
        Some(Value::String(aud)) => *aud == policy.audience,
        Some(Value::Array(auds)) => auds
            .iter()
            .any(|aud| aud.as_str() == Some(&policy.audience)),
        _ => return Err(TokenError::Claim("aud")),
    };
    if !audience_matches {
        return Err(TokenError::WrongAudience);
    }

    let sub = string(claims, "sub")?;
    if sub.is_empty() {
        return Err(TokenError::Claim("sub"));
    }
    Ok(AccessClaims {
        iss: iss.to_owned(),
        sub: sub.to_owned(),
        aud: policy.audience.clone(),
        exp,
        iat,
        nbf,
        jti: string(claims, "jti")?.to_owned(),
        sid: string(claims, "sid")?.to_owned(),
        role: string(claims, "role")?.to_owned(),
        scope: string(claims, "scope")?.to_owned(),
        client_id: string(claims, "client_id")?.to_owned(),
    })
}

fn integer(claims: &Map<String, Value>, name: &'static str) -> Result<i64, TokenError> {
    claims
        .get(name)
        .and_then(Value::as_i64)
        .ok_or(TokenError::Claim(name))
}

fn string<'a>(claims: &'a Map<String, Value>, name: &'static str) -> Result<&'a str, TokenError> {
    claims
        .get(name)
        .and_then(Value::as_str)
        .ok_or(TokenError::Claim(name))
}
