//! The anvil helper starts a real anvil on a free port and an alloy provider can talk to it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use alloy::providers::Provider;
use e2e_tests::anvil::{Anvil, ANVIL_CHAIN_ID};

#[tokio::test]
async fn anvil_answers_eth_chain_id() {
    let anvil = Anvil::start().await.expect("start anvil");
    let provider = anvil.provider().unwrap();
    assert_eq!(provider.get_chain_id().await.unwrap(), ANVIL_CHAIN_ID);
}

#[tokio::test]
async fn two_anvils_get_different_ports() {
    let a = Anvil::start().await.expect("start anvil");
    let b = Anvil::start().await.expect("start anvil");
    assert_ne!(a.addr().port(), b.addr().port());
    assert_eq!(b.provider().unwrap().get_chain_id().await.unwrap(), ANVIL_CHAIN_ID);
}
