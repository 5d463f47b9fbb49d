//! Access-token signing and verification per algorithm, beside the bare aws-lc-rs primitive on
//! the same bytes, so that the JWT layer's own cost is visible.
//!
//! Run: `cargo bench -p lambda-auth --bench tokens`

use std::hint::black_box;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, KeyPair as _, ParsedPublicKey};
use aws_lc_rs::{hmac, rsa};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use criterion::{criterion_group, criterion_main, Criterion};
use lambda_auth::token::{
    sign, verify, AccessClaims, Algorithm, KeySet, StoredKeySet, VerificationPolicy,
};

const NOW: i64 = 1_796_414_400;

fn claims() -> AccessClaims {
    AccessClaims {
        iss: "https://auth.example.com".into(),
        sub: "mV3dbIrwnRz1Fx0Mf3uCsA".into(),
        aud: "lambda-auth".into(),
        exp: NOW + 900,
        iat: NOW,
        nbf: NOW,
        jti: "b6Yk0X2tqQ8tYBfKfC8wTg".into(),
        sid: "0ycxkW6hcvqDP-00aPOzAA".into(),
        role: "user".into(),
        scope: "profile".into(),
        client_id: "lambda-auth".into(),
    }
}

/// The bare primitive: sign and verify closures over prepared aws-lc-rs keys.
type Primitive = (
    Box<dyn Fn(&[u8]) -> Vec<u8>>,
    Box<dyn Fn(&[u8], &[u8]) -> bool>,
);

fn primitive(alg: Algorithm, der: &[u8]) -> Primitive {
    match alg {
        Algorithm::RS256 => {
            let pair = rsa::KeyPair::from_pkcs8(der).unwrap();
            let public = ParsedPublicKey::new(
                &signature::RSA_PKCS1_2048_8192_SHA256,
                pair.public_key().as_ref(),
            )
            .unwrap();
            let rng = SystemRandom::new();
            (
                Box::new(move |message| {
                    let mut out = vec![0u8; pair.public_modulus_len()];
                    pair.sign(&signature::RSA_PKCS1_SHA256, &rng, message, &mut out)
                        .unwrap();
                    out
                }),
                Box::new(move |message, sig| public.verify_sig(message, sig).is_ok()),
            )
        }
        Algorithm::ES256 => {
            let pair = signature::EcdsaKeyPair::from_pkcs8(
                &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                der,
            )
            .unwrap();
            let public = ParsedPublicKey::new(
                &signature::ECDSA_P256_SHA256_FIXED,
                pair.public_key().as_ref(),
            )
            .unwrap();
            let rng = SystemRandom::new();
            (
                Box::new(move |message| pair.sign(&rng, message).unwrap().as_ref().to_vec()),
                Box::new(move |message, sig| public.verify_sig(message, sig).is_ok()),
            )
        }
        Algorithm::EdDSA => {
            let pair = signature::Ed25519KeyPair::from_pkcs8(der).unwrap();
            let public =
                ParsedPublicKey::new(&signature::ED25519, pair.public_key().as_ref()).unwrap();
            (
                Box::new(move |message| pair.sign(message).as_ref().to_vec()),
                Box::new(move |message, sig| public.verify_sig(message, sig).is_ok()),
            )
        }
        Algorithm::HS256 => {
            let key = hmac::Key::new(hmac::HMAC_SHA256, der);
            let verify_key = key.clone();
            (
                Box::new(move |message| hmac::sign(&key, message).as_ref().to_vec()),
                Box::new(move |message, sig| hmac::verify(&verify_key, message, sig).is_ok()),
            )
        }
    }
}

fn bench_tokens(c: &mut Criterion) {
    let policy = VerificationPolicy::new("https://auth.example.com", "lambda-auth", 30);
    for alg in [
        Algorithm::RS256,
        Algorithm::ES256,
        Algorithm::EdDSA,
        Algorithm::HS256,
    ] {
        let stored = StoredKeySet::generate(alg, NOW).unwrap();
        let keys = KeySet::from_stored(&stored).unwrap();
        let der = STANDARD.decode(&stored.keys[0].private_key).unwrap();
        let (bare_sign, bare_verify) = primitive(alg, &der);

        let token = sign(&keys, &claims());
        let (signed_part, signature_b64) = token.rsplit_once('.').unwrap();
        let signature = URL_SAFE_NO_PAD.decode(signature_b64).unwrap();
        assert!(verify(&keys, &policy, &token, NOW).is_ok());
        assert!(bare_verify(signed_part.as_bytes(), &signature));

        let mut group = c.benchmark_group(alg.as_str());
        group.bench_function("sign token", |b| {
            b.iter(|| sign(&keys, black_box(&claims())))
        });
        group.bench_function("sign primitive", |b| {
            b.iter(|| bare_sign(black_box(signed_part.as_bytes())))
        });
        group.bench_function("verify token", |b| {
            b.iter(|| verify(&keys, &policy, black_box(&token), NOW).unwrap())
        });
        group.bench_function("verify primitive", |b| {
            b.iter(|| bare_verify(black_box(signed_part.as_bytes()), black_box(&signature)))
        });
        group.finish();
    }
}

criterion_group!(benches, bench_tokens);
criterion_main!(benches);
