//! Signing key sets: their stored JSON form, generation, and the prepared keys built from them.
//!
//! A key set is one JSON document, kept in Secrets Manager in Lambda and in a 0600 file in local
//! mode. Keys are parsed once into prepared signing and verification keys, because parsing a
//! private key costs more than a signature.

use std::collections::HashMap;
use std::fmt;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::signature::{self, KeyPair as _, ParsedPublicKey};
use aws_lc_rs::{hmac, rsa};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// JWS algorithms the service signs with. The verifier takes the algorithm from the key, never
/// from a token header.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Algorithm {
    RS256,
    ES256,
    EdDSA,
    HS256,
}

impl Algorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::RS256 => "RS256",
            Algorithm::ES256 => "ES256",
            Algorithm::EdDSA => "EdDSA",
            Algorithm::HS256 => "HS256",
        }
    }

    pub fn parse(value: &str) -> Option<Algorithm> {
        match value {
            "RS256" => Some(Algorithm::RS256),
            "ES256" => Some(Algorithm::ES256),
            "EdDSA" => Some(Algorithm::EdDSA),
            "HS256" => Some(Algorithm::HS256),
            _ => None,
        }
    }
}

/// Role of a key inside a key set.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyStatus {
    /// Signs new tokens. Exactly one key is current.
    Current,
    /// Verifies tokens signed before the last rotation.
    Previous,
    /// Published ahead of a rotation so that caches learn it before it signs.
    Next,
}

/// One key as stored: private material is PKCS#8 DER (or the HMAC secret), standard base64.
#[derive(Clone, Serialize, Deserialize)]
pub struct StoredKey {
    pub kid: String,
    pub alg: Algorithm,
    pub status: KeyStatus,
    pub created_at: i64,
    pub private_key: String,
}

impl fmt::Debug for StoredKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredKey")
            .field("kid", &self.kid)
            .field("alg", &self.alg)
            .field("status", &self.status)
            .field("created_at", &self.created_at)
            .field("private_key", &"<hidden>")
            .finish()
    }
}

/// The stored JSON document.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StoredKeySet {
    pub keys: Vec<StoredKey>,
}

#[derive(Debug, thiserror::Error)]
pub enum KeySetError {
    #[error("the key set is not valid JSON of the form {{\"keys\": [...]}}: {0}")]
    Json(String),
    #[error("the key set has {0} keys with status \"current\"; exactly one is required")]
    CurrentCount(usize),
    #[error("key {kid}: {reason}")]
    InvalidKey { kid: String, reason: String },
    #[error("two keys share the kid {0}")]
    DuplicateKid(String),
    #[error("key generation failed for {0}")]
    Generation(&'static str),
}

impl StoredKeySet {
    pub fn from_json(text: &str) -> Result<Self, KeySetError> {
        serde_json::from_str(text).map_err(|error| KeySetError::Json(error.to_string()))
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a key set always serialises")
    }

    /// Returns the set that follows this one in a rotation: a new current key of `alg`, this
    /// set's current key as the previous one, and no older key.
    pub fn rotated(&self, alg: Algorithm, now: i64) -> Result<Self, KeySetError> {
        let mut keys = vec![generate_key(alg, KeyStatus::Current, now)?];
        if let Some(current) = self
            .keys
            .iter()
            .find(|key| key.status == KeyStatus::Current)
        {
            keys.push(StoredKey {
                status: KeyStatus::Previous,
                ..current.clone()
            });
        }
        Ok(StoredKeySet { keys })
    }

    /// Generates a key set with one current key of the given algorithm.
    pub fn generate(alg: Algorithm, now: i64) -> Result<Self, KeySetError> {
        Ok(StoredKeySet {
            keys: vec![generate_key(alg, KeyStatus::Current, now)?],
        })
    }
}

/// Generates one key with a fresh random `kid`.
pub fn generate_key(alg: Algorithm, status: KeyStatus, now: i64) -> Result<StoredKey, KeySetError> {
    let rng = SystemRandom::new();
    let private_der: Vec<u8> = match alg {
        Algorithm::RS256 => rsa::KeyPair::generate(rsa::KeySize::Rsa2048)
            .and_then(|pair| pair.as_der())
            .map_err(|_| KeySetError::Generation("RS256"))?
            .as_ref()
            .to_vec(),
        Algorithm::ES256 => {
            signature::EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING)
                .and_then(|pair| pair.to_pkcs8v1())
                .map_err(|_| KeySetError::Generation("ES256"))?
                .as_ref()
                .to_vec()
        }
        Algorithm::EdDSA => signature::Ed25519KeyPair::generate()
            .and_then(|pair| pair.to_pkcs8())
            .map_err(|_| KeySetError::Generation("EdDSA"))?
            .as_ref()
            .to_vec(),
        Algorithm::HS256 => {
            let mut secret = vec![0u8; 32];
            rng.fill(&mut secret)
                .map_err(|_| KeySetError::Generation("HS256"))?;
            secret
        }
    };
    let mut kid_bytes = [0u8; 12];
    rng.fill(&mut kid_bytes)
        .map_err(|_| KeySetError::Generation("kid"))?;
    Ok(StoredKey {
        kid: URL_SAFE_NO_PAD.encode(kid_bytes),
        alg,
        status,
        created_at: now,
        private_key: STANDARD.encode(private_der),
    })
}

/// A private key prepared for signing.
pub(crate) enum Signer {
    Rsa(rsa::KeyPair),
    Ecdsa(signature::EcdsaKeyPair),
    Ed25519(signature::Ed25519KeyPair),
    Hmac(Box<hmac::Key>),
}

/// A key prepared for verification.
pub(crate) enum Verifier {
    Public(ParsedPublicKey),
    Hmac(Box<hmac::Key>),
}

