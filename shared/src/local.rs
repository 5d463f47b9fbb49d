//! Local mode: every route on one HTTP/1.1 listener over the embedded store, with the key set in
//! a file of the data folder.

use std::convert::Infallible;
use std::fs::{self, OpenOptions};
use std::io::Write as _;
use std::net::SocketAddr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use http::StatusCode;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::app::App;
use crate::clock::{Clock, SystemClock};
use crate::config::{Config, ConfigError};
use crate::gateway::{full_body, Gateway, ResponseBody};
use crate::http::{add_security_headers, Problem, SourceIp, MAX_BODY_BYTES};
use crate::store::sqlite::SqliteStore;
use crate::token::{Algorithm, KeySet, StoredKeySet};

/// File name of the key set inside the data folder.
pub const KEY_SET_FILE: &str = "keyset.json";
/// File name of the SQLite database inside the data folder.
pub const DATABASE_FILE: &str = "lambda-auth.sqlite3";

#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error("configuration error: {0}")]
    Config(#[from] ConfigError),
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("the embedded store could not be opened: {0}")]
    Store(String),
}

fn file_error(path: &Path, error: impl std::fmt::Display) -> LocalError {
    LocalError::File {
        path: path.to_owned(),
        message: error.to_string(),
    }
}

/// Reads the key set file, or generates a key set and writes it with mode 0600 when the file
/// does not exist yet.
pub fn load_or_create_key_set(
    path: &Path,
    algorithm: Algorithm,
    now: i64,
) -> Result<(KeySet, bool), LocalError> {
    let created = match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(mut file) => {
            let stored = StoredKeySet::generate(algorithm, now).map_err(|e| file_error(path, e))?;
            file.write_all(stored.to_json().as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(|e| file_error(path, e))?;
            true
        }
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => false,
        Err(error) => return Err(file_error(path, error)),
    };

    let mode = fs::metadata(path)
        .map_err(|e| file_error(path, e))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(file_error(
            path,
            format!(
                "the key set file is readable by other users (mode {:o}); run chmod 600 on it",
                mode & 0o777
            ),
        ));
    }
    let text = fs::read_to_string(path).map_err(|e| file_error(path, e))?;
    let stored = StoredKeySet::from_json(&text).map_err(|e| file_error(path, e))?;
    let keys = KeySet::from_stored(&stored).map_err(|e| file_error(path, e))?;
    Ok((keys, created))
}

/// Builds the local application over a data folder, creating the folder (mode 0700), the
/// database and the key set on first start. The configuration is checked before anything is
/// written, and an existing folder keeps its mode.
pub fn app_for_data_dir(
    data_dir: &Path,
    port: u16,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<(App, bool), LocalError> {
    let default_issuer = format!("http://127.0.0.1:{port}");
    let config = Config::from_env(env, Some(&default_issuer))?;

    if !data_dir.exists() {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(data_dir)
            .map_err(|e| file_error(data_dir, e))?;
    }
    let clock = SystemClock;
    let (keys, created) = load_or_create_key_set(
        &data_dir.join(KEY_SET_FILE),
        config.signing_algorithm,
        clock.now(),
    )?;

    let store = SqliteStore::open(&data_dir.join(DATABASE_FILE))
        .map_err(|error| LocalError::Store(error.to_string()))?;
    let purged = store
        .purge_expired(clock.now())
        .map_err(|error| LocalError::Store(error.to_string()))?;
    if purged > 0 {
        tracing::info!(purged, "expired items deleted from the embedded store");
    }
    Ok((
        App::new(config, Arc::new(store), Arc::new(keys), Arc::new(clock)),
        created,
    ))
}

/// Serves HTTP/1.1 on the listener until the task is dropped. With a gateway, requests under its
/// prefix go through the gateway and every other request goes to the auth routes.
pub async fn serve(listener: TcpListener, app: Arc<App>, gateway: Option<Arc<Gateway>>) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(error = %error, "accepting a connection failed");
                continue;
            }
        };
        let app = Arc::clone(&app);
        let gateway = gateway.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let app = Arc::clone(&app);
                let gateway = gateway.clone();
                async move {
                    Ok::<_, Infallible>(dispatch(&app, gateway.as_deref(), peer, request).await)
                }
            });
            if let Err(error) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(error = %error, peer = %peer, "connection closed with an error");
            }
        });
    }
}

async fn dispatch(
    app: &App,
    gateway: Option<&Gateway>,
    peer: SocketAddr,
    request: http::Request<Incoming>,
) -> http::Response<ResponseBody> {
    match gateway {
        Some(gateway) if gateway.matches(request.uri().path()) => {
            gateway.handle(app, request).await
        }
        _ => handle(app, peer, request).await.map(full_body),
    }
}

async fn handle(
    app: &App,
    peer: SocketAddr,
    request: http::Request<Incoming>,
) -> http::Response<Bytes> {
    let (parts, body) = request.into_parts();
    match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => {
            let mut request = http::Request::from_parts(parts, collected.to_bytes());
            request
                .extensions_mut()
                .insert(SourceIp(peer.ip().to_string()));
            let method = request.method().clone();
            let path = request.uri().path().to_owned();
            let response = app.handle(request).await;
            tracing::info!(%method, %path, status = response.status().as_u16(), "request");
            response
        }
        Err(error) => {
            let problem = if error.is::<http_body_util::LengthLimitError>() {
                Problem::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "payload_too_large",
                    format!("the request body exceeds the limit of {MAX_BODY_BYTES} bytes"),
                )
            } else {
                Problem::bad_request("invalid_request", "the request body could not be read")
            };
            let mut response = problem.into_response();
            add_security_headers(&mut response);
            response
        }
    }
}
