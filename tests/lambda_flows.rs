//! The password flows through the Lambda adapter, fed real API Gateway event JSON (HTTP API
//! payload 2.0 and REST API 1.0), against moto's DynamoDB and Secrets Manager.

mod common;

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use lambda_auth::clock::ManualClock;
use lambda_auth::lambda::{app_from, handle_event};
use lambda_auth::token::{Algorithm, StoredKeySet};
use lambda_auth::{App, Route};
use lambda_http::request::LambdaRequest;
use lambda_http::{service_fn, Adapter, Context, LambdaEvent, Service};
use serde_json::{json, Value};

const V2_EVENT: &str = include_str!("events/http-api-v2.json");
const V1_EVENT: &str = include_str!("events/rest-api-v1.json");

#[derive(Clone, Copy, Debug)]
enum Payload {
    HttpApiV2,
    RestApiV1,
}

/// One request to send as an API Gateway event.
struct Event<'a> {
    method: &'a str,
    path: &'a str,
    stage: &'a str,
    headers: Vec<(&'a str, String)>,
    body: Option<String>,
    base64: bool,
}

impl<'a> Event<'a> {
    fn new(method: &'a str, path: &'a str) -> Self {
        Event {
            method,
            path,
            stage: "$default",
            headers: Vec::new(),
            body: None,
            base64: false,
        }
    }

    fn json(mut self, body: Value) -> Self {
        self.body = Some(body.to_string());
        self
    }

    fn header(mut self, name: &'a str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    fn stage(mut self, stage: &'a str) -> Self {
        self.stage = stage;
        self
    }

    fn base64_body(mut self) -> Self {
        let body = self.body.take().unwrap_or_default();
        self.body = Some(STANDARD.encode(body));
        self.base64 = true;
        self
    }

    /// Fills the recorded event of the payload format with this request.
    fn to_json(&self, payload: Payload) -> String {
        let staged_path = if self.stage == "$default" {
            self.path.to_owned()
        } else {
            format!("/{}{}", self.stage, self.path)
        };
        match payload {
            Payload::HttpApiV2 => {
                let mut event: Value = serde_json::from_str(V2_EVENT).unwrap();
                event["routeKey"] = json!(format!("{} {}", self.method, self.path));
                event["rawPath"] = json!(staged_path);
                event["requestContext"]["routeKey"] = event["routeKey"].clone();
                event["requestContext"]["http"]["method"] = json!(self.method);
                event["requestContext"]["http"]["path"] = json!(staged_path);
                event["requestContext"]["stage"] = json!(self.stage);
                for (name, value) in &self.headers {
                    event["headers"][name.to_ascii_lowercase()] = json!(value);
                }
                event["body"] = json!(self.body);
                event["isBase64Encoded"] = json!(self.base64);
                event.to_string()
            }
            Payload::RestApiV1 => {
                let mut event: Value = serde_json::from_str(V1_EVENT).unwrap();
                event["resource"] = json!(self.path);
                event["path"] = json!(self.path);
                event["httpMethod"] = json!(self.method);
                event["requestContext"]["httpMethod"] = json!(self.method);
                event["requestContext"]["resourcePath"] = json!(self.path);
                event["requestContext"]["path"] = json!(staged_path);
                event["requestContext"]["stage"] = json!(if self.stage == "$default" {
                    "prod"
                } else {
                    self.stage
                });
                for (name, value) in &self.headers {
                    event["headers"][*name] = json!(value);
                    event["multiValueHeaders"][*name] = json!([value]);
                }
                event["body"] = json!(self.body);
                event["isBase64Encoded"] = json!(self.base64);
                event.to_string()
            }
        }
    }
}

/// What API Gateway receives back from the function, read out of the serialised response.
#[derive(Debug)]
struct GatewayResponse {
    status: u16,
    headers: HashMap<String, String>,
    body: Value,
}

impl GatewayResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

struct LambdaHarness {
    app: App,
    clock: Arc<ManualClock>,
    payload: Payload,
}

