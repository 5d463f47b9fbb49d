//! Forged, tampered and malformed access tokens against `token::verify` and `GET /auth/me`.
//!
//! Every case checks that `verify` returns the expected `TokenError` and that `/auth/me` returns
//! 401 with that error's problem code. Cases about headers and claims are signed with the app's
//! own key, so that only the check under test can reject them. Cases about signatures use a
//! foreign key, a forged signature or none. The core set runs for every signing algorithm.

mod common;

use std::sync::Arc;

use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, ParsedPublicKey};
use aws_lc_rs::{hmac, rsa};
use base64::alphabet;
use base64::engine::general_purpose::{
    GeneralPurpose, GeneralPurposeConfig, STANDARD, URL_SAFE_NO_PAD,
};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use common::TestApp;
use lambda_auth::clock::{Clock as _, ManualClock};
use lambda_auth::token::{self, AccessClaims, Algorithm, KeySet, StoredKeySet, TokenError};
use lambda_auth::App;
use serde_json::{json, Map, Value};

const EMAIL: &str = "ada@example.com";

/// The order n of the P-256 group, big-endian.
const P256_ORDER: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];

// ---------------------------------------------------------------------------------------------
// Compact JWS parts

fn encode_part(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

fn decode_object(part: &str) -> Map<String, Value> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .expect("the token part is base64url");
    match serde_json::from_slice(&bytes).expect("the token part is JSON") {
        Value::Object(object) => object,
        other => panic!("the token part is not a JSON object: {other}"),
    }
}

/// Splits a compact JWS into its header, payload and signature parts.
fn split(token: &str) -> [&str; 3] {
    let parts: Vec<&str> = token.split('.').collect();
    parts.try_into().unwrap_or_else(|parts: Vec<&str>| {
        panic!("the token has {} parts, expected 3: {token}", parts.len())
    })
}

/// Returns the `header.payload` prefix that the signature covers.
fn signing_input(token: &str) -> &str {
    let [header, payload, _] = split(token);
    &token[..header.len() + 1 + payload.len()]
}

/// Sets the lowest unused bit of the last base64url character. A strict decoder rejects the
/// result, and a decoder that ignores trailing bits decodes it to the same bytes.
fn with_trailing_bit(part: &str) -> String {
    assert!(
        matches!(part.len() % 4, 2 | 3),
        "a base64url part of length {} has no unused bits",
        part.len()
    );
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let last = *part.as_bytes().last().expect("the part is not empty");
    let value = ALPHABET
        .iter()
        .position(|character| *character == last)
        .expect("the last character is base64url");
    let mut changed = part[..part.len() - 1].to_owned();
    changed.push(ALPHABET[value | 1] as char);
    changed
}

// ---------------------------------------------------------------------------------------------
// Signing outside `token::sign`

/// A private key of a stored key set.
enum PrivateKey {
    Rsa(rsa::KeyPair),
    Ecdsa(signature::EcdsaKeyPair),
    Ed25519(signature::Ed25519KeyPair),
    Hmac(Box<hmac::Key>),
}

/// Signs any header and payload with the current key of a stored key set, for tokens that
/// `token::sign` cannot produce (a missing claim, an array `aud`, an extra header parameter).
struct RawSigner {
    alg: Algorithm,
    kid: String,
    key: PrivateKey,
}

impl RawSigner {
    fn new(stored: &StoredKeySet) -> RawSigner {
        let stored_key = &stored.keys[0];
        let der = STANDARD
            .decode(&stored_key.private_key)
            .expect("the stored private key is base64");
        let key = match stored_key.alg {
            Algorithm::RS256 => {
                PrivateKey::Rsa(rsa::KeyPair::from_pkcs8(&der).expect("RSA PKCS#8"))
            }
            Algorithm::ES256 => PrivateKey::Ecdsa(
                signature::EcdsaKeyPair::from_pkcs8(
                    &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                    &der,
                )
                .expect("P-256 PKCS#8"),
            ),
            Algorithm::EdDSA => PrivateKey::Ed25519(
                signature::Ed25519KeyPair::from_pkcs8(&der).expect("Ed25519 PKCS#8"),
            ),
            Algorithm::HS256 => PrivateKey::Hmac(Box::new(hmac::Key::new(hmac::HMAC_SHA256, &der))),
        };
        RawSigner {
            alg: stored_key.alg,
            kid: stored_key.kid.clone(),
            key,
        }
    }

    /// Returns the header that `token::sign` writes for this key.
    fn header(&self) -> Map<String, Value> {
        let header =
            json!({ "alg": self.alg.as_str(), "typ": token::ACCESS_TOKEN_TYPE, "kid": self.kid });
        header.as_object().expect("a JSON object").clone()
    }

    fn sign_bytes(&self, message: &[u8]) -> Vec<u8> {
        match &self.key {
            PrivateKey::Rsa(pair) => {
                let mut signature = vec![0u8; pair.public_modulus_len()];
                pair.sign(
                    &signature::RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    message,
                    &mut signature,
                )
                .expect("RSA signing succeeds");
                signature
            }
            PrivateKey::Ecdsa(pair) => pair
                .sign(&SystemRandom::new(), message)
                .expect("ECDSA signing succeeds")
                .as_ref()
                .to_vec(),
            PrivateKey::Ed25519(pair) => pair.sign(message).as_ref().to_vec(),
            PrivateKey::Hmac(key) => hmac::sign(key, message).as_ref().to_vec(),
        }
    }

