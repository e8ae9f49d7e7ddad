//! What the hub's memory holds, from jemalloc's own statistics (the `tether` binary's
//! allocator, see `main.rs`), and when a load has passed.
//!
//! `kill -USR1 <hub pid>` logs one line of figures (`tether bench hub` reads it at each phase):
//! `allocated` is live data, `active` the pages holding it, `resident` what the allocator keeps
//! in memory, `retained` address space given back to the system but kept reserved. So allocated
//! far above its idle value means live data kept; resident far above active means pages not
//! yet returned.
//!
//! Under another allocator (the library's tests) the figures are jemalloc's own, near zero.

use tikv_jemalloc_ctl::{epoch, stats};

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

/// Log the totals.
pub fn log_figures(why: &str) {
    match MemoryFigures::read() {
        Ok(figures) => tracing::info!("{LOG_LINE} {figures} ({why})"),
        Err(e) => tracing::warn!(%e, "cannot read the allocator's statistics"),
    }
}

/// Tells when connections fell far below their peak, the moment to give room back. (Unused
/// pages need no push: jemalloc's purging thread returns them within its 10 s decay, and with
/// that thread on, setting an arena's decay time only leaves the purge to it.)
#[derive(Debug, Default)]
pub struct LoadDrop {
    peak: usize,
}

impl LoadDrop {
    /// Below this many connections at the peak there is too little to give back to bother.
    const SMALL: usize = 1000;

    /// Note `open` connections; true once they fell to a quarter of the peak since the last
    /// drop (then the peak starts again from `open`, so a fall told is not told again).
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
        assert!(!load.fell(2000), "told once; the peak is now 4,999");
        assert!(load.fell(100), "a quarter of that");
        assert!(!load.fell(0), "too little left to matter");
        // A new load and its fall are told again.
        assert!(!load.fell(8000));
        assert!(load.fell(1000));
    }

    #[test]
    fn presence_gives_back_its_room_after_a_load() {
        let dir = tempfile::tempdir().expect("tempdir");
        let hub = crate::hub::Hub::open(crate::hub::HubConfig {
            data_dir: dir.path().to_owned(),
            ..Default::default()
        })
        .expect("hub");
        let (out, _rx) = tokio::sync::mpsc::channel(1);
        let capacity = || hub.presence_capacity();
        let ids: Vec<String> = (0..5000).map(|i| format!("ws_{i}")).collect();
        let conns: Vec<u64> = ids
            .iter()
            .map(|id| hub.agent_online(id, out.clone()).0)
            .collect();
        for (id, conn) in ids.iter().zip(&conns).skip(10) {
            assert!(hub.agent_offline(id, *conn));
        }
        assert!(capacity() >= 5000, "a map keeps its room: {}", capacity());
        hub.shrink_presence();
        assert!(
            capacity() < 100,
            "room for the 10 still online: {}",
            capacity()
        );
        assert!(
            ids[..10]
                .iter()
                .all(|id| hub.presence(id) != crate::protocol::Presence::Offline)
        );
    }

    #[test]
    fn figures_read() {
        let figures = MemoryFigures::read().expect("jemalloc statistics");
        assert!(figures.mapped >= figures.resident, "{figures}");
        assert!(figures.to_string().starts_with("allocated="));
    }
}
