//! The database's URL: parsed into the client's settings (no TLS yet: a URL that asks for
//! it is refused, not silently served in plain text), and redacted for every message that
//! names it, so a password never reaches a log or an error.

use std::path::PathBuf;
use std::time::Duration;

use tokio_postgres::Config;
use tokio_postgres::config::SslMode;

use crate::error::StoreError;

/// How long one connection attempt may take (unless the URL says `connect_timeout`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest URL an error message quotes; a longer one is cut.
const URL_QUOTED_MAX: usize = 256;

/// `url` with its password replaced by `***`: the password of a URL's user information
/// (`postgres://user:***@host/db`) and a `password=` parameter (of a URL's query or of a
/// `key=value` connection string) alike, cut to a bounded length. When in doubt it hides
/// more: everything from the first `:` of the user information to the last `@` of the
/// URL, so a password holding `/`, `?` or `@` unencoded never shows.
pub fn redact(url: &str) -> String {
    let redacted = match url.find("://") {
        Some(scheme) => {
            let (head, rest) = url.split_at(scheme + 3);
            let mut out = String::with_capacity(url.len());
            out.push_str(head);
            match rest.rfind('@') {
                Some(at) => {
                    let user_info = &rest[..at];
                    match user_info.find(':') {
                        Some(colon) => {
                            out.push_str(&user_info[..colon]);
                            out.push_str(":***");
                        }
                        None => out.push_str(user_info),
                    }
                    out.push_str(&redact_parameter(&rest[at..], "password"));
                }
                None => out.push_str(&redact_parameter(rest, "password")),
            }
            out
        }
        None => redact_parameter(url, "password"),
    };
    if redacted.chars().count() > URL_QUOTED_MAX {
        format!(
            "{}...",
            redacted.chars().take(URL_QUOTED_MAX).collect::<String>()
        )
    } else {
        redacted
    }
}

/// Where each `name=` parameter's value starts in `text` (after `?`, `&`, whitespace or
/// at the start), and where it ends.
fn parameter_values<'a>(text: &'a str, name: &'a str) -> impl Iterator<Item = (usize, usize)> + 'a {
    let key = format!("{name}=");
    let bytes = text.as_bytes();
    let mut from = 0;
    std::iter::from_fn(move || {
        while let Some(found) = text[from..].find(&key) {
            let start = from + found;
            from = start + key.len();
            let boundary = start == 0
                || matches!(bytes[start - 1], b'?' | b'&' | b' ' | b'\t' | b'\n' | b'\r');
            if !boundary {
                continue;
            }
            let value = start + key.len();
            let end = if bytes.get(value) == Some(&b'\'') {
                // A quoted value of a `key=value` string: up to the closing quote.
                let mut i = value + 1;
                while i < bytes.len() && bytes[i] != b'\'' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                (i + 1).min(bytes.len())
            } else {
                text[value..]
                    .find(|c: char| c == '&' || c == '#' || c.is_whitespace())
                    .map_or(text.len(), |n| value + n)
            };
            from = end.max(from);
            return Some((value, end));
        }
        None
    })
}

/// `text` with the value of every `name=` parameter replaced by `***`.
fn redact_parameter(text: &str, name: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for (start, end) in parameter_values(text, name) {
        out.push_str(&text[copied..start]);
        out.push_str("***");
        copied = end;
    }
    out.push_str(&text[copied..]);
    out
}

/// The value of the last `name=` parameter of `url`, if any (quotes and percent escapes
/// left as they are).
fn parameter<'a>(url: &'a str, name: &'a str) -> Option<&'a str> {
    parameter_values(url, name)
        .last()
        .map(|(start, end)| url[start..end].trim_matches('\''))
}

/// The password of a URL's user information, as written (percent escapes left).
fn user_info_password(url: &str) -> Option<&str> {
    let rest = &url[url.find("://")? + 3..];
    let user_info = &rest[..rest.rfind('@')?];
    user_info.find(':').map(|colon| &user_info[colon + 1..])
}

/// A connection's settings, with what is needed to name it in a message.
#[derive(Clone)]
pub(crate) struct Target {
    /// The client's settings.
    pub(crate) config: Config,
    /// The URL without its password.
    pub(crate) url: String,
    /// The password, to take out of any message that might echo it.
    password: Option<String>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target").field("url", &self.url).finish()
    }
}

