//! The hub's allocator: jemalloc. glibc's allocator took a fifth of the hub's CPU under the
//! county-day load, and gave an arena's free memory back only from its top (a 20 000-case demo
//! held 253 MB of heap for 83 MB in use until `malloc_trim` was called every 10 s). With jemalloc
//! `hub bench --cases 5000` completed 222 cases a second on 2 cores against 152-155, and a background thread
//! gives back whatever stayed free for half a second, wherever it lies.
//!
//! One arena a CPU rather than four: arenas keep their own free pages, and more of them than
//! threads running at once only hold more memory (20 000 cases: 272 MB with eight on 2 cores,
//! 246 MB with two). Set `_RJEM_MALLOC_CONF` to change any of it at start.
//!
//! Declared here, in the library, so that every binary linking the hub (the `hub` command and
//! its tests) runs on the allocator the figures below read.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc reads its options from this symbol at its first allocation (the `_rjem_` prefix is
/// tikv-jemalloc-sys's, which keeps it apart from any other malloc in the process).
#[allow(non_upper_case_globals)]
#[export_name = "_rjem_malloc_conf"]
pub static malloc_conf: &[u8; 79] = b"percpu_arena:percpu,background_thread:true,dirty_decay_ms:500,muzzy_decay_ms:0\0";

/// The heap's bytes allocated and not yet freed; None if jemalloc does not answer.
pub fn heap_in_use() -> Option<u64> {
    // The statistics are a snapshot taken at each epoch.
    tikv_jemalloc_ctl::epoch::advance().ok()?;
    tikv_jemalloc_ctl::stats::allocated::read().ok().map(|bytes| bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// The bytes of the heap's pages the process holds resident, free or not.
    fn heap_resident() -> Option<u64> {
        tikv_jemalloc_ctl::epoch::advance().ok()?;
        tikv_jemalloc_ctl::stats::resident::read().ok().map(|bytes| bytes as u64)
    }

    #[test]
    fn the_options_are_read_at_start() {
        assert!(tikv_jemalloc_ctl::opt::background_thread::read().expect("jemalloc answers"));
        // SAFETY: `opt.percpu_arena` is one of jemalloc's string options, a pointer to a
        // static NUL-terminated name.
        let arenas = unsafe { tikv_jemalloc_ctl::raw::read_str(b"opt.percpu_arena\0") }.expect("jemalloc answers");
        let arenas = std::ffi::CStr::from_bytes_until_nul(arenas).expect("a C string").to_string_lossy();
        assert_eq!(arenas, "percpu", "one arena a CPU");
    }

    #[test]
    fn freed_memory_goes_back_to_the_system() {
        // Blocks of 1 KiB, one in 64 kept: the freed runs lie between blocks still in use.
        let blocks: Vec<Vec<u8>> = (0..100_000).map(|n| vec![n as u8; 1024]).collect();
        let before = heap_resident().expect("jemalloc tells its heap");
        let kept: Vec<Vec<u8>> = blocks.into_iter().step_by(64).collect();
        let in_use = heap_in_use().expect("jemalloc tells its heap");
        assert!(in_use < 1_000_000_000, "{in_use} bytes in use");
        let deadline = Instant::now() + Duration::from_secs(10);
        let given_back = loop {
            let given_back = before.saturating_sub(heap_resident().expect("jemalloc tells its heap"));
            if given_back > 50_000_000 || Instant::now() > deadline {
                break given_back;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        assert!(given_back > 50_000_000, "only {given_back} bytes went back");
        assert!(kept.iter().enumerate().all(|(n, block)| block[0] == (n * 64) as u8));
    }
}
