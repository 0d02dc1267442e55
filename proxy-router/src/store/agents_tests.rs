//! [`AgentsRepo`] against a real SQLite file: requests and their bound, allowances, spending,
//! allowance requests, the transaction pages, and persistence across reopening.

use alloy::primitives::{B256, U256};

use super::*;
use crate::store::Store;

const MOR: &str = "0xe7f1725e7734ce288f8367e1bb143e90bb3f0512";

fn agent(name: &str, allowances: &[(&str, u64)]) -> AgentUser {
    AgentUser {
        username: name.to_owned(),
        credential: format!("{}${}", "00".repeat(16), "11".repeat(32)),
        perms: vec!["send_mor".to_owned(), "chat".to_owned()],
        is_confirmed: false,
        allowances: allowances.iter().map(|(t, a)| ((*t).to_owned(), U256::from(*a))).collect(),
        created_at: 1_700_000_000,
    }
}

#[tokio::test]
async fn requests_are_stored_once_confirmed_listed_and_deleted_with_their_allowances() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let repo = store.agents();
    assert_eq!(
        repo.add_request(&agent("bot", &[(MOR, 10), ("eth", 2)])).await.unwrap(),
        RequestOutcome::Added
    );
    assert_eq!(repo.add_request(&agent("bot", &[])).await.unwrap(), RequestOutcome::Exists);
    let got = repo.get("bot").await.unwrap().unwrap();
    assert_eq!(got, agent("bot", &[(MOR, 10), ("eth", 2)]));
    assert!(repo.get("nobody").await.unwrap().is_none());

    assert!(repo.confirm("bot").await.unwrap());
    assert!(!repo.confirm("nobody").await.unwrap());
    repo.add_request(&agent("second", &[])).await.unwrap();
    let listed = repo.list().await.unwrap();
    assert_eq!(
        listed.iter().map(|a| (a.username.as_str(), a.is_confirmed)).collect::<Vec<_>>(),
        [("bot", true), ("second", false)]
    );
    assert_eq!(listed[0].allowances.get(MOR), Some(&U256::from(10u8)));

    assert!(repo.delete("bot").await.unwrap());
    assert!(!repo.delete("bot").await.unwrap());
    assert_eq!(repo.allowance("bot", MOR).await.unwrap(), U256::ZERO);
    assert!(repo.get("bot").await.unwrap().is_none());
}

#[tokio::test]
async fn pending_requests_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let repo = store.agents();
    for i in 0..MAX_PENDING_AGENT_REQUESTS {
        assert_eq!(repo.add_request(&agent(&format!("a{i}"), &[])).await.unwrap(), RequestOutcome::Added);
    }
    assert_eq!(repo.add_request(&agent("one-more", &[])).await.unwrap(), RequestOutcome::TooMany);
    // Confirming one frees a place.
    repo.confirm("a0").await.unwrap();
    assert_eq!(repo.add_request(&agent("one-more", &[])).await.unwrap(), RequestOutcome::Added);
}

#[tokio::test]
async fn spending_lowers_the_allowance_never_below_zero_and_records_the_tx() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let repo = store.agents();
    repo.set_allowance("ops", MOR, U256::from(100u8)).await.unwrap();
    let left = repo.spend("ops", MOR, U256::from(30u8), B256::repeat_byte(1), 1).await.unwrap();
    assert_eq!(left, U256::from(70u8));
    let left = repo.spend("ops", MOR, U256::from(80u8), B256::repeat_byte(2), 2).await.unwrap();
    assert_eq!(left, U256::ZERO);
    assert_eq!(repo.allowance("ops", MOR).await.unwrap(), U256::ZERO);
    assert_eq!(repo.allowance("ops", "eth").await.unwrap(), U256::ZERO);
    let page = repo.txs("ops", None, 10).await.unwrap();
    assert_eq!(page.tx_hashes, [B256::repeat_byte(2), B256::repeat_byte(1)]);
    assert_eq!(page.next, None);
}

#[tokio::test]
async fn tx_pages_are_newest_first_with_a_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let repo = store.agents();
    for i in 1..=5u8 {
        repo.record_tx("ops", B256::repeat_byte(i), u64::from(i)).await.unwrap();
    }
    repo.record_tx("other", B256::repeat_byte(9), 9).await.unwrap();
    let first = repo.txs("ops", None, 2).await.unwrap();
    assert_eq!(first.tx_hashes, [B256::repeat_byte(5), B256::repeat_byte(4)]);
    let second = repo.txs("ops", first.next, 2).await.unwrap();
    assert_eq!(second.tx_hashes, [B256::repeat_byte(3), B256::repeat_byte(2)]);
    let last = repo.txs("ops", second.next, 2).await.unwrap();
    assert_eq!(last.tx_hashes, [B256::repeat_byte(1)]);
    assert_eq!(last.next, None);
    // Exactly a page left: no cursor after it.
    let exact = repo.txs("ops", None, 5).await.unwrap();
    assert_eq!((exact.tx_hashes.len(), exact.next), (5, None));
    assert!(repo.txs("nobody", None, 5).await.unwrap().tx_hashes.is_empty());
}

#[tokio::test]
async fn allowance_requests_are_confirmed_or_declined_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let repo = store.agents();
    let request = |token: &str, amount: u64| AllowanceRequest {
        username: "ops".to_owned(),
        token: token.to_owned(),
        allowance: U256::from(amount),
        requested_at: 5,
    };
    assert!(repo.request_allowance(&request(MOR, 10)).await.unwrap());
    // The last request for a token wins.
    assert!(repo.request_allowance(&request(MOR, 12)).await.unwrap());
    assert!(repo.request_allowance(&request("eth", 3)).await.unwrap());
    let pending = repo.allowance_requests().await.unwrap();
    assert_eq!(pending.len(), 2);
    assert!(pending.contains(&request(MOR, 12)));

    assert_eq!(repo.answer_allowance_request("ops", MOR, true).await.unwrap(), Some(U256::from(12u8)));
    assert_eq!(repo.allowance("ops", MOR).await.unwrap(), U256::from(12u8));
    assert_eq!(repo.answer_allowance_request("ops", MOR, true).await.unwrap(), None);
    assert_eq!(repo.answer_allowance_request("ops", "eth", false).await.unwrap(), Some(U256::from(3u8)));
    assert_eq!(repo.allowance("ops", "eth").await.unwrap(), U256::ZERO);
    assert!(repo.allowance_requests().await.unwrap().is_empty());

    for i in 0..MAX_ALLOWANCE_REQUESTS_PER_USER {
        let token = format!("0x{i:040x}");
        assert!(repo.request_allowance(&request(&token, 1)).await.unwrap());
    }
    assert!(!repo.request_allowance(&request("eth", 1)).await.unwrap());
    // Replacing an existing request is still allowed.
    assert!(repo.request_allowance(&request(&format!("0x{:040x}", 0), 2)).await.unwrap());
}

#[tokio::test]
async fn agents_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    store.agents().add_request(&agent("bot", &[(MOR, 7)])).await.unwrap();
    store.agents().record_tx("bot", B256::repeat_byte(3), 1).await.unwrap();
    store.close().await;
    let store = Store::open(dir.path()).await.unwrap();
    assert_eq!(store.agents().get("bot").await.unwrap(), Some(agent("bot", &[(MOR, 7)])));
    assert_eq!(store.agents().txs("bot", None, 1).await.unwrap().tx_hashes, [B256::repeat_byte(3)]);
}
