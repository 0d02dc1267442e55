//! The node's wallet and what it holds (go-proxy-router.md §1.2 and §1.6):
//!
//! | Route | Permission | Answer |
//! |---|---|---|
//! | `GET /wallet` | `get_wallet` | `{"address"}` |
//! | `POST /wallet/privateKey` `{"privateKey"}` | `set_wallet` | `{"address"}` |
//! | `POST /wallet/mnemonic` `{"mnemonic","derivationPath"}` | `set_wallet` | `{"address"}` |
//! | `DELETE /wallet` | `remove_wallet` | `{"status":"ok"}` |
//! | `GET /blockchain/balance` | `get_balance` | `{"eth":"int","mor":"int"}` |
//! | `GET /blockchain/allowance?spender=` | `get_allowance` | `{"allowance":"int"}` |
//! | `POST /blockchain/approve?spender=&amount=` | `approve` | `{"tx"}` |
//! | `POST /blockchain/send/eth` `{"to","amount"}` | `send_eth` | `{"tx"}` |
//! | `POST /blockchain/send/mor` `{"to","amount"}` | `send_mor` | `{"tx"}` |
//! | `GET /blockchain/latestBlock` | `get_latest_block` | `{"block": n}` |
//! | `GET /blockchain/transactions?page=&limit=` | `get_transactions` | 501 (see below) |
//!
//! Amounts are wei (`approve` *sets* the allowance, as ERC-20 `approve`). Balances and allowances are
//! read from the chain, not from the index. Writes answer after the receipt. A non-admin user's sends
//! spend its allowance of the token ([`super::users::spend`]: 403 `allowance_exceeded` beyond it; the
//! ETH allowance counts the value sent, not the gas).
//!
//! # The wallet at runtime
//!
//! The reference keeps a key set through the API in the OS keychain. We keep it in the node's data
//! directory ([`super::stored::WALLET_FILE`], mode 0600, written atomically) and swap the node's
//! [`WalletSlot`](crate::chain::WalletSlot) at once: the next write signs with the new key,
//! transactions already under way finish with the old one. At start, a node without a configured key
//! loads the stored one with [`load_stored_wallet`]. A wallet from the configuration
//! (`WALLET_PRIVATE_KEY`, `WALLET_MNEMONIC`) cannot be replaced or removed here: those routes answer
//! 409. Setting and removing are serialised, so the file and the slot always agree.
//!
//! # Transactions
//!
//! The reference reads the wallet's history from a Blockscout v2 API (`BLOCKSCOUT_API_URL`). This node
//! has no explorer setting yet, so `GET /blockchain/transactions` validates its query and answers 501
//! with the reason.

use alloy::network::TransactionBuilder;
use alloy::primitives::{Address, U256};
use alloy::providers::Provider;
use alloy::rpc::types::TransactionRequest;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};

use super::auth::Principal;
use super::users::{reserve, SpendToken};
use super::wire::{lower_address, parse_address, parse_decimal, BigInt, StatusResponse, TxResponse};
use super::{guard, stored, ApiError, ApiState, AuthStore, ErrorBody, Permission};
use crate::chain::bindings::MorpheusToken;
use crate::chain::{ChainError, Signer, TxSender, Wallet, WalletSource};
use crate::config::{WalletKey, DEFAULT_DERIVATION_PATH};

pub use super::stored::{load_wallet as load_stored_wallet, StoredFileError};

/// Largest `limit` of `GET /blockchain/transactions`.
pub const MAX_TRANSACTIONS_LIMIT: u64 = 100;

/// Serialises the routes that change the wallet, so the key file and the slot always agree.
static WALLET_CHANGE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The wallet and token routes.
pub fn router(auth: &AuthStore) -> Router<ApiState> {
    Router::new()
        .route(
            "/wallet",
            guard(auth, Permission::GetWallet, get(get_wallet)).merge(guard(
                auth,
                Permission::RemoveWallet,
                delete(remove_wallet),
            )),
        )
        .route("/wallet/privateKey", guard(auth, Permission::SetWallet, post(set_private_key)))
        .route("/wallet/mnemonic", guard(auth, Permission::SetWallet, post(set_mnemonic)))
        .route("/blockchain/balance", guard(auth, Permission::GetBalance, get(balance)))
        .route("/blockchain/allowance", guard(auth, Permission::GetAllowance, get(allowance)))
        .route("/blockchain/approve", guard(auth, Permission::Approve, post(approve)))
        .route("/blockchain/send/eth", guard(auth, Permission::SendEth, post(send_eth)))
        .route("/blockchain/send/mor", guard(auth, Permission::SendMor, post(send_mor)))
        .route("/blockchain/latestBlock", guard(auth, Permission::GetLatestBlock, get(latest_block)))
        .route("/blockchain/transactions", guard(auth, Permission::GetTransactions, get(transactions)))
}

