//! Refusals written as the answer's text ("I'm sorry, but I can't help with that."), with
//! `finish_reason: stop` and no `refusal` field: a short answer dominated by refusal phrasing.
//!
//! The phrasings are those OpenAI models give (gpt-4o: "I'm sorry, but I can't assist with
//! that.", "I can't comply with that request."; gpt-3.5: "I apologize, but I cannot fulfill
//! this request. As an AI language model, ..."; both often followed by "If you have any other
//! questions, feel free to ask!"). A real lesson never trips the check: it is far longer than
//! [`MAX_REFUSAL_WORDS`], and a short one must also open with a refusal.

/// Answers with more words than this (outside headings) are never refusals: a refusal is a
/// sentence or three, a lesson hundreds of words.
pub(crate) const MAX_REFUSAL_WORDS: usize = 80;

/// First-person phrases of inability or unwillingness that a refusal verb must follow.
const CANNOT: [&str; 14] = [
    "i can't",
    "i cannot",
    "i can not",
    "i'm unable to",
    "i am unable to",
    "i'm not able to",
    "i am not able to",
    "i won't",
    "i will not",
    "i'm not going to",
    "i am not going to",
    "i don't have the ability to",
    "i do not have the ability to",
    "i'm afraid i can't",
];

/// What a refusal says it cannot do.
const REFUSAL_VERBS: [&str; 24] = [
    "help",
    "assist",
    "comply",
    "provide",
    "fulfill",
    "fulfil",
    "create",
    "write",
    "generate",
    "produce",
    "do",
    "complete",
    "continue",
    "support",
    "engage",
    "share",
    "give",
    "offer",
    "answer",
    "process",
    "accommodate",
    "proceed",
    "honor",
    "respond",
];

/// Refusals that need no verb after them.
const DECLINES: [&str; 6] = [
    "i must decline",
    "i have to decline",
    "i need to decline",
    "i must respectfully decline",
    "i'm not comfortable",
    "i don't feel comfortable",
];

/// Sentences that only apologise, so a refusal may follow them.
const APOLOGIES: [&str; 5] = [
    "i'm sorry",
    "i am sorry",
    "sorry",
    "i apologize",
    "unfortunately",
];

/// The chat that surrounds a refusal: offers and alternatives, not lesson content.
const FILLER: [&str; 14] = [
    "feel free",
    "let me know",
    "if you have any",
    "if you'd like",
    "if you would like",
    "i'd be happy",
    "i would be happy",
    "i'd be glad",
    "happy to help",
    "i can help",
    "is there anything else",
    "another topic",
    "other questions",
    "instead",
];

/// Whether `text` is a refusal written as the answer: at most [`MAX_REFUSAL_WORDS`] words
/// outside headings, no code, opening with a refusal (or an apology and then a refusal), and
/// at least half of its words in refusal or chat sentences.
pub(crate) fn is_text_refusal(text: &str) -> bool {
    let mut prose = String::new();
    let mut n_words = 0;
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with("```") || line.starts_with("~~~") {
            return false;
        }
        if line.starts_with('#') {
            continue;
        }
        // A lesson is told apart after its first lines, without reading the rest.
        n_words += line.split_whitespace().count();
        if n_words > MAX_REFUSAL_WORDS {
            return false;
        }
        prose.push_str(line);
        prose.push(' ');
    }
    if n_words == 0 {
        return false;
    }
    let prose = normalize(&prose);
    let n_words = prose.split_whitespace().count();
    let sentences = sentences(&prose);
    let opens_with_refusal = match sentences.as_slice() {
        [first, ..] if is_refusal(first) => true,
        [first, second, ..] => is_apology(first) && is_refusal(second),
        _ => false,
    };
    if !opens_with_refusal {
        return false;
    }
    let chat_words: usize = sentences
        .iter()
        .filter(|sentence| {
            is_refusal(sentence)
                || is_apology(sentence)
                || FILLER.iter().any(|phrase| sentence.contains(phrase))
        })
        .map(|sentence| sentence.split_whitespace().count())
        .sum();
    chat_words * 2 >= n_words
}

/// Lower case, with typographic apostrophes as `'` and emphasis marks and quotes gone.
fn normalize(text: &str) -> String {
    text.chars()
        .filter(|c| !matches!(c, '*' | '_' | '"' | '“' | '”' | '>'))
        .map(|c| match c {
            '\u{2019}' | '\u{2018}' | '\u{00b4}' | '`' => '\'',
            _ => c,
        })
        .flat_map(char::to_lowercase)
        .collect()
}

/// Sentences, ended by `.`, `!` or `?` before a space or the end.
fn sentences(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        let next_is_space = chars.peek().is_none_or(|(_, next)| next.is_whitespace());
        if matches!(c, '.' | '!' | '?') && next_is_space {
            let end = at + c.len_utf8();
            let sentence = text[start..end].trim();
            if !sentence.is_empty() {
                out.push(sentence);
            }
            start = end;
        }
    }
    let rest = text[start..].trim();
    if !rest.is_empty() {
        out.push(rest);
    }
    out
}

