//! Tests of the store against real SQLite files in temporary directories: schema and migrations,
//! every repository, exact `uint256` round trips, pagination, the atomic batch, the reorg rollback,
//! WAL concurrency and persistence across reopening.

use std::collections::BTreeSet;
use std::error::Error as _;
use std::time::Duration;

use alloy::primitives::{Address, Bytes, B256, U256};
use serde_json::json;
use tempfile::TempDir;

use super::*;

// ---------------------------------------------------------------------------------------------
// Fixtures

fn tmp() -> TempDir {
    tempfile::tempdir().expect("temp dir")
}

async fn open(dir: &TempDir) -> Store {
    Store::open(dir.path()).await.expect("open store")
}

fn addr(n: u64) -> Address {
    let mut b = [0u8; 20];
    b[12..].copy_from_slice(&n.to_be_bytes());
    b[0] = 0xA0; // upper-case hex digits if encoded carelessly
    Address::from(b)
}

fn id(tag: u8, n: u64) -> B256 {
    let mut b = [0u8; 32];
    b[0] = tag;
    b[24..].copy_from_slice(&n.to_be_bytes());
    B256::from(b)
}

fn hash(n: u64) -> B256 {
    id(0xBB, n)
}

fn block(n: u64) -> BlockRef {
    BlockRef::new(n, hash(n))
}

fn provider(n: u64) -> Provider {
    Provider {
        address: addr(n),
        endpoint: format!("provider-{n}.example:3333"),
        stake: U256::from(n) * U256::from(10u64).pow(U256::from(18u64)),
        created_at: 1_700_000_000 + n,
        limit_period_end: 1_700_000_000 + n + 365 * 86_400,
        limit_period_earned: U256::from(n * 7),
        is_deleted: false,
    }
}

fn model(n: u64) -> Model {
    Model {
        id: id(0x11, n),
        ipfs_cid: id(0x1C, n),
        fee: U256::from(n),
        stake: U256::from(100u64 + n),
        owner: addr(1000 + n % 2),
        name: format!("model {n} – ünïcode"),
        tags: vec!["llm".to_owned(), format!("tag-{n}"), "with \"quotes\"".to_owned()],
        created_at: 1_700_000_100 + n,
        is_deleted: false,
    }
}

fn bid(n: u64, provider: u64, model: u64) -> Bid {
    Bid {
        id: id(0xB1, n),
        provider: addr(provider),
        model_id: id(0x11, model),
        price_per_second: U256::from(10u64).pow(U256::from(14u64)) + U256::from(n),
        nonce: U256::from(n),
        created_at: 1_700_000_200 + n,
        deleted_at: 0,
    }
}

fn session(n: u64, user: u64, b: &Bid) -> Session {
    Session {
        id: id(0x5E, n),
        user: addr(5000 + user),
        bid_id: b.id,
        provider: b.provider,
        model_id: b.model_id,
        stake: U256::from(50u64) * U256::from(10u64).pow(U256::from(18u64)),
        closeout_receipt: Bytes::new(),
        closeout_type: U256::ZERO,
        provider_withdrawn_amount: U256::ZERO,
        opened_at: 1_700_001_000 + n,
        ends_at: 1_700_001_000 + n + 600,
        closed_at: 0,
        is_active: true,
        is_direct_payment: n % 2 == 1,
    }
}

fn pm_stats(model: u64, provider: u64) -> ProviderModelStats {
    ProviderModelStats {
        model_id: id(0x11, model),
        provider: addr(provider),
        tps_scaled1000: Sd { mean: 12_345, sq_sum: -7 },
        ttft_ms: Sd { mean: i64::MIN, sq_sum: i64::MAX },
        total_duration: u32::MAX,
        success_count: 3,
        total_count: 4,
    }
}

fn model_stats(model: u64) -> ModelStats {
    ModelStats {
        model_id: id(0x11, model),
        tps_scaled1000: Sd { mean: -1, sq_sum: 2 },
        ttft_ms: Sd { mean: i64::MAX, sq_sum: i64::MIN },
        total_duration: Sd { mean: 600, sq_sum: 0 },
        count: u32::MAX,
    }
}

fn event(block_number: u64, log_index: u64, name: &str) -> EventRecord {
    EventRecord {
        block_number,
        block_hash: hash(block_number),
        log_index,
        tx_hash: id(0x7A, block_number * 1000 + log_index),
        tx_index: log_index / 2,
        address: addr(0xD1A),
        name: name.to_owned(),
        topics: vec![id(0xE0, 1), id(0xE0, block_number), id(0xE0, log_index)],
        data: Bytes::from(vec![0u8, 1, 2, 0xFF, block_number as u8]),
        decoded: Some(json!({ "block": block_number, "log": log_index, "amount": U256::MAX.to_string() })),
    }
}

fn batch(expected: Option<BlockRef>, to: u64) -> IndexBatch {
    IndexBatch {
        expected_cursor: expected,
        to: block(to),
        blocks: Vec::new(),
        events: Vec::new(),
        touched: Vec::new(),
        changes: EntityChanges::default(),
    }
}

async fn count(store: &Store, table: &str) -> i64 {
    let sql = format!("SELECT COUNT(*) FROM {table}");
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_one(&store.pool).await.expect("count")
}

// ---------------------------------------------------------------------------------------------
// Opening, schema and migrations

#[tokio::test]
async fn open_creates_directory_file_wal_and_schema() {
    let dir = tmp();
    let nested = dir.path().join("a").join("b");
    let store = Store::open(&nested).await.unwrap();
    assert_eq!(store.path(), nested.join(DB_FILE_NAME));
    assert!(nested.join("proxy-router.sqlite").is_file());

    let mode: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&store.pool).await.unwrap();
    assert_eq!(mode.to_lowercase(), "wal");
    let fk: i64 = sqlx::query_scalar("PRAGMA foreign_keys").fetch_one(&store.pool).await.unwrap();
    assert_eq!(fk, 1);
    let busy: i64 = sqlx::query_scalar("PRAGMA busy_timeout").fetch_one(&store.pool).await.unwrap();
    assert_eq!(busy, BUSY_TIMEOUT.as_millis() as i64);

    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_%' ESCAPE '\\' \
         AND name NOT LIKE 'sqlite%' ORDER BY name",
    )
    .fetch_all(&store.pool)
    .await
    .unwrap();
    assert_eq!(
        tables,
        [
            "agent_allowance_requests",
            "agent_allowances",
            "agent_txs",
            "agent_users",
            "api_keys",
            "bids",
            "chat_messages",
            "chats",
            "consumer_sessions",
            "gateway_sessions",
            "index_blocks",
            "index_cursor",
            "index_events",
            "index_source",
            "index_stale",
            "index_touched",
            "model_stats",
            "models",
            "provider_model_stats",
            "provider_sessions",
            "provider_users",
            "providers",
            "sessions"
        ]
    );
    assert_eq!(count(&store, "_sqlx_migrations").await, MIGRATOR.iter().count() as i64);
    assert_eq!(store.indexer().cursor().await.unwrap(), None);
    store.close().await;
}

#[tokio::test]
async fn open_in_creates_parent_directories() {
    let dir = tmp();
    let file = dir.path().join("x").join("y").join("custom.db");
    let store = Store::open_in(&file).await.unwrap();
    store.providers().upsert(&provider(1)).await.unwrap();
    store.close().await;
    assert!(file.is_file());
}

