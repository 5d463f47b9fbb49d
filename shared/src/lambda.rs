//! The Lambda entry point: cold-start wiring and the adapter between `lambda_http` events and
//! the shared handlers.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use lambda_http::request::RequestContext;
use lambda_http::{service_fn, Body, RequestExt};

use crate::app::{App, Route};
use crate::clock::{Clock, SystemClock};
use crate::config::{number, process_env, required, Config, ConfigError};
use crate::http::SourceIp;
use crate::store::dynamo::DynamoStore;
use crate::token::{KeySetCache, RefreshPolicy, SecretsManagerSource};

/// Failure of a function to start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("configuration error: {0}")]
    Config(#[from] ConfigError),
    #[error("could not load a secret from Secrets Manager: {0}")]
    KeySet(String),
}

/// Builds the application from the process environment: configuration, AWS clients and the
/// key set.
pub async fn app_from_env() -> Result<App, StartError> {
    app_from(&process_env, Arc::new(SystemClock)).await
}

/// Builds the application from the given variables. AWS clients still take their endpoint,
/// region and credentials from the process environment, as the SDK does.
pub async fn app_from(
    env: &dyn Fn(&str) -> Option<String>,
    clock: Arc<dyn Clock>,
) -> Result<App, StartError> {
    let mut config = Config::from_env(env, None)?;
    let table = required(env, "TABLE_NAME", "the name of the DynamoDB table")?;
    let secret = required(
        env,
        "KEYSET_SECRET_ARN",
        "the ARN of the Secrets Manager secret holding the key set",
    )?;

    let aws = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let store = DynamoStore::new(aws_sdk_dynamodb::Client::new(&aws), table);
    let secrets = aws_sdk_secretsmanager::Client::new(&aws);
    for provider in &mut config.oauth.providers {
        if let (None, Some(arn)) = (&provider.client_secret, &provider.client_secret_arn) {
            let output = secrets
                .get_secret_value()
                .secret_id(arn)
                .send()
                .await
                .map_err(|error| {
                    StartError::KeySet(format!(
                        "the client secret of provider {} ({arn}) could not be read: {}",
                        provider.name,
                        aws_sdk_secretsmanager::error::DisplayErrorContext(&error)
                    ))
                })?;
            provider.client_secret = output.secret_string().map(str::to_owned);
        }
    }
    let source = SecretsManagerSource {
        client: aws_sdk_secretsmanager::Client::new(&aws),
        secret_id: secret,
    };
    let refresh = RefreshPolicy {
        max_age: Duration::from_secs(number(env, "KEYSET_MAX_AGE_SECONDS", 300, 0, 3600)? as u64),
        min_refetch_interval: Duration::from_secs(number(
            env,
            "KEYSET_REFETCH_INTERVAL_SECONDS",
            30,
            0,
            3600,
        )? as u64),
    };
    let keys = KeySetCache::load(Arc::new(source), refresh)
        .await
        .map_err(StartError::KeySet)?;
    tracing::info!(kid = keys.keys().current_kid(), "signing key set loaded");
    Ok(App::new(config, Arc::new(store), keys, clock))
}

/// Runs one function: builds the application once, then serves `route` for every invocation.
pub async fn run(route: Route) -> Result<(), lambda_http::Error> {
    run_routes(&[route]).await
}

/// Runs one function that serves several routes.
pub async fn run_routes(routes: &[Route]) -> Result<(), lambda_http::Error> {
    let routes: Arc<[Route]> = routes.into();
    crate::logging::init(true);
    let app = match app_from_env().await {
        Ok(app) => Arc::new(app),
        Err(error) => {
            tracing::error!(error = %error, "start-up failed");
            return Err(error.into());
        }
    };
    lambda_http::run(service_fn(move |request| {
        let app = Arc::clone(&app);
        let routes = Arc::clone(&routes);
        async move { Ok::<_, Infallible>(handle_event(&app, &routes, request).await) }
    }))
    .await
}

/// Serves one API Gateway request. `bound` lists the function's own routes: a request for
/// another path gets 404. An empty list serves every route, as one function behind a catch-all
/// would.
pub async fn handle_event(
    app: &App,
    bound: &[Route],
    request: lambda_http::Request,
) -> lambda_http::Response<Body> {
    let path = route_path(&request);
    let route = Route::from_path(&path).filter(|route| bound.is_empty() || bound.contains(route));
    let source_ip = source_ip(&request);

    let (parts, body) = request.into_parts();
    let body = match body {
        Body::Empty => Bytes::new(),
        Body::Text(text) => Bytes::from(text),
        Body::Binary(bytes) => Bytes::from(bytes),
        _ => Bytes::new(),
    };
    let mut request = http::Request::from_parts(parts, body);
    if let Some(ip) = source_ip {
        request.extensions_mut().insert(SourceIp(ip));
    }

    let (parts, body) = app.handle_route(route, request).await.into_parts();
    let body = if body.is_empty() {
        Body::Empty
    } else {
        match String::from_utf8(body.to_vec()) {
            Ok(text) => Body::Text(text),
            Err(error) => Body::Binary(error.into_bytes()),
        }
    };
    lambda_http::Response::from_parts(parts, body)
}

/// The request path without the stage prefix that `lambda_http` adds for named stages, and
/// without a custom domain's base path (one leading segment) when that is what comes before
/// a known route.
fn route_path(request: &lambda_http::Request) -> String {
    let path = request.uri().path();
    let stage = match request.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(context)) => context.stage.clone(),
        Some(RequestContext::ApiGatewayV2(context)) => context.stage.clone(),
        _ => None,
    };
    let without_stage = stage
        .filter(|stage| stage != "$default")
        .and_then(|stage| path.strip_prefix(&format!("/{stage}")).map(str::to_owned))
        .filter(|rest| rest.starts_with('/'))
        .unwrap_or_else(|| path.to_owned());
    if Route::from_path(&without_stage).is_some() {
        return without_stage;
    }
    match without_stage[1.min(without_stage.len())..].find('/') {
        Some(index) => without_stage[index + 1..].to_owned(),
        None => without_stage,
    }
}

fn source_ip(request: &lambda_http::Request) -> Option<String> {
    match request.request_context_ref()? {
        RequestContext::ApiGatewayV1(context) => context.identity.source_ip.clone(),
        RequestContext::ApiGatewayV2(context) => context.http.source_ip.clone(),
        _ => None,
    }
}