impl Target {
    /// Parses `url` (a `postgres://` URL or a `key=value` connection string). A URL that
    /// asks for TLS (`sslmode=require`, `verify-ca`, `verify-full`) is refused: TLS is not
    /// built yet.
    pub(crate) fn parse(url: &str) -> Result<Self, StoreError> {
        let redacted = redact(url);
        let refuse = |reason: String| StoreError::Open {
            path: PathBuf::from(&redacted),
            reason,
        };
        if let Some(mode) = parameter(url, "sslmode") {
            match mode {
                "disable" | "prefer" | "allow" => {}
                "require" | "verify-ca" | "verify-full" => {
                    return Err(refuse(format!(
                        "sslmode={mode} asks for TLS, which tend's PostgreSQL backend does not \
                         support yet: connect over a trusted network or a local socket with \
                         sslmode=disable"
                    )));
                }
                other => {
                    return Err(refuse(format!(
                        "sslmode={} is not a mode (disable, prefer, require, verify-ca, \
                         verify-full)",
                        crate::model::cut(other)
                    )));
                }
            }
        }
        // `allow` is libpq's; the client knows only the others, and it means no TLS here.
        let spelled = url.replace("sslmode=allow", "sslmode=disable");
        let mut config: Config = spelled.parse().map_err(|e: tokio_postgres::Error| {
            let mut reason = e.to_string();
            for password in [user_info_password(url), parameter(url, "password")]
                .into_iter()
                .flatten()
            {
                reason = scrub(&reason, Some(password));
            }
            refuse(reason)
        })?;
        // Plain text only, and said so above: no TLS negotiation to try first.
        config.ssl_mode(SslMode::Disable);
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("tend");
        }
        let password = config
            .get_password()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .filter(|p| !p.is_empty());
        Ok(Target {
            config,
            url: redacted,
            password,
        })
    }

    /// `message` (a client's or the server's) without the password, were it in it.
    pub(crate) fn scrub(&self, message: &str) -> String {
        scrub(message, self.password.as_deref())
    }

    /// The error of a connection that could not be made or used at start.
    pub(crate) fn open_error(&self, reason: impl std::fmt::Display) -> StoreError {
        StoreError::Open {
            path: PathBuf::from(&self.url),
            reason: self.scrub(&reason.to_string()),
        }
    }
}

/// `message` with every occurrence of `password` replaced by `***`, cut to a bounded
/// length.
fn scrub(message: &str, password: Option<&str>) -> String {
    const MESSAGE_MAX: usize = 1024;
    let scrubbed = match password {
        Some(password) if !password.is_empty() => message.replace(password, "***"),
        _ => message.to_owned(),
    };
    if scrubbed.chars().count() > MESSAGE_MAX {
        format!(
            "{}...",
            scrubbed.chars().take(MESSAGE_MAX).collect::<String>()
        )
    } else {
        scrubbed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_never_shows_in_a_redacted_url() {
        let cases = [
            (
                "postgres://tend:hunter2@db.example:5432/app",
                "postgres://tend:***@db.example:5432/app",
            ),
            (
                "postgresql://tend:p%40ss@db/app?sslmode=disable",
                "postgresql://tend:***@db/app?sslmode=disable",
            ),
            // Unencoded `/`, `?` and `@` in the password: everything up to the last `@`.
            (
                "postgres://tend:a/b?c@d@db/app",
                "postgres://tend:***@db/app",
            ),
            (
                "postgres://tend@db/app?password=hunter2&application_name=x",
                "postgres://tend@db/app?password=***&application_name=x",
            ),
            (
                "host=db user=tend password='hun ter2' dbname=app",
                "host=db user=tend password=*** dbname=app",
            ),
            (
                "host=db password=hunter2 dbname=app",
                "host=db password=*** dbname=app",
            ),
            ("postgres://db/app", "postgres://db/app"),
        ];
        for (url, expected) in cases {
            let redacted = redact(url);
            assert_eq!(redacted, expected, "{url}");
            assert!(!redacted.contains("hunter2") && !redacted.contains("hun ter2"));
        }
        // Bounded.
        let long = format!("postgres://tend:pw@db/{}", "x".repeat(10_000));
        assert!(redact(&long).len() < 300);
    }

    #[test]
    fn tls_is_refused_with_a_reason_and_plain_urls_parse() {
        for mode in ["require", "verify-ca", "verify-full"] {
            let url = format!("postgres://tend:hunter2@db/app?sslmode={mode}");
            let error = Target::parse(&url).unwrap_err().to_string();
            assert!(error.contains("TLS"), "{error}");
            assert!(error.contains("not support yet"), "{error}");
            assert!(!error.contains("hunter2"), "{error}");
        }
        let error = Target::parse("postgres://db/app?sslmode=bogus")
            .unwrap_err()
            .to_string();
        assert!(error.contains("sslmode=bogus"), "{error}");
        for url in [
            "postgres://tend:hunter2@db:5432/app",
            "postgres://tend@db/app?sslmode=disable",
            "postgres://tend@db/app?sslmode=prefer",
            "postgres://tend@db/app?sslmode=allow",
            "host=db user=tend password=hunter2 dbname=app",
        ] {
            let target = Target::parse(url).unwrap();
            assert!(!target.url.contains("hunter2"));
            assert_eq!(target.config.get_ssl_mode(), SslMode::Disable);
        }
        let error = Target::parse("postgres://tend:hunter2@db:notaport/app")
            .unwrap_err()
            .to_string();
        assert!(!error.contains("hunter2"), "{error}");
    }

    #[test]
    fn a_message_loses_the_password() {
        let target = Target::parse("postgres://tend:hunter2@db/app").unwrap();
        assert_eq!(
            target.scrub("role tend with hunter2 failed"),
            "role tend with *** failed"
        );
    }
}