#[tokio::test]
async fn reopening_is_idempotent_and_keeps_data() {
    let dir = tmp();
    let store = open(&dir).await;
    let mut b = batch(None, 10);
    b.changes.providers.push(provider(1));
    b.changes.sessions.push(session(1, 1, &bid(1, 1, 1)));
    b.events.push(event(9, 0, "ProviderRegistered"));
    b.touched.push(Touched { block_number: 9, entity: EntityRef::Provider(addr(1)) });
    store.apply_batch(&b).await.unwrap();
    store.close().await;

    for _ in 0..2 {
        let store = open(&dir).await;
        assert_eq!(count(&store, "_sqlx_migrations").await, MIGRATOR.iter().count() as i64);
        assert_eq!(store.indexer().cursor().await.unwrap(), Some(block(10)));
        assert_eq!(store.providers().get(addr(1)).await.unwrap(), Some(provider(1)));
        assert_eq!(store.sessions().get(id(0x5E, 1)).await.unwrap(), Some(session(1, 1, &bid(1, 1, 1))));
        assert_eq!(store.indexer().event(9, 0).await.unwrap(), Some(event(9, 0, "ProviderRegistered")));
        assert_eq!(store.indexer().block_hash(9).await.unwrap(), Some(hash(9)));
        assert_eq!(
            store.indexer().touched_above(0).await.unwrap(),
            BTreeSet::from([EntityRef::Provider(addr(1))])
        );
        store.close().await;
    }
}

#[tokio::test]
async fn a_database_from_a_newer_version_is_refused() {
    let dir = tmp();
    let store = open(&dir).await;
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (99990101000000, 'from the future', TRUE, x'00', 0)",
    )
    .execute(&store.pool)
    .await
    .unwrap();
    store.close().await;

    let err = Store::open(dir.path()).await.unwrap_err();
    assert!(matches!(err, StoreError::Migrate { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("cannot migrate the database"), "{text}");
    assert!(text.contains(DB_FILE_NAME), "{text}");
    assert!(err.source().is_some());
}

#[tokio::test]
async fn an_uncreatable_directory_is_reported_with_its_path() {
    let dir = tmp();
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let err = Store::open(&file.join("sub")).await.unwrap_err();
    match &err {
        StoreError::CreateDir { path, .. } => assert_eq!(path, &file.join("sub")),
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains("not-a-dir"));
}

#[tokio::test]
async fn from_config_uses_the_storage_path() {
    let dir = tmp();
    let config = crate::config::StoreConfig { storage_path: dir.path().join("data") };
    let store = Store::from_config(&config).await.unwrap();
    assert_eq!(store.path(), dir.path().join("data").join(DB_FILE_NAME));
    store.close().await;
}

// ---------------------------------------------------------------------------------------------
// Repositories

#[tokio::test]
async fn providers_get_list_upsert_delete() {
    let dir = tmp();
    let store = open(&dir).await;
    let repo = store.providers();
    assert_eq!(repo.get(addr(1)).await.unwrap(), None);

    for n in 1..=3 {
        repo.upsert(&provider(n)).await.unwrap();
    }
    assert_eq!(repo.get(addr(2)).await.unwrap(), Some(provider(2)));

    // An update replaces every field.
    let mut p = provider(2);
    p.endpoint = "new.example:4444".into();
    p.stake = U256::from(1u8);
    p.is_deleted = true;
    p.limit_period_earned = U256::from(99u8);
    repo.upsert(&p).await.unwrap();
    assert_eq!(repo.get(addr(2)).await.unwrap(), Some(p.clone()));
    assert!(!p.is_active());

    let all = repo.list(ProviderFilter::default(), Page::new(0, 10)).await.unwrap();
    assert_eq!(all.total, 3);
    assert_eq!(all.items.iter().map(|p| p.address).collect::<Vec<_>>(), [addr(1), addr(2), addr(3)]);
    let active = repo.list(ProviderFilter { active_only: true }, Page::new(0, 10)).await.unwrap();
    assert_eq!(active.total, 2);
    assert_eq!(active.items, [provider(1), provider(3)]);

    assert!(repo.delete(addr(1)).await.unwrap());
    assert!(!repo.delete(addr(1)).await.unwrap());
    assert_eq!(repo.get(addr(1)).await.unwrap(), None);
}

#[tokio::test]
async fn models_get_list_upsert_delete() {
    let dir = tmp();
    let store = open(&dir).await;
    let repo = store.models();
    for n in 1..=4 {
        repo.upsert(&model(n)).await.unwrap();
    }
    assert_eq!(repo.get(id(0x11, 3)).await.unwrap(), Some(model(3)));
    assert_eq!(repo.get(id(0x11, 9)).await.unwrap(), None);

    let mut m = model(1);
    m.tags = Vec::new();
    m.is_deleted = true;
    repo.upsert(&m).await.unwrap();
    assert_eq!(repo.get(m.id).await.unwrap(), Some(m));

    let active = repo.list(ModelFilter { active_only: true, owner: None }, Page::new(0, 10)).await.unwrap();
    assert_eq!(active.items, [model(2), model(3), model(4)]);
    let by_owner = repo
        .list(ModelFilter { active_only: false, owner: Some(addr(1001)) }, Page::new(0, 10))
        .await
        .unwrap();
    assert_eq!(by_owner.total, 2);
    assert!(by_owner.items.iter().all(|m| m.owner == addr(1001)));
    let active_by_owner = repo
        .list(ModelFilter { active_only: true, owner: Some(addr(1001)) }, Page::new(0, 10))
        .await
        .unwrap();
    assert_eq!(active_by_owner.items, [model(3)]);

    assert!(repo.delete(id(0x11, 2)).await.unwrap());
    assert_eq!(repo.list(ModelFilter::default(), Page::new(0, 0)).await.unwrap().total, 3);
}

#[tokio::test]
async fn bids_filter_by_model_provider_and_activity() {
    let dir = tmp();
    let store = open(&dir).await;
    let repo = store.bids();
    // Providers 1 and 2 on models 1 and 2; bid 1 (provider 1, model 1) is deleted.
    let bids = [bid(1, 1, 1), bid(2, 1, 2), bid(3, 2, 1), bid(4, 2, 2), bid(5, 1, 1)];
    for b in &bids {
        repo.upsert(b).await.unwrap();
    }
    let mut deleted = bids[0].clone();
    deleted.deleted_at = 1_800_000_000;
    repo.upsert(&deleted).await.unwrap();
    assert!(!deleted.is_active());
    assert_eq!(repo.get(deleted.id).await.unwrap(), Some(deleted.clone()));

    let list = |filter: BidFilter| async move {
        repo.list(filter, Page::new(0, 100))
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|b| b.id)
            .collect::<Vec<_>>()
    };
    let ids = |ns: &[u64]| ns.iter().map(|n| id(0xB1, *n)).collect::<Vec<_>>();

    let model1 = Some(id(0x11, 1));
    assert_eq!(list(BidFilter { model_id: model1, ..Default::default() }).await, ids(&[1, 3, 5]));
    assert_eq!(
        list(BidFilter { model_id: model1, active_only: true, ..Default::default() }).await,
        ids(&[3, 5])
    );
    assert_eq!(
        list(BidFilter { provider: Some(addr(1)), active_only: true, ..Default::default() }).await,
        ids(&[2, 5])
    );
    assert_eq!(list(BidFilter { provider: Some(addr(1)), ..Default::default() }).await, ids(&[1, 2, 5]));
    assert_eq!(
        list(BidFilter { provider: Some(addr(2)), model_id: model1, active_only: true }).await,
        ids(&[3])
    );
    assert_eq!(list(BidFilter { active_only: true, ..Default::default() }).await, ids(&[2, 3, 4, 5]));
    // An address that differs in one byte matches nothing.
    assert_eq!(list(BidFilter { provider: Some(addr(3)), ..Default::default() }).await, ids(&[]));

    assert!(repo.delete(id(0xB1, 4)).await.unwrap());
    assert_eq!(repo.get(id(0xB1, 4)).await.unwrap(), None);
}

