//! The key-set rotation function: Secrets Manager's four-step rotation protocol.
//!
//! Secrets Manager creates a version labelled `AWSPENDING` for the rotation's token, then invokes
//! the steps in order and retries a step that fails. Every step is therefore idempotent:
//! `createSecret` writes the next key set into the pending version once, `setSecret` has nothing
//! to configure, `testSecret` signs and verifies with the pending set, and `finishSecret` moves
//! `AWSCURRENT` to it.

use aws_sdk_secretsmanager::error::{DisplayErrorContext, SdkError};
use aws_sdk_secretsmanager::Client;
use serde::Deserialize;

use crate::token::{
    sign, verify, AccessClaims, Algorithm, KeySet, StoredKeySet, VerificationPolicy,
};

const CURRENT: &str = "AWSCURRENT";
const PENDING: &str = "AWSPENDING";

/// The event Secrets Manager sends to a rotation function.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RotationEvent {
    pub step: String,
    pub secret_id: String,
    pub client_request_token: String,
}

#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    #[error(
        "unknown rotation step {0:?}; expected createSecret, setSecret, testSecret or finishSecret"
    )]
    UnknownStep(String),
    #[error("version {token} of secret {secret} is not labelled AWSPENDING")]
    NotPending { secret: String, token: String },
    #[error("the pending key set of secret {secret} is invalid: {reason}")]
    InvalidPending { secret: String, reason: String },
    #[error("Secrets Manager call failed: {0}")]
    Service(String),
}

fn service<E, R>(error: SdkError<E, R>) -> RotationError
where
    E: std::error::Error + 'static,
    R: std::fmt::Debug,
{
    RotationError::Service(DisplayErrorContext(&error).to_string())
}

/// Runs one rotation step. `algorithm` is the algorithm of the new key.
pub async fn rotate(
    client: &Client,
    event: &RotationEvent,
    algorithm: Algorithm,
    now: i64,
) -> Result<(), RotationError> {
    let secret = &event.secret_id;
    let token = &event.client_request_token;
    let metadata = client
        .describe_secret()
        .secret_id(secret)
        .send()
        .await
        .map_err(service)?;
    let stages = metadata
        .version_ids_to_stages()
        .and_then(|versions| versions.get(token));
    let has = |label: &str| stages.is_some_and(|stages| stages.iter().any(|stage| stage == label));

    if has(CURRENT) {
        tracing::info!(secret = %secret, version = %token, step = %event.step, "version is already AWSCURRENT; nothing to do");
        return Ok(());
    }
    // Secrets Manager labels the token's version before the first step. An unlabelled version
    // is accepted only by createSecret, which creates it.
    let pending = has(PENDING);
    if !pending && (stages.is_some() || event.step != "createSecret") {
        return Err(RotationError::NotPending {
            secret: secret.clone(),
            token: token.clone(),
        });
    }

    match event.step.as_str() {
        "createSecret" => create(client, secret, token, algorithm, now).await,
        "setSecret" => Ok(()),
        "testSecret" => test(client, secret, token, now).await,
        "finishSecret" => finish(client, secret, token, &metadata).await,
        other => Err(RotationError::UnknownStep(other.to_owned())),
    }
}

async fn create(
    client: &Client,
    secret: &str,
    token: &str,
    algorithm: Algorithm,
    now: i64,
) -> Result<(), RotationError> {
    let existing = client
        .get_secret_value()
        .secret_id(secret)
        .version_id(token)
        .version_stage(PENDING)
        .send()
        .await;
    match existing {
        Ok(_) => {
            tracing::info!(secret = %secret, version = %token, "pending key set already written");
            return Ok(());
        }
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) => {}
        Err(error) => return Err(service(error)),
    }

    let current = match client
        .get_secret_value()
        .secret_id(secret)
        .version_stage(CURRENT)
        .send()
        .await
    {
        Ok(output) => match output.secret_string().map(StoredKeySet::from_json) {
            Some(Ok(stored)) => stored,
            _ => {
                tracing::warn!(secret = %secret, "the current value is not a key set; starting a new one");
                StoredKeySet { keys: Vec::new() }
            }
        },
        Err(error)
            if error
                .as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception()) =>
        {
            StoredKeySet { keys: Vec::new() }
        }
        Err(error) => return Err(service(error)),
    };
    let next = current
        .rotated(algorithm, now)
        .map_err(|error| RotationError::Service(error.to_string()))?;

    client
        .put_secret_value()
        .secret_id(secret)
        .client_request_token(token)
        .secret_string(next.to_json())
        .version_stages(PENDING)
        .send()
        .await
        .map_err(service)?;
    let kid = next
        .keys
        .first()
        .map(|key| key.kid.as_str())
        .unwrap_or_default();
    tracing::info!(secret = %secret, version = %token, kid = %kid, "pending key set written");
    Ok(())
}