impl LambdaHarness {
    /// Creates a table and a key-set secret on moto, then builds the application the way a
    /// function's cold start does.
    async fn start(payload: Payload) -> Self {
        let config = common::aws_config().await;
        let store = common::dynamo_store().await;
        let stored = StoredKeySet::generate(Algorithm::RS256, common::START).unwrap();
        let secret = aws_sdk_secretsmanager::Client::new(&config)
            .create_secret()
            .name(common::unique_name("lambda-auth-keyset"))
            .secret_string(stored.to_json())
            .send()
            .await
            .expect("moto creates the key-set secret");

        let variables = HashMap::from([
            ("AUTH_ISSUER", "https://auth.test.example".to_owned()),
            ("TABLE_NAME", store.table().to_owned()),
            ("KEYSET_SECRET_ARN", secret.arn().unwrap().to_owned()),
            ("ARGON2_MEMORY_KIB", "8192".to_owned()),
            ("ARGON2_ITERATIONS", "1".to_owned()),
        ]);
        let clock = Arc::new(ManualClock::new(common::START));
        let app = app_from(&|name| variables.get(name).cloned(), clock.clone())
            .await
            .expect("the application starts from moto");
        LambdaHarness {
            app,
            clock,
            payload,
        }
    }

    /// Invokes the adapter the way the Lambda runtime does and serialises its response.
    async fn invoke_raw(&self, event_json: &str, bound: &[Route]) -> GatewayResponse {
        let request: LambdaRequest =
            serde_json::from_str(event_json).expect("the event deserialises as lambda_http does");
        let app = &self.app;
        let mut adapter = Adapter::from(service_fn(move |request| async move {
            Ok::<_, Infallible>(handle_event(app, bound, request).await)
        }));
        let response = adapter
            .call(LambdaEvent::new(request, Context::default()))
            .await
            .expect("the handler never fails");
        let output = serde_json::to_value(&response).unwrap();

        let status = output["statusCode"].as_u64().expect("statusCode") as u16;
        let mut headers = HashMap::new();
        for field in ["headers", "multiValueHeaders"] {
            if let Some(map) = output[field].as_object() {
                for (name, value) in map {
                    let value = match value {
                        Value::Array(values) => values[0].as_str().unwrap_or_default().to_owned(),
                        other => other.as_str().unwrap_or_default().to_owned(),
                    };
                    headers.insert(name.to_ascii_lowercase(), value);
                }
            }
        }
        assert_ne!(
            output["isBase64Encoded"],
            json!(true),
            "JSON bodies go back as text"
        );
        let body = match output["body"].as_str() {
            None | Some("") => Value::Null,
            Some(text) => serde_json::from_str(text)
                .unwrap_or_else(|error| panic!("body is not JSON ({error}): {text}")),
        };
        GatewayResponse {
            status,
            headers,
            body,
        }
    }

    async fn invoke(&self, event: Event<'_>) -> GatewayResponse {
        self.invoke_raw(&event.to_json(self.payload), &[]).await
    }

    async fn register(&self, email: &str) -> GatewayResponse {
        self.invoke(
            Event::new("POST", "/auth/register")
                .json(json!({ "email": email, "password": common::PASSWORD })),
        )
        .await
    }

    async fn login(&self, email: &str) -> GatewayResponse {
        self.invoke(
            Event::new("POST", "/auth/login")
                .json(json!({ "email": email, "password": common::PASSWORD })),
        )
        .await
    }

    async fn refresh(&self, refresh_token: &Value) -> GatewayResponse {
        self.invoke(
            Event::new("POST", "/auth/refresh").json(json!({ "refresh_token": refresh_token })),
        )
        .await
    }

    async fn me(&self, access_token: &Value) -> GatewayResponse {
        let token = access_token.as_str().unwrap();
        self.invoke(
            Event::new("GET", "/auth/me").header("Authorization", format!("Bearer {token}")),
        )
        .await
    }
}