#[tokio::test]
async fn sessions_filter_by_user_provider_model_bid_and_activity() {
    let dir = tmp();
    let store = open(&dir).await;
    let repo = store.sessions();
    let (b1, b2) = (bid(1, 1, 1), bid(2, 2, 2));
    let mut sessions = vec![session(1, 1, &b1), session(2, 1, &b2), session(3, 2, &b1), session(4, 2, &b2)];
    // Session 3 is closed with a dispute and a 224-byte receipt.
    sessions[2].is_active = false;
    sessions[2].closed_at = sessions[2].opened_at + 30;
    sessions[2].closeout_type = U256::from(1u8);
    sessions[2].closeout_receipt = Bytes::from((0..224u32).map(|i| i as u8).collect::<Vec<_>>());
    sessions[2].provider_withdrawn_amount = U256::from(123_456u64);
    for s in &sessions {
        repo.upsert(s).await.unwrap();
    }
    assert_eq!(repo.get(sessions[2].id).await.unwrap(), Some(sessions[2].clone()));
    assert_eq!(repo.get(id(0x5E, 99)).await.unwrap(), None);

    let list = |filter: SessionFilter, page: Page| async move {
        repo.list(filter, page).await.unwrap().items.into_iter().map(|s| s.id).collect::<Vec<_>>()
    };
    let ids = |ns: &[u64]| ns.iter().map(|n| id(0x5E, *n)).collect::<Vec<_>>();
    let all = Page::new(0, 100);

    let user1 = SessionFilter { user: Some(addr(5001)), ..Default::default() };
    assert_eq!(list(user1, all).await, ids(&[1, 2]));
    assert_eq!(list(user1, all.newest_first()).await, ids(&[2, 1]));
    let provider1 = SessionFilter { provider: Some(addr(1)), ..Default::default() };
    assert_eq!(list(provider1, all).await, ids(&[1, 3]));
    assert_eq!(list(SessionFilter { active_only: true, ..provider1 }, all).await, ids(&[1]));
    let model2 = SessionFilter { model_id: Some(id(0x11, 2)), ..Default::default() };
    assert_eq!(list(model2, all).await, ids(&[2, 4]));
    let bid1 = SessionFilter { bid_id: Some(b1.id), ..Default::default() };
    assert_eq!(list(bid1, all).await, ids(&[1, 3]));
    assert_eq!(list(SessionFilter { active_only: true, ..Default::default() }, all).await, ids(&[1, 2, 4]));

    // Expiry: sessions end at opened_at + 600 = 1_700_001_600 + n.
    let ending = repo.active_ending_by(1_700_001_602, 10).await.unwrap();
    assert_eq!(ending.iter().map(|s| s.id).collect::<Vec<_>>(), ids(&[1, 2]));
    assert!(repo.active_ending_by(0, 10).await.unwrap().is_empty());
    assert!(matches!(
        repo.active_ending_by(0, Page::MAX_LIMIT + 1).await,
        Err(StoreError::PageTooLarge { .. })
    ));

    assert!(repo.delete(id(0x5E, 1)).await.unwrap());
    assert_eq!(list(user1, all).await, ids(&[2]));
}

#[tokio::test]
async fn stats_round_trip_and_list() {
    let dir = tmp();
    let store = open(&dir).await;
    let repo = store.stats();
    assert_eq!(repo.provider_model(id(0x11, 1), addr(1)).await.unwrap(), None);
    assert_eq!(repo.model(id(0x11, 1)).await.unwrap(), None);

    for (m, p) in [(1, 2), (1, 1), (2, 1)] {
        repo.upsert_provider_model(&pm_stats(m, p)).await.unwrap();
    }
    repo.upsert_model(&model_stats(1)).await.unwrap();
    assert_eq!(repo.provider_model(id(0x11, 1), addr(2)).await.unwrap(), Some(pm_stats(1, 2)));
    assert_eq!(repo.model(id(0x11, 1)).await.unwrap(), Some(model_stats(1)));

    let mut updated = pm_stats(1, 1);
    updated.total_count = 0;
    updated.tps_scaled1000.mean = i64::MIN;
    repo.upsert_provider_model(&updated).await.unwrap();
    let mut ms = model_stats(1);
    ms.count = 0;
    repo.upsert_model(&ms).await.unwrap();
    assert_eq!(repo.model(id(0x11, 1)).await.unwrap(), Some(ms));

    let by_model = repo.by_model(id(0x11, 1), Page::new(0, 10)).await.unwrap();
    assert_eq!(by_model.total, 2);
    assert_eq!(by_model.items, [updated.clone(), pm_stats(1, 2)]);
    let by_provider = repo.by_provider(addr(1), Page::new(0, 10)).await.unwrap();
    assert_eq!(by_provider.items, [updated, pm_stats(2, 1)]);

    assert!(repo.delete_provider_model(id(0x11, 1), addr(2)).await.unwrap());
    assert!(!repo.delete_provider_model(id(0x11, 1), addr(2)).await.unwrap());
    assert!(repo.delete_model(id(0x11, 1)).await.unwrap());
    assert_eq!(repo.model(id(0x11, 1)).await.unwrap(), None);
}

#[tokio::test]
async fn uint256_extremes_round_trip_exactly() {
    let dir = tmp();
    let store = open(&dir).await;
    let values = [
        U256::ZERO,
        U256::from(u64::MAX),
        U256::from(u64::MAX) + U256::from(1u8),
        U256::from(u128::MAX),
        U256::MAX - U256::from(1u8),
        U256::MAX,
    ];
    for (i, v) in values.iter().enumerate() {
        let n = i as u64;
        let p = Provider { stake: *v, limit_period_earned: *v, ..provider(n) };
        let m = Model { fee: *v, stake: *v, ..model(n) };
        let b = Bid { price_per_second: *v, nonce: *v, ..bid(n, 1, 1) };
        let s = Session { stake: *v, closeout_type: *v, provider_withdrawn_amount: *v, ..session(n, 1, &b) };
        store.providers().upsert(&p).await.unwrap();
        store.models().upsert(&m).await.unwrap();
        store.bids().upsert(&b).await.unwrap();
        store.sessions().upsert(&s).await.unwrap();
        assert_eq!(store.providers().get(p.address).await.unwrap(), Some(p));
        assert_eq!(store.models().get(m.id).await.unwrap(), Some(m));
        assert_eq!(store.bids().get(b.id).await.unwrap(), Some(b));
        assert_eq!(store.sessions().get(s.id).await.unwrap(), Some(s));
    }
    // Stored as exact decimal text, not as a lossy number.
    let text: String = sqlx::query_scalar("SELECT stake FROM providers WHERE address = $1")
        .bind(codec::addr(&addr(5)))
        .fetch_one(&store.pool)
        .await
        .unwrap();
    assert_eq!(text, U256::MAX.to_string());
    let ty: String = sqlx::query_scalar("SELECT typeof(stake) FROM providers LIMIT 1")
        .fetch_one(&store.pool)
        .await
        .unwrap();
    assert_eq!(ty, "text");
}

#[tokio::test]
async fn integers_beyond_i64_are_refused_without_writing() {
    let dir = tmp();
    let store = open(&dir).await;
    let p = Provider { created_at: u64::MAX, ..provider(1) };
    let err = store.providers().upsert(&p).await.unwrap_err();
    assert!(
        matches!(err, StoreError::OutOfRange { field: "provider.created_at", value: u64::MAX }),
        "{err:?}"
    );
    assert_eq!(store.providers().get(addr(1)).await.unwrap(), None);
}

