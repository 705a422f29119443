//! The Messages API: one request answered right away (a preview before paying for a batch).

use bytes::Bytes;
use reqwest::Method;

use crate::client::Client;
use crate::error::Error;
use crate::request::MessageParams;
use crate::results::Message;

/// The path of the Messages endpoint.
pub const MESSAGES_PATH: &str = "/v1/messages";

impl Client {
    /// Sends one Messages API request (`POST /v1/messages`) and returns the answer.
    ///
    /// `params` are a batch request's own parameters, so a request can be tried at once,
    /// at the standard price, before it goes into a batch. The answer is whole (no
    /// streaming): the official SDKs refuse a non-streaming call expected to take longer
    /// than ten minutes (from about 21,000 `max_tokens` on), and this client's request
    /// timeout ([`Timeouts::request`](crate::Timeouts::request), 600 s by default) ends one.
    ///
    /// The call goes through the same headers, key redaction and retries as every other
    /// call, as the official SDK retries `messages.create`: connection failures, timeouts,
    /// 408, 409, 429 and statuses from 500 (529 included) are retried twice, honouring
    /// `retry-after`; a 4xx such as `invalid_request_error` is final.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # use wiremock::{Mock, MockServer, ResponseTemplate, matchers};
    /// # let server = MockServer::start().await;
    /// # Mock::given(matchers::method("POST"))
    /// #     .and(matchers::path("/v1/messages"))
    /// #     .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
    /// #         "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
    /// #         "content": [{"type": "text", "text": "# Lesson"}], "stop_reason": "end_turn",
    /// #         "stop_sequence": null, "usage": {"input_tokens": 12, "output_tokens": 3}
    /// #     })))
    /// #     .mount(&server)
    /// #     .await;
    /// # let base_url = server.uri();
    /// use anthropic_batch_client::{Client, ClientConfig, MessageParam, MessageParams, SecretString};
    ///
    /// let client = Client::new(ClientConfig::new(base_url, SecretString::from("sk-ant-test")))?;
    /// let params = MessageParams {
    ///     model: "claude-sonnet-4-5".to_owned(),
    ///     max_tokens: 1024,
    ///     system: None,
    ///     messages: vec![MessageParam::user("Write lesson M0-L001.")],
    ///     extra: Default::default(),
    /// };
    /// let message = client.create_message(&params).await?;
    /// assert_eq!(message.text(), "# Lesson");
    /// assert_eq!(message.usage.output_tokens, 3);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::Api`] for an error status (after the retries), [`Error::Timeout`] and
    /// [`Error::Connection`] for transport failures after the retries, [`Error::Encode`]
    /// when `params` cannot be written as JSON, [`Error::Decode`] for an answer that is not
    /// a [`Message`].
    pub async fn create_message(&self, params: &MessageParams) -> Result<Message, Error> {
        let body = Bytes::from(serde_json::to_vec(params).map_err(Error::Encode)?);
        self.send_json(Method::POST, MESSAGES_PATH, &[], Some(body))
            .await
    }
}
