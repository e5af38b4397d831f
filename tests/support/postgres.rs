//! The PostgreSQL server the tests use: its URL from `TEND_TEST_POSTGRES_URL` (the CI and
//! test scripts start a throwaway cluster and export it), a control connection of the
//! test's own, and names that no other test of this run uses.
#![allow(dead_code, unreachable_pub)]

use std::sync::atomic::{AtomicUsize, Ordering};

use tokio_postgres::{Client, NoTls};

/// The variable that holds the test server's URL.
pub const URL_VARIABLE: &str = "TEND_TEST_POSTGRES_URL";

/// The test server's URL. Without one the test is skipped (it prints `SKIPPED` and the
/// caller returns), except under CI, where it fails: CI always has a server.
pub fn url() -> Option<String> {
    match std::env::var(URL_VARIABLE) {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var_os("CI").is_some() => {
            panic!("{URL_VARIABLE} is unset in CI: the PostgreSQL tests must run there")
        }
        _ => {
            println!("SKIPPED: no PostgreSQL ({URL_VARIABLE} unset)");
            None
        }
    }
}

/// A name no other call in this process returns: `{prefix}_{pid}_{n}` (a valid schema or
/// database name for a prefix of lower-case letters).
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A connection of the test's own to `url`.
pub async fn control(url: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the test server: {e}"));
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// Drops `schemas` (and everything in them).
pub async fn drop_schemas(url: &str, schemas: &[String]) {
    let client = control(url).await;
    for schema in schemas {
        client
            .batch_execute(&format!(r#"DROP SCHEMA IF EXISTS "{schema}" CASCADE"#))
            .await
            .unwrap_or_else(|e| panic!("cannot drop schema {schema}: {e}"));
    }
}

/// `url` with its path naming database `database` (a `postgres://` URL).
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{database}", &base[..host_end]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// `url` with a parameter added to its query.
pub fn with_parameter(url: &str, parameter: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}{parameter}")
}

/// `url` with `password` as its user's password.
pub fn with_password(url: &str, password: &str) -> String {
    let scheme_end = url.find("://").map_or(0, |i| i + 3);
    let rest = &url[scheme_end..];
    match rest.find('@') {
        Some(at) => {
            let user = rest[..at].split(':').next().unwrap_or("");
            format!("{}{user}:{password}{}", &url[..scheme_end], &rest[at..])
        }
        None => format!("{}postgres:{password}@{rest}", &url[..scheme_end]),
    }
}
