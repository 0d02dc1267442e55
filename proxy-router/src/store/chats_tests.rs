//! [`ChatsRepo`] against a real SQLite file: append, list, get, rename, delete, the bounds, and
//! persistence across reopening.

use alloy::primitives::B256;

use super::*;
use crate::store::Store;

fn exchange(n: u64, text: &str) -> Exchange {
    Exchange {
        prompt: format!(r#"{{"messages":[{{"content":"q{n}","role":"user"}}]}}"#),
        response: text.to_owned(),
        prompt_at: 1_700_000_000 + n,
        response_at: 1_700_000_001 + n,
        is_image_content: false,
        is_video_raw_content: false,
        is_audio_content: false,
    }
}

fn chat(n: u8) -> B256 {
    B256::repeat_byte(n)
}

const MODEL: B256 = B256::repeat_byte(0xaa);

#[tokio::test]
async fn a_chat_keeps_its_first_title_and_model_and_its_exchanges_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let repo = store.chats();
    let bounds = ChatBounds::DEFAULT;
    repo.append(chat(1), MODEL, false, "first", &exchange(1, "a1"), bounds).await.unwrap();
    repo.append(chat(1), B256::repeat_byte(0xbb), true, "second", &exchange(2, "a2"), bounds).await.unwrap();
    repo.append(chat(2), MODEL, true, "other", &exchange(5, "b"), bounds).await.unwrap();

    let got = repo.get(chat(1)).await.unwrap().unwrap();
    assert_eq!((got.title.as_str(), got.model_id, got.is_local), ("first", MODEL, false));
    assert_eq!(got.messages, [exchange(1, "a1"), exchange(2, "a2")]);

    let listed = repo.list().await.unwrap();
    assert_eq!(
        listed,
        [
            ChatSummary {
                chat_id: chat(2),
                model_id: MODEL,
                title: "other".into(),
                is_local: true,
                created_at: 1_700_000_005
            },
            ChatSummary {
                chat_id: chat(1),
                model_id: MODEL,
                title: "first".into(),
                is_local: false,
                created_at: 1_700_000_001
            },
        ]
    );

    assert!(repo.rename(chat(1), "renamed").await.unwrap());
    assert!(!repo.rename(chat(9), "x").await.unwrap());
    assert_eq!(repo.get(chat(1)).await.unwrap().unwrap().title, "renamed");
    assert!(repo.delete(chat(1)).await.unwrap());
    assert!(!repo.delete(chat(1)).await.unwrap());
    assert!(repo.get(chat(1)).await.unwrap().is_none());
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM chat_messages WHERE chat_id = $1")
        .bind(crate::store::codec::b256(&chat(1)))
        .fetch_one(&store.pool)
        .await
        .unwrap();
    assert_eq!(left, 0, "the exchanges go with the chat");
}

#[tokio::test]
async fn bounds_drop_the_oldest_exchanges_and_the_least_recent_chats() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let repo = store.chats();
    let by_count = ChatBounds { max_messages: 3, max_bytes: u64::MAX, max_chats: 100 };
    for n in 1..=5 {
        repo.append(chat(1), MODEL, false, "t", &exchange(n, "x"), by_count).await.unwrap();
    }
    let kept: Vec<String> =
        repo.get(chat(1)).await.unwrap().unwrap().messages.into_iter().map(|m| m.prompt).collect();
    assert_eq!(kept, [exchange(3, "").prompt, exchange(4, "").prompt, exchange(5, "").prompt]);

    // Bytes: each exchange is its prompt plus 100 bytes of answer.
    let size = exchange(1, "").prompt.len() as u64 + 100;
    let by_bytes = ChatBounds { max_messages: 100, max_bytes: 2 * size, max_chats: 100 };
    let answer = "y".repeat(100);
    for n in 1..=4 {
        repo.append(chat(2), MODEL, false, "t", &exchange(n, &answer), by_bytes).await.unwrap();
    }
    assert_eq!(repo.get(chat(2)).await.unwrap().unwrap().messages.len(), 2);
    // An exchange larger than the whole bound is still kept (alone).
    let huge = "z".repeat(3 * size as usize);
    repo.append(chat(2), MODEL, false, "t", &exchange(9, &huge), by_bytes).await.unwrap();
    let messages = repo.get(chat(2)).await.unwrap().unwrap().messages;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0].response, huge);

    let by_chats = ChatBounds { max_messages: 100, max_bytes: u64::MAX, max_chats: 2 };
    repo.append(chat(1), MODEL, false, "t", &exchange(20, "x"), by_chats).await.unwrap();
    repo.append(chat(3), MODEL, false, "t", &exchange(30, "x"), by_chats).await.unwrap();
    let ids: Vec<B256> = repo.list().await.unwrap().into_iter().map(|c| c.chat_id).collect();
    assert_eq!(ids.len(), 2);
    assert!(ids.contains(&chat(1)) && ids.contains(&chat(3)), "chat 2 was used least recently: {ids:?}");
}

#[tokio::test]
async fn chats_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    store
        .chats()
        .append(chat(7), MODEL, true, "kept", &exchange(1, "answer"), ChatBounds::DEFAULT)
        .await
        .unwrap();
    store.close().await;
    let store = Store::open(dir.path()).await.unwrap();
    let got = store.chats().get(chat(7)).await.unwrap().unwrap();
    assert_eq!((got.title.as_str(), got.is_local, got.messages.len()), ("kept", true, 1));
    assert_eq!(got.messages[0].response, "answer");
}
