//! The node's logs ([`init`]): text or JSON lines (`LOG_JSON`, `LOG_IS_PROD`) on standard output and,
//! with `LOG_FOLDER_PATH`, also in `<folder>/<start time>/main.log`, at the levels of the reference's
//! four components (`LOG_LEVEL_APP`, `_TCP`, `_ETH_RPC`, `_STORAGE`), or as `RUST_LOG` says when it is
//! set. Every line of an HTTP request carries its request id (the `request` span of
//! [`request_span`]).
//!
//! What is never logged: API keys, wallet keys, passwords and prompt or answer text. Requests are
//! logged by method, matched route, status and id only.

use std::fs::File;
use std::io;
use std::path::PathBuf;
use std::sync::Mutex;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument as _;
use tracing_subscriber::fmt::writer::MakeWriterExt as _;
use tracing_subscriber::EnvFilter;

use crate::config::LogConfig;

/// The request id header (read, or set when the client sent none, before any handler runs).
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Why logging could not start.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The log folder or file could not be made.
    #[error("LOG_FOLDER_PATH: cannot create {path}: {source}")]
    File {
        /// The file or folder.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
}

/// The filter of `config`'s levels: the node's own lines at `app`, MOR-RPC connections at `tcp`, chain
/// RPC and transactions at `eth_rpc`, the store at `storage`; other crates at `warn`.
pub fn filter(config: &LogConfig) -> EnvFilter {
    let level = |l: tracing::Level| l.to_string().to_lowercase();
    let (app, tcp, rpc, storage) =
        (level(config.app), level(config.tcp), level(config.eth_rpc), level(config.storage));
    let directives = [
        format!("warn,proxy_router={app}"),
        format!("proxy_router::protocol={tcp},proxy_router::provider::server={tcp},proxy_router::consumer::client={tcp}"),
        format!("proxy_router::chain={rpc},alloy_rpc_client={rpc},alloy_transport={rpc},alloy_provider={rpc}"),
        format!("proxy_router::store={storage},sqlx={storage}"),
    ];
    EnvFilter::new(directives.join(","))
}

/// Installs the global subscriber for `config`. Call once, before anything logs.
pub fn init(config: &LogConfig) -> Result<(), LogError> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| filter(config));
    let file = match &config.folder {
        None => None,
        Some(folder) => {
            let started =
                humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string().replace(':', "-");
            let dir = folder.join(started);
            std::fs::create_dir_all(&dir).map_err(|source| LogError::File { path: dir.clone(), source })?;
            let path = dir.join("main.log");
            let file = File::create(&path).map_err(|source| LogError::File { path, source })?;
            Some(Mutex::new(file))
        }
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    // A second `init` (tests) finds a subscriber installed and leaves it.
    let _ = match (config.json, file) {
        (true, Some(file)) => builder.json().with_writer(io::stdout.and(file)).try_init(),
        (true, None) => builder.json().with_writer(io::stdout).try_init(),
        (false, Some(file)) => builder.with_ansi(false).with_writer(io::stdout.and(file)).try_init(),
        (false, None) => builder.with_ansi(config.color).with_writer(io::stdout).try_init(),
    };
    Ok(())
}

/// Middleware for an HTTP surface: gives the request an id (the client's `X-Request-Id` when it sent
/// a usable one, else a new one, set on the request so handlers see the same), runs it in a
/// `request` span carrying that id, and logs its answer's status.
pub async fn request_span(mut request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .map(str::to_owned)
        .unwrap_or_else(crate::consumer::client::request_id);
    if let Ok(value) = HeaderValue::from_str(&id) {
        request.headers_mut().insert(REQUEST_ID, value);
    }
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_owned();
    let span = tracing::info_span!("request", id = %id, method = %request.method(), route = %route);
    async move {
        let response = next.run(request).await;
        tracing::debug!(status = response.status().as_u16(), "answered");
        response
    }
    .instrument(span)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_map_to_the_components() {
        let config = LogConfig {
            json: false,
            color: false,
            folder: None,
            app: tracing::Level::INFO,
            tcp: tracing::Level::DEBUG,
            eth_rpc: tracing::Level::WARN,
            storage: tracing::Level::ERROR,
        };
        let text = filter(&config).to_string();
        for part in [
            "proxy_router=info",
            "proxy_router::protocol=debug",
            "proxy_router::chain=warn",
            "alloy_transport=warn",
            "proxy_router::store=error",
            "sqlx=error",
        ] {
            assert!(text.contains(part), "{part} in {text}");
        }
    }
}