/// Signs a token with the pending set's current key and verifies it with the same set.
async fn test(client: &Client, secret: &str, token: &str, now: i64) -> Result<(), RotationError> {
    let invalid = |reason: String| RotationError::InvalidPending {
        secret: secret.to_owned(),
        reason,
    };
    let output = client
        .get_secret_value()
        .secret_id(secret)
        .version_id(token)
        .version_stage(PENDING)
        .send()
        .await
        .map_err(service)?;
    let stored = StoredKeySet::from_json(output.secret_string().unwrap_or_default())
        .map_err(|error| invalid(error.to_string()))?;
    let keys = KeySet::from_stored(&stored).map_err(|error| invalid(error.to_string()))?;

    let policy = VerificationPolicy::new("https://rotation.test", "rotation-test", 0);
    let claims = AccessClaims {
        iss: policy.issuer.clone(),
        sub: "rotation-test".into(),
        aud: policy.audience.clone(),
        exp: now + 60,
        iat: now,
        nbf: now,
        jti: "rotation-test".into(),
        sid: "rotation-test".into(),
        role: "user".into(),
        scope: String::new(),
        client_id: "rotation-test".into(),
    };
    let signed = sign(&keys, &claims);
    verify(&keys, &policy, &signed, now).map_err(|error| invalid(error.to_string()))?;
    tracing::info!(secret = %secret, version = %token, kid = keys.current_kid(), "pending key set signs and verifies");
    Ok(())
}

async fn finish(
    client: &Client,
    secret: &str,
    token: &str,
    metadata: &aws_sdk_secretsmanager::operation::describe_secret::DescribeSecretOutput,
) -> Result<(), RotationError> {
    let current_version = metadata.version_ids_to_stages().and_then(|versions| {
        versions
            .iter()
            .find(|(_, stages)| stages.iter().any(|stage| stage == CURRENT))
            .map(|(version, _)| version.clone())
    });

    let mut request = client
        .update_secret_version_stage()
        .secret_id(secret)
        .version_stage(CURRENT)
        .move_to_version_id(token);
    if let Some(current) = &current_version {
        request = request.remove_from_version_id(current);
    }
    request.send().await.map_err(service)?;

    client
        .update_secret_version_stage()
        .secret_id(secret)
        .version_stage(PENDING)
        .remove_from_version_id(token)
        .send()
        .await
        .map_err(service)?;
    tracing::info!(secret = %secret, version = %token, previous = ?current_version, "rotation finished");
    Ok(())
}

/// Runs the rotation function: reads `SIGNING_ALGORITHM` once, then serves rotation events.
pub async fn run() -> Result<(), lambda_http::Error> {
    use lambda_http::lambda_runtime::{self, service_fn, LambdaEvent};

    crate::logging::init(true);
    let algorithm = match crate::config::process_env("SIGNING_ALGORITHM") {
        None => Algorithm::RS256,
        Some(value) => Algorithm::parse(&value).ok_or_else(|| {
            format!("SIGNING_ALGORITHM is invalid ({value:?}); expected one of RS256, ES256, EdDSA, HS256")
        })?,
    };
    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let client = Client::new(&aws);

    lambda_runtime::run(service_fn(|event: LambdaEvent<RotationEvent>| {
        let client = &client;
        async move {
            use crate::clock::{Clock, SystemClock};
            let result = rotate(client, &event.payload, algorithm, SystemClock.now()).await;
            if let Err(error) = &result {
                tracing::error!(error = %error, step = %event.payload.step, "rotation step failed");
            }
            result.map_err(lambda_http::Error::from)
        }
    }))
    .await
}