#[tokio::test]
async fn pagination_edge_cases() {
    let dir = tmp();
    let store = open(&dir).await;
    for n in 1..=25 {
        store.providers().upsert(&provider(n)).await.unwrap();
    }
    let repo = store.providers();
    let f = ProviderFilter::default();

    // limit 0: only the total, as the contracts' getters.
    let p = repo.list(f, Page::new(0, 0)).await.unwrap();
    assert_eq!((p.items.len(), p.total), (0, 25));
    // Offsets at and past the end.
    for offset in [25, 26, 1_000_000, u64::MAX] {
        let p = repo.list(f, Page::new(offset, 10)).await.unwrap();
        assert!(p.items.is_empty(), "offset {offset}");
        assert_eq!(p.total, 25);
    }
    // Pages cover everything exactly once, in order, with a short last page.
    let mut seen = Vec::new();
    for offset in (0..25).step_by(10) {
        let p = repo.list(f, Page::new(offset, 10)).await.unwrap();
        assert_eq!(p.items.len(), if offset == 20 { 5 } else { 10 });
        seen.extend(p.items.into_iter().map(|p| p.address));
    }
    assert_eq!(seen, (1..=25).map(addr).collect::<Vec<_>>());
    // Newest first is the exact reverse.
    let newest = repo.list(f, Page::new(0, 25).newest_first()).await.unwrap();
    let mut rev: Vec<_> = (1..=25).map(addr).collect();
    rev.reverse();
    assert_eq!(newest.items.into_iter().map(|p| p.address).collect::<Vec<_>>(), rev);
    // Ties on created_at are broken by the id, so pages never overlap.
    for n in 100..110 {
        store.providers().upsert(&Provider { created_at: 5, ..provider(n) }).await.unwrap();
    }
    let a = repo.list(f, Page::new(0, 5)).await.unwrap().items;
    let b = repo.list(f, Page::new(5, 5)).await.unwrap().items;
    assert_eq!(
        a.iter().chain(&b).map(|p| p.address).collect::<Vec<_>>(),
        (100..110).map(addr).collect::<Vec<_>>()
    );

    // The maximum page is allowed, one more is refused.
    assert!(repo.list(f, Page::new(0, Page::MAX_LIMIT)).await.is_ok());
    let err = repo.list(f, Page::new(0, Page::MAX_LIMIT + 1)).await.unwrap_err();
    assert!(
        matches!(err, StoreError::PageTooLarge { limit, max } if limit == Page::MAX_LIMIT + 1 && max == Page::MAX_LIMIT)
    );
}

#[tokio::test]
async fn queries_by_address_and_id_use_indexes() {
    let dir = tmp();
    let store = open(&dir).await;
    let plan = |plan: Vec<String>, what: &str| {
        assert!(
            plan.iter().any(|l| l.contains("USING INDEX")
                || l.contains("USING COVERING INDEX")
                || l.contains("USING PRIMARY KEY")),
            "{what}: {plan:?}"
        );
        assert!(
            !plan.iter().any(|l| l.starts_with("SCAN ") && !l.contains("INDEX")),
            "{what} scans a table: {plan:?}"
        );
    };
    let order = Order::OldestFirst;
    let m = Some(id(0x11, 1));
    let a = Some(addr(1));
    for (filter, what) in [
        (BidFilter { model_id: m, active_only: true, provider: None }, "active bids by model"),
        (BidFilter { provider: a, active_only: true, model_id: None }, "active bids by provider"),
        (BidFilter { model_id: m, ..Default::default() }, "bids by model"),
    ] {
        let p = sql::explain(&store.pool, &bids::LIST, &bids::filter_sql(&filter), order).await;
        plan(p, what);
    }
    for (filter, what) in [
        (SessionFilter { user: a, ..Default::default() }, "sessions by user"),
        (SessionFilter { provider: a, ..Default::default() }, "sessions by provider"),
        (SessionFilter { model_id: m, ..Default::default() }, "sessions by model"),
        (SessionFilter { bid_id: m, ..Default::default() }, "sessions by bid"),
        (SessionFilter { active_only: true, ..Default::default() }, "active sessions"),
    ] {
        let p = sql::explain(&store.pool, &sessions::LIST, &sessions::filter_sql(&filter), order).await;
        plan(p, what);
    }
    let p = sql::explain(
        &store.pool,
        &providers::LIST,
        &providers::filter_sql(&ProviderFilter { active_only: true }),
        order,
    )
    .await;
    plan(p, "active providers");
    let p = sql::explain(
        &store.pool,
        &models::LIST,
        &models::filter_sql(&ModelFilter { active_only: true, owner: None }),
        order,
    )
    .await;
    plan(p, "active models");
}

// ---------------------------------------------------------------------------------------------
// The atomic batch

fn full_batch() -> IndexBatch {
    let b1 = bid(1, 1, 1);
    let mut b = batch(None, 20);
    b.blocks = vec![block(11), block(20)];
    b.events = vec![
        event(12, 0, "ProviderRegistered"),
        event(12, 1, "ModelRegisteredUpdated"),
        event(15, 3, "MarketplaceBidPosted"),
        event(18, 0, "SessionOpened"),
    ];
    b.touched = vec![
        Touched { block_number: 12, entity: EntityRef::Provider(addr(1)) },
        Touched { block_number: 12, entity: EntityRef::Model(id(0x11, 1)) },
        Touched { block_number: 15, entity: EntityRef::Bid(b1.id) },
        Touched { block_number: 18, entity: EntityRef::Session(id(0x5E, 1)) },
        // Duplicates are harmless.
        Touched { block_number: 18, entity: EntityRef::Session(id(0x5E, 1)) },
    ];
    b.changes = EntityChanges {
        providers: vec![provider(1)],
        models: vec![model(1)],
        bids: vec![b1.clone()],
        sessions: vec![session(1, 1, &b1)],
        provider_model_stats: vec![pm_stats(1, 1)],
        model_stats: vec![model_stats(1)],
        removed: Vec::new(),
    };
    b
}

