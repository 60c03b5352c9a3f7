//! What the sweep tells its running searches about its tail: how many frontier nodes one
//! expansion pops (`search.batch_expansion_size`, unless `sweep.fill_tail` widens it) and
//! whether to speculate (`sweep.speculate_tail`). The sweep is the only writer; each running
//! search reads it before every expansion, so a change reaches the next request of every
//! search. One value serves all running searches: in the tail they share the free slots
//! equally.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

#[derive(Debug)]
pub struct ExpansionWidth {
    nodes: AtomicUsize,
    speculate: AtomicBool,
}

impl ExpansionWidth {
    pub fn new(nodes: usize) -> Self {
        Self {
            nodes: AtomicUsize::new(nodes.max(1)),
            speculate: AtomicBool::new(false),
        }
    }

    pub fn get(&self) -> usize {
        self.nodes.load(Ordering::Relaxed)
    }

    pub fn set(&self, nodes: usize) {
        self.nodes.store(nodes.max(1), Ordering::Relaxed);
    }

    /// Whether the searches speculate now (as with `search.speculate`).
    pub fn speculate(&self) -> bool {
        self.speculate.load(Ordering::Relaxed)
    }

    pub fn set_speculate(&self, on: bool) {
        self.speculate.store(on, Ordering::Relaxed);
    }
}

/// The sweep's tail: nothing queued and fewer theorems running than slots, so the generate
/// server has capacity no theorem will claim.
pub fn in_tail(concurrency: usize, running: usize, queued: usize) -> bool {
    queued == 0 && running > 0 && running < concurrency
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
    if !in_tail(concurrency, running, queued) {
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
    fn the_tail_is_free_slots_with_nothing_queued() {
        assert!(in_tail(4, 3, 0));
        assert!(in_tail(4, 1, 0));
        assert!(!in_tail(4, 4, 0), "every slot busy");
        assert!(!in_tail(4, 3, 1), "a queued theorem takes the free slot");
        assert!(!in_tail(4, 0, 0), "nothing running");
    }

    #[test]
    fn a_width_is_at_least_one_node() {
        let width = ExpansionWidth::new(0);
        assert_eq!(width.get(), 1);
        width.set(3);
        assert_eq!(width.get(), 3);
    }
}
