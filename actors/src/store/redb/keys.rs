//! Idempotency keys: which execution a submit's key belongs to, and a digest of the plan it
//! was submitted with. Written in the commit that stores the execution's record, removed
//! with the execution (its deletion finds the key through `execution_keys`).

use redb::{Database, ReadableDatabase, Table};

use super::tables::KEYS;
use crate::error::StoreError;
use crate::model::KeyOwner;

/// The length of a value in `keys`: the execution id's 26 characters, then the digest.
const VALUE_LEN: usize = ulid::ULID_LEN + 32;

/// A key's owner as `keys` stores it: the id, then the digest.
fn encode(owner: &KeyOwner) -> [u8; VALUE_LEN] {
    let mut value = [0u8; VALUE_LEN];
    let mut id = [0u8; ulid::ULID_LEN];
    value[..ulid::ULID_LEN].copy_from_slice(owner.id.as_key(&mut id).as_bytes());
    value[ulid::ULID_LEN..].copy_from_slice(&owner.digest);
    value
}

/// A key's owner from its stored value; `key` names it in the error.
fn decode(key: &str, bytes: &[u8]) -> Result<KeyOwner, StoreError> {
    let bad = |why: &str| StoreError::Decode {
        what: format!("the owner of idempotency key `{}`", crate::model::cut(key)),
        reason: why.to_owned(),
    };
    if bytes.len() != VALUE_LEN {
        return Err(bad("wrong length"));
    }
    let id = std::str::from_utf8(&bytes[..ulid::ULID_LEN])
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("not an execution id"))?;
    let mut digest = [0u8; 32];
    digest.copy_from_slice(&bytes[ulid::ULID_LEN..]);
    Ok(KeyOwner { id, digest })
}

/// Gives `key` to `owner` (in the writer's transaction).
pub(super) fn insert(
    keys: &mut Table<&str, &[u8]>,
    execution_keys: &mut Table<&str, &str>,
    key: &str,
    owner: &KeyOwner,
) -> Result<(), redb::StorageError> {
    keys.insert(key, encode(owner).as_slice())?;
    let mut id = [0u8; ulid::ULID_LEN];
    execution_keys.insert(owner.id.as_key(&mut id), key)?;
    Ok(())
}

/// Takes away the key of execution `id`, if it has one (in the writer's transaction).
pub(super) fn remove(
    keys: &mut Table<&str, &[u8]>,
    execution_keys: &mut Table<&str, &str>,
    id: &str,
) -> Result<(), redb::StorageError> {
    let key = execution_keys.remove(id)?.map(|k| k.value().to_owned());
    if let Some(key) = key {
        keys.remove(key.as_str())?;
    }
    Ok(())
}

/// Who has `key`, if anyone. Blocking.
pub(crate) fn owner(db: &Database, key: &str) -> Result<Option<KeyOwner>, StoreError> {
    let read = |e: &dyn std::fmt::Display| StoreError::Read(e.to_string());
    let txn = db.begin_read().map_err(|e| read(&e))?;
    let keys = txn.open_table(KEYS).map_err(|e| read(&e))?;
    match keys.get(key).map_err(|e| read(&e))? {
        Some(value) => decode(key, value.value()).map(Some),
        None => Ok(None),
    }
}
