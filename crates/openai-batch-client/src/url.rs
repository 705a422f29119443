//! Base URLs: joining an endpoint's path to one, and showing one without its credentials.

/// `url` with its credentials masked, for showing it: a password (or a user name standing
/// alone, which may be a key) in `http://user:key@host` and every query value (`?key=…`)
/// become `***`. A URL without credentials comes back unchanged.
pub fn redacted_url(url: &str) -> String {
    let mut parsed = match reqwest::Url::parse(url) {
        Ok(parsed) if parsed.has_host() => parsed,
        // Not a URL a client can use (`u:sk-…@host` parses with the scheme `u`).
        _ => return redacted_unparsed(url),
    };
    let mut changed = false;
    if parsed.password().is_some() {
        changed |= parsed.set_password(Some("***")).is_ok();
    } else if !parsed.username().is_empty() {
        changed |= parsed.set_username("***").is_ok();
    }
    if parsed.query().is_some() {
        let masked: Vec<String> = parsed
            .query_pairs()
            .map(|(name, _)| format!("{name}=***"))
            .collect();
        parsed.set_query(Some(&masked.join("&")));
        changed = true;
    }
    if changed {
        parsed.to_string()
    } else {
        url.to_owned()
    }
}

/// What [`redacted_url`] does, on text that does not parse as a URL.
fn redacted_unparsed(url: &str) -> String {
    let mut shown = url.to_owned();
    if let Some(query) = shown.find('?') {
        shown.replace_range(query + 1.., "***");
    }
    let authority = shown.find("://").map_or(0, |at| at + 3);
    let end = shown[authority..]
        .find('/')
        .map_or(shown.len(), |at| authority + at);
    if let Some(at) = shown[authority..end].rfind('@') {
        shown.replace_range(authority..authority + at, "***");
    }
    shown
}

/// A base URL split where endpoint paths go: before its query string, which every request
/// keeps (`http://host/v1?key=k` + `/files` is `http://host/v1/files?key=k`).
#[derive(Debug, Clone)]
pub(crate) struct BaseUrl {
    /// Scheme, host and path, without a trailing `/`.
    prefix: String,
    /// The query string without its `?`, when there is one.
    query: Option<String>,
}

impl BaseUrl {
    /// Splits `url`.
    pub(crate) fn new(url: &str) -> BaseUrl {
        let (prefix, query) = match url.split_once('?') {
            Some((prefix, query)) => (prefix, Some(query.to_owned())),
            None => (url, None),
        };
        BaseUrl {
            prefix: prefix.trim_end_matches('/').to_owned(),
            query: query.filter(|query| !query.is_empty()),
        }
    }

    /// The URL of `path` (which starts with `/` and may carry its own query).
    pub(crate) fn join(&self, path: &str) -> String {
        match &self.query {
            None => format!("{}{path}", self.prefix),
            Some(query) if path.contains('?') => format!("{}{path}&{query}", self.prefix),
            Some(query) => format!("{}{path}?{query}", self.prefix),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_passwords_lone_user_names_and_query_values() {
        assert_eq!(
            redacted_url("http://u:sk-secret@host:8080/v1"),
            "http://u:***@host:8080/v1"
        );
        assert_eq!(
            redacted_url("http://sk-secret@host/v1"),
            "http://***@host/v1"
        );
        assert_eq!(
            redacted_url("https://host/v1?key=sk-secret&x=1"),
            "https://host/v1?key=***&x=***"
        );
        assert_eq!(
            redacted_url("https://api.openai.com/v1"),
            "https://api.openai.com/v1"
        );
        assert_eq!(redacted_url("not a url u:sk-1@h?key=sk-2"), "***@h?***");
        assert_eq!(redacted_url("u:sk-1@host/v1"), "***@host/v1");
    }

    #[test]
    fn joins_paths_before_the_query() {
        let base = BaseUrl::new("http://host/v1/?key=k");
        assert_eq!(base.join("/files"), "http://host/v1/files?key=k");
        assert_eq!(
            base.join("/batches?limit=2"),
            "http://host/v1/batches?limit=2&key=k"
        );
        assert_eq!(
            BaseUrl::new("http://host/v1/").join("/files"),
            "http://host/v1/files"
        );
    }
}
