//! The requests of a batch: `custom_id`s checked against the API's pattern, the Messages
//! params (`model`, `max_tokens`, `system` with `cache_control`, `messages`, anything else),
//! and the create call's body checked against the batch limits before anything is sent.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize};

use crate::error::Error;

/// The most requests one batch may hold.
pub const MAX_REQUESTS: usize = 100_000;

/// The largest create body, in bytes: 256 MB, read as 256,000,000 bytes (the smaller of the two
/// readings, so a body the API could count as over its limit is never sent).
pub const MAX_BATCH_BYTES: u64 = 256_000_000;

/// The longest `custom_id`, in characters.
pub const MAX_CUSTOM_ID_LEN: usize = 64;

/// A request's `custom_id`: 1 to 64 ASCII letters, digits, `_` or `-`
/// (`^[a-zA-Z0-9_-]{1,64}$`), so `lesson_M0-L001` fits and `a.b` does not.
///
/// The only ways to make one check the pattern, deserializing included.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct CustomId(String);

impl CustomId {
    /// Checks `id` against the pattern.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidCustomId`], naming the id and what is wrong with it.
    pub fn new(id: impl Into<String>) -> Result<CustomId, Error> {
        let id = id.into();
        let reason = if id.is_empty() {
            Some("it is empty")
        } else if id.chars().count() > MAX_CUSTOM_ID_LEN {
            Some("it is longer than 64 characters")
        } else if !id
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'_' || byte == b'-')
        {
            Some("only ASCII letters, digits, `_` and `-` are allowed")
        } else {
            None
        };
        match reason {
            Some(reason) => Err(Error::InvalidCustomId {
                custom_id: id,
                reason,
            }),
            None => Ok(CustomId(id)),
        }
    }

    /// The id as sent on the wire.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CustomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for CustomId {
    type Err = Error;

    fn from_str(id: &str) -> Result<Self, Error> {
        CustomId::new(id)
    }
}

impl<'de> Deserialize<'de> for CustomId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let id = String::deserialize(deserializer)?;
        CustomId::new(id).map_err(serde::de::Error::custom)
    }
}

/// One request of a batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchRequest {
    /// Joins the request to its result line; unique within the batch.
    pub custom_id: CustomId,
    /// The Messages API body of the request.
    pub params: MessageParams,
}

/// The Messages API body of one request (never streamed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageParams {
    /// The model, e.g. `claude-sonnet-4-5`.
    pub model: String,
    /// The most output tokens; required by the API.
    pub max_tokens: u32,
    /// The system prompt, as text or as blocks that may carry `cache_control`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<SystemPrompt>,
    /// The conversation, alternating `user` and `assistant`.
    pub messages: Vec<MessageParam>,
    /// Every other parameter (`temperature`, `stop_sequences`, `metadata`, ...), sent as given.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

/// The `system` parameter: plain text, or text blocks (which can carry `cache_control`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SystemPrompt {
    /// One string.
    Text(String),
    /// Text blocks, sent in order.
    Blocks(Vec<TextBlockParam>),
}

/// A text block of a request, with its optional cache breakpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename = "text")]
pub struct TextBlockParam {
    /// The text.
    pub text: String,
    /// Marks the end of a prefix the API may cache.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<CacheControl>,
}

impl TextBlockParam {
    /// A block without a cache breakpoint.
    pub fn new(text: impl Into<String>) -> Self {
        TextBlockParam {
            text: text.into(),
            cache_control: None,
        }
    }

    /// A block that ends a cached prefix (`{"type": "ephemeral"}`, 5 minutes).
    pub fn cached(text: impl Into<String>) -> Self {
        TextBlockParam {
            text: text.into(),
            cache_control: Some(CacheControl::ephemeral()),
        }
    }
}

/// A cache breakpoint: `{"type": "ephemeral"}`, optionally with a `ttl` (`5m`, `1h`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheControl {
    /// Always `ephemeral` so far.
    #[serde(rename = "type")]
    pub cache_type: String,
    /// How long the entry lives, when not the default 5 minutes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<String>,
}

impl CacheControl {
    /// `{"type": "ephemeral"}`.
    pub fn ephemeral() -> Self {
        CacheControl {
            cache_type: "ephemeral".to_owned(),
            ttl: None,
        }
    }
}

/// One message of the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MessageParam {
    /// Who says it.
    pub role: Role,
    /// What is said.
    pub content: MessageContent,
}

impl MessageParam {
    /// A user message of plain text.
    pub fn user(text: impl Into<String>) -> Self {
        MessageParam {
            role: Role::User,
            content: MessageContent::Text(text.into()),
        }
    }
}

/// The speaker of a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The person asking.
    User,
    /// The model (a prefilled answer).
    Assistant,
}

/// A message's content: plain text or text blocks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum MessageContent {
    /// One string.
    Text(String),
    /// Text blocks, which can carry `cache_control`.
    Blocks(Vec<TextBlockParam>),
}

/// The body of `POST /v1/messages/batches`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct CreateBody<'a> {
    pub(crate) requests: &'a [BatchRequest],
}

