//! Endpoint URLs: checked when read, and stripped of credentials before any
//! of them is printed.

/// An endpoint must be an http(s) URL with a host.
pub(crate) fn check_url(raw: &str) -> Result<(), String> {
    let parsed = raw.parse::<reqwest::Url>().map_err(|e| format!("not a URL ({e})"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("scheme must be http or https, not {}", parsed.scheme()));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("the URL has no host".to_string());
    }
    Ok(())
}

/// The URL as it may be printed: a user name or password becomes `***`, and
/// so does every query value (`?api_key=...` is how some backends take a
/// key). A value that is not an http(s) URL loses what comes before its
/// last `@` and after its first `?` or `#` the same way.
pub(crate) fn redact_url(raw: &str) -> String {
    let parsed = raw.parse::<reqwest::Url>().ok().filter(|url| matches!(url.scheme(), "http" | "https"));
    let Some(mut url) = parsed else {
        let mut shown = match raw.rsplit_once('@') {
            Some((_, host)) => format!("***@{host}"),
            None => raw.to_string(),
        };
        if let Some(start) = shown.find(['?', '#']) {
            shown.replace_range(start + 1.., "***");
        }
        return shown;
    };
    if !url.username().is_empty() || url.password().is_some() {
        let _ = url.set_username("***");
        let _ = url.set_password(None);
    }
    if url.query().is_some() {
        let names: Vec<String> = url.query_pairs().map(|(name, _)| name.into_owned()).collect();
        url.query_pairs_mut().clear().extend_pairs(names.iter().map(|name| (name.as_str(), "***")));
    }
    if url.fragment().is_some() {
        url.set_fragment(Some("***"));
    }
    url.to_string().replace("%2A%2A%2A", "***")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_and_query_values_never_survive() {
        for (raw, shown) in [
            ("https://user:hunter2@api.example.com/v1/traces", "https://***@api.example.com/v1/traces"),
            (
                "https://api.example.com/v1/traces?api_key=hunter2&x=1",
                "https://api.example.com/v1/traces?api_key=***&x=***",
            ),
            ("http://collector:4318/v1/traces", "http://collector:4318/v1/traces"),
            ("user:hunter2@collector:4318", "***@collector:4318"),
            ("collector:4318?api_key=hunter2", "collector:4318?***"),
        ] {
            let redacted = redact_url(raw);
            assert_eq!(redacted, shown, "{raw}");
        }
    }
}