/// A key set parsed once into prepared keys, ready to sign and verify.
pub struct KeySet {
    current_kid: String,
    current_alg: Algorithm,
    signer: Signer,
    verifiers: HashMap<String, (Algorithm, Verifier)>,
    jwks: Value,
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut kids: Vec<&String> = self.verifiers.keys().collect();
        kids.sort();
        f.debug_struct("KeySet")
            .field("current_kid", &self.current_kid)
            .field("current_alg", &self.current_alg)
            .field("kids", &kids)
            .finish()
    }
}

impl KeySet {
    pub fn from_stored(stored: &StoredKeySet) -> Result<Self, KeySetError> {
        let current: Vec<&StoredKey> = stored
            .keys
            .iter()
            .filter(|key| key.status == KeyStatus::Current)
            .collect();
        if current.len() != 1 {
            return Err(KeySetError::CurrentCount(current.len()));
        }
        let current = current[0];

        let mut verifiers = HashMap::new();
        let mut public_jwks = Vec::new();
        let mut signer = None;
        for key in &stored.keys {
            let der = STANDARD
                .decode(&key.private_key)
                .map_err(|error| invalid(key, format!("private_key is not base64: {error}")))?;
            let (key_signer, verifier, jwk) = prepare(key, &der)?;
            if verifiers
                .insert(key.kid.clone(), (key.alg, verifier))
                .is_some()
            {
                return Err(KeySetError::DuplicateKid(key.kid.clone()));
            }
            if let Some(jwk) = jwk {
                public_jwks.push(jwk);
            }
            if key.kid == current.kid {
                signer = Some(key_signer);
            }
        }

        Ok(KeySet {
            current_kid: current.kid.clone(),
            current_alg: current.alg,
            signer: signer.expect("the current key was prepared in the loop"),
            verifiers,
            jwks: json!({ "keys": public_jwks }),
        })
    }

    pub fn current_kid(&self) -> &str {
        &self.current_kid
    }

    pub fn current_alg(&self) -> Algorithm {
        self.current_alg
    }

    /// Returns the public keys as a JWK Set (RFC 7517). HMAC secrets are never published.
    pub fn jwks(&self) -> &Value {
        &self.jwks
    }

    /// Returns the `kid`s of every key, sorted.
    pub fn kids(&self) -> Vec<&str> {
        let mut kids: Vec<&str> = self.verifiers.keys().map(String::as_str).collect();
        kids.sort_unstable();
        kids
    }

    pub(crate) fn signer(&self) -> &Signer {
        &self.signer
    }

    pub(crate) fn verifier(&self, kid: &str) -> Option<&(Algorithm, Verifier)> {
        self.verifiers.get(kid)
    }
}

fn invalid(key: &StoredKey, reason: String) -> KeySetError {
    KeySetError::InvalidKey {
        kid: key.kid.clone(),
        reason,
    }
}

fn prepare(key: &StoredKey, der: &[u8]) -> Result<(Signer, Verifier, Option<Value>), KeySetError> {
    let rejected = |error: aws_lc_rs::error::KeyRejected| {
        invalid(
            key,
            format!("the {} key was rejected: {error}", key.alg.as_str()),
        )
    };
    let common =
        |kty: &str| json!({ "kty": kty, "kid": key.kid, "use": "sig", "alg": key.alg.as_str() });

    match key.alg {
        Algorithm::RS256 => {
            let pair = rsa::KeyPair::from_pkcs8(der).map_err(rejected)?;
            let public = pair.public_key();
            let verifier =
                ParsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, public.as_ref())
                    .map_err(rejected)?;
            let mut jwk = common("RSA");
            jwk["n"] =
                json!(URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()));
            jwk["e"] =
                json!(URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()));
            Ok((Signer::Rsa(pair), Verifier::Public(verifier), Some(jwk)))
        }
        Algorithm::ES256 => {
            let pair = signature::EcdsaKeyPair::from_pkcs8(
                &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                der,
            )
            .map_err(rejected)?;
            let point = pair.public_key().as_ref().to_vec();
            let verifier = ParsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, &point)
                .map_err(rejected)?;
            if point.len() != 65 || point[0] != 4 {
                return Err(invalid(
                    key,
                    "the ES256 public key is not an uncompressed P-256 point".into(),
                ));
            }
            let mut jwk = common("EC");
            jwk["crv"] = json!("P-256");
            jwk["x"] = json!(URL_SAFE_NO_PAD.encode(&point[1..33]));
            jwk["y"] = json!(URL_SAFE_NO_PAD.encode(&point[33..65]));
            Ok((Signer::Ecdsa(pair), Verifier::Public(verifier), Some(jwk)))
        }
        Algorithm::EdDSA => {
            let pair = signature::Ed25519KeyPair::from_pkcs8(der).map_err(rejected)?;
            let public = pair.public_key().as_ref().to_vec();
            let verifier = ParsedPublicKey::new(&signature::ED25519, &public).map_err(rejected)?;
            let mut jwk = common("OKP");
            jwk["crv"] = json!("Ed25519");
            jwk["x"] = json!(URL_SAFE_NO_PAD.encode(&public));
            Ok((Signer::Ed25519(pair), Verifier::Public(verifier), Some(jwk)))
        }
        Algorithm::HS256 => {
            if der.len() < 32 {
                return Err(invalid(
                    key,
                    "an HS256 secret needs at least 32 bytes".into(),
                ));
            }
            let signing = hmac::Key::new(hmac::HMAC_SHA256, der);
            let verifying = hmac::Key::new(hmac::HMAC_SHA256, der);
            Ok((
                Signer::Hmac(Box::new(signing)),
                Verifier::Hmac(Box::new(verifying)),
                None,
            ))
        }
    }
}
