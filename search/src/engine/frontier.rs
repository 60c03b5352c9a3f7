//! The best-first frontier: a priority queue of node ids, highest priority first, ties broken
//! by the older node so the search order is deterministic.

use std::cmp::{Ordering, Reverse};

use priority_queue::PriorityQueue;

use super::node::NodeId;
use crate::config::SearchConfig;

/// An `f64` with a total order (`f64::total_cmp`), so it can be a priority.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OrdF64(pub f64);

impl Eq for OrdF64 {}

impl PartialOrd for OrdF64 {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for OrdF64 {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// `(1-w) * cum_logprob / max(1, depth)^length_norm + w * (-energy / ebm_temperature)`; the
/// caller standardises the energy first when the scorer has a scale
/// ([`ValueScorer::energy_scale`](crate::value::ValueScorer::energy_scale)). Without an energy
/// the value term is left out (only the root of a search without a value model, or a node the
/// value model was not asked about, lacks one).
pub fn priority(config: &SearchConfig, cum_logprob: f64, depth: u32, energy: Option<f64>) -> f64 {
    let norm = f64::from(depth.max(1)).powf(config.length_norm);
    let w = config.ebm_weight;
    let policy = (1.0 - w) * cum_logprob / norm;
    match energy {
        Some(e) => policy + w * (-e / config.ebm_temperature),
        None => policy,
    }
}

#[derive(Debug, Default)]
pub struct Frontier {
    queue: PriorityQueue<NodeId, (OrdF64, Reverse<NodeId>)>,
}

impl Frontier {
    pub fn push(&mut self, id: NodeId, priority: f64) {
        self.queue.push(id, (OrdF64(priority), Reverse(id)));
    }

    pub fn pop(&mut self) -> Option<NodeId> {
        self.queue.pop().map(|(id, _)| id)
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether the next pop would come before all of `nodes` (id, priority) if they were
    /// pushed back: then popping them now was not best-first.
    pub fn outranks(&self, nodes: &[(NodeId, f64)]) -> bool {
        let Some((_, best)) = self.queue.peek() else {
            return false;
        };
        nodes
            .iter()
            .any(|&(id, priority)| *best > (OrdF64(priority), Reverse(id)))
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_highest_priority_then_oldest() {
        let mut f = Frontier::default();
        f.push(3, -1.0);
        f.push(1, -0.5);
        f.push(2, -1.0);
        f.push(4, f64::NEG_INFINITY);
        assert_eq!(
            [f.pop(), f.pop(), f.pop(), f.pop(), f.pop()],
            [Some(1), Some(2), Some(3), Some(4), None]
        );
    }

    #[test]
    fn outranks_compares_with_the_pop_order() {
        let mut f = Frontier::default();
        assert!(
            !f.outranks(&[(1, -5.0)]),
            "an empty frontier outranks nothing"
        );
        f.push(2, -1.0);
        assert!(f.outranks(&[(1, -5.0)]));
        assert!(!f.outranks(&[(1, -0.5), (3, -0.9)]));
        assert!(
            f.outranks(&[(1, -0.5), (3, -1.5)]),
            "one node of the set is behind"
        );
        // Equal priority: the older id pops first.
        assert!(!f.outranks(&[(1, -1.0)]));
        assert!(f.outranks(&[(3, -1.0)]));
    }

    #[test]
    fn priority_mixes_length_normalised_logprob_and_energy() {
        let mut c = SearchConfig {
            length_norm: 1.0,
            ..SearchConfig::default()
        };
        assert_eq!(priority(&c, -4.0, 2, None), -2.0);
        assert_eq!(priority(&c, -4.0, 0, None), -4.0);
        c.ebm_weight = 0.5;
        c.ebm_temperature = 2.0;
        assert_eq!(priority(&c, -4.0, 2, Some(3.0)), 0.5 * -2.0 + 0.5 * -1.5);
    }
}