    /// Signs the already encoded `header.payload` text.
    fn sign_input(&self, signing_input: &str) -> String {
        let signature = self.sign_bytes(signing_input.as_bytes());
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    fn sign(&self, header: &Map<String, Value>, payload: &Map<String, Value>) -> String {
        let header = encode_part(&Value::Object(header.clone()));
        let payload = encode_part(&Value::Object(payload.clone()));
        self.sign_input(&format!("{header}.{payload}"))
    }
}

/// Returns the public JWK of a stored key set's current key. The JWK Set publishes no HS256
/// key, so for HS256 this returns an `oct` JWK that contains the secret.
fn public_jwk(stored: &StoredKeySet) -> Value {
    let keys = KeySet::from_stored(stored).expect("a generated key set parses");
    match keys.jwks()["keys"].get(0) {
        Some(jwk) => jwk.clone(),
        None => {
            let secret = STANDARD
                .decode(&stored.keys[0].private_key)
                .expect("the stored secret is base64");
            json!({ "kty": "oct", "kid": stored.keys[0].kid, "k": URL_SAFE_NO_PAD.encode(secret) })
        }
    }
}

fn generate_stored(algorithm: Algorithm) -> StoredKeySet {
    StoredKeySet::generate(algorithm, common::START).expect("key generation succeeds")
}

// ---------------------------------------------------------------------------------------------
// Outcome checks

fn verify(app: &TestApp, token: &str) -> Result<AccessClaims, TokenError> {
    let policy = app.app.config().verification_policy();
    token::verify(&app.app.keys(), &policy, token, app.clock.now())
}

/// Asserts that `verify` returns `expected` and that `/auth/me` returns 401 with its code.
async fn assert_rejected(app: &TestApp, case: &str, token: &str, expected: TokenError) {
    let verified = verify(app, token);
    assert_eq!(
        verified.as_ref().err(),
        Some(&expected),
        "{case}: verify returned {verified:?}"
    );

    let response = app.me(token).await;
    let body = String::from_utf8_lossy(response.body()).into_owned();
    assert_eq!(
        response.status(),
        401,
        "{case}: status of /auth/me, body {body}"
    );
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .map(|value| value.as_bytes()),
        Some(&b"application/problem+json"[..]),
        "{case}: content type of {body}"
    );
    assert_eq!(
        common::body_json(&response)["code"],
        expected.code(),
        "{case}: problem code of {body}"
    );
}

/// Asserts that `verify` accepts the token and that `/auth/me` returns the user's profile.
async fn assert_accepted(app: &TestApp, case: &str, token: &str, user_id: &str) {
    let verified = verify(app, token);
    assert!(verified.is_ok(), "{case}: verify returned {verified:?}");

    let response = app.me(token).await;
    let body = String::from_utf8_lossy(response.body()).into_owned();
    assert_eq!(
        response.status(),
        200,
        "{case}: status of /auth/me, body {body}"
    );
    assert_eq!(
        common::body_json(&response)["id"],
        user_id,
        "{case}: profile {body}"
    );
}

