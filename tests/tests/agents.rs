//! Agents end to end, through real router processes on anvil with our contracts (`e2e_tests::market`):
//! an agent asks for an account, the admin confirms it and its MOR allowance; the agent opens a
//! session within the allowance (the allowance drops by the stake, the transaction is listed), is
//! refused beyond it with nothing sent, and its chat with a `chat_id` is kept in the history.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use alloy::primitives::U256;
use e2e_tests::market::{Market, ADMIN};
use e2e_tests::router::{curl, CurlAnswer};
use serde_json::{json, Value};

const PRICE: u64 = 10_000_000_000_000;
const AGENT: &str = "bot:bot-secret";
const CHAT: &str = "0x4242424242424242424242424242424242424242424242424242424242424242";

/// `method path` on the consumer with `creds` (`user:password`) and an optional JSON body and headers.
fn call(
    market: &Market,
    creds: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
    headers: &[&str],
) -> CurlAnswer {
    let url = market.consumer().unwrap().url(path);
    let body = body.map(Value::to_string);
    let mut args = vec!["-u", creds, "-X", method, "-H", "content-type: application/json"];
    for header in headers {
        args.extend(["-H", header]);
    }
    if let Some(body) = &body {
        args.extend(["-d", body.as_str()]);
    }
    args.push(&url);
    curl(&args).unwrap()
}

fn ok(answer: &CurlAnswer) -> Value {
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.json().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agent_spends_its_allowance_on_sessions_and_nothing_beyond_it() {
    let market = Market::start(&[PRICE], &[]).await.unwrap();
    let mor = format!("{:#x}", market.chain.deployment.mor_token);
    let model = format!("{:#x}", market.model_id);

    // The agent asks, the admin confirms the account, the agent asks for 1 wei of MOR, the admin agrees.
    let request = json!({"username": "bot", "password": "bot-secret",
                         "perms": ["open_session", "request_allowance", "chat"], "allowances": {}});
    ok(&call(&market, "nobody:x", "POST", "/auth/users/request", Some(&request), &[]));
    ok(&call(
        &market,
        ADMIN,
        "POST",
        "/auth/users/confirm",
        Some(&json!({"username": "bot", "confirm": true})),
        &[],
    ));
    let ask = json!({"username": "bot", "token": mor, "allowance": "1"});
    ok(&call(&market, AGENT, "POST", "/auth/allowance/requests", Some(&ask), &[]));
    let confirm = json!({"username": "bot", "token": mor, "confirm": true});
    ok(&call(&market, ADMIN, "POST", "/auth/allowance/confirm", Some(&confirm), &[]));

    // Beyond the allowance: refused, nothing sent.
    let before = market.chain.mor_balance(market.consumer_address).await.unwrap();
    let open = json!({"sessionDuration": 600});
    let path = format!("/blockchain/models/{model}/session");
    let refused = call(&market, AGENT, "POST", &path, Some(&open), &[]);
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_eq!(refused.json().unwrap()["code"], "allowance_exceeded");
    assert_eq!(market.chain.mor_balance(market.consumer_address).await.unwrap(), before);
    let txs = ok(&call(&market, ADMIN, "GET", "/auth/users/bot/txs?limit=10", None, &[]));
    assert_eq!(txs["txHashes"], json!([]));

    // Within a larger allowance: opened; the allowance drops by the stake and the transaction is listed.
    let allowance = U256::from(50u64) * U256::from(10u64).pow(U256::from(18u64));
    let ask = json!({"username": "bot", "token": mor, "allowance": allowance.to_string()});
    ok(&call(&market, AGENT, "POST", "/auth/allowance/requests", Some(&ask), &[]));
    ok(&call(&market, ADMIN, "POST", "/auth/allowance/confirm", Some(&confirm), &[]));
    let opened = ok(&call(&market, AGENT, "POST", &path, Some(&open), &[]));
    let stake: U256 = opened["stake"].as_str().unwrap().parse().unwrap();
    assert!(stake > U256::ZERO && stake <= allowance, "{opened}");
    let agents = ok(&call(&market, ADMIN, "GET", "/auth/users", None, &[]));
    let left: U256 = agents["agents"][0]["allowances"][&mor].as_str().unwrap().parse().unwrap();
    assert_eq!(left, allowance - stake);
    let txs = ok(&call(&market, ADMIN, "GET", "/auth/users/bot/txs?limit=10", None, &[]));
    assert_eq!(txs["txHashes"], json!([opened["tx"]]));

    // The agent chats on its session with a chat id: the exchange is in the history.
    let session = opened["sessionID"].as_str().unwrap();
    let session_header = format!("session_id: {session}");
    let chat_header = format!("chat_id: {CHAT}");
    let body = json!({"model": "any", "messages": [{"role": "user", "content": "hello agent"}]});
    let answer = ok(&call(
        &market,
        AGENT,
        "POST",
        "/v1/chat/completions",
        Some(&body),
        &[&session_header, &chat_header],
    ));
    let history = ok(&call(&market, ADMIN, "GET", &format!("/v1/chats/{CHAT}"), None, &[]));
    assert_eq!(history["title"], "hello agent");
    assert_eq!(history["modelId"], model);
    assert_eq!(history["isLocal"], false);
    assert_eq!(history["messages"][0]["prompt"], body);
    assert_eq!(history["messages"][0]["response"], answer["choices"][0]["message"]["content"]);
}