/// The OpenAPI description of these routes.
#[derive(OpenApi)]
#[openapi(
    paths(
        get_wallet,
        set_private_key,
        set_mnemonic,
        remove_wallet,
        balance,
        allowance,
        approve,
        send_eth,
        send_mor,
        latest_block,
        transactions
    ),
    components(schemas(
        WalletResponse,
        PrivateKeyRequest,
        MnemonicRequest,
        StatusResponse,
        BalanceResponse,
        AllowanceResponse,
        SendRequest,
        TxResponse,
        LatestBlockResponse,
        BigInt
    )),
    tags(
        (name = "wallet", description = "The node's wallet: its address, and the key set at runtime"),
        (name = "blockchain", description = "Balances, allowances, transfers and the chain head")
    )
)]
pub struct Doc;

// ---------------------------------------------------------------------------------------------------
// /wallet
// ---------------------------------------------------------------------------------------------------

/// `{"address": "0x…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WalletResponse {
    /// The wallet's address, lower-case hex.
    #[schema(example = "0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266")]
    pub address: String,
}

// No `Debug` on the two bodies below: they hold the key or the phrase.

/// `POST /wallet/privateKey` body.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PrivateKeyRequest {
    /// 32 bytes as 64 hex digits, `0x` optional.
    #[schema(required = true, value_type = String, example = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80")]
    pub private_key: Option<String>,
}

/// `POST /wallet/mnemonic` body.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MnemonicRequest {
    /// A BIP-39 English phrase of 12 to 24 words.
    #[schema(required = true, value_type = String, example = "test test test test test test test test test test test junk")]
    pub mnemonic: Option<String>,
    /// BIP-32 derivation path (default `m/44'/60'/0'/0/0`).
    #[schema(example = "m/44'/60'/0'/0/0")]
    pub derivation_path: Option<String>,
}

/// The wallet's address.
#[utoipa::path(
    get,
    path = "/wallet",
    tag = "wallet",
    operation_id = "getWallet",
    responses(
        (status = 200, description = "The wallet's address", body = WalletResponse),
        (status = 503, description = "No wallet is set (`no_wallet`)", body = ErrorBody),
    )
)]
pub async fn get_wallet(State(state): State<ApiState>) -> Result<Json<WalletResponse>, ApiError> {
    let signer = state.signer()?;
    Ok(Json(WalletResponse { address: lower_address(&signer.address()) }))
}

/// Sets the wallet from a private key, stores it in the data directory and uses it from the next
/// write on.
#[utoipa::path(
    post,
    path = "/wallet/privateKey",
    tag = "wallet",
    operation_id = "setWalletPrivateKey",
    request_body = PrivateKeyRequest,
    responses(
        (status = 200, description = "The new wallet's address", body = WalletResponse),
        (status = 400, description = "`privateKey` is missing or not a secp256k1 key", body = ErrorBody),
        (status = 409, description = "The wallet comes from the configuration", body = ErrorBody),
        (status = 503, description = "No chain connection (`no_chain`)", body = ErrorBody),
    )
)]
pub async fn set_private_key(
    State(state): State<ApiState>,
    body: Result<Json<PrivateKeyRequest>, JsonRejection>,
) -> Result<Json<WalletResponse>, ApiError> {
    let Json(body) = body?;
    let key = required("privateKey", body.private_key)?;
    set_wallet(&state, WalletKey::PrivateKey(SecretString::from(key))).await
}