fn access_token(login: &Value) -> String {
    login["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("the login response has no access_token: {login}"))
        .to_owned()
}

// ---------------------------------------------------------------------------------------------
// The signed-in user under attack

/// A signed-in user of an app whose stored key set the test keeps, so that it can sign tokens
/// with the app's own key.
struct Target {
    app: TestApp,
    signer: RawSigner,
    access_token: String,
    user_id: String,
}

impl Target {
    /// Builds an app as `common::sqlite_app` does, but over a key set generated here.
    async fn new(algorithm: Algorithm) -> Target {
        Target::from_stored(&generate_stored(algorithm)).await
    }

    async fn from_stored(stored: &StoredKeySet) -> Target {
        let algorithm = stored.keys[0].alg;
        let keys = Arc::new(KeySet::from_stored(stored).expect("a generated key set parses"));
        let config = common::test_config(&[("SIGNING_ALGORITHM", algorithm.as_str())]);
        let clock = Arc::new(ManualClock::new(common::START));
        let app = TestApp {
            app: App::new(
                config,
                Arc::new(common::sqlite_store()),
                keys,
                clock.clone(),
            ),
            clock,
        };

        let access_token = access_token(&app.signed_in(EMAIL).await);
        let profile = app.me(&access_token).await;
        assert_eq!(profile.status(), 200, "{:?}", profile.body());
        let user_id = common::body_json(&profile)["id"]
            .as_str()
            .expect("the profile has an id")
            .to_owned();

        Target {
            app,
            signer: RawSigner::new(stored),
            access_token,
            user_id,
        }
    }

    fn algorithm(&self) -> Algorithm {
        self.signer.alg
    }

    fn kid(&self) -> &str {
        &self.signer.kid
    }

    fn now(&self) -> i64 {
        self.app.clock.now()
    }

    fn leeway(&self) -> i64 {
        self.app.app.config().token_leeway
    }

    fn header(&self) -> Map<String, Value> {
        decode_object(split(&self.access_token)[0])
    }

    fn payload(&self) -> Map<String, Value> {
        decode_object(split(&self.access_token)[1])
    }

    fn signature(&self) -> Vec<u8> {
        URL_SAFE_NO_PAD
            .decode(split(&self.access_token)[2])
            .expect("the signature is base64url")
    }

    /// Returns the real signing input with another signature.
    fn with_signature(&self, signature: &[u8]) -> String {
        format!(
            "{}.{}",
            signing_input(&self.access_token),
            URL_SAFE_NO_PAD.encode(signature)
        )
    }

    fn claims(&self) -> AccessClaims {
        serde_json::from_value(Value::Object(self.payload())).expect("the payload is AccessClaims")
    }

    /// Signs the real payload under an edited header with the app's key.
    fn signed_with_header(&self, edit: impl FnOnce(&mut Map<String, Value>)) -> String {
        let mut header = self.header();
        edit(&mut header);
        self.signer.sign(&header, &self.payload())
    }

    /// Signs an edited payload under the real header with the app's key.
    fn signed_with_payload(&self, edit: impl FnOnce(&mut Map<String, Value>)) -> String {
        let mut payload = self.payload();
        edit(&mut payload);
        self.signer.sign(&self.header(), &payload)
    }

    /// Signs edited claims with `token::sign` and the app's key set.
    fn signed_with_claims(&self, edit: impl FnOnce(&mut AccessClaims)) -> String {
        let mut claims = self.claims();
        edit(&mut claims);
        token::sign(&self.app.app.keys(), &claims)
    }

    async fn assert_rejected(&self, case: &str, token: &str, expected: TokenError) {
        assert_rejected(&self.app, case, token, expected).await;
    }

    async fn assert_accepted(&self, case: &str, token: &str) {
        assert_accepted(&self.app, case, token, &self.user_id).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Core cases, run for every algorithm

async fn real_token_accepted(algorithm: Algorithm) {
    let target = Target::new(algorithm).await;

    target
        .assert_accepted("real token", &target.access_token)
        .await;
}

/// Shows that tokens signed by `RawSigner` and `token::sign` with the app's key pass, so a
/// rejection in the cases below comes from the edit alone.
async fn resigned_token_accepted(algorithm: Algorithm) {
    let target = Target::new(algorithm).await;

    let raw_signed = target.signed_with_payload(|_| {});
    target.assert_accepted("RawSigner", &raw_signed).await;
    let library_signed = target.signed_with_claims(|_| {});
    target.assert_accepted("token::sign", &library_signed).await;
}

async fn alg_none_rejected(algorithm: Algorithm) {
    let target = Target::new(algorithm).await;
    let payload = split(&target.access_token)[1];

    for alg in ["none", "None", "NONE"] {
        let mut header = target.header();
        header.insert("alg".into(), json!(alg));
        let unsigned = format!("{}.{payload}", encode_part(&Value::Object(header)));

        let empty_signature = format!("{unsigned}.");
        target
            .assert_rejected(
                &format!("alg {alg}, empty signature"),
                &empty_signature,
                TokenError::AlgorithmMismatch,
            )
            .await;
        target
            .assert_rejected(
                &format!("alg {alg}, no signature part"),
                &unsigned,
                TokenError::Malformed,
            )
            .await;
    }
}

async fn alg_changed_rejected(algorithm: Algorithm) {
    let target = Target::new(algorithm).await;

    let other_algs = [
        "RS256", "RS384", "PS256", "ES256", "ES384", "EdDSA", "HS256",
    ]
    .into_iter()
    .filter(|alg| *alg != algorithm.as_str());
    for alg in other_algs {
        let token = target.signed_with_header(|header| {
            header.insert("alg".into(), json!(alg));
        });
        target
            .assert_rejected(&format!("alg {alg}"), &token, TokenError::AlgorithmMismatch)
            .await;
    }
}

async fn empty_signature_rejected(algorithm: Algorithm) {
    let target = Target::new(algorithm).await;

    let token = format!("{}.", signing_input(&target.access_token));
    target
        .assert_rejected("empty signature", &token, TokenError::BadSignature)
        .await;
}

async fn zero_signature_rejected(algorithm: Algorithm) {
    let target = Target::new(algorithm).await;

    let token = target.with_signature(&vec![0u8; target.signature().len()]);
    target
        .assert_rejected("zero signature", &token, TokenError::BadSignature)
        .await;
}

async fn truncated_signature_rejected(algorithm: Algorithm) {
    let target = Target::new(algorithm).await;
    let signature = target.signature();

    for length in [signature.len() / 2, signature.len() - 1, 1] {
        let token = target.with_signature(&signature[..length]);
        target
            .assert_rejected(
                &format!("first {length} signature bytes"),
                &token,
                TokenError::BadSignature,
            )
            .await;
    }
}

async fn signature_trailing_bits_rejected(algorithm: Algorithm) {
    let target = Target::new(algorithm).await;
    let signature = split(&target.access_token)[2];
    let changed = with_trailing_bit(signature);
    let lenient = GeneralPurpose::new(
        &alphabet::URL_SAFE,
        GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(DecodePaddingMode::RequireNone),
    );
    assert_eq!(
        lenient.decode(&changed).expect("lenient base64url"),
        URL_SAFE_NO_PAD.decode(signature).expect("strict base64url"),
        "only unused bits changed"
    );

    let token = format!("{}.{changed}", signing_input(&target.access_token));
    target
        .assert_rejected("trailing bits", &token, TokenError::Malformed)
        .await;
}

async fn foreign_key_rejected(algorithm: Algorithm) {
    let target = Target::new(algorithm).await;
    let foreign = common::key_set(algorithm);

    let token = token::sign(&foreign, &target.claims());
    target
        .assert_rejected("foreign kid", &token, TokenError::UnknownKey)
        .await;
}

async fn foreign_signature_with_our_kid_rejected(algorithm: Algorithm) {
    let target = Target::new(algorithm).await;
    let foreign = RawSigner::new(&generate_stored(algorithm));

    let token = foreign.sign(&target.header(), &target.payload());
    target
        .assert_rejected(
            "our kid, foreign signature",
            &token,
            TokenError::BadSignature,
        )
        .await;
}

async fn tampered_sub_rejected(algorithm: Algorithm) {
    let target = Target::new(algorithm).await;
    let victim = target
        .app
        .register("victim@example.com", common::PASSWORD)
        .await;
    assert_eq!(victim.status(), 201, "{:?}", victim.body());
    let victim_id = common::body_json(&victim)["id"].clone();
    let [header, _, signature] = split(&target.access_token);

    let mut payload = target.payload();
    payload.insert("sub".into(), victim_id);
    let token = format!(
        "{header}.{}.{signature}",
        encode_part(&Value::Object(payload))
    );
    target
        .assert_rejected("sub of another user", &token, TokenError::BadSignature)
        .await;
}

async fn tampered_role_rejected(algorithm: Algorithm) {
    let target = Target::new(algorithm).await;
    let [header, _, signature] = split(&target.access_token);

    let mut payload = target.payload();
    payload.insert("role".into(), json!("admin"));
    let token = format!(
        "{header}.{}.{signature}",
        encode_part(&Value::Object(payload))
    );
    target
        .assert_rejected("role admin", &token, TokenError::BadSignature)
        .await;
}

async fn unknown_kid_rejected(algorithm: Algorithm) {
    let target = Target::new(algorithm).await;

    let token = target.signed_with_header(|header| {
        header.insert("kid".into(), json!("no-such-key"));
    });
    target
        .assert_rejected("unknown kid", &token, TokenError::UnknownKey)
        .await;
}

async fn missing_kid_rejected(algorithm: Algorithm) {
    let target = Target::new(algorithm).await;

    let token = target.signed_with_header(|header| {
        header.remove("kid");
    });
    target
        .assert_rejected("no kid", &token, TokenError::Header("kid is missing"))
        .await;
}

async fn missing_typ_rejected(algorithm: Algorithm) {
    let target = Target::new(algorithm).await;

    let token = target.signed_with_header(|header| {
        header.remove("typ");
    });
    target
        .assert_rejected("no typ", &token, TokenError::Header("typ is missing"))
        .await;
}

async fn typ_jwt_rejected(algorithm: Algorithm) {
    let target = Target::new(algorithm).await;

    for typ in ["JWT", "jwt", "application/jwt", "id_token+jwt"] {
        let token = target.signed_with_header(|header| {
            header.insert("typ".into(), json!(typ));
        });
        target
            .assert_rejected(
                &format!("typ {typ}"),
                &token,
                TokenError::Header("typ is not at+jwt"),
            )
            .await;
    }
}

async fn typ_media_type_forms_accepted(algorithm: Algorithm) {
    let target = Target::new(algorithm).await;

    for typ in ["AT+JWT", "application/at+jwt", "Application/AT+JWT"] {
        let token = target.signed_with_header(|header| {
            header.insert("typ".into(), json!(typ));
        });
        target.assert_accepted(&format!("typ {typ}"), &token).await;
    }
}

/// Signs tokens with an attacker's key under its own kid, each with one header parameter that
/// points at that key.
async fn key_reference_headers_rejected(algorithm: Algorithm) {
    let target = Target::new(algorithm).await;
    let attacker_stored = generate_stored(algorithm);
    let attacker = RawSigner::new(&attacker_stored);
    let attacker_jwk = public_jwk(&attacker_stored);
    let certificate = STANDARD.encode(attacker_jwk.to_string());

    let references = [
        ("jku", json!("http://127.0.0.1:9/.well-known/jwks.json")),
        ("x5u", json!("http://127.0.0.1:9/certificate.pem")),
        ("jwk", attacker_jwk),
        ("x5c", json!([certificate])),
        ("x5t#S256", json!(URL_SAFE_NO_PAD.encode([7u8; 32]))),
    ];
    for (name, value) in references {
        let mut header = attacker.header();
        header.insert(name.into(), value);
        let token = attacker.sign(&header, &target.payload());
        target
            .assert_rejected(
                &format!("{name} header"),
                &token,
                TokenError::Header("embedded or remote key references are not accepted"),
            )
            .await;
    }
}

async fn crit_header_rejected(algorithm: Algorithm) {
    let target = Target::new(algorithm).await;

    let token = target.signed_with_header(|header| {
        header.insert("crit".into(), json!(["exp"]));
        header.insert("exp".into(), json!(common::START + 60));
    });
    target
        .assert_rejected(
            "crit",
            &token,
            TokenError::Header("crit names an unsupported extension"),
        )
        .await;
}

async fn header_array_rejected(algorithm: Algorithm) {
    let target = Target::new(algorithm).await;
    let header = json!([
        target.algorithm().as_str(),
        token::ACCESS_TOKEN_TYPE,
        target.kid()
    ]);

    let input = format!(
        "{}.{}",
        encode_part(&header),
        split(&target.access_token)[1]
    );
    let token = target.signer.sign_input(&input);
    target
        .assert_rejected("header array", &token, TokenError::Malformed)
        .await;
}

async fn four_parts_rejected(algorithm: Algorithm) {
    let target = Target::new(algorithm).await;
    let signature = split(&target.access_token)[2];

    let token = format!("{}.{signature}", target.access_token);
    target
        .assert_rejected("four parts", &token, TokenError::Malformed)
        .await;
}

async fn two_parts_rejected(algorithm: Algorithm) {
    let target = Target::new(algorithm).await;

    let token = signing_input(&target.access_token).to_owned();
    target
        .assert_rejected("two parts", &token, TokenError::Malformed)
        .await;
}

async fn garbage_rejected(algorithm: Algorithm) {
    let target = Target::new(algorithm).await;

    for garbage in [
        "not-a-token",
        "%%%.%%%.%%%",
        "a.b.c",
        "..",
        "eyJ.eyJ.eyJ",
        "!!!!.????.****",
    ] {
        target
            .assert_rejected(
                &format!("garbage {garbage}"),
                garbage,
                TokenError::Malformed,
            )
            .await;
    }
}

async fn oversized_token_rejected(algorithm: Algorithm) {
    let target = Target::new(algorithm).await;

    let token = target.signed_with_payload(|payload| {
        payload.insert("padding".into(), json!("a".repeat(9 * 1024)));
    });
    assert!(
        token.len() > 9 * 1024,
        "the token has {} bytes",
        token.len()
    );
    target
        .assert_rejected("9 KiB token", &token, TokenError::Malformed)
        .await;
}

async fn large_token_accepted(algorithm: Algorithm) {
    let target = Target::new(algorithm).await;

    let token = target.signed_with_payload(|payload| {
        payload.insert("padding".into(), json!("a".repeat(5 * 1024)));
    });
    assert!(
        token.len() < 8 * 1024,
        "the token has {} bytes",
        token.len()
    );
    target.assert_accepted("7 KiB token", &token).await;
}

async fn missing_claims_rejected(algorithm: Algorithm) {
    let target = Target::new(algorithm).await;

    for claim in ["aud", "iss", "exp", "nbf", "iat", "sub", "jti", "sid"] {
        let token = target.signed_with_payload(|payload| {
            payload.remove(claim);
        });
        target
            .assert_rejected(&format!("no {claim}"), &token, TokenError::Claim(claim))
            .await;
    }
}

async fn empty_sub_rejected(algorithm: Algorithm) {
    let target = Target::new(algorithm).await;

    let token = target.signed_with_claims(|claims| claims.sub = String::new());
    target
        .assert_rejected("empty sub", &token, TokenError::Claim("sub"))
        .await;
}

async fn exp_not_integer_rejected(algorithm: Algorithm) {
    let target = Target::new(algorithm).await;
    let exp = target.claims().exp;

    for value in [json!(exp.to_string()), json!(null), json!([exp])] {
        let token = target.signed_with_payload(|payload| {
            payload.insert("exp".into(), value.clone());
        });
        target
            .assert_rejected(&format!("exp {value}"), &token, TokenError::Claim("exp"))
            .await;
    }
}

async fn foreign_aud_rejected(algorithm: Algorithm) {
    let target = Target::new(algorithm).await;

    let token = target.signed_with_claims(|claims| claims.aud = "another-service".into());
    target
        .assert_rejected("aud another-service", &token, TokenError::WrongAudience)
        .await;
}

async fn foreign_iss_rejected(algorithm: Algorithm) {
    let target = Target::new(algorithm).await;
    let issuer = target.claims().iss;

    for foreign in [
        "https://other-issuer.test.example",
        "https://auth.test.example/",
        "http://auth.test.example",
    ] {
        assert_ne!(foreign, issuer, "the foreign issuer differs from ours");
        let token = target.signed_with_claims(|claims| claims.iss = foreign.into());
        target
            .assert_rejected(&format!("iss {foreign}"), &token, TokenError::WrongIssuer)
            .await;
    }
}

async fn aud_array_without_ours_rejected(algorithm: Algorithm) {
    let target = Target::new(algorithm).await;

    for audiences in [
        json!([]),
        json!(["another-service"]),
        json!(["another-service", "third-service"]),
    ] {
        let token = target.signed_with_payload(|payload| {
            payload.insert("aud".into(), audiences.clone());
        });
        target
            .assert_rejected(
                &format!("aud {audiences}"),
                &token,
                TokenError::WrongAudience,
            )
            .await;
    }
}

async fn aud_array_with_ours_accepted(algorithm: Algorithm) {
    let target = Target::new(algorithm).await;
    let ours = target.claims().aud;

    for audiences in [json!([ours]), json!(["another-service", ours])] {
        let token = target.signed_with_payload(|payload| {
            payload.insert("aud".into(), audiences.clone());
        });
        target
            .assert_accepted(&format!("aud {audiences}"), &token)
            .await;
    }
}

async fn expired_beyond_leeway_rejected(algorithm: Algorithm) {
    let target = Target::new(algorithm).await;
    let exp = target.now() - target.leeway() - 1;

    let token = target.signed_with_claims(|claims| {
        claims.iat = exp - 900;
        claims.nbf = exp - 900;
        claims.exp = exp;
    });
    target
        .assert_rejected("exp 31 s ago", &token, TokenError::Expired)
        .await;
}

async fn expired_within_leeway_accepted(algorithm: Algorithm) {
    let target = Target::new(algorithm).await;
    let exp = target.now() - target.leeway();

    let token = target.signed_with_claims(|claims| {
        claims.iat = exp - 900;
        claims.nbf = exp - 900;
        claims.exp = exp;
    });
    target.assert_accepted("exp 30 s ago", &token).await;
}

async fn clock_past_expiry_rejected(algorithm: Algorithm) {
    let target = Target::new(algorithm).await;
    let lifetime = target.app.app.config().access_token_ttl;

    target.app.clock.advance(lifetime + target.leeway() + 1);
    target
        .assert_rejected(
            "clock 31 s past exp",
            &target.access_token,
            TokenError::Expired,
        )
        .await;
}

async fn clock_within_leeway_accepted(algorithm: Algorithm) {
    let target = Target::new(algorithm).await;
    let lifetime = target.app.app.config().access_token_ttl;

    target.app.clock.advance(lifetime + target.leeway());
    target
        .assert_accepted("clock 30 s past exp", &target.access_token)
        .await;
}

/// Checks that a far-future `exp` signed by the issuer is accepted, so `exp + leeway` must not
/// overflow.
async fn exp_max_value_accepted(algorithm: Algorithm) {
    let target = Target::new(algorithm).await;

    let token = target.signed_with_claims(|claims| claims.exp = i64::MAX);
    target.assert_accepted("exp i64::MAX", &token).await;
}

async fn nbf_beyond_leeway_rejected(algorithm: Algorithm) {
    let target = Target::new(algorithm).await;
    let nbf = target.now() + target.leeway() + 1;

    let token = target.signed_with_claims(|claims| claims.nbf = nbf);
    target
        .assert_rejected("nbf in 31 s", &token, TokenError::NotYetValid)
        .await;
}

async fn nbf_within_leeway_accepted(algorithm: Algorithm) {
    let target = Target::new(algorithm).await;
    let nbf = target.now() + target.leeway();

    let token = target.signed_with_claims(|claims| claims.nbf = nbf);
    target.assert_accepted("nbf in 30 s", &token).await;
}

async fn iat_beyond_leeway_rejected(algorithm: Algorithm) {
    let target = Target::new(algorithm).await;
    let iat = target.now() + target.leeway() + 1;

    let token = target.signed_with_claims(|claims| claims.iat = iat);
    target
        .assert_rejected("iat in 31 s", &token, TokenError::NotYetValid)
        .await;
}

macro_rules! attacks_for {
    ($module:ident, $algorithm:expr) => {
        mod $module {
            use super::*;

            attacks_for!(@cases $algorithm;
                real_token_accepted,
                resigned_token_accepted,
                alg_none_rejected,
                alg_changed_rejected,
                empty_signature_rejected,
                zero_signature_rejected,
                truncated_signature_rejected,
                signature_trailing_bits_rejected,
                foreign_key_rejected,
                foreign_signature_with_our_kid_rejected,
                tampered_sub_rejected,
                tampered_role_rejected,
                unknown_kid_rejected,
                missing_kid_rejected,
                missing_typ_rejected,
                typ_jwt_rejected,
                typ_media_type_forms_accepted,
                key_reference_headers_rejected,
                crit_header_rejected,
                header_array_rejected,
                four_parts_rejected,
                two_parts_rejected,
                garbage_rejected,
                oversized_token_rejected,
                large_token_accepted,
                missing_claims_rejected,
                empty_sub_rejected,
                exp_not_integer_rejected,
                foreign_aud_rejected,
                foreign_iss_rejected,
                aud_array_without_ours_rejected,
                aud_array_with_ours_accepted,
                expired_beyond_leeway_rejected,
                expired_within_leeway_accepted,
                clock_past_expiry_rejected,
                clock_within_leeway_accepted,
                exp_max_value_accepted,
                nbf_beyond_leeway_rejected,
                nbf_within_leeway_accepted,
                iat_beyond_leeway_rejected
            );
        }
    };
    (@cases $algorithm:expr; $($case:ident),*) => {
        $(
            #[tokio::test]
            async fn $case() {
                super::$case($algorithm).await;
            }
        )*
    };
}

attacks_for!(rs256, Algorithm::RS256);
attacks_for!(es256, Algorithm::ES256);
attacks_for!(eddsa, Algorithm::EdDSA);
attacks_for!(hs256, Algorithm::HS256);

// ---------------------------------------------------------------------------------------------
// Key confusion and algorithm-specific signatures, on `common::sqlite_app`

/// Signs in a user and returns the user id and the access token.
async fn sign_in(app: &TestApp) -> (String, String) {
    let token = access_token(&app.signed_in(EMAIL).await);
    let profile = app.me(&token).await;
    assert_eq!(profile.status(), 200, "{:?}", profile.body());
    let user_id = common::body_json(&profile)["id"]
        .as_str()
        .expect("the profile has an id")
        .to_owned();
    (user_id, token)
}

/// Appends a DER length: one byte below 128, otherwise 0x80 plus the number of length bytes,
/// followed by the length in big-endian bytes.
fn push_der_length(out: &mut Vec<u8>, length: usize) {
    if length < 0x80 {
        out.push(length as u8);
        return;
    }
    let bytes = length.to_be_bytes();
    let significant = &bytes[bytes.iter().take_while(|byte| **byte == 0).count()..];
    out.push(0x80 | significant.len() as u8);
    out.extend_from_slice(significant);
}

fn der_element(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    push_der_length(&mut out, content.len());
    out.extend_from_slice(content);
    out
}

/// Encodes a non-negative big-endian magnitude as a DER INTEGER.
fn der_unsigned_integer(magnitude: &[u8]) -> Vec<u8> {
    let start = magnitude.iter().take_while(|byte| **byte == 0).count();
    let mut content = Vec::with_capacity(magnitude.len() + 1);
    match magnitude.get(start) {
        None => content.push(0),
        Some(first) => {
            if first & 0x80 != 0 {
                content.push(0);
            }
            content.extend_from_slice(&magnitude[start..]);
        }
    }
    der_element(0x02, &content)
}

/// Encodes the PKCS#1 `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }`.
fn pkcs1_public_key_der(n: &[u8], e: &[u8]) -> Vec<u8> {
    let mut content = der_unsigned_integer(n);
    content.extend(der_unsigned_integer(e));
    der_element(0x30, &content)
}

/// Encodes DER as PEM text with 64-character lines and no newline after the END line.
fn pem(label: &str, der: &[u8]) -> String {
    let encoded = STANDARD.encode(der);
    let mut text = format!("-----BEGIN {label}-----\n");
    for line in encoded.as_bytes().chunks(64) {
        text.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        text.push('\n');
    }
    text.push_str(&format!("-----END {label}-----"));
    text
}

fn jwk_bytes(jwk: &Value, member: &str) -> Vec<u8> {
    let text = jwk[member]
        .as_str()
        .unwrap_or_else(|| panic!("the JWK has no {member}: {jwk}"));
    URL_SAFE_NO_PAD
        .decode(text)
        .expect("JWK members are base64url")
}

/// Forges HS256 tokens under the app's kid, each keyed with one encoding of the app's public
/// key, and asserts that each is rejected.
async fn assert_hmac_keys_rejected(app: &TestApp, token: &str, keys: &[(&str, Vec<u8>)]) {
    let mut header = decode_object(split(token)[0]);
    header.insert("alg".into(), json!("HS256"));
    let mut payload = decode_object(split(token)[1]);
    payload.insert("role".into(), json!("admin"));
    let input = format!(
        "{}.{}",
        encode_part(&Value::Object(header)),
        encode_part(&Value::Object(payload))
    );

    for (case, key_bytes) in keys {
        let key = hmac::Key::new(hmac::HMAC_SHA256, key_bytes);
        let forged = format!(
            "{input}.{}",
            URL_SAFE_NO_PAD.encode(hmac::sign(&key, input.as_bytes()))
        );
        assert_rejected(
            app,
            &format!("HMAC keyed with {case}"),
            &forged,
            TokenError::AlgorithmMismatch,
        )
        .await;
    }
}

#[tokio::test]
async fn hmac_with_rsa_public_key_rejected() {
    let app = common::sqlite_app(&[]);
    let (_, token) = sign_in(&app).await;
    let jwk = app.app.keys().jwks()["keys"][0].clone();
    let n = jwk_bytes(&jwk, "n");
    let e = jwk_bytes(&jwk, "e");

    let pkcs1_der = pkcs1_public_key_der(&n, &e);
    let signature = URL_SAFE_NO_PAD
        .decode(split(&token)[2])
        .expect("base64url signature");
    let parsed = ParsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, &pkcs1_der)
        .expect("the PKCS#1 DER parses");
    assert!(
        parsed
            .verify_sig(signing_input(&token).as_bytes(), &signature)
            .is_ok(),
        "the PKCS#1 DER built from the JWKS is the app's signing key"
    );
    let spki: PublicKeyX509Der = rsa::PublicKeyComponents {
        n: &n[..],
        e: &e[..],
    }
    .as_der()
    .expect("SPKI DER");
    let spki_der = spki.as_ref().to_vec();
    assert!(
        spki_der.ends_with(&pkcs1_der),
        "the SPKI DER wraps the PKCS#1 DER"
    );

    let spki_pem = pem("PUBLIC KEY", &spki_der);
    let pkcs1_pem = pem("RSA PUBLIC KEY", &pkcs1_der);
    let keys = [
        ("SPKI PEM", spki_pem.clone().into_bytes()),
        (
            "SPKI PEM with trailing newline",
            format!("{spki_pem}\n").into_bytes(),
        ),
        (
            "SPKI PEM with leading newline",
            format!("\n{spki_pem}").into_bytes(),
        ),
        (
            "SPKI PEM with both newlines",
            format!("\n{spki_pem}\n").into_bytes(),
        ),
        ("PKCS#1 PEM", pkcs1_pem.clone().into_bytes()),
        (
            "PKCS#1 PEM with trailing newline",
            format!("{pkcs1_pem}\n").into_bytes(),
        ),
        ("PKCS#1 DER", pkcs1_der),
        ("SPKI DER", spki_der),
        ("JWK text", jwk.to_string().into_bytes()),
    ];
    assert_hmac_keys_rejected(&app, &token, &keys).await;
}

#[tokio::test]
async fn hmac_with_ec_public_key_rejected() {
    let app = common::sqlite_app(&[("SIGNING_ALGORITHM", "ES256")]);
    let (_, token) = sign_in(&app).await;
    let jwk = app.app.keys().jwks()["keys"][0].clone();
    let mut point = vec![0x04];
    point.extend(jwk_bytes(&jwk, "x"));
    point.extend(jwk_bytes(&jwk, "y"));

    let keys = [
        ("uncompressed point", point),
        ("JWK text", jwk.to_string().into_bytes()),
    ];
    assert_hmac_keys_rejected(&app, &token, &keys).await;
}

#[tokio::test]
async fn hmac_with_ed25519_public_key_rejected() {
    let app = common::sqlite_app(&[("SIGNING_ALGORITHM", "EdDSA")]);
    let (_, token) = sign_in(&app).await;
    let jwk = app.app.keys().jwks()["keys"][0].clone();

    let keys = [
        ("raw public key", jwk_bytes(&jwk, "x")),
        ("JWK text", jwk.to_string().into_bytes()),
    ];
    assert_hmac_keys_rejected(&app, &token, &keys).await;
}

async fn assert_es256_signature_rejected(case: &str, r: &[u8; 32], s: &[u8; 32]) {
    let app = common::sqlite_app(&[("SIGNING_ALGORITHM", "ES256")]);
    let (user_id, token) = sign_in(&app).await;
    assert_accepted(&app, "real token", &token, &user_id).await;

    let forged = format!(
        "{}.{}",
        signing_input(&token),
        URL_SAFE_NO_PAD.encode([&r[..], &s[..]].concat())
    );
    assert_rejected(&app, case, &forged, TokenError::BadSignature).await;
}

#[tokio::test]
async fn es256_zero_r_s_rejected() {
    assert_es256_signature_rejected("r = s = 0", &[0; 32], &[0; 32]).await;
}

#[tokio::test]
async fn es256_group_order_r_s_rejected() {
    assert_es256_signature_rejected("r = s = n", &P256_ORDER, &P256_ORDER).await;
}

#[tokio::test]
async fn es256_der_signature_rejected() {
    let stored = generate_stored(Algorithm::ES256);
    let target = Target::from_stored(&stored).await;
    let der = STANDARD
        .decode(&stored.keys[0].private_key)
        .expect("the stored private key is base64");
    let pair =
        signature::EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_ASN1_SIGNING, &der)
            .expect("P-256 PKCS#8");

    // An ES256 JWS signature (RFC 7518) is r || s in 64 fixed bytes, not the ASN.1 DER form.
    let der_signature = pair
        .sign(
            &SystemRandom::new(),
            signing_input(&target.access_token).as_bytes(),
        )
        .expect("ECDSA signing succeeds");
    let token = target.with_signature(der_signature.as_ref());
    target
        .assert_rejected("DER signature", &token, TokenError::BadSignature)
        .await;
}

#[tokio::test]
async fn rs256_signature_with_leading_zero_rejected() {
    let target = Target::new(Algorithm::RS256).await;

    let mut signature = vec![0u8];
    signature.extend(target.signature());
    let token = target.with_signature(&signature);
    target
        .assert_rejected("leading zero byte", &token, TokenError::BadSignature)
        .await;
}

/// The order L of the Ed25519 base point, little-endian.
const ED25519_ORDER: [u8; 32] = [
    0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10,
];

/// Replaces S with S + L, which satisfies the verification equation but is not the canonical
/// encoding that RFC 8032 section 5.1.7 requires (S < L).
#[tokio::test]
async fn eddsa_non_canonical_s_rejected() {
    let target = Target::new(Algorithm::EdDSA).await;
    let mut signature = target.signature();
    assert_eq!(signature.len(), 64, "an Ed25519 signature is R || S");

    let mut carry = 0u16;
    for (byte, order_byte) in signature[32..].iter_mut().zip(ED25519_ORDER) {
        let sum = u16::from(*byte) + u16::from(order_byte) + carry;
        *byte = sum as u8;
        carry = sum >> 8;
    }
    assert_eq!(carry, 0, "S + L fits in 32 bytes because S < L < 2^253");
    let token = target.with_signature(&signature);
    target
        .assert_rejected("S + L", &token, TokenError::BadSignature)
        .await;
}
