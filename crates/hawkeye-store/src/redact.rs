//! `REDIS_URL` as it may be shown in logs and errors: every credential the
//! redis crate would read from it replaced by `***`.
//!
//! The URL is read with the parser the redis crate itself uses (`url`), so
//! what counts as the password here is what counts as the password there: a
//! raw `@` inside a password belongs to the password (the last `@` ends the
//! user part), `?pass=` (and `password=`, whatever their percent-encoding)
//! on a Unix socket URL is a password too. What that parser cannot read is
//! not shown at all, beyond its scheme: a mistyped URL may still hold a
//! password, in a place no rule can predict.

use url::Url;

const HIDDEN: &str = "***";

/// The URL (or comma list of URLs) with any password replaced by `***`.
pub fn redact_url(url: &str) -> String {
    split_urls(url)
        .into_iter()
        .map(redact_one)
        .collect::<Vec<_>>()
        .join(",")
}

/// Splits a comma list of URLs. Only a comma followed by another
/// `scheme://` separates two: a comma inside a password does not.
fn split_urls(list: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    for (i, _) in list.match_indices(',') {
        if starts_with_scheme(list[i + 1..].trim_start()) {
            parts.push(&list[start..i]);
            start = i + 1;
        }
    }
    parts.push(&list[start..]);
    parts
}

/// `scheme://` per RFC 3986: a letter, then letters, digits, `+`, `-`, `.`.
fn starts_with_scheme(s: &str) -> bool {
    let Some((scheme, _)) = s.split_once("://") else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

fn redact_one(part: &str) -> String {
    let text = part.trim();
    if text.is_empty() {
        return part.to_string();
    }
    let Some((scheme, _)) = text.split_once("://").filter(|_| starts_with_scheme(text)) else {
        // Not a URL: a bare `host:port` is shown, anything else is not.
        let plain = text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
        return if plain {
            text.to_string()
        } else {
            HIDDEN.to_string()
        };
    };
    match Url::parse(text) {
        Ok(url) => redact_parsed(url),
        Err(_) => format!("{scheme}://{HIDDEN}"),
    }
}

fn redact_parsed(mut url: Url) -> String {
    if url.password().is_some() {
        let _ = url.set_password(Some(HIDDEN));
    } else if !url.username().is_empty() {
        // `redis://secret@host`: a lone user part is most often a password
        // written without its `:`.
        let _ = url.set_username(HIDDEN);
    }
    if url.query().is_some() {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let v = if is_secret(&k) {
                    HIDDEN.into()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
    }
    // The redis crate reads only `#insecure`; anything else there is unknown.
    if url.fragment().is_some_and(|f| f != "insecure") {
        url.set_fragment(Some(HIDDEN));
    }
    url.to_string()
}

/// A query parameter that carries a credential (`pass` is the one the
/// redis crate reads; the others are read by other clients of the same URLs).
fn is_secret(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["pass", "pwd", "secret", "token"]
        .iter()
        .any(|s| key.contains(s))
        || key == "auth"
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (URL, the secret it holds, what must still be shown).
    const CASES: &[(&str, &str, &str)] = &[
        (
            "redis://app:s3cret@db:6379/0",
            "s3cret",
            "redis://app:***@db:6379/0",
        ),
        ("redis://:s3cret@db:6379", "s3cret", "redis://:***@db:6379"),
        (
            "rediss://app:s3cret@db:6380/1#insecure",
            "s3cret",
            "#insecure",
        ),
        ("valkey://app:s3cret@db", "s3cret", "valkey://app:***@db"),
        // A raw '@' in the password: the last '@' ends it.
        (
            "redis://app:p@ss@db:6379",
            "ss@db",
            "redis://app:***@db:6379",
        ),
        ("redis://app:p@ss@w@rd@db", "rd@db", "@db"),
        ("redis://app:p%40ss@db", "p%40ss", "redis://app:***@db"),
        // A lone user part is taken for a password.
        ("redis://s3cret@db:6379", "s3cret", "redis://***@db:6379"),
        // Query parameters of Unix socket URLs, however encoded.
        (
            "redis+unix:///run/redis.sock?db=2&pass=s3cret",
            "s3cret",
            "db=2",
        ),
        (
            "redis+unix:///run/redis.sock?password=s3cret",
            "s3cret",
            "/run/redis.sock",
        ),
        (
            "unix:///run/redis.sock?p%61ss=s3cret",
            "s3cret",
            "unix:///run/redis.sock",
        ),
        (
            "valkey+unix:///run/r.sock?user=app&PASS=s3cret+x",
            "s3cret",
            "user=app",
        ),
        (
            "redis://db:6379/0?protocol=resp3&token=s3cret",
            "s3cret",
            "protocol=resp3",
        ),
        // Several URLs (a cluster), one with a comma in its password.
        (
            "redis://:s3cret@n1:7000,redis://:s3cret@n2:7001",
            "s3cret",
            "n2:7001",
        ),
        (
            "redis://:s3,cret@n1:7000, redis://n2:7001",
            "cret",
            "redis://n2:7001",
        ),
        // What the parser cannot read is not shown beyond its scheme.
        ("redis://app:pa/ss@db", "ss@db", "redis://***"),
        ("redis://app:pa?ss@db", "ss@db", "redis://***"),
        ("redis://:s3cret", "s3cret", "redis://***"),
        ("app:s3cret@db:6379", "s3cret", "***"),
        // An unknown fragment may be a mistyped password.
        ("redis://db/#s3cret", "s3cret", "redis://db/#***"),
    ];

    #[test]
    fn every_credential_form_is_hidden() {
        for (url, secret, shown) in CASES {
            let r = redact_url(url);
            assert!(!r.contains(secret), "{url} -> {r} shows {secret:?}");
            assert!(r.contains(shown), "{url} -> {r} should show {shown:?}");
        }
    }

    #[test]
    fn urls_without_credentials_are_shown_as_they_are() {
        for url in [
            "redis://127.0.0.1:6379",
            "redis+unix:///tmp/redis.sock?db=1",
            "memory://",
            "db:6379",
            "redis://[::1]:6379/2",
        ] {
            let shown = redact_url(url);
            assert!(
                shown == url || shown == format!("{url}/"),
                "{url} -> {shown}"
            );
        }
    }
}