fn session_id(access_token: &Value) -> String {
    let payload = access_token.as_str().unwrap().split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    claims["sid"].as_str().unwrap().to_owned()
}

async fn password_flow(payload: Payload) {
    let harness = LambdaHarness::start(payload).await;

    let registered = harness.register("Grace.Hopper@example.com").await;
    assert_eq!(registered.status, 201, "{:?}", registered.body);
    assert_eq!(registered.body["email"], "Grace.Hopper@example.com");
    let user_id = registered.body["id"].clone();

    let login = harness.login("grace.hopper@EXAMPLE.com").await;
    assert_eq!(login.status, 200, "{:?}", login.body);
    assert_eq!(login.body["token_type"], "Bearer");
    assert_eq!(login.body["expires_in"], 900);
    assert!(login.body["access_token"].is_string());
    assert!(login.body["refresh_token"].is_string());
    assert_eq!(login.header("cache-control"), Some("no-store"));
    assert_eq!(login.header("x-content-type-options"), Some("nosniff"));
    assert_eq!(login.header("x-frame-options"), Some("DENY"));

    let me = harness.me(&login.body["access_token"]).await;
    assert_eq!(me.status, 200, "{:?}", me.body);
    assert_eq!(me.body["id"], user_id);
    assert_eq!(me.body["email"], "Grace.Hopper@example.com");

    let first = harness.refresh(&login.body["refresh_token"]).await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    assert_ne!(first.body["refresh_token"], login.body["refresh_token"]);
    assert_eq!(
        session_id(&first.body["access_token"]),
        session_id(&login.body["access_token"])
    );

    harness.clock.advance(5);
    let retry = harness.refresh(&login.body["refresh_token"]).await;
    assert_eq!(
        retry.status, 200,
        "a retry inside the grace period succeeds: {:?}",
        retry.body
    );
    assert_eq!(
        session_id(&retry.body["access_token"]),
        session_id(&login.body["access_token"])
    );

    harness.clock.advance(6);
    let replay = harness.refresh(&login.body["refresh_token"]).await;
    assert_eq!(replay.status, 401);
    assert_eq!(replay.body["code"], "refresh_token_reused");
    let newest = harness.refresh(&first.body["refresh_token"]).await;
    assert_eq!(
        newest.status, 401,
        "the session was revoked: {:?}",
        newest.body
    );
    assert_eq!(newest.body["code"], "invalid_refresh_token");
    let after_revoke = harness.me(&first.body["access_token"]).await;
    assert_eq!(after_revoke.status, 401);

    let second_login = harness.login("grace.hopper@example.com").await;
    assert_eq!(second_login.status, 200);
    let token = second_login.body["access_token"].as_str().unwrap();
    let logout = harness
        .invoke(
            Event::new("POST", "/auth/logout").header("Authorization", format!("Bearer {token}")),
        )
        .await;
    assert_eq!(logout.status, 204, "{:?}", logout.body);
    let refresh_after_logout = harness.refresh(&second_login.body["refresh_token"]).await;
    assert_eq!(refresh_after_logout.status, 401);
    let me_after_logout = harness.me(&second_login.body["access_token"]).await;
    assert_eq!(me_after_logout.status, 401);
}

#[tokio::test]
async fn http_api_password_flow() {
    password_flow(Payload::HttpApiV2).await;
}

#[tokio::test]
async fn rest_api_password_flow() {
    password_flow(Payload::RestApiV1).await;
}

