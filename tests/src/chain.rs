//! A deployed marketplace on a real anvil plus what chain tests need around `proxy_router::chain`:
//! a [`ChainConfig`] pointing at it, senders for anvil's accounts, MOR transfers and balances, the
//! provider-signed approval and session report the router exchanges, and anvil time travel.

use std::time::Duration;

use alloy::eips::BlockNumberOrTag;
use alloy::primitives::{keccak256, Address, Bytes, B256, U256};
use alloy::providers::{DynProvider, Provider};
use alloy::sol_types::SolValue;
use anyhow::Context;
use proxy_router::chain::allowance::Allowance;
use proxy_router::chain::bindings::{Marketplace, MorpheusToken, SessionRouter};
use proxy_router::chain::rpc::Rpc;
use proxy_router::chain::sender::{ModelRegistration, TxSender};
use proxy_router::chain::wallet::Wallet;
use proxy_router::config::{ChainConfig, WalletKey};
use secrecy::SecretString;

use crate::anvil::{Anvil, ANVIL_CHAIN_ID};
use crate::deploy::{deploy_marketplace, Deployment};

/// The mnemonic of anvil's default accounts.
pub const ANVIL_MNEMONIC: &str = "test test test test test test test test test test test junk";

/// 1 MOR in wei.
pub const MOR: u128 = 1_000_000_000_000_000_000;

/// anvil, the deployed contracts and a matching chain configuration.
pub struct ChainFixture {
    /// The running anvil (killed on drop).
    pub anvil: Anvil,
    /// The deployed addresses.
    pub deployment: Deployment,
    /// A configuration for the router: this anvil, these contracts, short transaction intervals.
    pub config: ChainConfig,
}

