//! Giving freed heap memory back to the operating system.
//!
//! glibc's malloc returns memory to the system only from the top of a heap; memory freed in
//! the middle (thousands of closed connections' buffers, interleaved with allocations that
//! live on) stays in the process's RSS for good. Measured on a dev build with 2,000 SSE
//! connections replaying a backlog: the anonymous RSS went 5 → 55 MB and stayed at 52 MB
//! after they closed, even with one arena; `malloc_trim(0)`, which releases the free pages
//! inside every arena, brought it back to 12 MB. Other allocators and platforms: nothing to do.

/// Releases free heap pages to the system (glibc); true if some were released.
pub fn release_freed_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: malloc_trim has no preconditions; it takes the allocator's own locks.
        unsafe { libc::malloc_trim(0) == 1 }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn releasing_is_safe_to_call_any_time() {
        let big: Vec<Vec<u8>> = (0..64).map(|_| vec![1u8; 64 * 1024]).collect();
        drop(big);
        let _ = super::release_freed_memory();
        let _ = super::release_freed_memory();
    }
}
