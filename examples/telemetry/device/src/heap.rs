//! Measuring a heap from outside: the largest block it can still hand out.
//!
//! Total free memory says little about a fragmented heap; what decides whether the
//! next TLS session can start is the largest single block. Allocators rarely expose
//! it (esp-alloc does not), but any allocator can be asked: try an allocation, free
//! it at once, and search for the largest size that succeeds.

/// The largest block of at most `limit` bytes that `try_alloc` succeeds for, to
/// within `granularity` bytes (rounded down): a binary search of about
/// `log2(limit / granularity)` attempts. `try_alloc(size)` must allocate `size`
/// bytes, free them at once and say whether the allocation succeeded.
///
/// ```
/// use telemetry_device::largest_allocatable;
///
/// // A heap whose largest free block is 12,345 bytes.
/// let largest = largest_allocatable(64 * 1024, 16, |size| size <= 12_345);
/// assert!((12_330..=12_345).contains(&largest));
/// ```
pub fn largest_allocatable(
    limit: usize,
    granularity: usize,
    mut try_alloc: impl FnMut(usize) -> bool,
) -> usize {
    let granularity = granularity.max(1);
    if limit == 0 || !try_alloc(granularity.min(limit)) {
        return 0;
    }
    if try_alloc(limit) {
        return limit;
    }
    // Invariant: `low` succeeds, `high` fails.
    let (mut low, mut high) = (granularity.min(limit), limit);
    while high - low > granularity {
        let mid = low + (high - low) / 2;
        if try_alloc(mid) {
            low = mid;
        } else {
            high = mid;
        }
    }
    low
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_search_finds_the_boundary_within_the_granularity() {
        for boundary in [1usize, 15, 16, 17, 1_000, 16_717, 65_535] {
            let mut attempts = 0;
            let found = largest_allocatable(64 * 1024, 16, |size| {
                attempts += 1;
                size <= boundary
            });
            if boundary < 16 {
                assert_eq!(found, 0, "{boundary}");
            } else {
                assert!(
                    found <= boundary && boundary - found < 16,
                    "{boundary}: {found}"
                );
            }
            assert!(attempts <= 14, "{boundary}: {attempts} attempts");
        }
    }

    #[test]
    fn an_empty_or_full_heap_is_answered_at_once() {
        assert_eq!(largest_allocatable(4_096, 16, |_| true), 4_096);
        assert_eq!(largest_allocatable(4_096, 16, |_| false), 0);
        assert_eq!(largest_allocatable(0, 16, |_| true), 0);
    }
}