impl ChainFixture {
    /// Starts anvil and deploys the marketplace.
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with_args(&[]).await
    }

    /// Like [`ChainFixture::start`] with extra anvil arguments.
    pub async fn start_with_args(args: &[&str]) -> anyhow::Result<Self> {
        let anvil = Anvil::start_with_args(args).await?;
        let deployment = deploy_marketplace(&anvil)?;
        let config = chain_config(&anvil, &deployment)?;
        Ok(Self { anvil, deployment, config })
    }

    /// A read-only provider straight to anvil (no failover), for assertions and anvil's own methods.
    pub fn provider(&self) -> anyhow::Result<DynProvider> {
        self.anvil.provider()
    }

    /// The router's RPC client for [`ChainFixture::config`].
    pub async fn rpc(&self) -> anyhow::Result<Rpc> {
        Ok(Rpc::connect(&self.config).await?)
    }

    /// A sender for anvil account `index`, over the router's RPC client.
    pub async fn sender(&self, index: u32) -> anyhow::Result<TxSender> {
        Ok(TxSender::new(self.rpc().await?, wallet(index)?, &self.config))
    }

    /// Transfers `amount` MOR from the deployer (account 0, which holds the supply) to `to`.
    pub async fn give_mor(&self, to: Address, amount: U256) -> anyhow::Result<()> {
        let deployer = self.sender(0).await?;
        let call = MorpheusToken::transferCall { to, amount };
        deployer.send_call(self.deployment.mor_token, &call).await?;
        Ok(())
    }

    /// The MOR balance of `owner`.
    pub async fn mor_balance(&self, owner: Address) -> anyhow::Result<U256> {
        let token = MorpheusToken::new(self.deployment.mor_token, self.provider()?);
        Ok(token.balanceOf(owner).call().await?)
    }

    /// The MOR balances of `owners`, in order, at one moment (for before/after checks with [`deltas`]).
    pub async fn mor_balances(&self, owners: &[Address]) -> anyhow::Result<Vec<U256>> {
        let mut values = Vec::with_capacity(owners.len());
        for owner in owners {
            values.push(self.mor_balance(*owner).await?);
        }
        Ok(values)
    }

    /// The MOR allowance of `owner` for the diamond.
    pub async fn allowance(&self, owner: Address) -> anyhow::Result<U256> {
        let token = MorpheusToken::new(self.deployment.mor_token, self.provider()?);
        Ok(token.allowance(owner, self.deployment.diamond).call().await?)
    }

    /// The timestamp of the latest block.
    pub async fn chain_time(&self) -> anyhow::Result<u64> {
        let block = self
            .provider()?
            .get_block_by_number(BlockNumberOrTag::Latest)
            .await?
            .context("no latest block")?;
        Ok(block.header.timestamp)
    }

    /// Moves chain time forward by `seconds` and mines a block.
    pub async fn advance_time(&self, seconds: u64) -> anyhow::Result<()> {
        let provider = self.provider()?;
        provider.raw_request::<_, serde_json::Value>("evm_increaseTime".into(), (seconds,)).await?;
        self.mine().await
    }

    /// Mines the next block at the start of the next UTC day (plus `offset` seconds).
    pub async fn jump_to_next_utc_day(&self, offset: u64) -> anyhow::Result<u64> {
        let now = self.chain_time().await?;
        let next_day = now - now % 86_400 + 86_400 + offset;
        let provider = self.provider()?;
        provider.raw_request::<_, serde_json::Value>("evm_setNextBlockTimestamp".into(), (next_day,)).await?;
        self.mine().await?;
        Ok(next_day)
    }

    /// Mines one block.
    pub async fn mine(&self) -> anyhow::Result<()> {
        self.provider()?.raw_request::<_, serde_json::Value>("evm_mine".into(), ()).await?;
        Ok(())
    }

    /// Funds the provider of `provider`, registers it (0.2 MOR), a model named `name` (0.1 MOR) and a bid
    /// at `price` wei/s, each spend through [`Allowance`]; returns `(model_id, bid_id)`.
    pub async fn provider_with_bid(
        &self,
        provider: &TxSender,
        name: &str,
        price: U256,
    ) -> anyhow::Result<(B256, B256)> {
        let p = provider.address();
        let allowance = Allowance::new(provider.clone());
        self.give_mor(p, U256::from(10 * MOR)).await?;
        let stake = U256::from(MOR / 5);
        allowance.spend(stake, || provider.provider_register(p, stake, "provider.example:3333")).await?;
        let registration = model_registration(p, name, U256::from(MOR / 10));
        let (model_id, _) =
            allowance.spend(registration.stake, || provider.model_register(&registration)).await?;
        let fee = Marketplace::new(self.deployment.diamond, self.provider()?).getBidFee().call().await?;
        let (bid_id, _) = allowance.spend(fee, || provider.post_model_bid(p, model_id, price)).await?;
        Ok((model_id, bid_id))
    }

    /// The approval of `provider` for `user` on `bid_id`, stamped with the chain's clock in milliseconds
    /// like the router, and its signature.
    pub async fn signed_approval(
        &self,
        provider: &Wallet,
        bid_id: B256,
        user: Address,
    ) -> anyhow::Result<(Bytes, Bytes)> {
        let now_ms = u128::from(self.chain_time().await?) * 1000;
        let approval = approval(bid_id, ANVIL_CHAIN_ID, user, now_ms);
        let signature = sign(provider, &approval)?;
        Ok((approval, signature))
    }

    /// The 7-word report of `session_id` signed by `signer` (the provider: no dispute; the user: a
    /// dispute), stamped with the chain's clock.
    pub async fn signed_report(&self, signer: &Wallet, session_id: B256) -> anyhow::Result<(Bytes, Bytes)> {
        let now_ms = u128::from(self.chain_time().await?) * 1000;
        let report = session_report(session_id, ANVIL_CHAIN_ID, now_ms, [25_000, 300, 1_000, 2_000]);
        let signature = sign(signer, &report)?;
        Ok((report, signature))
    }

    /// The MOR a non-direct session needs to last `duration` seconds at `price_per_second` (the
    /// reference's `supply × price × duration / todaysBudget`, rounded up, plus 1 %).
    pub async fn session_stake(&self, price_per_second: U256, duration: u64) -> anyhow::Result<U256> {
        let sessions = SessionRouter::new(self.deployment.diamond, self.provider()?);
        let now = u128::from(self.chain_time().await?);
        let supply = sessions.totalMORSupply(now).call().await?;
        let budget = sessions.getTodaysBudget(now).call().await?;
        anyhow::ensure!(!budget.is_zero(), "the compute pool has no budget today");
        let cost = price_per_second * U256::from(duration);
        let stake = (supply * cost).div_ceil(budget);
        Ok(stake + stake / U256::from(100))
    }
}