#[tokio::test]
async fn apply_batch_writes_everything_in_one_go() {
    let dir = tmp();
    let store = open(&dir).await;
    let b = full_batch();
    store.apply_batch(&b).await.unwrap();

    assert_eq!(store.indexer().cursor().await.unwrap(), Some(block(20)));
    assert_eq!(store.providers().get(addr(1)).await.unwrap(), Some(provider(1)));
    assert_eq!(store.models().get(id(0x11, 1)).await.unwrap(), Some(model(1)));
    assert_eq!(store.bids().get(id(0xB1, 1)).await.unwrap(), Some(bid(1, 1, 1)));
    assert_eq!(store.stats().provider_model(id(0x11, 1), addr(1)).await.unwrap(), Some(pm_stats(1, 1)));
    assert_eq!(store.stats().model(id(0x11, 1)).await.unwrap(), Some(model_stats(1)));

    let events = store.indexer().events(&EventFilter::default(), Page::new(0, 100)).await.unwrap();
    assert_eq!(events.items, b.events);
    let named = store
        .indexer()
        .events(&EventFilter { name: Some("SessionOpened".into()), ..Default::default() }, Page::new(0, 100))
        .await
        .unwrap();
    assert_eq!(named.items, [event(18, 0, "SessionOpened")]);
    let ranged = store
        .indexer()
        .events(
            &EventFilter { from_block: Some(13), to_block: Some(18), name: None },
            Page::new(0, 100).newest_first(),
        )
        .await
        .unwrap();
    assert_eq!(ranged.items, [event(18, 0, "SessionOpened"), event(15, 3, "MarketplaceBidPosted")]);

    // Listed blocks, every event's block and the cursor's block are recorded.
    let blocks = store.indexer().blocks_at_or_below(100, 100).await.unwrap();
    assert_eq!(blocks, [block(20), block(18), block(15), block(12), block(11)]);
    assert_eq!(store.indexer().blocks_at_or_below(14, 1).await.unwrap(), [block(12)]);
    assert_eq!(store.indexer().block_hash(13).await.unwrap(), None);

    assert_eq!(count(&store, "index_touched").await, 4);
    assert_eq!(
        store.indexer().touched_above(12).await.unwrap(),
        BTreeSet::from([EntityRef::Bid(id(0xB1, 1)), EntityRef::Session(id(0x5E, 1))])
    );

    // The next batch builds on this cursor; removals run before upserts.
    let mut next = batch(Some(block(20)), 25);
    next.changes.removed = vec![
        EntityRef::ModelStats(id(0x11, 1)),
        EntityRef::ProviderModelStats { model_id: id(0x11, 1), provider: addr(1) },
        EntityRef::Provider(addr(1)),
    ];
    let mut p = provider(1);
    p.is_deleted = true;
    next.changes.providers = vec![p.clone()];
    store.apply_batch(&next).await.unwrap();
    assert_eq!(store.providers().get(addr(1)).await.unwrap(), Some(p));
    assert_eq!(store.stats().model(id(0x11, 1)).await.unwrap(), None);
    assert_eq!(store.stats().provider_model(id(0x11, 1), addr(1)).await.unwrap(), None);
    assert_eq!(store.indexer().cursor().await.unwrap(), Some(block(25)));
}

/// Everything the index holds, to compare before and after a refused write.
async fn snapshot(store: &Store) -> Vec<String> {
    let mut out = Vec::new();
    for table in [
        "providers",
        "models",
        "bids",
        "sessions",
        "provider_model_stats",
        "model_stats",
        "index_cursor",
        "index_blocks",
        "index_events",
        "index_touched",
        "index_stale",
    ] {
        let sql = format!("SELECT * FROM {table}");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(&store.pool).await.unwrap();
        for row in rows {
            use sqlx::{Column, Row, ValueRef};
            let mut cols = Vec::new();
            for (i, col) in row.columns().iter().enumerate() {
                let raw = row.try_get_raw(i).unwrap();
                let v = if raw.is_null() {
                    "NULL".to_owned()
                } else {
                    row.try_get::<String, _>(i)
                        .or_else(|_| row.try_get::<i64, _>(i).map(|v| v.to_string()))
                        .or_else(|_| row.try_get::<Vec<u8>, _>(i).map(alloy::hex::encode))
                        .unwrap()
                };
                cols.push(format!("{}={v}", col.name()));
            }
            out.push(format!("{table}: {}", cols.join(", ")));
        }
    }
    out
}

#[tokio::test]
async fn a_batch_failing_half_way_leaves_nothing_behind() {
    let dir = tmp();
    let store = open(&dir).await;
    // A first range is applied…
    store.apply_batch(&full_batch()).await.unwrap();
    let before = snapshot(&store).await;
    assert!(before.len() > 10);

    // …then a range whose entity writes succeed but whose second event repeats the first one.
    let mut b = batch(Some(block(20)), 30);
    let mut p = provider(1);
    p.endpoint = "changed.example:1".into();
    b.changes.providers = vec![p, provider(2)];
    b.changes.removed = vec![EntityRef::Model(id(0x11, 1))];
    b.changes.bids = vec![bid(9, 2, 1)];
    b.events = vec![event(25, 7, "ProviderRegistered"), event(25, 7, "ProviderRegistered")];
    b.touched = vec![Touched { block_number: 25, entity: EntityRef::Provider(addr(2)) }];
    let err = store.apply_batch(&b).await.unwrap_err();
    assert!(matches!(err, StoreError::DuplicateEvent { block_number: 25, log_index: 7 }), "{err:?}");
    // SQL internals stay out of the message.
    assert_eq!(err.to_string(), "event at block 25, log 7 is already indexed");

    assert_eq!(snapshot(&store).await, before);
    assert_eq!(store.providers().get(addr(2)).await.unwrap(), None);
    assert_eq!(store.providers().get(addr(1)).await.unwrap().unwrap().endpoint, provider(1).endpoint);
    assert_eq!(store.indexer().cursor().await.unwrap(), Some(block(20)));

    // The same range without the duplicate applies.
    b.events.pop();
    store.apply_batch(&b).await.unwrap();
    assert_eq!(store.providers().get(addr(2)).await.unwrap(), Some(provider(2)));
    assert_eq!(store.models().get(id(0x11, 1)).await.unwrap(), None);
    assert_eq!(store.indexer().cursor().await.unwrap(), Some(block(30)));
}

#[tokio::test]
async fn the_event_log_refuses_an_event_twice() {
    let dir = tmp();
    let store = open(&dir).await;
    let mut b = batch(None, 5);
    b.events = vec![event(5, 0, "SessionClosed")];
    store.apply_batch(&b).await.unwrap();

    // Replaying the same batch is refused by the cursor check…
    let err = store.apply_batch(&b).await.unwrap_err();
    assert!(
        matches!(err, StoreError::CursorMismatch { expected: None, actual: Some(c) } if c == block(5)),
        "{err:?}"
    );
    // …and, below it, by the UNIQUE (block_number, log_index) key of the schema itself.
    let raw = sqlx::query(
        "INSERT INTO index_events (block_number, log_index, block_hash, tx_hash, tx_index, address, \
         name, topics, data) VALUES (5, 0, 'h', 't', 0, 'a', 'Other', '[]', x'')",
    )
    .execute(&store.pool)
    .await
    .unwrap_err();
    assert!(matches!(&raw, sqlx::Error::Database(db) if db.is_unique_violation()), "{raw:?}");
    // A same-numbered log of another block is fine.
    let mut next = batch(Some(block(5)), 6);
    next.events = vec![event(6, 0, "SessionClosed")];
    store.apply_batch(&next).await.unwrap();
    assert_eq!(count(&store, "index_events").await, 2);
}

#[tokio::test]
async fn inconsistent_batches_are_refused_whole() {
    let dir = tmp();
    let store = open(&dir).await;
    let mut first = batch(None, 10);
    first.changes.providers = vec![provider(1)];
    store.apply_batch(&first).await.unwrap();
    let before = snapshot(&store).await;

    let base = || {
        let mut b = batch(Some(block(10)), 20);
        b.changes.providers = vec![provider(2)];
        b
    };
    let mut cases: Vec<(IndexBatch, &str)> = Vec::new();
    let mut b = base();
    b.events = vec![event(10, 0, "X")];
    cases.push((b, "event at the cursor's block"));
    let mut b = base();
    b.events = vec![event(21, 0, "X")];
    cases.push((b, "event after the new cursor"));
    let mut b = base();
    b.touched = vec![Touched { block_number: 3, entity: EntityRef::Provider(addr(2)) }];
    cases.push((b, "journal row before the range"));
    let mut b = base();
    b.blocks = vec![BlockRef::new(15, hash(1))];
    b.events = vec![event(15, 0, "X")];
    cases.push((b, "two hashes for one block"));
    let mut b = base();
    b.blocks = vec![BlockRef::new(20, hash(1))];
    cases.push((b, "another hash for the new cursor"));
    let mut b = base();
    b.to = block(9);
    cases.push((b, "cursor going backwards"));
    let mut b = base();
    b.to = BlockRef::new(10, hash(99));
    cases.push((b, "same height, other hash"));
    for (b, what) in cases {
        let err = store.apply_batch(&b).await.unwrap_err();
        assert!(matches!(err, StoreError::InvalidBatch { .. }), "{what}: {err:?}");
        assert_eq!(snapshot(&store).await, before, "{what}");
    }

    // A batch built on a stale cursor.
    let mut b = base();
    b.expected_cursor = Some(BlockRef::new(10, hash(77)));
    let err = store.apply_batch(&b).await.unwrap_err();
    assert!(matches!(err, StoreError::CursorMismatch { .. }), "{err:?}");
    assert!(err.to_string().contains("#10"), "{err}");
    assert_eq!(snapshot(&store).await, before);

    // A no-op batch at the same cursor is accepted.
    store.apply_batch(&batch(Some(block(10)), 10)).await.unwrap();
    assert_eq!(snapshot(&store).await, before);
}