/// Sets the wallet from a BIP-39 phrase and derivation path, stores them in the data directory and
/// uses the key from the next write on.
#[utoipa::path(
    post,
    path = "/wallet/mnemonic",
    tag = "wallet",
    operation_id = "setWalletMnemonic",
    request_body = MnemonicRequest,
    responses(
        (status = 200, description = "The new wallet's address", body = WalletResponse),
        (status = 400, description = "`mnemonic` or `derivationPath` is missing or invalid", body = ErrorBody),
        (status = 409, description = "The wallet comes from the configuration", body = ErrorBody),
        (status = 503, description = "No chain connection (`no_chain`)", body = ErrorBody),
    )
)]
pub async fn set_mnemonic(
    State(state): State<ApiState>,
    body: Result<Json<MnemonicRequest>, JsonRejection>,
) -> Result<Json<WalletResponse>, ApiError> {
    let Json(body) = body?;
    let phrase = required("mnemonic", body.mnemonic)?;
    let derivation_path = match body.derivation_path.as_deref().map(str::trim) {
        None | Some("") => DEFAULT_DERIVATION_PATH.to_owned(),
        Some(path) => path.to_owned(),
    };
    set_wallet(&state, WalletKey::Mnemonic { phrase: SecretString::from(phrase), derivation_path }).await
}

/// Removes the stored wallet: writes answer 503 `no_wallet` until another is set.
#[utoipa::path(
    delete,
    path = "/wallet",
    tag = "wallet",
    operation_id = "removeWallet",
    responses(
        (status = 200, description = "The stored wallet is removed (also when there was none)", body = StatusResponse),
        (status = 409, description = "The wallet comes from the configuration", body = ErrorBody),
    )
)]
pub async fn remove_wallet(State(state): State<ApiState>) -> Result<Json<StatusResponse>, ApiError> {
    let _change = WALLET_CHANGE.lock().await;
    refuse_config_wallet(&state)?;
    stored::remove_wallet(&state.data_dir())
        .map_err(|e| ApiError::internal("removing the wallet key file", &e))?;
    if let Some(previous) = state.wallet.clear() {
        tracing::info!(address = %previous.address(), "wallet removed through the API");
    }
    Ok(Json(StatusResponse::ok()))
}

fn required(field: &str, value: Option<String>) -> Result<String, ApiError> {
    value.filter(|v| !v.trim().is_empty()).ok_or_else(|| ApiError::bad_request(field, "required"))
}

/// 409 when the current wallet comes from the configuration.
fn refuse_config_wallet(state: &ApiState) -> Result<(), ApiError> {
    match state.wallet.get() {
        Some(signer) if signer.source == WalletSource::Config => Err(ApiError::conflict(
            "the wallet comes from the configuration and cannot be changed through the API",
        )
        .with_reason("WALLET_PRIVATE_KEY or WALLET_MNEMONIC is set: change it there and restart the node")),
        _ => Ok(()),
    }
}

/// Checks `key`, stores it, and puts its signer in the node's slot.
async fn set_wallet(state: &ApiState, key: WalletKey) -> Result<Json<WalletResponse>, ApiError> {
    refuse_config_wallet(state)?;
    // A mnemonic runs PBKDF2: keep it off the async workers.
    let wallet = {
        let key = key.clone();
        tokio::task::spawn_blocking(move || Wallet::from_key(&key))
            .await
            .map_err(|e| ApiError::internal("deriving the wallet", &e))?
            .map_err(wallet_input_error)?
    };
    let address = wallet.address();
    let chain = state.chain()?;
    let _change = WALLET_CHANGE.lock().await;
    refuse_config_wallet(state)?;
    stored::save_wallet(&state.data_dir(), &key)
        .map_err(|e| ApiError::internal("writing the wallet key file", &e))?;
    let sender = TxSender::new(chain.rpc.clone(), wallet, &chain.config);
    state.wallet.set(Signer::new(sender, WalletSource::Stored));
    tracing::info!(%address, "wallet set through the API");
    Ok(Json(WalletResponse { address: lower_address(&address) }))
}

/// A key the wallet cannot use, as 400 naming the request field (the reason never quotes the secret).
fn wallet_input_error(error: ChainError) -> ApiError {
    match error {
        ChainError::InvalidWallet { variable, reason } => {
            let field = match variable {
                "WALLET_MNEMONIC" => "mnemonic",
                "WALLET_DERIVATION_PATH" => "derivationPath",
                _ => "privateKey",
            };
            ApiError::bad_request(field, reason)
        }
        other => other.into(),
    }
}

// ---------------------------------------------------------------------------------------------------
// /blockchain: balance, allowance, approve, send, latestBlock, transactions
// ---------------------------------------------------------------------------------------------------

/// `{"eth": "…", "mor": "…"}` in wei.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BalanceResponse {
    /// ETH balance, wei.
    pub eth: BigInt,
    /// MOR balance, wei.
    pub mor: BigInt,
}

