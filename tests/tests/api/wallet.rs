//! `/wallet`, `/blockchain/{balance,allowance,approve,send/eth,send/mor,latestBlock,transactions}` and
//! `/config/ethNode` through the whole router, with balances and allowances read straight from anvil
//! around every money movement.

use std::str::FromStr;

use alloy::network::TransactionResponse as _;
use alloy::primitives::{Address, B256, U256};
use alloy::providers::Provider;
use axum::http::Method;
use e2e_tests::anvil::Anvil;
use e2e_tests::api::{Answer, ApiFixture};
use e2e_tests::chain::{wallet, ANVIL_MNEMONIC, MOR};
use proxy_router::api::stored::{ETH_NODES_FILE, WALLET_FILE};
use proxy_router::api::wallet::load_stored_wallet;
use proxy_router::chain::bindings::MorpheusToken;
use proxy_router::chain::{Wallet, WalletSlot};
use serde_json::Value;

/// The wallet the fixture signs with (from the configuration).
const NODE: u32 = 1;
/// A recipient.
const OTHER: u32 = 2;

fn big(value: &Value) -> U256 {
    U256::from_str(value.as_str().unwrap_or_else(|| panic!("not a quoted number: {value}"))).unwrap()
}

fn tx_hash(answer: Answer) -> B256 {
    let body = answer.expect(200).unwrap().json().unwrap();
    B256::from_str(body["tx"].as_str().unwrap()).unwrap()
}

fn error_field(answer: &Answer) -> Option<String> {
    answer.json().unwrap()["field"].as_str().map(str::to_owned)
}

fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

async fn eth_balance(f: &ApiFixture, owner: Address) -> U256 {
    f.chain.provider().unwrap().get_balance(owner).await.unwrap()
}

async fn allowance(f: &ApiFixture, owner: Address, spender: Address) -> U256 {
    let token = MorpheusToken::new(f.chain.deployment.mor_token, f.chain.provider().unwrap());
    token.allowance(owner, spender).call().await.unwrap()
}

/// What a mined transaction cost its sender in gas, wei.
async fn gas_cost(f: &ApiFixture, hash: B256) -> U256 {
    let receipt = f.chain.provider().unwrap().get_transaction_receipt(hash).await.unwrap().unwrap();
    U256::from(receipt.gas_used) * U256::from(receipt.effective_gas_price)
}

