//! The Chat Completions API: one request answered right away (a preview before paying for a batch).

use reqwest::Method;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::client::Client;
use crate::error::Error;

/// The path of the Chat Completions endpoint below the base URL.
pub const CHAT_COMPLETIONS_PATH: &str = "/chat/completions";

impl Client {
    /// Sends one chat completion request (`POST /chat/completions`) and decodes the answer.
    ///
    /// This crate knows no request or answer format (a batch line's `body` is the caller's
    /// too), so both are the caller's types: any `Serialize` body, decoded into any
    /// `DeserializeOwned` answer, such as `batch-request`'s `ChatRequest` and `ResponseBody`.
    /// The call goes through the same retry policy, key redaction and error types as every
    /// other call: 408, 409, 429 (not `insufficient_quota`), 5xx, timeouts and dropped
    /// connections are retried under the `POST` budget, as the official SDK retries it.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use wiremock::{Mock, MockServer, ResponseTemplate, matchers};
    /// # let server = MockServer::start().await;
    /// # Mock::given(matchers::method("POST"))
    /// #     .and(matchers::path("/chat/completions"))
    /// #     .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
    /// #         "id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4o-mini",
    /// #         "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}],
    /// #         "usage": {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10}
    /// #     })))
    /// #     .mount(&server)
    /// #     .await;
    /// # let base_url = server.uri();
    /// use openai_batch_client::{Client, ClientConfig, SecretString};
    ///
    /// let client = Client::new(ClientConfig::new(base_url, SecretString::from("sk-test")))?;
    /// let body = serde_json::json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello"}]});
    /// let answer: serde_json::Value = client.chat_completion(&body).await?;
    /// assert_eq!(answer["usage"]["total_tokens"], 10);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Api`] for an error status (after the retries), [`Error::Timeout`] and
    /// [`Error::Connection`] for transport failures after the retries, [`Error::Decode`] for
    /// an answer that is not the JSON of `R`.
    pub async fn chat_completion<B, R>(&self, body: &B) -> Result<R, Error>
    where
        B: Serialize + ?Sized + Sync,
        R: DeserializeOwned,
    {
        self.send_json(Method::POST, CHAT_COMPLETIONS_PATH, |builder| {
            builder.json(body)
        })
        .await
    }
}