/// `{"allowance": "…"}` in wei.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AllowanceResponse {
    /// What `spender` may still take from the wallet, MOR wei.
    pub allowance: BigInt,
}

/// `GET /blockchain/allowance` query.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AllowanceQuery {
    /// The spender, e.g. the diamond.
    #[param(required = true, value_type = String, example = "0x5fbdb2315678afecb367f032d93f642f64180aa3")]
    pub spender: Option<String>,
}

/// `POST /blockchain/approve` query.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ApproveQuery {
    /// The spender, e.g. the diamond.
    #[param(required = true, value_type = String, example = "0x5fbdb2315678afecb367f032d93f642f64180aa3")]
    pub spender: Option<String>,
    /// The new allowance in MOR wei (it replaces the current one).
    #[param(required = true, value_type = String, example = "1000000000000000000")]
    pub amount: Option<String>,
}

/// `POST /blockchain/send/eth` and `/send/mor` body.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct SendRequest {
    /// The recipient.
    #[schema(value_type = String, example = "0x70997970c51812dc3a010c7d01b50e0d17dc79c8")]
    pub to: Option<String>,
    /// The amount in wei (a JSON number or a quoted decimal string).
    #[schema(value_type = String, example = "1000000000000000000")]
    pub amount: Option<BigInt>,
}

/// `{"block": n}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LatestBlockResponse {
    /// The chain head's number.
    #[schema(example = 12345678)]
    pub block: u64,
}

/// `GET /blockchain/transactions` query.
#[derive(Debug, Clone, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TransactionsQuery {
    /// Page number, from 1.
    #[param(value_type = Option<String>, example = "1")]
    pub page: Option<String>,
    /// Entries per page, 1 to 100.
    #[param(value_type = Option<String>, example = "10")]
    pub limit: Option<String>,
}

/// The wallet's ETH and MOR balances, read from the chain.
#[utoipa::path(
    get,
    path = "/blockchain/balance",
    tag = "blockchain",
    operation_id = "getBalance",
    responses(
        (status = 200, description = "Balances in wei", body = BalanceResponse),
        (status = 503, description = "No wallet (`no_wallet`), no chain (`no_chain`) or no RPC node answers", body = ErrorBody),
    )
)]
pub async fn balance(State(state): State<ApiState>) -> Result<Json<BalanceResponse>, ApiError> {
    let chain = state.chain()?;
    let address = state.signer()?.address();
    let (eth, mor) = tokio::try_join!(
        eth_balance(chain.rpc.provider(), address),
        mor_balance(chain.rpc.provider(), chain.mor_token, address)
    )?;
    Ok(Json(BalanceResponse { eth: eth.into(), mor: mor.into() }))
}

/// The wallet's MOR allowance for `spender`, read from the chain.
#[utoipa::path(
    get,
    path = "/blockchain/allowance",
    tag = "blockchain",
    operation_id = "getAllowance",
    params(AllowanceQuery),
    responses(
        (status = 200, description = "The allowance in MOR wei", body = AllowanceResponse),
        (status = 400, description = "`spender` is missing or not an address", body = ErrorBody),
        (status = 503, description = "No wallet or no chain", body = ErrorBody),
    )
)]
pub async fn allowance(
    State(state): State<ApiState>,
    query: Result<Query<AllowanceQuery>, QueryRejection>,
) -> Result<Json<AllowanceResponse>, ApiError> {
    let Query(query) = query?;
    let spender = address_param("spender", query.spender.as_deref())?;
    let chain = state.chain()?;
    let owner = state.signer()?.address();
    let allowance = MorpheusToken::new(chain.mor_token, chain.rpc.provider())
        .allowance(owner, spender)
        .call()
        .await
        .map_err(|e| ChainError::from_contract("allowance", e))?;
    Ok(Json(AllowanceResponse { allowance: allowance.into() }))
}

