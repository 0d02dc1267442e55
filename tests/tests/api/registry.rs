//! Providers, models and bids through the whole router against anvil with our contracts: every write
//! with MOR balances checked before and after, answers compared with the chain, reads after the
//! indexer caught up, and the errors of bad input and of what the contracts refuse.

use std::collections::BTreeSet;

use alloy::primitives::{keccak256, Address, B256, U256};
use alloy::providers::Provider;
use anyhow::Context;
use axum::http::Method;
use e2e_tests::api::{Answer, ApiFixture};
use e2e_tests::chain::{ChainFixture, MOR};
use proxy_router::chain::bindings::{Marketplace, ModelRegistry, ProviderRegistry};
use proxy_router::chain::sender::{bid_id, model_id};
use proxy_router::consumer::rating::{self, PairStats, ScoreInput, Weights};
use proxy_router::store::{ModelStats, ProviderModelStats, Sd};
use serde_json::Value;

/// The API's wallet.
const ACCOUNT: u32 = 1;
/// 1e13 wei/s, the deployment's minimum bid price.
const PRICE: u64 = 10_000_000_000_000;

fn mor(tenths: u128) -> U256 {
    U256::from(tenths * MOR / 10)
}

fn lower(address: Address) -> String {
    format!("{address:#x}")
}

/// MOR balances of `owners`.
async fn balances(chain: &ChainFixture, owners: &[Address]) -> anyhow::Result<Vec<U256>> {
    let mut out = Vec::new();
    for owner in owners {
        out.push(chain.mor_balance(*owner).await?);
    }
    Ok(out)
}

async fn ok(f: &ApiFixture, method: Method, uri: &str, json: Option<&str>) -> anyhow::Result<Value> {
    f.call(method.clone(), uri, json).await?.expect(200).with_context(|| format!("{method} {uri}"))?.json()
}

/// Calls and expects `status`; returns the error body.
async fn fails(
    f: &ApiFixture,
    method: Method,
    uri: &str,
    json: Option<&str>,
    status: u16,
) -> anyhow::Result<Value> {
    let answer: Answer = f.call(method.clone(), uri, json).await?;
    answer.expect(status).with_context(|| format!("{method} {uri} {json:?}"))?.json()
}

fn keys(value: &Value) -> BTreeSet<String> {
    value.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default()
}

fn strings(list: &Value, field: &str) -> Vec<String> {
    list.as_array()
        .map(|items| items.iter().map(|i| i[field].as_str().unwrap_or_default().to_owned()).collect())
        .unwrap_or_default()
}

