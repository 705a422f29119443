//! The offline responder: a deterministic, lesson-shaped Markdown answer with
//! token counts from the o200k_base tokenizer (the GPT-4o / GPT-4.1 / GPT-5 one).

use serde_json::Value;
use tiktoken::CoreBpe;

/// Every answer carries this line, so nobody mistakes it for model output.
pub(crate) const EMULATOR_NOTICE: &str =
    "Produced by the local batch emulator (offline responder): no model was called.";

/// One offline answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OfflineAnswer {
    /// The Markdown text, possibly cut to the token limit.
    pub(crate) content: String,
    /// `stop`, or `length` when the text was cut.
    pub(crate) finish_reason: &'static str,
    /// Tokens of the request's messages, counted like the Chat Completions API.
    pub(crate) prompt_tokens: u64,
    /// Tokens of `content`.
    pub(crate) completion_tokens: u64,
}

/// Answers a chat completion request body.
///
/// With `force_length`, the answer is cut to half its tokens (a seeded fault).
pub(crate) fn answer(custom_id: &str, body: &Value, force_length: bool) -> OfflineAnswer {
    let bpe = tokenizer();
    let messages = messages(body.get("messages"));
    let prompt_tokens = count_prompt(bpe, &messages);
    let text = lesson_text(custom_id, &messages);
    let limit = body
        .get("max_completion_tokens")
        .or_else(|| body.get("max_tokens"))
        .and_then(Value::as_u64);
    let tokens = bpe.encode(&text);
    let full = tokens.len() as u64;
    let mut cut_to = limit.filter(|limit| *limit < full);
    if force_length {
        let half = (full / 2).max(1);
        cut_to = Some(cut_to.map_or(half, |limit| limit.min(half)));
    }
    match cut_to {
        None => OfflineAnswer {
            content: text,
            finish_reason: "stop",
            prompt_tokens,
            completion_tokens: full,
        },
        Some(keep) => {
            let keep = usize::try_from(keep)
                .unwrap_or(usize::MAX)
                .min(tokens.len());
            let bytes = bpe.decode(&tokens[..keep]);
            OfflineAnswer {
                // A cut can fall inside a multi-byte character; the replacement
                // character is what a real truncated stream shows too.
                content: String::from_utf8_lossy(&bytes).into_owned(),
                finish_reason: "length",
                prompt_tokens,
                completion_tokens: keep as u64,
            }
        }
    }
}

/// The prompt tokens of a request whose `body.messages` is `message_list`, counted as
/// [`answer`] counts them; the enqueued-token limit adds these up.
pub(crate) fn prompt_tokens(message_list: Option<&Value>) -> u64 {
    count_prompt(tokenizer(), &messages(message_list))
}

/// The o200k_base tokenizer, loaded once (about 150 ms).
pub(crate) fn tokenizer() -> &'static CoreBpe {
    tiktoken::get_encoding("o200k_base").expect("the workspace enables the o200k_base vocabulary")
}

/// One message of the request: its role and its text.
struct Message<'a> {
    role: &'a str,
    name: Option<&'a str>,
    text: String,
}