/// Sets the wallet's MOR allowance for `spender` to `amount` wei (ERC-20 `approve`: it replaces the
/// current allowance, it does not add to it). Answers after the receipt.
#[utoipa::path(
    post,
    path = "/blockchain/approve",
    tag = "blockchain",
    operation_id = "approve",
    params(ApproveQuery),
    responses(
        (status = 200, description = "The mined `approve` transaction", body = TxResponse),
        (status = 400, description = "`spender` or `amount` is missing or invalid", body = ErrorBody),
        (status = 422, description = "The transaction reverted (`reason` has the decoded error)", body = ErrorBody),
        (status = 503, description = "No wallet or no chain", body = ErrorBody),
    )
)]
pub async fn approve(
    State(state): State<ApiState>,
    query: Result<Query<ApproveQuery>, QueryRejection>,
) -> Result<Json<TxResponse>, ApiError> {
    let Query(query) = query?;
    let spender = address_param("spender", query.spender.as_deref())?;
    let amount = match query.amount.as_deref().map(str::trim) {
        None | Some("") => return Err(ApiError::bad_request("amount", "required")),
        Some(text) => parse_decimal(text).map_err(|e| ApiError::bad_request("amount", e))?,
    };
    let signer = state.signer()?;
    let receipt = signer.sender.approve(spender, amount).await?;
    Ok(Json(TxResponse { tx: receipt.transaction_hash }))
}

/// Sends `amount` wei of ETH from the wallet to `to`. Answers after the receipt.
#[utoipa::path(
    post,
    path = "/blockchain/send/eth",
    tag = "blockchain",
    operation_id = "sendEth",
    request_body = SendRequest,
    responses(
        (status = 200, description = "The mined transfer", body = TxResponse),
        (status = 400, description = "`to` or `amount` is missing or invalid, or `amount` exceeds the balance", body = ErrorBody),
        (status = 503, description = "No wallet or no chain", body = ErrorBody),
    )
)]
pub async fn send_eth(
    State(state): State<ApiState>,
    principal: Principal,
    body: Result<Json<SendRequest>, JsonRejection>,
) -> Result<Json<TxResponse>, ApiError> {
    let (to, amount) = send_request(body)?;
    let spend = reserve(&state, &principal, SpendToken::Eth, amount).await?;
    let chain = state.chain()?;
    let signer = state.signer()?;
    let balance = eth_balance(chain.rpc.provider(), signer.address()).await?;
    if amount > balance {
        return Err(ApiError::bad_request(
            "amount",
            format!("exceeds the wallet's ETH balance of {balance} wei"),
        ));
    }
    let tx = TransactionRequest::default().with_to(to).with_value(amount);
    let receipt = signer.sender.send(tx).await?;
    spend.settle(&state, receipt.transaction_hash, amount).await;
    Ok(Json(TxResponse { tx: receipt.transaction_hash }))
}

/// Sends `amount` wei of MOR from the wallet to `to` (ERC-20 `transfer`). Answers after the receipt.
#[utoipa::path(
    post,
    path = "/blockchain/send/mor",
    tag = "blockchain",
    operation_id = "sendMor",
    request_body = SendRequest,
    responses(
        (status = 200, description = "The mined transfer", body = TxResponse),
        (status = 400, description = "`to` or `amount` is missing or invalid, or `amount` exceeds the balance", body = ErrorBody),
        (status = 422, description = "The transfer reverted (`reason` has the decoded error)", body = ErrorBody),
        (status = 503, description = "No wallet or no chain", body = ErrorBody),
    )
)]
pub async fn send_mor(
    State(state): State<ApiState>,
    principal: Principal,
    body: Result<Json<SendRequest>, JsonRejection>,
) -> Result<Json<TxResponse>, ApiError> {
    let (to, amount) = send_request(body)?;
    let spend = reserve(&state, &principal, SpendToken::Mor, amount).await?;
    let chain = state.chain()?;
    let signer = state.signer()?;
    let balance = mor_balance(chain.rpc.provider(), chain.mor_token, signer.address()).await?;
    if amount > balance {
        return Err(ApiError::bad_request(
            "amount",
            format!("exceeds the wallet's MOR balance of {balance} wei"),
        ));
    }
    let call = MorpheusToken::transferCall { to, amount };
    let receipt = signer.sender.send_call(chain.mor_token, &call).await?;
    spend.settle(&state, receipt.transaction_hash, amount).await;
    Ok(Json(TxResponse { tx: receipt.transaction_hash }))
}

