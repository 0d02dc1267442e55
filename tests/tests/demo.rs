//! `make demo` as a smoke test: the demo binary walks the whole marketplace (anvil, contracts, stand-in
//! backend, provider and consumer routers, onboarding, session by model, streamed chat, close, a chat
//! through the OpenAI gateway with only an API key and the model name) and, with
//! `DEMO_EXIT=1`, stops after writing its connection details.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

#[test]
fn the_demo_walks_the_whole_marketplace() {
    let dir = tempfile::tempdir().unwrap();
    let info_file = dir.path().join("connection.json");
    let output = Command::new(env!("CARGO_BIN_EXE_demo"))
        .env("DEMO_EXIT", "1")
        .env("DEMO_INFO_FILE", &info_file)
        .env_remove("DEMO_BACKEND_URL")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("assistant: This is a demo reply to: Say hello"), "{stdout}");
    assert!(stdout.contains("closed in tx 0x"), "{stdout}");
    assert!(stdout.contains("closeout type 0 (the provider's signed receipt"), "{stdout}");
    // 300 s (or a second or two more, as anvil's clock runs on) at 1e13 wei/s.
    assert!(stdout.contains("provider         +0.003"), "the provider is paid about 300 s: {stdout}");
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&info_file).unwrap()).unwrap();
    assert!(info["consumer"]["openaiBaseUrl"].as_str().unwrap().ends_with("/v1"));
    assert!(info["openSession"].as_str().unwrap().starts_with("0x"));
    assert_eq!(info["credentials"]["user"], "admin");
    // The gateway chat: nothing but an API key and the model name.
    assert!(
        stdout.contains("assistant: This is a demo reply to: Say hello through the gateway."),
        "{stdout}"
    );
    assert!(stdout.contains("the gateway bought session 0x"), "{stdout}");
    assert!(info["gateway"]["openaiBaseUrl"].as_str().unwrap().ends_with("/v1"));
    assert!(info["gateway"]["apiKey"].as_str().unwrap().starts_with("sk-mor-"));
}
