//! `GET /metrics` (open, like `/healthcheck`; ours): the node's Prometheus metrics
//! ([`crate::metrics`]) in the OpenMetrics text format. Before encoding it reads what belongs to the
//! store, the indexer and the chain: the wallet's open sessions, the indexer's progress, and the
//! wallet's ETH and MOR (from the chain at most every [`BALANCE_EVERY`], each read bounded by
//! [`BALANCE_TIMEOUT`]; a slow or failing RPC node leaves the last values and never fails the scrape).

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use alloy::primitives::U256;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use utoipa::OpenApi;

use super::error::{ApiError, ErrorBody};
use super::wallet::{eth_balance, mor_balance};
use super::ApiState;
use crate::metrics::{self, ScrapeValues};

/// How often the wallet's balances are read from the chain.
pub const BALANCE_EVERY: Duration = Duration::from_secs(15);
/// Longest a balance read may take.
pub const BALANCE_TIMEOUT: Duration = Duration::from_secs(2);

static LAST_BALANCES: Mutex<Option<(Instant, (U256, U256))>> = Mutex::new(None);

/// The metrics route.
pub fn router() -> Router<ApiState> {
    Router::new().route("/metrics", get(scrape))
}

/// The OpenAPI description of the metrics route.
#[derive(OpenApi)]
#[openapi(paths(scrape))]
pub struct Doc;

/// The node's metrics in the OpenMetrics text format (Prometheus scrapes it as is): HTTP requests by
/// route and status, prompt latency, transactions and gas, open sessions, the indexer's lag and the
/// wallet's balances (docs/operations.md). No credentials needed.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "system",
    operation_id = "metrics",
    security(()),
    responses(
        (status = 200, description = "The metrics", content_type = "application/openmetrics-text", body = String),
        (status = 500, description = "They could not be encoded", body = ErrorBody),
    )
)]
pub async fn scrape(State(state): State<ApiState>) -> Result<Response, ApiError> {
    let status = state.indexer.borrow().clone();
    let mut values = ScrapeValues {
        indexer_head: status.head,
        indexer_indexed: status.indexed,
        indexer_lag: status.lag,
        ..ScrapeValues::default()
    };
    if let Some(signer) = state.wallet.get() {
        values.open_sessions =
            Some(state.store.consumer_sessions().open_of(signer.address()).await?.len() as u64);
        values.wallet = balances(&state, signer.address()).await;
    }
    let m = metrics::global();
    m.set_scrape_values(&values);
    let text = m.encode().map_err(|e| ApiError::internal("encoding the metrics", &e))?;
    Ok(([(CONTENT_TYPE, metrics::CONTENT_TYPE)], text).into_response())
}

async fn balances(state: &ApiState, owner: alloy::primitives::Address) -> Option<(U256, U256)> {
    let cached = *LAST_BALANCES.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some((at, values)) = cached {
        if at.elapsed() < BALANCE_EVERY {
            return Some(values);
        }
    }
    let chain = state.chain.as_ref()?;
    let read = async {
        tokio::try_join!(
            eth_balance(chain.rpc.provider(), owner),
            mor_balance(chain.rpc.provider(), chain.mor_token, owner)
        )
    };
    match tokio::time::timeout(BALANCE_TIMEOUT, read).await {
        Ok(Ok(values)) => {
            *LAST_BALANCES.lock().unwrap_or_else(PoisonError::into_inner) = Some((Instant::now(), values));
            Some(values)
        }
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "metrics: balances not read");
            cached.map(|(_, v)| v)
        }
        Err(_) => cached.map(|(_, v)| v),
    }
}