/// The number of the chain's latest block (`eth_blockNumber`).
#[utoipa::path(
    get,
    path = "/blockchain/latestBlock",
    tag = "blockchain",
    operation_id = "getLatestBlock",
    responses(
        (status = 200, description = "The head's number", body = LatestBlockResponse),
        (status = 503, description = "No chain, or no RPC node answers", body = ErrorBody),
    )
)]
pub async fn latest_block(State(state): State<ApiState>) -> Result<Json<LatestBlockResponse>, ApiError> {
    let chain = state.chain()?;
    let block = chain
        .rpc
        .provider()
        .get_block_number()
        .await
        .map_err(|source| ChainError::Rpc { method: "eth_blockNumber", source })?;
    Ok(Json(LatestBlockResponse { block }))
}

/// The wallet's recent transactions: not available on this node (no block explorer API is
/// configured); the query is validated, then the answer is 501 with the reason.
#[utoipa::path(
    get,
    path = "/blockchain/transactions",
    tag = "blockchain",
    operation_id = "getTransactions",
    params(TransactionsQuery),
    responses(
        (status = 400, description = "`page` or `limit` is invalid", body = ErrorBody),
        (status = 501, description = "No block explorer API is configured (`reason` says what is missing)", body = ErrorBody),
    )
)]
pub async fn transactions(query: Result<Query<TransactionsQuery>, QueryRejection>) -> ApiError {
    let query = match query {
        Ok(Query(query)) => query,
        Err(rejection) => return rejection.into(),
    };
    if let Err(error) = count_param("page", query.page.as_deref(), u64::MAX)
        .and_then(|_| count_param("limit", query.limit.as_deref(), MAX_TRANSACTIONS_LIMIT))
    {
        return error;
    }
    ApiError::not_implemented(
        "the transaction history comes from a Blockscout v2 API (the reference's BLOCKSCOUT_API_URL) and \
         this node has no block explorer setting; read the wallet's history on a block explorer",
    )
}

/// A positive integer query parameter of at most `max`, when present.
fn count_param(field: &str, value: Option<&str>, max: u64) -> Result<Option<u64>, ApiError> {
    let Some(text) = value.map(str::trim).filter(|t| !t.is_empty()) else { return Ok(None) };
    let n: u64 = text.parse().map_err(|e| ApiError::bad_request(field, format!("{e}: {text:?}")))?;
    if n == 0 || n > max {
        return Err(ApiError::bad_request(field, format!("must be between 1 and {max}")));
    }
    Ok(Some(n))
}

/// A required address query parameter.
fn address_param(field: &str, value: Option<&str>) -> Result<Address, ApiError> {
    match value.map(str::trim) {
        None | Some("") => Err(ApiError::bad_request(field, "required")),
        Some(text) => parse_address(field, text),
    }
}

/// The recipient and amount of a send, both required; the zero address is refused.
fn send_request(body: Result<Json<SendRequest>, JsonRejection>) -> Result<(Address, U256), ApiError> {
    let Json(body) = body?;
    let to = address_param("to", body.to.as_deref())?;
    if to == Address::ZERO {
        return Err(ApiError::bad_request("to", "the zero address would burn the funds"));
    }
    let amount = body.amount.ok_or_else(|| ApiError::bad_request("amount", "required"))?.0;
    Ok((to, amount))
}

pub(super) async fn eth_balance(
    provider: &alloy::providers::DynProvider,
    owner: Address,
) -> Result<U256, ChainError> {
    provider.get_balance(owner).await.map_err(|source| ChainError::Rpc { method: "eth_getBalance", source })
}

pub(super) async fn mor_balance(
    provider: &alloy::providers::DynProvider,
    token: Address,
    owner: Address,
) -> Result<U256, ChainError> {
    MorpheusToken::new(token, provider)
        .balanceOf(owner)
        .call()
        .await
        .map_err(|e| ChainError::from_contract("balanceOf", e))
}

#[cfg(test)]
mod tests {
    use axum::http::{Method, StatusCode};

    use super::*;
    use crate::api::test_support::{call, fixture, request, send, READER};