fn messages(messages: Option<&Value>) -> Vec<Message<'_>> {
    messages
        .and_then(Value::as_array)
        .map(|messages| {
            messages
                .iter()
                .map(|message| Message {
                    role: message.get("role").and_then(Value::as_str).unwrap_or(""),
                    name: message.get("name").and_then(Value::as_str),
                    text: content_text(message.get("content")),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The text of a message's `content`: a string, or the `text` of its parts.
fn content_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(text)) => text.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|part| part.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// Counts prompt tokens the way OpenAI's cookbook does for the GPT-4o family:
/// 3 tokens per message plus its role, content and name, plus 3 to prime the reply.
fn count_prompt(bpe: &CoreBpe, messages: &[Message<'_>]) -> u64 {
    let mut total = 3;
    for message in messages {
        total += 3 + count(bpe, message.role) + count(bpe, &message.text);
        if let Some(name) = message.name {
            total += 1 + count(bpe, name);
        }
    }
    total
}

fn count(bpe: &CoreBpe, text: &str) -> u64 {
    bpe.count(text) as u64
}

/// What the prompt says about the lesson.
#[derive(Debug, Clone, PartialEq, Eq)]
struct LessonName {
    code: Option<String>,
    title: Option<String>,
}

/// Finds `Lesson M0-L001: Title` in the messages (user messages first), else takes
/// the code from a `lesson_M0-L001` custom_id.
fn lesson_name(custom_id: &str, messages: &[Message<'_>]) -> LessonName {
    let users = messages.iter().filter(|m| m.role == "user");
    let others = messages.iter().filter(|m| m.role != "user");
    for message in users.chain(others) {
        if let Some((code, title)) = find_lesson_line(&message.text) {
            return LessonName {
                code: Some(code),
                title: Some(title),
            };
        }
    }
    let code = ["lesson_", "lesson-", "Lesson_", "Lesson-"]
        .iter()
        .find_map(|prefix| custom_id.strip_prefix(prefix))
        .filter(|code| !code.is_empty())
        .map(str::to_owned);
    LessonName { code, title: None }
}

/// Marks that may open right before `Lesson <code>: <title>`, each with the mark that
/// closes it; longer marks first, so `**` is not read as `*`.
const WRAPPERS: [(&str, &str); 11] = [
    ("**", "**"),
    ("__", "__"),
    ("*", "*"),
    ("_", "_"),
    ("`", "`"),
    ("\"", "\""),
    ("\u{201c}", "\u{201d}"),
    ("\u{201e}", "\u{201c}"),
    ("\u{ab}", "\u{bb}"),
    ("\u{2018}", "\u{2019}"),
    ("'", "'"),
];

/// `Lesson <code>: <title>` anywhere in a line; the code has a digit in it.
///
/// The title runs to the end of the line, whatever punctuation it holds, unless a mark
/// (emphasis or a quote, see [`WRAPPERS`]) opens right before `Lesson`: then it ends
/// where that mark closes.
fn find_lesson_line(text: &str) -> Option<(String, String)> {
    for line in text.lines() {
        let mut rest = line;
        while let Some(at) = rest.find("Lesson ") {
            let before = &rest[..at];
            let after = &rest[at + "Lesson ".len()..];
            let code_len = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
                .unwrap_or(after.len());
            let code = after[..code_len].trim_end_matches('.');
            let tail = &after[code_len..];
            if code.chars().any(|c| c.is_ascii_digit())
                && let Some(title) = tail.trim_start().strip_prefix(':')
            {
                let end = WRAPPERS
                    .iter()
                    .find(|(open, _)| before.ends_with(open))
                    .and_then(|(_, close)| title.find(close))
                    .unwrap_or(title.len());
                let title = title[..end].trim();
                let title = title.strip_suffix('.').unwrap_or(title).trim();
                if !title.is_empty() {
                    return Some((code.to_owned(), title.to_owned()));
                }
            }
            rest = after;
        }
    }
    None
}

/// The Markdown answer: a heading, then the ten sections the built-in template asks for
/// (numbered, as models write them), with a table and a code block, long enough to pass the
/// writer's quality gate.
fn lesson_text(custom_id: &str, messages: &[Message<'_>]) -> String {
    let name = lesson_name(custom_id, messages);
    let heading = match (&name.code, &name.title) {
        (Some(code), Some(title)) => format!("# Lesson {code}: {title}"),
        (Some(code), None) => format!("# Lesson {code}"),
        (None, _) => "# Emulated answer".to_owned(),
    };
    let topic = name
        .title
        .clone()
        .or_else(|| name.code.as_ref().map(|code| format!("lesson {code}")))
        .unwrap_or_else(|| "this topic".to_owned());
    format!(
        r#"{heading}

> {EMULATOR_NOTICE}

## 1. Learning Objectives

By the end of this lesson you can:

- explain what *{topic}* covers and where it shows up in practice;
- work through a small example step by step;
- check your own work against a short list of pitfalls.

## 2. Why This Matters

Teams that skip the basics of *{topic}* pay for it later, in rework and in decisions made on numbers nobody can explain.

## 3. Core Concepts

*{topic}* is introduced here through one worked example.
Each idea builds on the previous one, so read the sections in order and try the exercise before the summary.

## 4. How It Works in Practice

An owner names the goal, a practitioner does the work in small steps, and a reviewer checks each step before the next one starts.

## 5. Worked Example

| Step | What you do | What to check |
|---|---|---|
| 1 | Load a small sample of the data | The row count matches the source |
| 2 | Clean and normalise the fields | No missing values remain in key columns |
| 3 | Summarise the result | The totals add up |

## 6. Tools, Templates and Artefacts

```python
# A minimal, runnable illustration for: {topic}
rows = [{{"id": 1, "value": 3}}, {{"id": 2, "value": 5}}]
total = sum(row["value"] for row in rows)
print(f"{{len(rows)}} rows, total {{total}}")
```

## 7. Common Pitfalls

- Skipping the check after each step, so an early mistake spreads.
- Mixing units or formats between two sources.
- Trusting a summary without looking at a few raw rows first.

## 8. Practice Exercise

1. Repeat the worked example with a sample of your own.
2. Write down one question about *{topic}* to answer in the next lesson.

## 9. Knowledge Check

1. Which check follows each step of the worked example? Answer: the one in its table row.
2. Why look at raw rows before trusting a summary? Answer: a total can hide a wrong row.

## 10. Summary and Next Steps

This placeholder lesson on *{topic}* has the shape of a real one: the ten sections of the built-in template, with objectives, explanations, a table, a code block, pitfalls, practice and questions.
"#
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn body(user: &str) -> Value {
        json!({"model": "gpt-4o-mini", "messages": [
            {"role": "system", "content": "You write lessons."},
            {"role": "user", "content": user}
        ]})
    }

    #[test]
    fn names_the_lesson_from_the_prompt() {
        let answer = answer(
            "lesson_M0-L001",
            &body("Write **Lesson M0-L001: What is data?** for beginners."),
            false,
        );
        assert!(
            answer
                .content
                .starts_with("# Lesson M0-L001: What is data?\n"),
            "{}",
            answer.content
        );
        assert!(answer.content.contains(EMULATOR_NOTICE));
        assert!(answer.content.contains("\n| Step |"));
        assert!(answer.content.contains("\n```python\n"));
        assert!(answer.content.matches("\n## ").count() >= 4);
        assert_eq!(answer.finish_reason, "stop");
    }

    #[test]
    fn placeholders_have_the_built_in_templates_sections() {
        let answer = answer(
            "lesson_M0-L001",
            &body("Write Lesson M0-L001: What is data?"),
            false,
        );
        for (number, section) in batch_request::GENERIC_SECTIONS.iter().enumerate() {
            let heading = format!("\n## {}. {section}", number + 1);
            assert!(answer.content.contains(&heading), "{heading:?} missing");
        }
        // Well above the writer's default `[quality] min_words` (200).
        let words = answer.content.split_whitespace().count();
        assert!(words > 300, "{words} words");
    }

    #[test]
    fn falls_back_to_the_custom_id_then_to_a_generic_heading() {
        let from_id = answer("lesson_M2-L010", &body("Explain joins."), false);
        assert!(from_id.content.starts_with("# Lesson M2-L010\n"));
        let generic = answer("req-1", &body("Explain joins."), false);
        assert!(generic.content.starts_with("# Emulated answer\n"));
        // "Lesson plans: ..." has no code with a digit, so it is not a lesson name.
        let no_code = answer("x", &body("Lesson plans: how to write them"), false);
        assert!(no_code.content.starts_with("# Emulated answer\n"));
    }

    #[test]
    fn is_deterministic_and_counts_real_tokens() {
        let request = body("Lesson M1-L002: Tables and keys");
        let first = answer("lesson_M1-L002", &request, false);
        assert_eq!(first, answer("lesson_M1-L002", &request, false));
        let bpe = tokenizer();
        assert_eq!(first.completion_tokens, bpe.count(&first.content) as u64);
        // 3 + (3 + role + content) per message.
        let expected_prompt = 3
            + 3
            + count(bpe, "system")
            + count(bpe, "You write lessons.")
            + 3
            + count(bpe, "user")
            + count(bpe, "Lesson M1-L002: Tables and keys");
        assert_eq!(first.prompt_tokens, expected_prompt);
    }

    #[test]
    fn a_small_token_limit_cuts_the_answer() {
        let mut request = body("Lesson M1-L002: Tables and keys");
        request["max_completion_tokens"] = json!(20);
        let cut = answer("lesson_M1-L002", &request, false);
        assert_eq!(cut.finish_reason, "length");
        assert_eq!(cut.completion_tokens, 20);
        assert!(cut.content.starts_with("# Lesson M1-L002"));
        let full = answer(
            "lesson_M1-L002",
            &body("Lesson M1-L002: Tables and keys"),
            false,
        );
        assert!(full.content.starts_with(&cut.content));
    }

    #[test]
    fn forced_length_cuts_to_half() {
        let request = body("Lesson M1-L002: Tables and keys");
        let full = answer("lesson_M1-L002", &request, false);
        let cut = answer("lesson_M1-L002", &request, true);
        assert_eq!(cut.finish_reason, "length");
        assert_eq!(cut.completion_tokens, full.completion_tokens / 2);
    }

    #[test]
    fn titles_keep_their_punctuation_unless_a_mark_wraps_the_lesson_name() {
        let title = |prompt: &str| find_lesson_line(prompt).map(|(_, title)| title);
        let curly = "\u{201c}Govern the Data That Matters\u{201d}: Prioritising \u{2018}Critical\u{2019} Data \u{2014} \"Tiers\", `keys` & **scope**\u{2026}";
        assert_eq!(
            title(&format!("# Lesson M3-L010: {curly}\n\nWrite it.")).as_deref(),
            Some(curly)
        );
        assert_eq!(
            title("Write **Lesson M0-L001: What is data?** for beginners.").as_deref(),
            Some("What is data?")
        );
        assert_eq!(
            title("Write \u{201c}Lesson M0-L002: Keys \"and\" locks\u{201d} now.").as_deref(),
            Some("Keys \"and\" locks")
        );
        assert_eq!(
            title("Write \"Lesson M0-L003: \u{201c}Quoted\u{201d} data\" now.").as_deref(),
            Some("\u{201c}Quoted\u{201d} data")
        );
        let answer = answer(
            "lesson_M3-L010",
            &body(&format!("# Lesson M3-L010: {curly}")),
            false,
        );
        assert!(
            answer
                .content
                .starts_with(&format!("# Lesson M3-L010: {curly}\n")),
            "{}",
            answer.content
        );
    }

    #[test]
    fn content_parts_are_read() {
        let request = json!({"model": "m", "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Lesson A1: Parts"}]}
        ]});
        assert!(
            answer("x", &request, false)
                .content
                .starts_with("# Lesson A1: Parts\n")
        );
    }
}
