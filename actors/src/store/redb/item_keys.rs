//! Where an item's record and its checkpoint are kept: the key of item `index` of
//! execution `id` is the id's 26 characters then the index in 4 big-endian bytes, 30
//! bytes. Keys sort as (execution, index), as the tuple keys of format 4 did; being of
//! one width, redb takes them as they are, where it encoded a tuple into a new buffer
//! twice per insert and compared it field by field.

use std::ops::RangeInclusive;

use crate::model::ExecutionId;

/// The width of a key.
pub(crate) const LEN: usize = ulid::ULID_LEN + 4;

/// An item's key.
pub(crate) type ItemKey = [u8; LEN];

/// The key of item `index` of execution `id`.
pub(crate) fn item_key(id: ExecutionId, index: u32) -> ItemKey {
    let mut name = [0u8; ulid::ULID_LEN];
    id.as_key(&mut name);
    compose(&name, index)
}

/// The key of item `index` of the execution whose stored name is `name`, `None` unless
/// `name` is an execution id's 26 characters (as format 4's tuple keys held it).
pub(crate) fn named(name: &str, index: u32) -> Option<ItemKey> {
    Some(compose(name.as_bytes().try_into().ok()?, index))
}

/// The key of item `index` of the execution named `name`.
fn compose(name: &[u8; ulid::ULID_LEN], index: u32) -> ItemKey {
    let mut key = [0u8; LEN];
    key[..ulid::ULID_LEN].copy_from_slice(name);
    key[ulid::ULID_LEN..].copy_from_slice(&index.to_be_bytes());
    key
}

/// Every key of execution `id`'s items.
pub(crate) fn every(id: ExecutionId) -> RangeInclusive<ItemKey> {
    item_key(id, 0)..=item_key(id, u32::MAX)
}

/// The greatest key of the execution `key` belongs to.
pub(crate) fn last_of(key: &ItemKey) -> ItemKey {
    let mut last = *key;
    last[ulid::ULID_LEN..].copy_from_slice(&u32::MAX.to_be_bytes());
    last
}

/// The item index a key holds.
pub(crate) fn index(key: &ItemKey) -> u32 {
    let mut index = [0u8; 4];
    index.copy_from_slice(&key[ulid::ULID_LEN..]);
    u32::from_be_bytes(index)
}

/// The execution's name a key holds (its id's 26 characters).
pub(crate) fn name(key: &ItemKey) -> &[u8] {
    &key[..ulid::ULID_LEN]
}

#[cfg(test)]
mod tests {
    use super::{every, index, item_key, last_of, name, named};
    use crate::model::ExecutionId;

    #[test]
    fn keys_sort_by_execution_then_index_and_read_back() {
        let (a, b) = (ExecutionId::generate(), ExecutionId::generate());
        let (a, b) = if a.to_string() < b.to_string() {
            (a, b)
        } else {
            (b, a)
        };
        let keys = [
            item_key(a, 0),
            item_key(a, 1),
            item_key(a, 256),
            item_key(a, u32::MAX),
            item_key(b, 0),
        ];
        assert!(
            keys.windows(2).all(|w| w[0] < w[1]),
            "sorted as (execution, index)"
        );
        assert_eq!(index(&item_key(a, 300)), 300);
        assert_eq!(name(&item_key(a, 7)), a.to_string().as_bytes());
        assert_eq!(named(&a.to_string(), 9), Some(item_key(a, 9)));
        assert_eq!(named("not an id", 9), None);
        assert_eq!(last_of(&item_key(a, 3)), item_key(a, u32::MAX));
        let range = every(a);
        assert!(range.contains(&item_key(a, 12)) && !range.contains(&item_key(b, 0)));
    }
}