// ---------------------------------------------------------------------------------------------
// Reorg rollback

/// Blocks 1..=10, one batch per block: block n touches provider n; block 7 also opens session 7
/// on bid 1; block 8 updates model 1.
async fn indexed_chain(store: &Store) {
    let b1 = bid(1, 1, 1);
    let mut cursor = None;
    for n in 1..=10u64 {
        let mut b = batch(cursor, n);
        b.events = vec![event(n, 0, "ProviderRegistered")];
        b.touched = vec![Touched { block_number: n, entity: EntityRef::Provider(addr(n)) }];
        b.changes.providers = vec![provider(n)];
        if n == 1 {
            b.changes.models = vec![model(1)];
            b.changes.bids = vec![b1.clone()];
            b.touched.push(Touched { block_number: 1, entity: EntityRef::Model(id(0x11, 1)) });
            b.touched.push(Touched { block_number: 1, entity: EntityRef::Bid(b1.id) });
        }
        if n == 7 {
            b.changes.sessions = vec![session(7, 1, &b1)];
            b.touched.push(Touched { block_number: 7, entity: EntityRef::Session(id(0x5E, 7)) });
            b.events.push(event(7, 1, "SessionOpened"));
        }
        if n == 8 {
            let mut m = model(1);
            m.name = "renamed in block 8".into();
            b.changes.models = vec![m];
            b.touched.push(Touched { block_number: 8, entity: EntityRef::Model(id(0x11, 1)) });
        }
        store.apply_batch(&b).await.unwrap();
        cursor = Some(block(n));
    }
}

#[tokio::test]
async fn rollback_undoes_the_orphaned_blocks_atomically() {
    let dir = tmp();
    let store = open(&dir).await;
    indexed_chain(&store).await;

    let expected_touched = BTreeSet::from([
        EntityRef::Provider(addr(6)),
        EntityRef::Provider(addr(7)),
        EntityRef::Provider(addr(8)),
        EntityRef::Provider(addr(9)),
        EntityRef::Provider(addr(10)),
        EntityRef::Session(id(0x5E, 7)),
        EntityRef::Model(id(0x11, 1)),
    ]);
    assert_eq!(store.indexer().touched_above(5).await.unwrap(), expected_touched);

    // The indexer re-read some entities at block 5: providers 6..=10 and session 7 do not exist
    // there, model 1 has its block-1 state. Provider 9 is left for later.
    let rb = Rollback {
        expected_cursor: block(10),
        to: block(5),
        changes: EntityChanges {
            models: vec![model(1)],
            removed: vec![
                EntityRef::Provider(addr(6)),
                EntityRef::Provider(addr(7)),
                EntityRef::Provider(addr(8)),
                EntityRef::Provider(addr(10)),
                EntityRef::Session(id(0x5E, 7)),
            ],
            ..Default::default()
        },
    };
    let report = store.rollback(&rb).await.unwrap();
    assert_eq!(report.touched, expected_touched);
    assert_eq!(report.events_removed, 6);
    assert_eq!(report.blocks_removed, 5);
    assert_eq!(report.stale, BTreeSet::from([EntityRef::Provider(addr(9))]));

    let idx = store.indexer();
    assert_eq!(idx.cursor().await.unwrap(), Some(block(5)));
    assert_eq!(idx.block_hash(6).await.unwrap(), None);
    assert_eq!(idx.block_hash(5).await.unwrap(), Some(hash(5)));
    assert_eq!(idx.touched_above(5).await.unwrap(), BTreeSet::new());
    let events = idx.events(&EventFilter::default(), Page::new(0, 100)).await.unwrap();
    assert_eq!(events.total, 5);
    assert!(events.items.iter().all(|e| e.block_number <= 5));
    assert_eq!(store.models().get(id(0x11, 1)).await.unwrap(), Some(model(1)));
    assert_eq!(store.providers().get(addr(7)).await.unwrap(), None);
    assert_eq!(store.providers().get(addr(5)).await.unwrap(), Some(provider(5)));
    assert_eq!(store.sessions().get(id(0x5E, 7)).await.unwrap(), None);
    // Provider 9 is still stale, across a restart.
    store.close().await;
    let store = open(&dir).await;
    assert_eq!(store.indexer().stale().await.unwrap(), BTreeSet::from([EntityRef::Provider(addr(9))]));

    // Re-indexing the new branch: block 6' removes provider 9 (re-read: it does not exist) and
    // writes provider 6 again; the stale set empties.
    let mut b = batch(Some(block(5)), 6);
    b.to = BlockRef::new(6, id(0xCC, 6));
    b.events = vec![EventRecord { block_hash: id(0xCC, 6), ..event(6, 0, "ProviderRegistered") }];
    b.changes.removed = vec![EntityRef::Provider(addr(9))];
    b.changes.providers = vec![provider(6)];
    store.apply_batch(&b).await.unwrap();
    assert_eq!(store.indexer().stale().await.unwrap(), BTreeSet::new());
    assert_eq!(store.indexer().block_hash(6).await.unwrap(), Some(id(0xCC, 6)));
    assert_eq!(store.indexer().event(6, 0).await.unwrap().unwrap().block_hash, id(0xCC, 6));
}

#[tokio::test]
async fn rollback_without_changes_marks_everything_stale_and_upserts_clear_it() {
    let dir = tmp();
    let store = open(&dir).await;
    indexed_chain(&store).await;
    let report = store
        .rollback(&Rollback { expected_cursor: block(10), to: block(8), changes: EntityChanges::default() })
        .await
        .unwrap();
    let expected = BTreeSet::from([EntityRef::Provider(addr(9)), EntityRef::Provider(addr(10))]);
    assert_eq!(report.touched, expected);
    assert_eq!(report.stale, expected);
    // Single-row writes clear the mark too.
    store.providers().upsert(&provider(9)).await.unwrap();
    store.providers().delete(addr(10)).await.unwrap();
    assert_eq!(store.indexer().stale().await.unwrap(), BTreeSet::new());
}

#[tokio::test]
async fn invalid_rollbacks_are_refused_whole() {
    let dir = tmp();
    let store = open(&dir).await;
    indexed_chain(&store).await;
    let before = snapshot(&store).await;

    let cases = [
        (Rollback { expected_cursor: block(9), to: block(5), changes: Default::default() }, "stale cursor"),
        (
            Rollback { expected_cursor: block(10), to: block(11), changes: Default::default() },
            "target after the cursor",
        ),
        (
            Rollback {
                expected_cursor: block(10),
                to: BlockRef::new(5, hash(99)),
                changes: Default::default(),
            },
            "target hash differs from the recorded one",
        ),
        (
            Rollback {
                expected_cursor: block(10),
                to: block(5),
                changes: EntityChanges {
                    providers: vec![Provider { created_at: u64::MAX, ..provider(1) }],
                    ..Default::default()
                },
            },
            "a change fails half-way",
        ),
    ];
    for (rb, what) in cases {
        assert!(store.rollback(&rb).await.is_err(), "{what}");
        assert_eq!(snapshot(&store).await, before, "{what}");
    }
}