/// The router's chain configuration for `anvil` and `deployment`: the anvil URL only, subscriptions
/// off, a 5 s RPC timeout, and transaction intervals short enough for tests.
pub fn chain_config(anvil: &Anvil, deployment: &Deployment) -> anyhow::Result<ChainConfig> {
    Ok(ChainConfig {
        rpc_urls: vec![anvil.endpoint().parse()?],
        chain_id: ANVIL_CHAIN_ID,
        diamond: deployment.diamond,
        mor_token: deployment.mor_token,
        multicall3: deployment.multicall3,
        legacy_tx: false,
        use_subscriptions: false,
        polling_interval: Duration::from_millis(200),
        rpc_timeout: Duration::from_secs(5),
        tx_receipt_timeout: Duration::from_secs(60),
        tx_bump_interval: Duration::from_secs(10),
        tx_fee_bump_percent: 15,
        tx_max_bumps: 5,
    })
}

/// A model registration with derived ids and two tags.
pub fn model_registration(owner: Address, name: &str, stake: U256) -> ModelRegistration {
    ModelRegistration {
        owner,
        base_id: keccak256(name.as_bytes()),
        ipfs_cid: keccak256(format!("ipfs:{name}").as_bytes()),
        fee: U256::from(7u64),
        stake,
        name: name.to_owned(),
        tags: vec!["llm".into(), "test".into()],
    }
}

/// The wallet of anvil account `index` (from the test mnemonic).
pub fn wallet(index: u32) -> anyhow::Result<Wallet> {
    Ok(Wallet::from_key(&WalletKey::Mnemonic {
        phrase: SecretString::from(ANVIL_MNEMONIC.to_owned()),
        derivation_path: format!("m/44'/60'/0'/0/{index}"),
    })?)
}

/// The provider's session approval as the router encodes it: `abi.encode(bidId, chainId, user,
/// uint128 timestampMs)`.
pub fn approval(bid_id: B256, chain_id: u64, user: Address, timestamp_ms: u128) -> Bytes {
    Bytes::from((bid_id, U256::from(chain_id), user, timestamp_ms).abi_encode())
}

/// The 7-word session report: `abi.encode(sessionId, chainId, uint128 timestampMs, uint32 tps×1000,
/// uint32 ttftMs, uint32 inputTokens, uint32 outputTokens)`.
pub fn session_report(session_id: B256, chain_id: u64, timestamp_ms: u128, stats: [u32; 4]) -> Bytes {
    let [tps, ttft, input, output] = stats;
    Bytes::from((session_id, U256::from(chain_id), timestamp_ms, tps, ttft, input, output).abi_encode())
}

/// The EIP-191 signature over `keccak256(message)` the contracts verify (65 bytes, v = 27/28).
pub fn sign(wallet: &Wallet, message: &[u8]) -> anyhow::Result<Bytes> {
    let signature = wallet.sign_eip191_hash(&keccak256(message))?;
    Ok(Bytes::from(signature.as_bytes().to_vec()))
}

/// `after − before` per account, signed (balances in tests stay far below `i128::MAX`).
pub fn deltas(before: &[U256], after: &[U256]) -> Vec<i128> {
    before.iter().zip(after).map(|(b, a)| signed(*a) - signed(*b)).collect()
}

/// A balance or amount as `i128`, for signed arithmetic in assertions; saturates at `i128::MAX`
/// (no test amount comes near it, and a saturated value fails any exact comparison).
pub fn signed(v: U256) -> i128 {
    i128::try_from(v).unwrap_or(i128::MAX)
}