    #[tokio::test]
    async fn routes_without_a_chain_or_wallet_answer_503() {
        let f = fixture().await;
        for (method, uri, code) in [
            (Method::GET, "/wallet", "no_wallet"),
            (Method::GET, "/blockchain/balance", "no_chain"),
            (Method::GET, "/blockchain/latestBlock", "no_chain"),
            (
                Method::GET,
                "/blockchain/allowance?spender=0x5FbDB2315678afecb367f032d93F642f64180aa3",
                "no_chain",
            ),
        ] {
            let answer = call(&f.state, method, uri, None).await;
            assert_eq!(
                (answer.status, answer.error().code.as_str()),
                (StatusCode::SERVICE_UNAVAILABLE, code),
                "{uri}"
            );
        }
        let answer = call(
            &f.state,
            Method::POST,
            "/wallet/privateKey",
            Some(&format!(r#"{{"privateKey":"{}"}}"#, crate::api::test_support::PRIVATE_KEY)),
        )
        .await;
        assert_eq!(
            (answer.status, answer.error().code.as_str()),
            (StatusCode::SERVICE_UNAVAILABLE, "no_chain")
        );
        assert!(
            !f.dir.path().join(stored::WALLET_FILE).exists(),
            "nothing stored when the wallet cannot be used"
        );
    }

    #[tokio::test]
    async fn bad_input_names_the_field() {
        let f = fixture().await;
        let cases: &[(Method, &str, Option<&str>, &str)] = &[
            (Method::GET, "/blockchain/allowance", None, "spender"),
            (Method::GET, "/blockchain/allowance?spender=0x12", None, "spender"),
            (Method::POST, "/blockchain/approve?amount=1", None, "spender"),
            (
                Method::POST,
                "/blockchain/approve?spender=0x5FbDB2315678afecb367f032d93F642f64180aa3",
                None,
                "amount",
            ),
            (
                Method::POST,
                "/blockchain/approve?spender=0x5FbDB2315678afecb367f032d93F642f64180aa3&amount=-1",
                None,
                "amount",
            ),
            (
                Method::POST,
                "/blockchain/approve?spender=0x5FbDB2315678afecb367f032d93F642f64180aa3&amount=1.5",
                None,
                "amount",
            ),
            (Method::POST, "/blockchain/send/eth", Some(r#"{"amount":"1"}"#), "to"),
            (
                Method::POST,
                "/blockchain/send/eth",
                Some(r#"{"to":"0x70997970C51812dc3A010C7d01b50e0d17dc79C8"}"#),
                "amount",
            ),
            (Method::POST, "/blockchain/send/mor", Some(r#"{"to":"nope","amount":"1"}"#), "to"),
            (
                Method::POST,
                "/blockchain/send/mor",
                Some(r#"{"to":"0x0000000000000000000000000000000000000000","amount":"1"}"#),
                "to",
            ),
            (
                Method::POST,
                "/blockchain/send/mor",
                Some(r#"{"to":"0x70997970C51812dc3A010C7d01b50e0d17dc79C8","amount":"abc"}"#),
                "amount",
            ),
            (
                Method::POST,
                "/blockchain/send/mor",
                Some(r#"{"to":"0x70997970C51812dc3A010C7d01b50e0d17dc79C8","amount":-3}"#),
                "amount",
            ),
            (Method::GET, "/blockchain/transactions?page=0", None, "page"),
            (Method::GET, "/blockchain/transactions?limit=101", None, "limit"),
            (Method::GET, "/blockchain/transactions?limit=x", None, "limit"),
            (Method::POST, "/wallet/privateKey", Some("{}"), "privateKey"),
            (Method::POST, "/wallet/privateKey", Some(r#"{"privateKey":7}"#), "privateKey"),
            (Method::POST, "/wallet/mnemonic", Some(r#"{"derivationPath":"m/44'/60'/0'/0/0"}"#), "mnemonic"),
            (Method::POST, "/wallet/privateKey", Some(r#"{"privateKey":"0x1234"}"#), "privateKey"),
            (Method::POST, "/wallet/mnemonic", Some(r#"{"mnemonic":"only three words"}"#), "mnemonic"),
            (
                Method::POST,
                "/wallet/mnemonic",
                Some(r#"{"mnemonic":"test test test test test test test test test test test test"}"#),
                "mnemonic",
            ),
            (
                Method::POST,
                "/wallet/mnemonic",
                Some(
                    r#"{"mnemonic":"test test test test test test test test test test test junk","derivationPath":"x/1"}"#,
                ),
                "derivationPath",
            ),
        ];
        for (method, uri, json, field) in cases {
            let answer = call(&f.state, method.clone(), uri, *json).await;
            let error = answer.error();
            assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{uri} {json:?}: {}", answer.body);
            assert_eq!(error.field.as_deref(), Some(*field), "{uri} {json:?}: {}", answer.body);
        }
    }

    #[tokio::test]
    async fn transactions_answer_501_with_the_missing_setting() {
        let f = fixture().await;
        let answer = call(&f.state, Method::GET, "/blockchain/transactions?page=1&limit=10", None).await;
        assert_eq!(answer.status, StatusCode::NOT_IMPLEMENTED);
        let error = answer.error();
        assert_eq!(error.code, "not_implemented");
        assert!(error.reason.as_deref().unwrap_or_default().contains("BLOCKSCOUT_API_URL"), "{error:?}");
    }

    #[tokio::test]
    async fn every_route_checks_its_permission() {
        let f = fixture().await;
        let app = crate::api::router(f.state.clone());
        for (method, uri) in [
            (Method::GET, "/wallet"),
            (Method::DELETE, "/wallet"),
            (Method::POST, "/wallet/privateKey"),
            (Method::POST, "/wallet/mnemonic"),
            (Method::GET, "/blockchain/balance"),
            (Method::GET, "/blockchain/allowance"),
            (Method::POST, "/blockchain/approve"),
            (Method::POST, "/blockchain/send/eth"),
            (Method::POST, "/blockchain/send/mor"),
            (Method::GET, "/blockchain/latestBlock"),
            (Method::GET, "/blockchain/transactions"),
        ] {
            let answer = send(app.clone(), request(method.clone(), uri, Some(READER), Some("{}"))).await;
            assert_eq!(answer.status, StatusCode::FORBIDDEN, "{method} {uri}");
            let answer = send(app.clone(), request(method.clone(), uri, None, Some("{}"))).await;
            assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{method} {uri}");
        }
    }

    #[tokio::test]
    async fn a_wallet_from_the_configuration_cannot_be_changed() {
        let f = fixture().await;
        let config = crate::api::test_support::config(f.dir.path());
        // HTTP endpoints connect lazily: nothing is contacted here.
        let rpc = crate::chain::Rpc::connect(&config.chain).await.unwrap();
        let key = config.wallet.key.as_ref().unwrap();
        let sender = TxSender::new(rpc.clone(), Wallet::from_key(key).unwrap(), &config.chain);
        let state = f
            .state
            .clone()
            .with_chain(crate::api::ChainAccess::new(rpc, &config.chain))
            .with_wallet(crate::chain::WalletSlot::with(Signer::new(sender, WalletSource::Config)));
        let phrase = r#"{"mnemonic":"test test test test test test test test test test test junk"}"#;
        let body = format!(r#"{{"privateKey":"{}"}}"#, crate::api::test_support::PRIVATE_KEY);
        for (method, uri, json) in [
            (Method::POST, "/wallet/privateKey", Some(body.as_str())),
            (Method::POST, "/wallet/mnemonic", Some(phrase)),
            (Method::DELETE, "/wallet", None),
        ] {
            let answer = call(&state, method, uri, json).await;
            assert_eq!(answer.status, StatusCode::CONFLICT, "{uri}: {}", answer.body);
            let error = answer.error();
            assert!(error.reason.unwrap_or_default().contains("WALLET_PRIVATE_KEY"), "{}", answer.body);
        }
        assert_eq!(state.wallet.get().map(|s| s.source), Some(WalletSource::Config));
        assert!(!f.dir.path().join(stored::WALLET_FILE).exists());
        let answer = call(&state, Method::GET, "/wallet", None).await;
        assert_eq!(answer.json(), serde_json::json!({"address": crate::api::test_support::WALLET}));
    }

    #[tokio::test]
    async fn delete_without_a_stored_wallet_is_ok() {
        let f = fixture().await;
        let answer = call(&f.state, Method::DELETE, "/wallet", None).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        assert_eq!(answer.json(), serde_json::json!({"status": "ok"}));
    }

    #[test]
    fn invalid_keys_name_the_request_field() {
        let e = wallet_input_error(ChainError::InvalidWallet {
            variable: "WALLET_PRIVATE_KEY",
            reason: "x".into(),
        });
        assert_eq!(e.field(), Some("privateKey"));
        let e =
            wallet_input_error(ChainError::InvalidWallet { variable: "WALLET_MNEMONIC", reason: "x".into() });
        assert_eq!(e.field(), Some("mnemonic"));
        let e = wallet_input_error(ChainError::InvalidWallet {
            variable: "WALLET_DERIVATION_PATH",
            reason: "x".into(),
        });
        assert_eq!(e.field(), Some("derivationPath"));
    }
}
