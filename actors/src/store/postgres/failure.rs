//! How a PostgreSQL error reads in the store's messages ([`describe`]: the server's whole
//! report, where the client's own `Display` says only "db error") and what it means for the
//! work it cut short ([`trouble`]: run it again, or answer with it).

use tokio_postgres::error::SqlState;

/// What a failed statement means for the work it was part of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Trouble {
    /// The connection is gone (closed, terminated, the server shutting down): the work
    /// may run again on another one.
    Lost,
    /// It lost a race with another transaction (serialization failure, deadlock): it
    /// may run again at once.
    Conflict,
    /// An insert met a row with its key (a unique violation): what a group commit's
    /// insert of an item's first record meets if the row is there after all.
    Duplicate,
    /// Anything else: it is the answer.
    Other,
}

/// What `e` means (see [`Trouble`]). An error without a SQLSTATE is the client's (the
/// socket, the connection task): it counts as a lost connection.
pub(crate) fn trouble(e: &tokio_postgres::Error) -> Trouble {
    match e.code() {
        Some(code) if *code == SqlState::T_R_SERIALIZATION_FAILURE => Trouble::Conflict,
        Some(code) if *code == SqlState::T_R_DEADLOCK_DETECTED => Trouble::Conflict,
        Some(code) if *code == SqlState::UNIQUE_VIOLATION => Trouble::Duplicate,
        // Class 08: connection exception; 57P0x: the server shut down or terminated us.
        Some(code) if code.code().starts_with("08") || code.code().starts_with("57P") => {
            Trouble::Lost
        }
        Some(_) => Trouble::Other,
        None => Trouble::Lost,
    }
}

/// What `e` says, in full: the server's severity, SQLSTATE, message, detail and hint, or
/// the client's error and its cause (the client's own `Display` of a server error is only
/// "db error").
pub(crate) fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut text = format!("{} {}: {}", db.severity(), db.code().code(), db.message());
        if let Some(detail) = db.detail() {
            text.push_str(&format!(" ({detail})"));
        }
        if let Some(hint) = db.hint() {
            text.push_str(&format!("; hint: {hint}"));
        }
        return text;
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(&format!(": {cause_text}"));
        }
        source = cause.source();
    }
    text
}
