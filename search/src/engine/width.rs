//! How many frontier nodes one expansion pops: `search.batch_expansion_size`, unless the sweep
//! widens it for the theorems still running in its tail (`sweep.fill_tail`). The sweep is the
//! only writer; each running search reads it before every expansion, so a change reaches the
//! next request of every search. One value serves all running searches: in the tail they
//! share the free slots equally.

use std::sync::atomic::{AtomicUsize, Ordering};

#[derive(Debug)]
pub struct ExpansionWidth(AtomicUsize);

impl ExpansionWidth {
    pub fn new(nodes: usize) -> Self {
        Self(AtomicUsize::new(nodes.max(1)))
    }

    pub fn get(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }

    pub fn set(&self, nodes: usize) {
        self.0.store(nodes.max(1), Ordering::Relaxed);
    }
}

/// The width under `sweep.fill_tail`: `batch_expansion_size` while every slot is busy or a
/// queued theorem will take a free one; in the tail (nothing queued, fewer running than
/// slots) each running theorem gets the free slots' share too, so about as many prompts go
/// to the generate server per round as with all slots busy.
pub fn tail_width(
    batch_expansion_size: usize,
    concurrency: usize,
    running: usize,
    queued: usize,
) -> usize {
    if queued > 0 || running == 0 || running >= concurrency {
        return batch_expansion_size;
    }
    batch_expansion_size * concurrency.div_ceil(running)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_width_grows_only_in_the_tail() {
        // Slots all busy, or a theorem waiting to start: unchanged.
        assert_eq!(tail_width(1, 4, 4, 0), 1);
        assert_eq!(tail_width(2, 4, 2, 5), 2);
        // The tail: the free slots are shared among the running theorems.
        assert_eq!(tail_width(1, 4, 3, 0), 2);
        assert_eq!(tail_width(1, 4, 2, 0), 2);
        assert_eq!(tail_width(1, 4, 1, 0), 4);
        assert_eq!(tail_width(2, 8, 3, 0), 6);
        assert_eq!(tail_width(1, 4, 0, 0), 1);
    }

    #[test]
    fn a_width_is_at_least_one_node() {
        let width = ExpansionWidth::new(0);
        assert_eq!(width.get(), 1);
        width.set(3);
        assert_eq!(width.get(), 3);
    }
}
