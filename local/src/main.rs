//! `lambda-auth-local`: every lambda-auth route on 127.0.0.1 over an embedded store.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use lambda_auth::clock::{Clock, SystemClock};
use lambda_auth::gateway::{Gateway, GatewayError};
use lambda_auth::local::{app_for_data_dir, serve};
use lambda_auth::token::{Algorithm, StoredKeySet};

const USAGE: &str = "\
Usage:
  lambda-auth-local [--port PORT] [--data-dir DIR]
                    [--gateway-upstream URL [--gateway-prefix PREFIX]]
      Serves every route on http://127.0.0.1:PORT over the embedded store in DIR.
      PORT defaults to $PORT or 3000; DIR defaults to $LAMBDA_AUTH_DATA_DIR or ./.local-data
      (relative to the current directory). Settings such as AUTH_ISSUER and
      ACCESS_TOKEN_TTL_SECONDS come from environment variables; see the README.
      --gateway-upstream (or $LAMBDA_AUTH_GATEWAY_UPSTREAM) turns on the gateway: requests
      under PREFIX get the Lambda authorizer's decision, and allowed ones are forwarded to
      URL with x-auth-* headers. URL must be http://127.0.0.1:PORT or http://localhost:PORT,
      optionally with a base path. PREFIX defaults to $LAMBDA_AUTH_GATEWAY_PREFIX or /api.
  lambda-auth-local keygen [--algorithm RS256|ES256|EdDSA|HS256]
      Prints a new key set as JSON, for the Secrets Manager secret of a deployed stack.
";

struct Options {
    port: u16,
    data_dir: PathBuf,
    gateway: Option<Gateway>,
}

fn parse_port(name: &str, value: &str) -> Result<u16, String> {
    match value.parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => Err(format!(
            "{name} is invalid ({value:?}); expected a port number from 1 to 65535"
        )),
    }
}

/// Builds the gateway from flags, or from environment variables where a flag is absent.
fn gateway_options(
    upstream_flag: Option<String>,
    prefix_flag: Option<String>,
) -> Result<Option<Gateway>, String> {
    let upstream = upstream_flag
        .map(|url| ("--gateway-upstream", url))
        .or_else(|| {
            std::env::var("LAMBDA_AUTH_GATEWAY_UPSTREAM")
                .ok()
                .map(|url| ("LAMBDA_AUTH_GATEWAY_UPSTREAM", url))
        });
    let prefix = prefix_flag
        .map(|prefix| ("--gateway-prefix", prefix))
        .or_else(|| {
            std::env::var("LAMBDA_AUTH_GATEWAY_PREFIX")
                .ok()
                .map(|prefix| ("LAMBDA_AUTH_GATEWAY_PREFIX", prefix))
        });

    match (upstream, prefix) {
        (None, None) => Ok(None),
        (None, Some((source, _))) => Err(format!(
            "{source} is set but no upstream is; add --gateway-upstream URL to turn on the gateway"
        )),
        (Some((upstream_source, url)), prefix) => {
            let (prefix_source, prefix) =
                prefix.unwrap_or(("the default gateway prefix", "/api".to_owned()));
            Gateway::new(&prefix, &url).map(Some).map_err(|error| {
                let source = match error {
                    GatewayError::InvalidPrefix { .. } => prefix_source,
                    GatewayError::InvalidUpstream { .. } => upstream_source,
                };
                format!("{source}: {error}")
            })
        }
    }
}

fn parse_serve_options(args: &[String]) -> Result<Options, String> {
    let mut port = None;
    let mut data_dir = std::env::var_os("LAMBDA_AUTH_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(".local-data"));
    let mut gateway_upstream = None;
    let mut gateway_prefix = None;

    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => {
                let value = args.next().ok_or("--port needs a value")?;
                port = Some(parse_port("--port", value)?);
            }
            "--data-dir" => {
                data_dir = PathBuf::from(args.next().ok_or("--data-dir needs a value")?);
            }
            "--gateway-upstream" => {
                gateway_upstream =
                    Some(args.next().ok_or("--gateway-upstream needs a URL")?.clone());
            }
            "--gateway-prefix" => {
                gateway_prefix = Some(args.next().ok_or("--gateway-prefix needs a path")?.clone());
            }
            "--help" | "-h" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let port = match (port, std::env::var("PORT")) {
        (Some(port), _) => port,
        (None, Ok(value)) => parse_port("PORT", &value)?,
        (None, Err(_)) => 3000,
    };
    let gateway = gateway_options(gateway_upstream, gateway_prefix)?;
    Ok(Options {
        port,
        data_dir,
        gateway,
    })
}

fn keygen(args: &[String]) -> Result<(), String> {
    let algorithm = match args {
        [] => Algorithm::RS256,
        [flag, value] if flag == "--algorithm" => Algorithm::parse(value).ok_or_else(|| {
            format!("--algorithm is invalid ({value:?}); expected RS256, ES256, EdDSA or HS256")
        })?,
        [flag] if flag == "--help" || flag == "-h" => {
            print!("{USAGE}");
            return Ok(());
        }
        _ => return Err(format!("keygen takes only --algorithm ALG\n\n{USAGE}")),
    };
    let stored = StoredKeySet::generate(algorithm, SystemClock.now()).map_err(|e| e.to_string())?;
    println!("{}", stored.to_json());
    Ok(())
}

async fn run(options: Options) -> Result<(), String> {
    let (app, created) = app_for_data_dir(
        &options.data_dir,
        options.port,
        &lambda_auth::config::process_env,
    )
    .map_err(|e| e.to_string())?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", options.port))
        .await
        .map_err(|error| format!("cannot listen on 127.0.0.1:{}: {error}", options.port))?;
    let url = format!("http://127.0.0.1:{}", options.port);

    if created {
        println!(
            "Created a signing key set ({}) in {}",
            app.keys().current_alg().as_str(),
            options.data_dir.display()
        );
    }
    println!(
        "lambda-auth is listening on {url} (data in {})",
        options.data_dir.display()
    );
    if let Some(gateway) = &options.gateway {
        println!(
            "Gateway: {url}{}/* -> {}",
            gateway.prefix(),
            gateway.upstream()
        );
    }
    println!("Try:");
    println!(
        "  curl -i {url}/auth/register -H 'content-type: application/json' \\\n    -d '{{\"email\":\"ada@example.com\",\"password\":\"correct horse battery staple\"}}'"
    );

    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|error| format!("cannot listen for SIGTERM: {error}"))?;
    tokio::select! {
        () = serve(listener, Arc::new(app), options.gateway.map(Arc::new)) => {}
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    println!("Stopped.");
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    lambda_auth::logging::init(false);
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("--help" | "-h") => {
            print!("{USAGE}");
            Ok(())
        }
        Some("keygen") => keygen(&args[1..]),
        _ => match parse_serve_options(&args) {
            Ok(options) => run(options).await,
            Err(error) => Err(format!("{error}\n\n{USAGE}")),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
