//! The per-frame cryptography of MOR-RPC: what one streamed chunk costs each router in CPU.
//!
//! Per answer frame the provider ECIES-encrypts the chunk to the consumer ([`ecies::encrypt_hex`]) and
//! signs the frame ([`sign_go`]); the consumer recovers the signer ([`recover_go`]) and decrypts
//! ([`ecies::decrypt_hex`]). `ops/*` times each operation alone on a 200-byte chunk (the signed
//! message is a frame's size: the chunk's hex ciphertext plus the JSON around it); `frame/*` times
//! both sides of a real `session.prompt` answer frame, Go JSON included, with a fresh ephemeral key per
//! frame (what a Go provider sends); `frame_reuse/*` times the same with one ephemeral key per answer
//! (an [`ecies::Encryptor`] and [`ecies::Decryptor`] already holding the answer's keys: the cost of
//! every frame after the first). `k256/*` times the RustCrypto
//! signing and recovery this crate used before libsecp256k1, for comparison on the same machine.
//!
//! Run: `cargo bench -p proxy-router --bench crypto` (add `-- --quick` for a short run).

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;

use alloy::primitives::{keccak256, Signature};
use alloy::signers::local::PrivateKeySigner;
use alloy::signers::SignerSync;
use criterion::{criterion_group, criterion_main, Criterion};
use proxy_router::protocol::ecies;
use proxy_router::protocol::signing::{recover_go, sign_go, uncompressed_public_key};
use proxy_router::protocol::{SessionPromptRes, Signable};

/// A typical streamed chunk: one OpenAI `chat.completion.chunk` of a few tokens.
const CHUNK_LEN: usize = 200;

fn chunk() -> Vec<u8> {
    let mut chunk = br#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"m","choices":[{"index":0,"delta":{"content":""#.to_vec();
    while chunk.len() < CHUNK_LEN - 7 {
        chunk.push(b'a');
    }
    chunk.extend_from_slice(br#""}}]}"#);
    chunk.resize(CHUNK_LEN, b' ');
    chunk
}

fn keys() -> (PrivateKeySigner, PrivateKeySigner) {
    let provider: PrivateKeySigner =
        "59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d".parse().unwrap();
    let consumer: PrivateKeySigner =
        "5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a".parse().unwrap();
    (provider, consumer)
}

fn operations(c: &mut Criterion) {
    let (provider, consumer) = keys();
    let consumer_key = uncompressed_public_key(&consumer);
    let chunk = chunk();
    let ciphertext = ecies::encrypt(&consumer_key, &chunk).unwrap();
    // What the provider signs per frame: the chunk's hex ciphertext inside the frame's JSON.
    let frame = SessionPromptRes::encrypt(&provider, &consumer_key, &chunk, 1_700_000_000_000).unwrap();
    let message = frame.signing_bytes().unwrap();
    let signature = sign_go(&provider, &message).unwrap();

    let mut group = c.benchmark_group("ops");
    group.bench_function("sign_go", |b| b.iter(|| sign_go(&provider, black_box(&message)).unwrap()));
    group.bench_function("recover_go", |b| {
        b.iter(|| recover_go(black_box(&message), black_box(&signature)).unwrap())
    });
    group.bench_function("ecies_encrypt", |b| {
        b.iter(|| ecies::encrypt(black_box(&consumer_key), black_box(&chunk)).unwrap())
    });
    group.bench_function("ecies_decrypt", |b| {
        b.iter(|| ecies::decrypt(&consumer, black_box(&ciphertext)).unwrap())
    });
    group.finish();

    let mut group = c.benchmark_group("frame");
    group.bench_function("provider_encrypt_and_sign", |b| {
        b.iter(|| {
            SessionPromptRes::encrypt(
                &provider,
                black_box(&consumer_key),
                black_box(&chunk),
                1_700_000_000_000,
            )
            .unwrap()
        })
    });
    group.bench_function("consumer_recover_and_decrypt", |b| {
        b.iter(|| {
            let frame = black_box(&frame);
            frame.verify_signer(provider.address()).unwrap();
            frame.decrypt(&consumer).unwrap()
        })
    });
    group.finish();

    // One ephemeral key per answer: the steady-state cost of a frame after the answer's first.
    let encryptor = ecies::Encryptor::new(&consumer_key).unwrap();
    let reused = SessionPromptRes::encrypt_with(&provider, &encryptor, &chunk, 1_700_000_000_000).unwrap();
    let mut decryptor = ecies::Decryptor::new(&consumer).unwrap();
    reused.decrypt_with(&mut decryptor).unwrap();
    let mut group = c.benchmark_group("frame_reuse");
    group.bench_function("ecies_encrypt", |b| b.iter(|| encryptor.encrypt(black_box(&chunk))));
    let reused_ciphertext = encryptor.encrypt(&chunk);
    group.bench_function("ecies_decrypt", |b| {
        b.iter(|| decryptor.decrypt(black_box(&reused_ciphertext)).unwrap())
    });
    group.bench_function("provider_encrypt_and_sign", |b| {
        b.iter(|| {
            SessionPromptRes::encrypt_with(&provider, &encryptor, black_box(&chunk), 1_700_000_000_000)
                .unwrap()
        })
    });
    group.bench_function("consumer_recover_and_decrypt", |b| {
        b.iter(|| {
            let frame = black_box(&reused);
            frame.verify_signer(provider.address()).unwrap();
            frame.decrypt_with(&mut decryptor).unwrap()
        })
    });
    group.finish();

    let mut group = c.benchmark_group("k256");
    let prehash = keccak256(&message);
    let k256_signature = provider.sign_hash_sync(&prehash).unwrap();
    group
        .bench_function("sign_prehash", |b| b.iter(|| provider.sign_hash_sync(black_box(&prehash)).unwrap()));
    group.bench_function("recover_prehash", |b| {
        b.iter(|| {
            Signature::recover_address_from_prehash(black_box(&k256_signature), black_box(&prehash)).unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, operations);
criterion_main!(benches);