#[tokio::test]
async fn balance_allowance_approve_and_transfers_move_real_funds() {
    let f = ApiFixture::start(NODE).await.unwrap();
    let node = f.address;
    let other = wallet(OTHER).unwrap().address();
    let diamond = f.chain.deployment.diamond;
    f.chain.give_mor(node, U256::from(10 * MOR)).await.unwrap();

    // Balance: both quoted, equal to the chain.
    let answer = f.call(Method::GET, "/blockchain/balance", None).await.unwrap().expect(200).unwrap();
    let body = answer.json().unwrap();
    assert!(body["eth"].is_string() && body["mor"].is_string(), "{body}");
    assert_eq!(big(&body["eth"]), eth_balance(&f, node).await);
    assert_eq!(big(&body["mor"]), f.chain.mor_balance(node).await.unwrap());
    assert!(big(&body["mor"]) >= U256::from(10 * MOR));

    // The diamond's allowance, as the chain has it.
    let body = f
        .call(Method::GET, &format!("/blockchain/allowance?spender={diamond}"), None)
        .await
        .unwrap()
        .expect(200)
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(big(&body["allowance"]), f.chain.allowance(node).await.unwrap());

    // Approve sets the allowance (it does not add to it), in wei.
    let spender = wallet(5).unwrap().address();
    let allowance_uri = format!("/blockchain/allowance?spender={spender}");
    let body = f.call(Method::GET, &allowance_uri, None).await.unwrap().expect(200).unwrap().json().unwrap();
    assert_eq!(body, serde_json::json!({"allowance": "0"}));
    let approve = |amount: u64| format!("/blockchain/approve?spender={spender}&amount={amount}");
    let hash = tx_hash(f.call(Method::POST, &approve(5000), None).await.unwrap());
    assert_ne!(hash, B256::ZERO);
    assert_eq!(allowance(&f, node, spender).await, U256::from(5000));
    tx_hash(f.call(Method::POST, &approve(2000), None).await.unwrap());
    assert_eq!(allowance(&f, node, spender).await, U256::from(2000));
    let body = f.call(Method::GET, &allowance_uri, None).await.unwrap().expect(200).unwrap().json().unwrap();
    assert_eq!(body, serde_json::json!({"allowance": "2000"}));
    // Bad input: no spender; an amount that is not a decimal.
    let answer = f.call(Method::GET, "/blockchain/allowance", None).await.unwrap().expect(400).unwrap();
    assert_eq!(error_field(&answer).as_deref(), Some("spender"));
    let answer = f
        .call(Method::POST, &format!("/blockchain/approve?spender={spender}&amount=1e18"), None)
        .await
        .unwrap()
        .expect(400)
        .unwrap();
    assert_eq!(error_field(&answer).as_deref(), Some("amount"));
    assert_eq!(allowance(&f, node, spender).await, U256::from(2000));

    // Send MOR: exactly the amount moves.
    let (node_mor, other_mor) =
        (f.chain.mor_balance(node).await.unwrap(), f.chain.mor_balance(other).await.unwrap());
    let amount = U256::from(3 * MOR / 2);
    let body = format!(r#"{{"to":"{other}","amount":"{amount}"}}"#);
    tx_hash(f.call(Method::POST, "/blockchain/send/mor", Some(&body)).await.unwrap());
    assert_eq!(f.chain.mor_balance(node).await.unwrap(), node_mor - amount);
    assert_eq!(f.chain.mor_balance(other).await.unwrap(), other_mor + amount);
    // More than the balance: 400 naming the amount, nothing moves.
    let too_much = node_mor - amount + U256::from(1);
    let body = format!(r#"{{"to":"{other}","amount":{too_much}}}"#);
    let answer =
        f.call(Method::POST, "/blockchain/send/mor", Some(&body)).await.unwrap().expect(400).unwrap();
    assert_eq!(error_field(&answer).as_deref(), Some("amount"));
    assert_eq!(f.chain.mor_balance(node).await.unwrap(), node_mor - amount);

    // Send ETH: the recipient gets the amount, the sender pays it plus the gas.
    let (node_eth, other_eth) = (eth_balance(&f, node).await, eth_balance(&f, other).await);
    let amount = U256::from(MOR / 4);
    let body = format!(r#"{{"to":"{other}","amount":{amount}}}"#);
    let hash = tx_hash(f.call(Method::POST, "/blockchain/send/eth", Some(&body)).await.unwrap());
    assert_eq!(eth_balance(&f, other).await, other_eth + amount);
    assert_eq!(eth_balance(&f, node).await, node_eth - amount - gas_cost(&f, hash).await);
    let body = format!(r#"{{"to":"{other}","amount":"{}"}}"#, node_eth * U256::from(2));
    let answer =
        f.call(Method::POST, "/blockchain/send/eth", Some(&body)).await.unwrap().expect(400).unwrap();
    assert_eq!(error_field(&answer).as_deref(), Some("amount"));
    let answer = f
        .call(Method::POST, "/blockchain/send/eth", Some(r#"{"to":"0x1234","amount":"1"}"#))
        .await
        .unwrap()
        .expect(400)
        .unwrap();
    assert_eq!(error_field(&answer).as_deref(), Some("to"));

    // The head, as an unquoted number.
    let body = f
        .call(Method::GET, "/blockchain/latestBlock", None)
        .await
        .unwrap()
        .expect(200)
        .unwrap()
        .json()
        .unwrap();
    let head = f.chain.provider().unwrap().get_block_number().await.unwrap();
    assert_eq!(body, serde_json::json!({"block": head}));

    // No explorer: 501 with the reason; a bad page is still a 400.
    let answer = f.call(Method::GET, "/blockchain/transactions", None).await.unwrap().expect(501).unwrap();
    assert!(answer.body.contains("BLOCKSCOUT_API_URL"), "{}", answer.body);
    f.call(Method::GET, "/blockchain/transactions?page=zero", None).await.unwrap().expect(400).unwrap();

    // The configured wallet cannot be replaced or removed through the API.
    assert_eq!(
        f.call(Method::GET, "/wallet", None).await.unwrap().expect(200).unwrap().json().unwrap(),
        serde_json::json!({"address": format!("{node:#x}")})
    );
    let key = format!(r#"{{"privateKey":"{}"}}"#, private_key_hex(&wallet(3).unwrap()));
    let answer = f.call(Method::POST, "/wallet/privateKey", Some(&key)).await.unwrap().expect(409).unwrap();
    assert!(answer.body.contains("WALLET_PRIVATE_KEY"), "{}", answer.body);
    f.call(Method::DELETE, "/wallet", None).await.unwrap().expect(409).unwrap();
    assert!(!f.store.dir.path().join(WALLET_FILE).exists());
    assert_eq!(f.state.signer().unwrap().address(), node);
}

fn private_key_hex(wallet: &Wallet) -> String {
    format!("0x{}", alloy::hex::encode(wallet.signer().to_bytes()))
}

#[tokio::test]
async fn a_wallet_set_through_the_api_signs_the_next_write_survives_a_restart_and_can_be_removed() {
    let mut f = ApiFixture::start(NODE).await.unwrap();
    f.state.wallet = WalletSlot::default();
    let dir = f.store.dir.path().to_path_buf();
    let other = wallet(OTHER).unwrap().address();
    let send_one = format!(r#"{{"to":"{other}","amount":"{MOR}"}}"#);

    // No wallet: reads and writes say so.
    let answer = f.call(Method::GET, "/wallet", None).await.unwrap().expect(503).unwrap();
    assert!(answer.body.contains("no_wallet"), "{}", answer.body);
    f.call(Method::POST, "/blockchain/send/mor", Some(&send_one)).await.unwrap().expect(503).unwrap();

    // Set account 3 by its private key.
    let stored = wallet(3).unwrap();
    let address = stored.address();
    f.chain.give_mor(address, U256::from(5 * MOR)).await.unwrap();
    let body = format!(r#"{{"privateKey":"{}"}}"#, private_key_hex(&stored));
    let answer = f.call(Method::POST, "/wallet/privateKey", Some(&body)).await.unwrap().expect(200).unwrap();
    assert_eq!(answer.json().unwrap(), serde_json::json!({"address": format!("{address:#x}")}));
    let path = dir.join(WALLET_FILE);
    assert_eq!(mode(&path), 0o600);

    // The next write signs with it.
    let other_before = f.chain.mor_balance(other).await.unwrap();
    let hash = tx_hash(f.call(Method::POST, "/blockchain/send/mor", Some(&send_one)).await.unwrap());
    let tx = f.chain.provider().unwrap().get_transaction_by_hash(hash).await.unwrap().unwrap();
    assert_eq!(tx.from(), address);
    assert_eq!(f.chain.mor_balance(address).await.unwrap(), U256::from(4 * MOR));
    assert_eq!(f.chain.mor_balance(other).await.unwrap(), other_before + U256::from(MOR));

    // A restart finds it.
    let key = load_stored_wallet(&dir).unwrap().expect("a stored key");
    assert_eq!(Wallet::from_key(&key).unwrap().address(), address);

    // A mnemonic replaces it, with its derivation path.
    let body = format!(r#"{{"mnemonic":"{ANVIL_MNEMONIC}","derivationPath":"m/44'/60'/0'/0/4"}}"#);
    let answer = f.call(Method::POST, "/wallet/mnemonic", Some(&body)).await.unwrap().expect(200).unwrap();
    let account_4 = wallet(4).unwrap().address();
    assert_eq!(answer.json().unwrap()["address"], format!("{account_4:#x}"));
    let key = load_stored_wallet(&dir).unwrap().expect("a stored key");
    assert_eq!(Wallet::from_key(&key).unwrap().address(), account_4);
    assert_eq!(mode(&path), 0o600);
    let body =
        f.call(Method::GET, "/blockchain/balance", None).await.unwrap().expect(200).unwrap().json().unwrap();
    assert_eq!(big(&body["mor"]), U256::ZERO);
    assert_eq!(big(&body["eth"]), eth_balance(&f, account_4).await);

    // A bad derivation path changes nothing.
    let body = format!(r#"{{"mnemonic":"{ANVIL_MNEMONIC}","derivationPath":"m/44'/60'/zero"}}"#);
    let answer = f.call(Method::POST, "/wallet/mnemonic", Some(&body)).await.unwrap().expect(400).unwrap();
    assert_eq!(error_field(&answer).as_deref(), Some("derivationPath"));
    assert_eq!(f.state.signer().unwrap().address(), account_4);

    // Removed: writes answer 503 no_wallet, the file is gone, a restart finds nothing.
    let answer = f.call(Method::DELETE, "/wallet", None).await.unwrap().expect(200).unwrap();
    assert_eq!(answer.json().unwrap(), serde_json::json!({"status": "ok"}));
    let answer =
        f.call(Method::POST, "/blockchain/send/mor", Some(&send_one)).await.unwrap().expect(503).unwrap();
    assert!(answer.body.contains("no_wallet"), "{}", answer.body);
    assert!(!path.exists());
    assert!(load_stored_wallet(&dir).unwrap().is_none());
    f.sync().await.unwrap();
}

#[tokio::test]
async fn eth_node_urls_are_vetted_stored_used_at_once_and_removed() {
    let f = ApiFixture::start(NODE).await.unwrap();
    let dir = f.store.dir.path().to_path_buf();
    let main_head = f.chain.provider().unwrap().get_block_number().await.unwrap();

    // Another chain: 400 naming the URL; nothing stored, nothing changes.
    let other_chain = Anvil::start_with_args(&["--chain-id", "1"]).await.unwrap();
    let body = format!(r#"{{"urls":["{}"]}}"#, other_chain.endpoint());
    let answer = f.call(Method::POST, "/config/ethNode", Some(&body)).await.unwrap().expect(400).unwrap();
    assert_eq!(error_field(&answer).as_deref(), Some("urls[0]"));
    assert!(answer.body.contains(&other_chain.endpoint()), "{}", answer.body);
    assert!(answer.body.contains("chain id 1"), "{}", answer.body);
    assert!(!dir.join(ETH_NODES_FILE).exists());

    // A URL nobody answers on: 400 naming it.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let body = format!(r#"{{"urls":["http://127.0.0.1:{port}"]}}"#);
    let answer = f.call(Method::POST, "/config/ethNode", Some(&body)).await.unwrap().expect(400).unwrap();
    assert_eq!(error_field(&answer).as_deref(), Some("urls[0]"));

    // A good URL on the same chain id, at another height: the node reads from it at once.
    let replacement = Anvil::start().await.unwrap();
    let replacement_head = main_head + 7;
    replacement
        .provider()
        .unwrap()
        .raw_request::<_, Value>("anvil_mine".into(), (replacement_head,))
        .await
        .unwrap();
    let body = format!(r#"{{"urls":["{}"]}}"#, replacement.endpoint());
    let answer = f.call(Method::POST, "/config/ethNode", Some(&body)).await.unwrap().expect(200).unwrap();
    assert_eq!(answer.json().unwrap(), serde_json::json!({"status": "ok"}));
    let body = f
        .call(Method::GET, "/blockchain/latestBlock", None)
        .await
        .unwrap()
        .expect(200)
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(body["block"], replacement_head);
    let labels: Vec<String> = f.state.chain().unwrap().rpc.endpoints().into_iter().map(|e| e.url).collect();
    assert_eq!(labels, vec![replacement.endpoint()]);
    assert_eq!(mode(&dir.join(ETH_NODES_FILE)), 0o600);
    let stored = proxy_router::api::eth_node::load_stored_eth_nodes(&dir).unwrap().unwrap();
    assert_eq!(stored, vec![replacement.endpoint().parse::<url::Url>().unwrap()]);

    // Removed: back to the configured node.
    f.call(Method::DELETE, "/config/ethNode", None).await.unwrap().expect(200).unwrap();
    let body = f
        .call(Method::GET, "/blockchain/latestBlock", None)
        .await
        .unwrap()
        .expect(200)
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(body["block"], main_head);
    assert!(!dir.join(ETH_NODES_FILE).exists());
    assert!(proxy_router::api::eth_node::load_stored_eth_nodes(&dir).unwrap().is_none());
}