fn is_tx_hash(value: &Value) -> bool {
    value.as_str().is_some_and(|s| {
        s.len() == 66
            && s.starts_with("0x")
            && s[2..].bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// The receipt of `tx` is mined with status 1.
async fn mined(chain: &ChainFixture, tx: &Value) -> anyhow::Result<()> {
    anyhow::ensure!(is_tx_hash(tx), "not a lower-case transaction hash: {tx}");
    let hash: B256 = tx.as_str().unwrap_or_default().parse()?;
    let receipt = chain.provider()?.get_transaction_receipt(hash).await?.context("no receipt")?;
    anyhow::ensure!(receipt.status(), "transaction {hash} failed");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn provider_registration_moves_the_stake_and_deregistration_refunds_it() -> anyhow::Result<()> {
    let mut f = ApiFixture::start(ACCOUNT).await?;
    let me = f.address;
    let diamond = f.chain.deployment.diamond;
    let own = format!("/blockchain/providers/{me}");

    // Nothing registered yet: nothing to deregister.
    let error = fails(&f, Method::DELETE, &own, None, 404).await?;
    assert!(error["error"].as_str().unwrap_or_default().contains(&lower(me)), "{error}");

    f.chain.give_mor(me, mor(100)).await?;
    let error =
        fails(&f, Method::POST, "/blockchain/providers", Some(r#"{"stake":"1","endpoint":"nope"}"#), 400)
            .await?;
    assert_eq!(error["field"], "endpoint");
    let error =
        fails(&f, Method::POST, "/blockchain/providers", Some(r#"{"stake":1.5,"endpoint":"a:1"}"#), 400)
            .await?;
    assert_eq!(error["field"], "stake");
    // Below the minimum stake: the contract's reason.
    let error = fails(
        &f,
        Method::POST,
        "/blockchain/providers",
        Some(r#"{"stake":"1","endpoint":"a.example:1"}"#),
        422,
    )
    .await?;
    assert!(error["reason"].as_str().unwrap_or_default().starts_with("ProviderStakeTooLow("), "{error}");

    // Register: the stake moves from the wallet to the diamond; the answer is the chain's record.
    let stake = mor(2);
    let before = balances(&f.chain, &[me, diamond]).await?;
    let body = format!(r#"{{"stake":{stake},"endpoint":"provider.example:3333"}}"#);
    let answer = ok(&f, Method::POST, "/blockchain/providers", Some(&body)).await?;
    let after = balances(&f.chain, &[me, diamond]).await?;
    assert_eq!((before[0] - after[0], after[1] - before[1]), (stake, stake));
    let provider = &answer["provider"];
    assert_eq!(
        keys(provider),
        ["Address", "CreatedAt", "Endpoint", "IsDeleted", "Stake"].map(String::from).into()
    );
    assert_eq!(provider["Address"], lower(me));
    assert_eq!(provider["Endpoint"], "provider.example:3333");
    assert_eq!(provider["Stake"], stake.to_string());
    assert_eq!(provider["IsDeleted"], false);
    let on_chain = ProviderRegistry::new(diamond, f.chain.provider()?).getProvider(me).call().await?;
    assert_eq!(provider["CreatedAt"], on_chain.createdAt.to_string());

    // Again, with the stake as a string: it adds up, the endpoint changes.
    let body = format!(r#"{{"stake":"{stake}","endpoint":"[::1]:4444"}}"#);
    let answer = ok(&f, Method::POST, "/blockchain/providers", Some(&body)).await?;
    assert_eq!(answer["provider"]["Stake"], (stake * U256::from(2)).to_string());
    assert_eq!(answer["provider"]["Endpoint"], "[::1]:4444");
    assert_eq!(f.chain.mor_balance(me).await?, before[0] - stake * U256::from(2));

    f.sync().await?;
    let listed = ok(&f, Method::GET, "/blockchain/providers", None).await?;
    assert_eq!(listed["providers"], serde_json::json!([answer["provider"]]));

    // Another address is refused; the own one deregisters and refunds.
    let other = format!("/blockchain/providers/{}", Address::repeat_byte(7));
    assert_eq!(fails(&f, Method::DELETE, &other, None, 400).await?["field"], "id");
    let before = balances(&f.chain, &[me, diamond]).await?;
    let answer = ok(&f, Method::DELETE, &own, None).await?;
    mined(&f.chain, &answer["tx"]).await?;
    let after = balances(&f.chain, &[me, diamond]).await?;
    let total = stake * U256::from(2);
    assert_eq!((after[0] - before[0], before[1] - after[1]), (total, total));
    // Any id that is not an address is ignored (the reference's route): already deregistered.
    let error = fails(&f, Method::DELETE, "/blockchain/providers/self", None, 409).await?;
    assert_eq!(error["code"], "conflict");

    f.sync().await?;
    let listed = ok(&f, Method::GET, "/blockchain/providers", None).await?;
    assert_eq!(listed["providers"], serde_json::json!([]));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn models_and_bids_from_registration_to_deletion() -> anyhow::Result<()> {
    let mut f = ApiFixture::start(ACCOUNT).await?;
    let me = f.address;
    let diamond = f.chain.deployment.diamond;
    let read = f.chain.provider()?;
    f.chain.give_mor(me, mor(100)).await?;
    let ipfs = keccak256("card");

    // A bid before the node is a provider: the model check comes first, then the provider check.
    let base = keccak256("my-model");
    let id = model_id(me, base);
    let bid_body = |model: B256, price: u64| format!(r#"{{"modelID":"{model}","pricePerSecond":"{price}"}}"#);
    let error = fails(&f, Method::POST, "/blockchain/bids", Some(&bid_body(id, PRICE)), 404).await?;
    assert_eq!(error["code"], "not_found");

    ok(
        &f,
        Method::POST,
        "/blockchain/providers",
        Some(r#"{"stake":"200000000000000000","endpoint":"p.example:3333"}"#),
    )
    .await?;

    // Models: bad input, then the contract's minimum stake.
    let model_body = |id: Option<B256>, stake: U256, tags: &str| {
        let id = id.map(|id| format!(r#""id":"{id}","#)).unwrap_or_default();
        format!(r#"{{{id}"ipfsID":"{ipfs}","fee":"7","stake":"{stake}","name":"My model","tags":{tags}}}"#)
    };
    let error =
        fails(&f, Method::POST, "/blockchain/models", Some(&model_body(None, mor(1), r#"["fast"]"#)), 400)
            .await?;
    assert_eq!(error["field"], "tags");
    let error = fails(
        &f,
        Method::POST,
        "/blockchain/models",
        Some(&model_body(None, U256::from(1), r#"["llm"]"#)),
        422,
    )
    .await?;
    assert!(error["reason"].as_str().unwrap_or_default().starts_with("ModelStakeTooLow("), "{error}");

    // Register with a base id: the stake moves; the id is keccak(owner, base id).
    let stake = mor(1);
    let before = balances(&f.chain, &[me, diamond]).await?;
    let answer =
        ok(&f, Method::POST, "/blockchain/models", Some(&model_body(Some(base), stake, r#"["LLM","tee"]"#)))
            .await?;
    let after = balances(&f.chain, &[me, diamond]).await?;
    assert_eq!((before[0] - after[0], after[1] - before[1]), (stake, stake));
    let model = &answer["model"];
    assert_eq!(
        keys(model),
        ["CreatedAt", "Fee", "Id", "IpfsCID", "IsDeleted", "ModelType", "Name", "Owner", "Stake", "Tags"]
            .map(String::from)
            .into()
    );
    assert_eq!(model["Id"], id.to_string());
    assert_eq!(model["IpfsCID"], ipfs.to_string());
    assert_eq!(model["Owner"], lower(me));
    assert_eq!(model["Fee"], 7);
    assert_eq!(model["Stake"].to_string(), stake.to_string()); // a raw JSON number
    assert_eq!(model["ModelType"], "LLM");
    assert_eq!(model["Tags"], serde_json::json!(["LLM", "tee"]));
    assert_eq!(model["Name"], "My model");
    let on_chain = ModelRegistry::new(diamond, read.clone()).getModel(id).call().await?;
    assert_eq!(model["CreatedAt"].to_string(), on_chain.createdAt.to_string());

    // Without an id: a random base id, another model.
    let answer =
        ok(&f, Method::POST, "/blockchain/models", Some(&model_body(None, stake, r#"["embeddings"]"#)))
            .await?;
    let random = answer["model"]["Id"].as_str().unwrap_or_default().to_owned();
    assert_ne!(random, id.to_string());
    assert_eq!(answer["model"]["ModelType"], "EMBEDDING");

    // Bids: bad input, an unknown model, a price the contract refuses.
    let error = fails(&f, Method::POST, "/blockchain/bids", Some(&bid_body(id, 0)), 400).await?;
    assert_eq!(error["field"], "pricePerSecond");
    let error =
        fails(&f, Method::POST, "/blockchain/bids", Some(r#"{"modelID":"0x1","pricePerSecond":1}"#), 400)
            .await?;
    assert_eq!(error["field"], "modelID");
    fails(&f, Method::POST, "/blockchain/bids", Some(&bid_body(keccak256("none"), PRICE)), 404).await?;
    let error = fails(&f, Method::POST, "/blockchain/bids", Some(&bid_body(id, 1)), 422).await?;
    assert!(
        error["reason"].as_str().unwrap_or_default().contains("MarketplaceBidPricePerSecondInvalid"),
        "{error}"
    );

    // Post: the bid fee moves; the answer is the chain's bid with the contract's id.
    let fee = Marketplace::new(diamond, read.clone()).getBidFee().call().await?;
    let before = balances(&f.chain, &[me, diamond]).await?;
    let answer = ok(&f, Method::POST, "/blockchain/bids", Some(&bid_body(id, PRICE))).await?;
    let after = balances(&f.chain, &[me, diamond]).await?;
    assert_eq!((before[0] - after[0], after[1] - before[1]), (fee, fee));
    let bid = answer["bid"].clone();
    let bid_hash = bid_id(me, id, U256::ZERO);
    assert_eq!(
        keys(&bid),
        ["CreatedAt", "DeletedAt", "Id", "ModelAgentId", "Nonce", "PricePerSecond", "Provider"]
            .map(String::from)
            .into()
    );
    assert_eq!(bid["Id"], bid_hash.to_string());
    assert_eq!(bid["Provider"], lower(me));
    assert_eq!(bid["ModelAgentId"], id.to_string());
    assert_eq!(bid["PricePerSecond"], PRICE.to_string());
    assert_eq!(bid["Nonce"], "0");
    assert_eq!(bid["DeletedAt"], "0");

    // Reads after the indexer caught up: the same bid everywhere.
    f.sync().await?;
    let bid_uri = format!("/blockchain/bids/{bid_hash}");
    assert_eq!(ok(&f, Method::GET, &bid_uri, None).await?["bid"], bid);
    for uri in [
        format!("/blockchain/models/{id}/bids"),
        format!("/blockchain/models/{id}/bids/active"),
        format!("/blockchain/providers/{me}/bids"),
        format!("/blockchain/providers/{me}/bids/active"),
    ] {
        assert_eq!(ok(&f, Method::GET, &uri, None).await?["bids"], serde_json::json!([bid]), "{uri}");
    }
    let models = ok(&f, Method::GET, "/blockchain/models", None).await?;
    let listed: BTreeSet<String> = strings(&models["models"], "Id").into_iter().collect();
    assert_eq!(listed, BTreeSet::from([id.to_string(), random.clone()]));

    // What still has an active bid cannot be deregistered.
    let error = fails(&f, Method::DELETE, &format!("/blockchain/models/{id}"), None, 422).await?;
    assert_eq!(error["reason"], "ModelHasActiveBids()");
    let error = fails(&f, Method::DELETE, &format!("/blockchain/providers/{me}"), None, 422).await?;
    assert_eq!(error["reason"], "ProviderHasActiveBids()");

    // Delete the bid: no money moves; after a sync it is no longer active.
    let before = balances(&f.chain, &[me, diamond]).await?;
    let answer = ok(&f, Method::DELETE, &bid_uri, None).await?;
    mined(&f.chain, &answer["tx"]).await?;
    assert_eq!(balances(&f.chain, &[me, diamond]).await?, before);
    assert_eq!(fails(&f, Method::DELETE, &bid_uri, None, 409).await?["code"], "conflict");
    fails(&f, Method::DELETE, &format!("/blockchain/bids/{}", keccak256("no bid")), None, 404).await?;
    f.sync().await?;
    let active = ok(&f, Method::GET, &format!("/blockchain/models/{id}/bids/active"), None).await?;
    assert_eq!(active["bids"], serde_json::json!([]));
    let active = ok(&f, Method::GET, &format!("/blockchain/providers/{me}/bids/active"), None).await?;
    assert_eq!(active["bids"], serde_json::json!([]));
    let all = ok(&f, Method::GET, &format!("/blockchain/models/{id}/bids"), None).await?;
    assert_eq!(strings(&all["bids"], "Id"), [bid_hash.to_string()]);
    assert_ne!(all["bids"][0]["DeletedAt"], "0");

    // Deregister the model: its stake comes back.
    let before = balances(&f.chain, &[me, diamond]).await?;
    let answer = ok(&f, Method::DELETE, &format!("/blockchain/models/{id}"), None).await?;
    mined(&f.chain, &answer["tx"]).await?;
    let after = balances(&f.chain, &[me, diamond]).await?;
    assert_eq!((after[0] - before[0], before[1] - after[1]), (stake, stake));
    assert_eq!(
        fails(&f, Method::DELETE, &format!("/blockchain/models/{id}"), None, 409).await?["code"],
        "conflict"
    );
    fails(&f, Method::DELETE, &format!("/blockchain/models/{}", keccak256("no model")), None, 404).await?;
    f.sync().await?;
    let models = ok(&f, Method::GET, "/blockchain/models", None).await?;
    assert_eq!(strings(&models["models"], "Id"), [random]);
    Ok(())
}

/// Three providers (accounts 2–4) with a model each and bids on the first model; returns the fixture
/// (signing with account 1), the model ids and the provider addresses.
async fn market() -> anyhow::Result<(ApiFixture, Vec<B256>, Vec<Address>)> {
    let mut f = ApiFixture::start(ACCOUNT).await?;
    let mut models = Vec::new();
    let mut providers = Vec::new();
    for (i, account) in [2u32, 3, 4].into_iter().enumerate() {
        let sender = f.chain.sender(account).await?;
        let price = U256::from(PRICE * (3 - i as u64)); // 3e13, 2e13, 1e13
        let (model, _) = f.chain.provider_with_bid(&sender, &format!("model-{i}"), price).await?;
        models.push(model);
        providers.push(sender.address());
    }
    // Providers 2 and 3 also bid on the first model, at their own prices.
    let market = Marketplace::new(f.chain.deployment.diamond, f.chain.provider()?);
    let fee = market.getBidFee().call().await?;
    for (i, account) in [3u32, 4].into_iter().enumerate() {
        let sender = f.chain.sender(account).await?;
        let allowance = proxy_router::chain::Allowance::new(sender.clone());
        let price = U256::from(PRICE * (2 - i as u64)); // 2e13, 1e13
        allowance.spend(fee, || sender.post_model_bid(sender.address(), models[0], price)).await?;
    }
    f.sync().await?;
    Ok((f, models, providers))
}

#[tokio::test(flavor = "multi_thread")]
async fn lists_page_and_really_order_both_ways() -> anyhow::Result<()> {
    let (f, models, providers) = market().await?;
    let get = |uri: String| {
        let f = &f;
        async move { ok(f, Method::GET, &uri, None).await }
    };

    let asc = strings(&get("/blockchain/providers?order=asc".into()).await?["providers"], "Address");
    let desc = strings(&get("/blockchain/providers?order=desc".into()).await?["providers"], "Address");
    assert_eq!(asc.iter().cloned().collect::<BTreeSet<_>>(), providers.iter().map(|p| lower(*p)).collect());
    assert_ne!(asc, desc);
    assert_eq!(asc, desc.iter().rev().cloned().collect::<Vec<_>>());
    assert_eq!(strings(&get("/blockchain/providers".into()).await?["providers"], "Address"), asc);
    let page = strings(&get("/blockchain/providers?offset=1&limit=1".into()).await?["providers"], "Address");
    assert_eq!(page, [asc[1].clone()]);
    let page = strings(
        &get("/blockchain/providers?offset=1&limit=1&order=desc".into()).await?["providers"],
        "Address",
    );
    assert_eq!(page, [desc[1].clone()]);

    let asc = strings(&get("/blockchain/models".into()).await?["models"], "Id");
    let desc = strings(&get("/blockchain/models?order=desc&limit=0".into()).await?["models"], "Id");
    assert_eq!(asc.len(), 3);
    assert_eq!(asc, desc.iter().rev().cloned().collect::<Vec<_>>());
    assert_ne!(asc, desc);
    assert_eq!(strings(&get("/blockchain/models?offset=2".into()).await?["models"], "Id"), [asc[2].clone()]);

    // Three bids on the first model, all active.
    let bids = format!("/blockchain/models/{}/bids", models[0]);
    let asc = strings(&get(format!("{bids}?order=asc")).await?["bids"], "Id");
    let desc = strings(&get(format!("{bids}?order=desc")).await?["bids"], "Id");
    assert_eq!(asc.len(), 3);
    assert_eq!(asc, desc.iter().rev().cloned().collect::<Vec<_>>());
    assert_eq!(strings(&get(format!("{bids}/active?limit=2")).await?["bids"], "Id"), asc[..2]);
    assert_eq!(strings(&get(format!("{bids}/active?offset=2&limit=2")).await?["bids"], "Id"), asc[2..]);
    assert_eq!(
        strings(&get(format!("{bids}?offset=1&limit=1&order=desc")).await?["bids"], "Id"),
        [desc[1].clone()]
    );
    let by_provider =
        strings(&get(format!("/blockchain/providers/{}/bids", providers[2])).await?["bids"], "Id");
    assert_eq!(by_provider.len(), 2);

    let error = fails(&f, Method::GET, &format!("{bids}?order=sideways"), None, 400).await?;
    assert_eq!(error["field"], "order");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn rated_bids_are_scored_from_stored_statistics_best_first() -> anyhow::Result<()> {
    let (f, models, providers) = market().await?;
    let model = models[0];
    let uri = format!("/blockchain/models/{model}/bids/rated");
    let min_stake = ProviderRegistry::new(f.chain.deployment.diamond, f.chain.provider()?)
        .getProviderMinimumStake()
        .call()
        .await?;
    let stake = mor(2); // provider_with_bid's stake
    let expected = |price: u64, pm: PairStats, model: rating::ModelSpread| {
        rating::score(
            &Weights::default(),
            &ScoreInput {
                provider_model: pm,
                model,
                provider_stake: stake,
                min_stake,
                price_per_second: U256::from(price),
            },
        )
    };

    // No statistics yet: the cheapest bid first, scores exactly the scorer's.
    let rated = ok(&f, Method::GET, &uri, None).await?;
    let bids = rated["bids"].as_array().cloned().unwrap_or_default();
    assert_eq!(bids.len(), 3);
    let order: Vec<String> =
        bids.iter().map(|b| b["Bid"]["Provider"].as_str().unwrap_or_default().to_owned()).collect();
    assert_eq!(order, [lower(providers[2]), lower(providers[1]), lower(providers[0])]);
    for (b, price) in bids.iter().zip([PRICE, 2 * PRICE, 3 * PRICE]) {
        assert_eq!(keys(b), ["Bid", "ID", "Score"].map(String::from).into());
        assert_eq!(b["ID"], b["Bid"]["Id"]);
        assert_ne!(b["ID"], B256::ZERO.to_string());
        assert_eq!(b["Bid"]["PricePerSecond"], price.to_string());
        let score = b["Score"].as_f64().context("Score is a number")?;
        let want = expected(price, PairStats::default(), rating::ModelSpread::default());
        assert!((score - want).abs() <= want * 1e-12, "{score} vs {want}");
    }

    // Statistics from the store: the most expensive provider with a perfect record now leads.
    let spread = Sd { mean: 1000, sq_sum: 2_000_000 }; // 3 observations: sd 1000
    let model_stats = ModelStats {
        model_id: model,
        tps_scaled1000: spread,
        ttft_ms: spread,
        total_duration: spread,
        count: 3,
    };
    f.store.store.stats().upsert_model(&model_stats).await?;
    let good = ProviderModelStats {
        model_id: model,
        provider: providers[0],
        tps_scaled1000: Sd { mean: 4000, sq_sum: 0 },
        ttft_ms: Sd { mean: 0, sq_sum: 0 },
        total_duration: 4000,
        success_count: 10,
        total_count: 10,
    };
    f.store.store.stats().upsert_provider_model(&good).await?;
    let rated = ok(&f, Method::GET, &uri, None).await?;
    let first = &rated["bids"][0];
    assert_eq!(first["Bid"]["Provider"], lower(providers[0]));
    let want = expected(3 * PRICE, PairStats::from(&good), rating::ModelSpread::from(&model_stats));
    let score = first["Score"].as_f64().context("Score is a number")?;
    assert!((score - want).abs() <= want * 1e-12, "{score} vs {want}");

    // Bad and unknown ids.
    let error = fails(&f, Method::GET, "/blockchain/models/0x12/bids/rated", None, 400).await?;
    assert_eq!(error["field"], "id");
    let unknown =
        ok(&f, Method::GET, &format!("/blockchain/models/{}/bids/rated", keccak256("x")), None).await?;
    assert_eq!(unknown["bids"], serde_json::json!([]));
    Ok(())
}