async fn event_shapes(payload: Payload) {
    let harness = LambdaHarness::start(payload).await;
    assert_eq!(harness.register("ada@example.com").await.status, 201);
    let credentials = json!({ "email": "ada@example.com", "password": common::PASSWORD });

    let base64 = harness
        .invoke(
            Event::new("POST", "/auth/login")
                .json(credentials.clone())
                .base64_body(),
        )
        .await;
    assert_eq!(base64.status, 200, "base64-encoded body: {:?}", base64.body);

    let staged = harness
        .invoke(
            Event::new("POST", "/auth/login")
                .json(credentials.clone())
                .stage("prod"),
        )
        .await;
    assert_eq!(staged.status, 200, "stage-prefixed path: {:?}", staged.body);

    let cookies = harness
        .invoke(
            Event::new("POST", "/auth/login")
                .json(credentials.clone())
                .header("Cookie", "theme=dark; consent=yes; session=abc"),
        )
        .await;
    assert_eq!(cookies.status, 200, "several cookies: {:?}", cookies.body);

    let mut invalid = Event::new("POST", "/auth/login").stage("v1");
    invalid.body = Some("{\"email\": ".to_owned());
    let invalid = harness.invoke(invalid).await;
    assert_eq!(invalid.status, 400);
    assert_eq!(invalid.body["code"], "malformed_json");
    assert_eq!(
        invalid.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(invalid.header("x-content-type-options"), Some("nosniff"));

    let mut base64_invalid = Event::new("POST", "/auth/register");
    base64_invalid.body = Some(STANDARD.encode("not json at all"));
    base64_invalid.base64 = true;
    let base64_invalid = harness.invoke(base64_invalid).await;
    assert_eq!(base64_invalid.status, 400);
    assert_eq!(base64_invalid.body["code"], "malformed_json");

    let unknown = harness
        .invoke(Event::new("GET", "/auth/nothing-here").stage("prod"))
        .await;
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.body["code"], "not_found");

    let jwks = harness
        .invoke(Event::new("GET", "/.well-known/jwks.json").stage("prod"))
        .await;
    assert_eq!(jwks.status, 200);
    assert_eq!(jwks.body["keys"][0]["kty"], "RSA");
    assert_eq!(jwks.body["keys"][0]["alg"], "RS256");

    let discovery = harness
        .invoke(Event::new("GET", "/.well-known/openid-configuration"))
        .await;
    assert_eq!(discovery.status, 200);
    assert_eq!(discovery.body["issuer"], "https://auth.test.example");
    assert_eq!(
        discovery.body["jwks_uri"],
        "https://auth.test.example/.well-known/jwks.json"
    );
}

#[tokio::test]
async fn http_api_event_shapes() {
    event_shapes(Payload::HttpApiV2).await;
}

#[tokio::test]
async fn rest_api_event_shapes() {
    event_shapes(Payload::RestApiV1).await;
}

#[tokio::test]
async fn function_rejects_other_routes() {
    let harness = LambdaHarness::start(Payload::HttpApiV2).await;
    let event = Event::new("POST", "/auth/register")
        .json(json!({ "email": "ada@example.com", "password": common::PASSWORD }))
        .to_json(Payload::HttpApiV2);

    let response = harness.invoke_raw(&event, &[Route::Login]).await;

    assert_eq!(response.status, 404);
    assert_eq!(response.body["code"], "not_found");
}

#[tokio::test]
async fn missing_secret_stops_start() {
    let _ = common::moto_endpoint();
    let variables = HashMap::from([
        ("AUTH_ISSUER", "https://auth.test.example".to_owned()),
        ("TABLE_NAME", "unused".to_owned()),
        ("KEYSET_SECRET_ARN", "lambda-auth-no-such-secret".to_owned()),
    ]);
    let clock = Arc::new(ManualClock::new(common::START));

    let error = app_from(&|name| variables.get(name).cloned(), clock)
        .await
        .unwrap_err();

    assert!(error.to_string().contains("Secrets Manager"), "{error}");
}

#[tokio::test]
async fn missing_table_variable_stops_start() {
    let variables = HashMap::from([("AUTH_ISSUER", "https://auth.test.example".to_owned())]);
    let clock = Arc::new(ManualClock::new(common::START));

    let error = app_from(&|name| variables.get(name).cloned(), clock)
        .await
        .unwrap_err();

    assert!(error.to_string().contains("TABLE_NAME"), "{error}");
}
