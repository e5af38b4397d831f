//! The process's resident memory, from `/proc/self/statm` (Linux).

/// Resident bytes now; 0 where `/proc` cannot be read.
pub(crate) fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * page_size()
}

/// The page size `statm` counts in: 4 KiB on the machines this runs on; `getconf` would
/// need a child process or `unsafe`.
fn page_size() -> u64 {
    4096
}