#[tokio::test]
async fn pruning_keeps_the_cursor_block_and_the_events() {
    let dir = tmp();
    let store = open(&dir).await;
    indexed_chain(&store).await;
    let report = store.indexer().prune_below(6).await.unwrap();
    assert_eq!(report.blocks_removed, 5);
    assert!(report.touched_removed >= 5);
    assert_eq!(store.indexer().block_hash(5).await.unwrap(), None);
    assert_eq!(store.indexer().block_hash(6).await.unwrap(), Some(hash(6)));
    assert_eq!(count(&store, "index_events").await, 11);

    // Never past the cursor.
    store.indexer().prune_below(u64::MAX).await.unwrap();
    assert_eq!(store.indexer().block_hash(10).await.unwrap(), Some(hash(10)));
    assert_eq!(store.indexer().blocks_at_or_below(u64::MAX >> 1, 10).await.unwrap(), [block(10)]);
}

#[tokio::test]
async fn reset_empties_the_index_but_keeps_the_source() {
    let dir = tmp();
    let store = open(&dir).await;
    store.indexer().bind_source(31337, addr(0xD1A)).await.unwrap();
    indexed_chain(&store).await;
    store.reset_index().await.unwrap();
    assert!(snapshot(&store).await.is_empty());
    assert_eq!(store.indexer().source().await.unwrap(), Some((31337, addr(0xD1A))));
    // Indexing starts again from an empty cursor.
    store.apply_batch(&batch(None, 1)).await.unwrap();
}

#[tokio::test]
async fn the_index_is_bound_to_one_chain_and_diamond() {
    let dir = tmp();
    let store = open(&dir).await;
    assert_eq!(store.indexer().source().await.unwrap(), None);
    store.indexer().bind_source(8453, addr(1)).await.unwrap();
    store.indexer().bind_source(8453, addr(1)).await.unwrap();
    store.close().await;

    let store = open(&dir).await;
    let err = store.indexer().bind_source(84532, addr(1)).await.unwrap_err();
    assert!(matches!(err, StoreError::SourceMismatch { stored_chain_id: 8453, chain_id: 84532, .. }));
    assert!(err.to_string().contains("84532"), "{err}");
    assert!(store.indexer().bind_source(8453, addr(2)).await.is_err());
    assert_eq!(store.indexer().source().await.unwrap(), Some((8453, addr(1))));
}

// ---------------------------------------------------------------------------------------------
// Concurrency, errors

#[tokio::test]
async fn readers_see_the_last_commit_while_a_write_is_open() {
    let dir = tmp();
    let store = open(&dir).await;
    store.providers().upsert(&provider(1)).await.unwrap();

    // A write transaction holds SQLite's write lock with uncommitted changes.
    let mut tx = sql::write_tx(&store.pool, "test").await.unwrap();
    let mut changed = provider(1);
    changed.endpoint = "uncommitted:1".into();
    providers::upsert(&mut tx, &changed).await.unwrap();
    providers::upsert(&mut tx, &provider(2)).await.unwrap();

    // Readers on other connections are neither blocked nor see the uncommitted rows.
    let deadline = Duration::from_secs(2);
    let readers = (0..4).map(|_| {
        let store = store.clone();
        async move {
            let got = tokio::time::timeout(deadline, store.providers().get(addr(1)))
                .await
                .expect("reader blocked by the writer")
                .unwrap();
            let list = tokio::time::timeout(
                deadline,
                store.providers().list(ProviderFilter::default(), Page::new(0, 10)),
            )
            .await
            .expect("reader blocked by the writer")
            .unwrap();
            (got, list.total)
        }
    });
    for (got, total) in futures::future::join_all(readers).await {
        assert_eq!(got, Some(provider(1)));
        assert_eq!(total, 1);
    }

    tx.commit().await.unwrap();
    // This raw transaction went around the store's writers, which empty the caches after they
    // commit; do what they do.
    store.caches.invalidate_index();
    assert_eq!(store.providers().get(addr(1)).await.unwrap(), Some(changed));
    assert_eq!(store.providers().get(addr(2)).await.unwrap(), Some(provider(2)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn readers_never_fail_or_see_half_a_batch_during_writes() {
    let dir = tmp();
    let store = open(&dir).await;
    const BATCHES: u64 = 30;
    const PER_BATCH: u64 = 50;

    // Batch n: 50 events in block n and provider n with stake n; the cursor moves to n.
    let writer = {
        let store = store.clone();
        tokio::spawn(async move {
            let mut cursor = None;
            for n in 1..=BATCHES {
                let mut b = batch(cursor, n);
                b.events = (0..PER_BATCH).map(|i| event(n, i, "Ev")).collect();
                b.changes.providers = vec![provider(n)];
                store.apply_batch(&b).await?;
                cursor = Some(block(n));
            }
            Ok::<_, StoreError>(())
        })
    };
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut last = 0u64;
                let mut reads = 0u32;
                loop {
                    // Each count is one snapshot, so it never sees half a batch.
                    let events =
                        store.indexer().events(&EventFilter::default(), Page::new(0, 0)).await?.total;
                    let providers =
                        store.providers().list(ProviderFilter::default(), Page::new(0, 0)).await?.total;
                    assert!(events % PER_BATCH == 0, "half a batch visible: {events}");
                    assert!(providers >= events / PER_BATCH);
                    let cursor = store.indexer().cursor().await?.map_or(0, |c| c.number);
                    assert!(cursor >= last, "cursor went back");
                    last = cursor;
                    reads += 1;
                    if cursor == BATCHES {
                        return Ok::<_, StoreError>(reads);
                    }
                }
            })
        })
        .collect();
    tokio::time::timeout(Duration::from_secs(60), writer)
        .await
        .expect("writer finished in time")
        .unwrap()
        .unwrap();
    for r in readers {
        let reads = tokio::time::timeout(Duration::from_secs(60), r)
            .await
            .expect("reader finished in time")
            .unwrap()
            .unwrap();
        assert!(reads > 0);
    }
    assert_eq!(count(&store, "index_events").await, (BATCHES * PER_BATCH) as i64);
}

#[tokio::test]
async fn concurrent_single_writes_all_land() {
    let dir = tmp();
    let store = open(&dir).await;
    let tasks = (1..=40).map(|n| {
        let store = store.clone();
        async move { store.providers().upsert(&provider(n)).await }
    });
    for r in futures::future::join_all(tasks).await {
        r.unwrap();
    }
    let all = store.providers().list(ProviderFilter::default(), Page::new(0, 100)).await.unwrap();
    assert_eq!(all.total, 40);
}

#[tokio::test]
async fn corrupt_values_and_driver_errors_keep_sql_out_of_the_message() {
    let dir = tmp();
    let store = open(&dir).await;
    store.providers().upsert(&provider(1)).await.unwrap();
    sqlx::query("UPDATE providers SET stake = '12abc'").execute(&store.pool).await.unwrap();
    let err = store.providers().get(addr(1)).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { table: "providers", column: "stake", .. }), "{err:?}");
    assert_eq!(err.to_string(), "corrupt value in providers.stake: \"12abc\" is not a decimal number");

    // The schema refuses an upper-case address written behind the store's back.
    let bad = sqlx::query(
        "INSERT INTO providers (address, endpoint, stake, created_at, limit_period_end, \
         limit_period_earned, is_deleted) VALUES ('0xAB00000000000000000000000000000000000000', \
         '', '0', 0, 0, '0', FALSE)",
    )
    .execute(&store.pool)
    .await;
    assert!(bad.is_err());

    store.close().await;
    let err = store.providers().get(addr(1)).await.unwrap_err();
    assert!(matches!(err, StoreError::Database { op: "get provider", .. }), "{err:?}");
    assert_eq!(err.to_string(), "database operation failed: get provider");
    assert!(err.source().is_some(), "the driver error stays in the source chain");
}

