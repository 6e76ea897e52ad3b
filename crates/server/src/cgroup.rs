//! The memory the container is allowed, where the kernel says: so a `cache.max_bytes` the pod
//! cannot hold is a warning at start-up and in `coffer config check`, not an OOM kill later.

use std::path::Path;

/// cgroup v2's limit, then v1's. `None` when unlimited or unreadable (not in a container).
pub fn memory_limit() -> Option<u64> {
    read_limit(Path::new("/sys/fs/cgroup/memory.max"))
        .or_else(|| read_limit(Path::new("/sys/fs/cgroup/memory/memory.limit_in_bytes")))
}

fn read_limit(path: &Path) -> Option<u64> {
    parse_limit(&std::fs::read_to_string(path).ok()?)
}

/// `max` (v2) and v1's "no limit" (a page-rounded `i64::MAX`) mean unlimited.
pub fn parse_limit(text: &str) -> Option<u64> {
    let bytes: u64 = text.trim().parse().ok()?;
    (bytes < 1 << 62).then_some(bytes)
}

/// The share of the container's memory the caches may take: the rest is the runtime, the
/// database pools, requests and answers in flight, and the allocator's slack (measured in
/// docs/benchmarks.md, "Memory bounded in bytes").
pub const CACHE_SHARE_PERCENT: u64 = 60;

/// A warning when `max_bytes` leaves the rest of the process too little of `limit`.
pub fn budget_warning(max_bytes: u64, limit: Option<u64>) -> Option<String> {
    let limit = limit?;
    let allowed = limit / 100 * CACHE_SHARE_PERCENT;
    (max_bytes > allowed).then(|| {
        format!(
            "cache.max_bytes ({}) exceeds {CACHE_SHARE_PERCENT}% of the container's memory limit ({}): \
             the process may be killed for memory before the caches evict; lower cache.max_bytes to at most {}",
            bytesize::ByteSize::b(max_bytes),
            bytesize::ByteSize::b(limit),
            bytesize::ByteSize::b(allowed),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_read_as_the_kernel_writes_them() {
        assert_eq!(parse_limit("536870912\n"), Some(536_870_912));
        assert_eq!(parse_limit("max\n"), None);
        assert_eq!(parse_limit("9223372036854771712\n"), None);
        assert_eq!(parse_limit(""), None);
    }

    #[test]
    fn a_budget_the_pod_cannot_hold_is_named() {
        let mib = 1 << 20;
        assert_eq!(budget_warning(192 * mib, Some(512 * mib)), None);
        assert_eq!(budget_warning(192 * mib, None), None);
        let w = budget_warning(400 * mib, Some(512 * mib)).unwrap_or_default();
        assert!(w.contains("cache.max_bytes") && w.contains("512"), "{w}");
    }
}