/// The create body as JSON, after checking what the API would refuse: no requests, more than
/// [`MAX_REQUESTS`], a `custom_id` given twice, or a body over [`MAX_BATCH_BYTES`].
pub(crate) fn create_body(requests: &[BatchRequest]) -> Result<Vec<u8>, Error> {
    create_body_within(requests, MAX_BATCH_BYTES)
}

/// [`create_body`] with another byte limit, for tests.
fn create_body_within(requests: &[BatchRequest], max_bytes: u64) -> Result<Vec<u8>, Error> {
    if requests.is_empty() {
        return Err(Error::EmptyBatch);
    }
    if requests.len() > MAX_REQUESTS {
        return Err(Error::TooManyRequests {
            count: requests.len(),
            max: MAX_REQUESTS,
        });
    }
    let mut seen = HashSet::with_capacity(requests.len());
    for request in requests {
        if !seen.insert(request.custom_id.as_str()) {
            return Err(Error::DuplicateCustomId {
                custom_id: request.custom_id.clone(),
            });
        }
    }
    let body = serde_json::to_vec(&CreateBody { requests }).map_err(Error::Encode)?;
    if body.len() as u64 > max_bytes {
        return Err(Error::BatchTooLarge {
            bytes: body.len() as u64,
            max: max_bytes,
        });
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn request(id: &str) -> BatchRequest {
        BatchRequest {
            custom_id: CustomId::new(id).unwrap(),
            params: MessageParams {
                model: "claude-sonnet-4-5".to_owned(),
                max_tokens: 1024,
                system: None,
                messages: vec![MessageParam::user("Hi")],
                extra: BTreeMap::new(),
            },
        }
    }

    #[test]
    fn custom_ids_follow_the_pattern() {
        for ok in ["lesson_M0-L001", "a", "Z9_-", &"x".repeat(64)] {
            assert_eq!(CustomId::new(ok).unwrap().as_str(), ok);
        }
        let reason = |id: &str| match CustomId::new(id) {
            Err(Error::InvalidCustomId { custom_id, reason }) => {
                assert_eq!(custom_id, id);
                reason
            }
            other => panic!("{id:?}: {other:?}"),
        };
        assert_eq!(reason(""), "it is empty");
        assert_eq!(reason(&"x".repeat(65)), "it is longer than 64 characters");
        for bad in ["a.b", "a:b", "a b", "é", "lesson/1"] {
            assert!(reason(bad).starts_with("only ASCII"), "{bad}");
        }
        let err = CustomId::new("M0.L001").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid custom_id `M0.L001`: only ASCII letters, digits, `_` and `-` are allowed"
        );
        assert!(serde_json::from_value::<CustomId>(json!("a.b")).is_err());
    }

    #[test]
    fn params_serialize_to_the_wire_format_with_cache_control_and_extra_fields() {
        let mut request = request("lesson_M0-L001");
        request.params.system = Some(SystemPrompt::Blocks(vec![
            TextBlockParam::cached("Instructions and outline"),
            TextBlockParam::new("More"),
        ]));
        request
            .params
            .extra
            .insert("temperature".to_owned(), json!(0.2));
        let value = serde_json::to_value(&request).unwrap();
        assert_eq!(
            value,
            json!({"custom_id": "lesson_M0-L001", "params": {
                "model": "claude-sonnet-4-5", "max_tokens": 1024,
                "system": [
                    {"type": "text", "text": "Instructions and outline", "cache_control": {"type": "ephemeral"}},
                    {"type": "text", "text": "More"}
                ],
                "messages": [{"role": "user", "content": "Hi"}],
                "temperature": 0.2
            }})
        );
        let back: BatchRequest = serde_json::from_value(value).unwrap();
        assert_eq!(back, request);
        let plain: SystemPrompt = serde_json::from_value(json!("Be brief")).unwrap();
        assert_eq!(plain, SystemPrompt::Text("Be brief".to_owned()));
    }

    #[test]
    fn create_body_enforces_the_limits() {
        assert!(matches!(create_body(&[]), Err(Error::EmptyBatch)));
        let body = create_body(&[request("a"), request("b")]).unwrap();
        let value: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(value["requests"][1]["custom_id"], "b");
        match create_body(&[request("a"), request("b"), request("a")]) {
            Err(Error::DuplicateCustomId { custom_id }) => assert_eq!(custom_id.as_str(), "a"),
            other => panic!("{other:?}"),
        }
        let many = vec![request("a"); MAX_REQUESTS + 1];
        assert!(matches!(
            create_body(&many),
            Err(Error::TooManyRequests {
                count: 100_001,
                max: 100_000
            })
        ));
        // The byte limit counts the whole body; a small limit stands in for 256 MB.
        let two = [request("a"), request("b")];
        let size = create_body(&two).unwrap().len() as u64;
        assert_eq!(create_body_within(&two, size).unwrap().len() as u64, size);
        match create_body_within(&two, size - 1) {
            Err(Error::BatchTooLarge { bytes, max }) => assert_eq!((bytes, max), (size, size - 1)),
            other => panic!("{other:?}"),
        }
    }
}
