//! The consumer router's OpenAI gateway as a client sees it: API keys made on the admin API
//! (`POST /auth/keys`), and requests with nothing but `Authorization: Bearer <key>` and a model name.

use anyhow::{ensure, Context};
use serde_json::{json, Value};

use crate::market::Market;
use crate::router::RouterProcess;

/// One gateway answer.
#[derive(Debug, Clone)]
pub struct GatewayAnswer {
    /// HTTP status.
    pub status: u16,
    /// The `X-Session-Id` header, if any.
    pub session: Option<String>,
    /// The `Retry-After` header, if any.
    pub retry_after: Option<String>,
    /// The body as text.
    pub body: String,
}

impl GatewayAnswer {
    /// The body as JSON.
    pub fn json(&self) -> anyhow::Result<Value> {
        serde_json::from_str(&self.body).with_context(|| format!("not JSON: {} {}", self.status, self.body))
    }

    /// The OpenAI error's `code`.
    pub fn error_code(&self) -> Option<String> {
        self.json().ok()?.pointer("/error/code")?.as_str().map(str::to_owned)
    }
}

/// A client of one router's gateway.
#[derive(Debug, Clone)]
pub struct GatewayClient {
    base: String,
    http: reqwest::Client,
}

impl GatewayClient {
    /// The client of `router`'s gateway.
    pub fn of(router: &RouterProcess) -> anyhow::Result<Self> {
        Ok(Self { base: router.gateway_url("")?, http: reqwest::Client::new() })
    }

    /// The base URL OpenAI clients are given (`http://host:port/v1`).
    pub fn openai_base_url(&self) -> String {
        format!("{}/v1", self.base)
    }

    /// `POST path` with `body`, authenticated by `key` (none when empty).
    pub async fn post(&self, path: &str, key: &str, body: &Value) -> anyhow::Result<GatewayAnswer> {
        self.post_with(path, key, body, &[]).await
    }

    /// [`GatewayClient::post`] with extra `(name, value)` headers.
    pub async fn post_with(
        &self,
        path: &str,
        key: &str,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<GatewayAnswer> {
        let mut request = self
            .http
            .post(format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .body(body.to_string());
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        if !key.is_empty() {
            request = request.bearer_auth(key);
        }
        answer(request).await
    }

    /// `GET path`, authenticated by `key`.
    pub async fn get(&self, path: &str, key: &str) -> anyhow::Result<GatewayAnswer> {
        answer(self.http.get(format!("{}{path}", self.base)).bearer_auth(key)).await
    }

    /// One chat on `model` with `content` as the user's message.
    pub async fn chat(&self, key: &str, model: &str, content: &str) -> anyhow::Result<GatewayAnswer> {
        self.post(
            "/v1/chat/completions",
            key,
            &json!({"model": model, "messages": [{"role": "user", "content": content}]}),
        )
        .await
    }
}

async fn answer(request: reqwest::RequestBuilder) -> anyhow::Result<GatewayAnswer> {
    let response = request.send().await.context("gateway request")?;
    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let (session, retry_after) = (header("x-session-id"), header("retry-after"));
    let status = response.status().as_u16();
    let body = response.text().await?;
    Ok(GatewayAnswer { status, session, retry_after, body })
}

impl Market {
    /// Makes an API key on the consumer (`POST /auth/keys` with `body`); answers its id and secret.
    pub fn create_key(&self, body: &Value) -> anyhow::Result<(String, String)> {
        let answer = self.post("/auth/keys", body)?;
        ensure!(answer.status == 200, "POST /auth/keys answered {}: {}", answer.status, answer.body);
        let key = answer.json()?;
        let id = key["id"].as_str().context("no id")?.to_owned();
        let secret = key["key"].as_str().context("no key")?.to_owned();
        Ok((id, secret))
    }

    /// The consumer's view of an API key (`GET /auth/keys/{id}`).
    pub fn key(&self, id: &str) -> anyhow::Result<Value> {
        let answer = self.get(&format!("/auth/keys/{id}"))?;
        ensure!(answer.status == 200, "GET /auth/keys/{id} answered {}: {}", answer.status, answer.body);
        answer.json()
    }

    /// The consumer's gateway.
    pub fn gateway(&self) -> anyhow::Result<GatewayClient> {
        GatewayClient::of(self.consumer()?)
    }

    /// Every session of the consumer's wallet the consumer's index holds (open or closed).
    pub fn consumer_sessions(&self) -> anyhow::Result<Vec<Value>> {
        let path = format!("/blockchain/sessions/user?user={:#x}&limit=100", self.consumer_address);
        let answer = self.get(&path)?;
        ensure!(answer.status == 200, "{path}: {} {}", answer.status, answer.body);
        Ok(answer.json()?["sessions"].as_array().cloned().unwrap_or_default())
    }
}

impl Market {
    /// `DELETE path` on the consumer with the admin's credentials.
    pub fn delete(&self, path: &str) -> anyhow::Result<crate::router::CurlAnswer> {
        crate::router::curl(&["-u", crate::market::ADMIN, "-X", "DELETE", &self.consumer()?.url(path)])
    }
}

/// Polls the async `check` every 100 ms until it answers `Some` (up to 60 s).
pub async fn eventually<T, F, Fut>(mut check: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Option<T>>>,
{
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        if let Some(value) = check().await? {
            return Ok(value);
        }
        ensure!(tokio::time::Instant::now() < deadline, "timed out after 60 s");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
