//! `lambda-auth-local`: every lambda-auth route on 127.0.0.1 over an embedded store.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use lambda_auth::clock::{Clock, SystemClock};
use lambda_auth::local::{app_for_data_dir, serve};
use lambda_auth::token::{Algorithm, StoredKeySet};

const USAGE: &str = "\
Usage:
  lambda-auth-local [--port PORT] [--data-dir DIR]
      Serves every route on http://127.0.0.1:PORT over the embedded store in DIR.
      PORT defaults to $PORT or 3000; DIR defaults to $LAMBDA_AUTH_DATA_DIR or ./.local-data
      (relative to the current directory). Settings such as AUTH_ISSUER and
      ACCESS_TOKEN_TTL_SECONDS come from environment variables; see the README.
  lambda-auth-local keygen [--algorithm RS256|ES256|EdDSA|HS256]
      Prints a new key set as JSON, for the Secrets Manager secret of a deployed stack.
";

struct Options {
    port: u16,
    data_dir: PathBuf,
}

fn parse_port(name: &str, value: &str) -> Result<u16, String> {
    match value.parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => Err(format!(
            "{name} is invalid ({value:?}); expected a port number from 1 to 65535"
        )),
    }
}

fn parse_serve_options(args: &[String]) -> Result<Options, String> {
    let mut port = None;
    let mut data_dir = std::env::var_os("LAMBDA_AUTH_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(".local-data"));

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
    Ok(Options { port, data_dir })
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
    println!("Try:");
    println!(
        "  curl -i {url}/auth/register -H 'content-type: application/json' \\\n    -d '{{\"email\":\"ada@example.com\",\"password\":\"correct horse battery staple\"}}'"
    );

    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|error| format!("cannot listen for SIGTERM: {error}"))?;
    tokio::select! {
        () = serve(listener, Arc::new(app)) => {}
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