#[test]
fn entity_changes_list_what_they_write() {
    assert!(EntityChanges::default().is_empty());
    let b = full_batch();
    assert!(!b.changes.is_empty());
    let all: BTreeSet<_> = b.changes.entities().into_iter().collect();
    assert_eq!(
        all,
        BTreeSet::from([
            EntityRef::Provider(addr(1)),
            EntityRef::Model(id(0x11, 1)),
            EntityRef::Bid(id(0xB1, 1)),
            EntityRef::Session(id(0x5E, 1)),
            EntityRef::ProviderModelStats { model_id: id(0x11, 1), provider: addr(1) },
            EntityRef::ModelStats(id(0x11, 1)),
        ])
    );
    assert!(provider(1).is_active() && model(1).is_active() && bid(1, 1, 1).is_active());
    assert_eq!(EntityRef::Provider(addr(1)).to_string(), format!("provider {}", addr(1)));
    assert_eq!(block(3).to_string(), format!("#3 ({})", hash(3)));
}

// ---------------------------------------------------------------------------------------------
// Caches

#[tokio::test]
async fn cached_rows_follow_every_write_of_the_index() {
    let dir = tmp();
    let store = open(&dir).await;
    store.apply_batch(&full_batch()).await.unwrap();
    let b1 = bid(1, 1, 1);
    let open_session = session(1, 1, &b1);
    // Read twice: the second read comes from the cache.
    assert_eq!(store.sessions().get(open_session.id).await.unwrap(), Some(open_session.clone()));
    assert_eq!(store.sessions().get(open_session.id).await.unwrap(), Some(open_session.clone()));
    assert_eq!(store.providers().get(addr(1)).await.unwrap(), Some(provider(1)));

    // The indexer sees the close and a new endpoint: the very next read sees them.
    let mut closed = open_session.clone();
    closed.closed_at = closed.opened_at + 10;
    closed.is_active = false;
    let mut moved = provider(1);
    moved.endpoint = "moved:3333".into();
    let mut next = batch(Some(block(20)), 21);
    next.changes.sessions = vec![closed.clone()];
    next.changes.providers = vec![moved.clone()];
    store.apply_batch(&next).await.unwrap();
    assert_eq!(store.sessions().get(open_session.id).await.unwrap(), Some(closed.clone()));
    assert_eq!(store.providers().get(addr(1)).await.unwrap(), Some(moved));

    // A rollback, a single upsert or delete, and a reset of the index are seen at once too.
    store
        .rollback(&Rollback { expected_cursor: block(21), to: block(20), changes: full_batch().changes })
        .await
        .unwrap();
    assert_eq!(store.sessions().get(open_session.id).await.unwrap(), Some(open_session.clone()));
    store.sessions().upsert(&closed).await.unwrap();
    assert_eq!(store.sessions().get(open_session.id).await.unwrap(), Some(closed));
    assert!(store.sessions().delete(open_session.id).await.unwrap());
    assert_eq!(store.sessions().get(open_session.id).await.unwrap(), None);
    store.sessions().upsert(&open_session).await.unwrap();
    assert!(store.sessions().get(open_session.id).await.unwrap().is_some());
    store.reset_index().await.unwrap();
    assert_eq!(store.sessions().get(open_session.id).await.unwrap(), None);
    assert_eq!(store.providers().get(addr(1)).await.unwrap(), None);
}

#[tokio::test]
async fn cached_consumer_records_and_user_keys_follow_their_writes() {
    let dir = tmp();
    let store = open(&dir).await;
    let repo = store.consumer_sessions();
    let b1 = bid(1, 1, 1);
    let s = session(1, 1, &b1);
    let record = ConsumerSession {
        session_id: s.id,
        user: s.user,
        provider: s.provider,
        bid_id: s.bid_id,
        model_id: s.model_id,
        endpoint: "a:1".into(),
        provider_public_key: None,
        stake: s.stake,
        direct_payment: false,
        failover: true,
        opened_at: s.opened_at,
        ends_at: s.ends_at,
        closed_at: 0,
        close_tx: None,
        closeout_type: None,
        replaced_by: None,
        stats: SessionStats::default(),
        created_at: 1,
    };
    repo.upsert(&record).await.unwrap();
    assert_eq!(repo.get(s.id).await.unwrap(), Some(record.clone()));
    let prompt = AnsweredPrompt { tps_scaled1000: 7, ttft_ms: 3, input_tokens: 2, output_tokens: 5 };
    repo.add_prompt(s.id, prompt).await.unwrap();
    repo.add_prompt(s.id, prompt).await.unwrap();
    repo.add_failure(s.id).await.unwrap();
    let cached = repo.get(s.id).await.unwrap().unwrap();
    store.caches.consumer_sessions.invalidate();
    let stored = repo.get(s.id).await.unwrap().unwrap();
    assert_eq!(cached, stored, "the cached record equals the committed row");
    assert_eq!((stored.stats.prompts, stored.stats.failures, stored.stats.output_tokens), (2, 1, 10));
    assert!(repo.set_provider(s.id, "b:2", &Bytes::from(vec![2u8; 33])).await.unwrap());
    assert_eq!(repo.get(s.id).await.unwrap().unwrap().endpoint, "b:2");
    assert!(repo.set_replaced_by(s.id, id(0x5E, 2)).await.unwrap());
    assert_eq!(repo.get(s.id).await.unwrap().unwrap().replaced_by, Some(id(0x5E, 2)));
    assert!(repo.mark_closed(s.id, 99, None, Some(1)).await.unwrap());
    assert_eq!(repo.get(s.id).await.unwrap().unwrap().closed_at, 99);

    let keys = store.provider_sessions();
    let user = addr(7);
    assert_eq!(keys.user_key(user).await.unwrap(), None);
    keys.save_user_key(user, &[4u8; 65], 1).await.unwrap();
    assert_eq!(keys.user_key(user).await.unwrap().unwrap().as_ref(), &[4u8; 65]);
    keys.save_user_key(user, &[2u8; 33], 2).await.unwrap();
    assert_eq!(keys.user_key(user).await.unwrap().unwrap().as_ref(), &[2u8; 33]);
}

#[tokio::test]
async fn a_touch_right_after_a_write_of_the_session_is_skipped() {
    let dir = tmp();
    let store = open(&dir).await;
    let repo = store.provider_sessions();
    let s = ServedSession { session_id: id(0x5E, 1), user: addr(1), model_id: id(0x11, 1), ends_at: 10_000 };
    repo.touch(&s, 1_000).await.unwrap();
    let stats = PromptStats { ttft_ms: 1, tps_scaled1000: 1, input_tokens: 1, output_tokens: 1 };
    repo.record_success(&s, &stats, 1_100).await.unwrap();
    repo.touch(&s, 1_200).await.unwrap(); // skipped: the row exists and was written 100 ms ago
    assert_eq!(repo.get(s.session_id).await.unwrap().unwrap().last_prompt_at, 1_100);
    repo.touch(&s, 1_100 + TOUCH_COALESCE_MS).await.unwrap();
    assert_eq!(repo.get(s.session_id).await.unwrap().unwrap().last_prompt_at, 1_100 + TOUCH_COALESCE_MS);
}
