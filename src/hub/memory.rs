//! What the hub's memory holds, from jemalloc's own statistics (the `tether` binary's
//! allocator, see `main.rs`), and giving unused pages back after a load.
//!
//! `kill -USR1 <hub pid>` logs one line of figures (`tether bench hub` reads it at each phase):
//! `allocated` is live data, `active` the pages holding it, `resident` what the allocator keeps
//! in memory, `retained` address space given back to the system but kept reserved. So allocated
//! far above its idle value means live data kept; resident far above active means pages not
//! yet returned. `TETHER_LOG=info,tether::hub::memory=debug` adds jemalloc's full report.
//!
//! Under another allocator (the library's tests) the figures are jemalloc's own, near zero.

use tikv_jemalloc_ctl::{Access, AsName, arenas, epoch, stats};

/// jemalloc's totals, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryFigures {
    pub allocated: usize,
    pub active: usize,
    pub metadata: usize,
    pub resident: usize,
    pub mapped: usize,
    pub retained: usize,
}

impl MemoryFigures {
    /// The totals now (jemalloc caches them until its epoch advances).
    pub fn read() -> Result<Self, tikv_jemalloc_ctl::Error> {
        epoch::advance()?;
        Ok(Self {
            allocated: stats::allocated::read()?,
            active: stats::active::read()?,
            metadata: stats::metadata::read()?,
            resident: stats::resident::read()?,
            mapped: stats::mapped::read()?,
            retained: stats::retained::read()?,
        })
    }
}

impl std::fmt::Display for MemoryFigures {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mb = |b: usize| b as f64 / (1024.0 * 1024.0);
        write!(
            f,
            "allocated={:.1}MB active={:.1}MB metadata={:.1}MB resident={:.1}MB mapped={:.1}MB retained={:.1}MB",
            mb(self.allocated),
            mb(self.active),
            mb(self.metadata),
            mb(self.resident),
            mb(self.mapped),
            mb(self.retained)
        )
    }
}

/// The prefix of the line [`log_figures`] writes, for readers of the log.
pub const LOG_LINE: &str = "hub memory:";

/// Log the totals (and, at debug level, jemalloc's full report).
pub fn log_figures(why: &str) {
    match MemoryFigures::read() {
        Ok(figures) => tracing::info!("{LOG_LINE} {figures} ({why})"),
        Err(e) => tracing::warn!(%e, "cannot read the allocator's statistics"),
    }
    if tracing::enabled!(tracing::Level::DEBUG) {
        let mut report = Vec::new();
        let mut options = tikv_jemalloc_ctl::stats_print::Options::default();
        options.skip_constants = true;
        options.skip_per_arena = true;
        if tikv_jemalloc_ctl::stats_print::stats_print(&mut report, options).is_ok() {
            tracing::debug!("jemalloc report:\n{}", String::from_utf8_lossy(&report));
        }
    }
}

/// Return every arena's unused pages to the system now rather than over jemalloc's decay time
/// (10 s, then only as fast as the purging thread gets to them). jemalloc purges an arena at once
/// whenever its decay time is set; setting it to its own value changes nothing else. (The
/// `arena.<i>.purge` call takes no value, which tikv-jemalloc-ctl's safe interface cannot send.)
pub fn give_back_unused() {
    let Ok(count) = arenas::narenas::read() else {
        return;
    };
    for arena in 0..count {
        for kind in ["dirty", "muzzy"] {
            let key = format!("arena.{arena}.{kind}_decay_ms\0");
            let name = key.as_bytes().name();
            // An arena not yet made has nothing to give back.
            if let Ok(ms) = Access::<isize>::read(name) {
                let _ = name.write(ms);
            }
        }
    }
}

/// Tells when connections fell far below their peak, the moment to give memory back.
#[derive(Debug, Default)]
pub struct LoadDrop {
    peak: usize,
}

impl LoadDrop {
    /// Below this many connections at the peak there is too little to give back to bother.
    const SMALL: usize = 1000;

    /// Note `open` connections; true once they fell to a quarter of the peak since the last
    /// drop (then the peak starts again from `open`).
    pub fn fell(&mut self, open: usize) -> bool {
        self.peak = self.peak.max(open);
        if self.peak >= Self::SMALL && open <= self.peak / 4 {
            self.peak = open;
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_drop_is_told_once_per_fall_from_a_large_peak() {
        let mut load = LoadDrop::default();
        // A small desk never triggers it.
        assert!(!load.fell(10));
        assert!(!load.fell(0));
        for open in [500, 5000, 20_000, 12_000, 5001] {
            assert!(!load.fell(open), "{open}");
        }
        assert!(load.fell(4999), "fell to a quarter of 20,000");
        assert!(!load.fell(100), "told once");
        assert!(!load.fell(0));
        // A new load and its fall are told again.
        assert!(!load.fell(8000));
        assert!(load.fell(1000));
    }

    #[test]
    fn figures_read_and_giving_back_never_fails_loudly() {
        let figures = MemoryFigures::read().expect("jemalloc statistics");
        assert!(figures.mapped >= figures.resident || figures.mapped == 0);
        assert!(figures.to_string().starts_with("allocated="));
        give_back_unused();
    }
}