/// Whether a sentence says "I cannot help/provide/comply ..." or declines.
fn is_refusal(sentence: &str) -> bool {
    if DECLINES
        .iter()
        .any(|phrase| contains_phrase(sentence, phrase))
    {
        return true;
    }
    let as_an_ai = sentence.contains("as an ai") || sentence.contains("as a language model");
    if as_an_ai
        && [
            "cannot", "can't", "unable", "not able", "don't", "do not", "not ",
        ]
        .iter()
        .any(|negative| sentence.contains(negative))
    {
        return true;
    }
    CANNOT.iter().any(|phrase| {
        phrase_positions(sentence, phrase).any(|end| refusal_verb_follows(&sentence[end..]))
    })
}

fn is_apology(sentence: &str) -> bool {
    APOLOGIES
        .iter()
        .any(|phrase| sentence.trim_start().starts_with(phrase))
}

/// Whether the words after an inability phrase name a refusal verb, allowing one adverb or
/// "be able to" in between ("I can't really help", "I won't be able to help"), and the
/// sentence does not go on to help anyway ("I can't cover everything, but here are ...").
fn refusal_verb_follows(rest: &str) -> bool {
    if rest.contains(" but ") {
        return false;
    }
    let words: Vec<&str> = rest
        .split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .filter(|word| !word.is_empty())
        .take(5)
        .collect();
    let verb_at = match words.as_slice() {
        ["be", "able", "to", ..] => 3,
        [first, ..] if first.ends_with("ly") && !REFUSAL_VERBS.contains(first) => 1,
        _ => 0,
    };
    let Some(verb) = words.get(verb_at) else {
        return false;
    };
    if !REFUSAL_VERBS.contains(verb) {
        return false;
    }
    // "I can't help but notice", "I can't help thinking": not refusals.
    let after = words.get(verb_at + 1).copied().unwrap_or_default();
    !(*verb == "help" && (after == "but" || after.ends_with("ing")))
}

/// Whether `phrase` occurs in `text` at word boundaries.
fn contains_phrase(text: &str, phrase: &str) -> bool {
    phrase_positions(text, phrase).next().is_some()
}

/// The byte offsets just past each occurrence of `phrase` at word boundaries.
fn phrase_positions<'t>(text: &'t str, phrase: &'t str) -> impl Iterator<Item = usize> + 't {
    text.match_indices(phrase).filter_map(move |(at, _)| {
        let end = at + phrase.len();
        let before_ok = text[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_alphanumeric());
        let after_ok = text[end..]
            .chars()
            .next()
            .is_none_or(|c| !c.is_alphanumeric());
        (before_ok && after_ok).then_some(end)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Refusals as OpenAI models write them (gpt-4o, gpt-4o-mini, gpt-3.5-turbo), with
    /// straight and typographic apostrophes.
    const REFUSALS: [&str; 16] = [
        "I'm sorry, but I can't help with that.",
        "I’m sorry, but I can’t assist with that.",
        "I'm sorry, but I cannot assist with that request.",
        "I can't assist with that request.",
        "I cannot comply.",
        "I'm sorry, I can't comply with that request.",
        "Sorry, I can't do that.",
        "I’m unable to help with that.",
        "I'm really sorry, but I can't provide that lesson.",
        "As an AI language model, I cannot create content that promotes harm.",
        "I apologize, but I cannot fulfill this request. As an AI developed by OpenAI, I am programmed to follow ethical guidelines which include not creating content of this kind. If you have any other topic or question in mind, feel free to ask, and I'd be happy to help!",
        "I'm sorry, but I can't help with creating that content. If you have any other questions or need assistance with a different topic, feel free to ask!",
        "I'm sorry. I can't help with that.",
        "I must decline this request.",
        "Unfortunately, I won't be able to help with this one. Let me know if there is anything else!",
        "# Lesson M0-L004: Risky topic\n\nI'm sorry, but I can't help with that.",
    ];

    #[test]
    fn refusals_are_found() {
        for text in REFUSALS {
            assert!(is_text_refusal(text), "{text:?}");
        }
    }

    #[test]
    fn lessons_and_asides_are_not_refusals() {
        let long = format!(
            "# Lesson M0-L001: Intro\n\nI can't help with everything here, but this lesson covers the basics. {}",
            "Data is recorded facts about the world. ".repeat(20)
        );
        let texts = [
            long.as_str(),
            "# Lesson M0-L001: Intro\n\nData is recorded facts.\n",
            "I can't help but notice how often data goes unchecked. Check it.",
            "I cannot stress this enough: validate your inputs.",
            "Sorry is not a data type. Tables hold rows.",
            "Here is the lesson.\n\n```python\nprint(\"I can't help with that.\")\n```\n",
            "I can't help with every case, but here are the three rules you need: keep raw data read-only, document every column, and check totals after each step. These rules prevent most reporting errors, and they cost little to follow in a small team or a large one alike, whatever tools you use.",
            "",
        ];
        for text in texts {
            assert!(!is_text_refusal(text), "{text:?}");
        }
    }

    #[test]
    fn splits_sentences() {
        assert_eq!(
            sentences("i'm sorry. i can't help! ok? v1.2 is out"),
            ["i'm sorry.", "i can't help!", "ok?", "v1.2 is out"]
        );
    }
}
