//! Training examples for InfoNCE: one proof-path node and K negatives from three tiers.
//!
//! Hard negatives are the positive's off-path siblings (the exact choice the search faced),
//! medium ones other off-path nodes of the same run, easy ones off-path nodes of other
//! theorems. BurnQED's head drowned in easy negatives, so the tiers are drawn by ratio and a
//! shortfall in one tier is filled from the next (hard -> medium -> easy). A negative whose
//! state text equals the positive's (a transposition) is never used: its embedding is the same.
//! Terminal nodes (`proof`, `unverified`) are neither positives nor negatives: the search
//! never scores them, and their constant empty state would make the head look better than it
//! is (and teach it that "no goals" is bad, for an `unverified` one). A state that occurs
//! several times in one run counts once, as a positive and as a negative. With
//! `NegativesFrom::Expanded`, never-expanded (`open`) nodes are no negatives: the search never
//! learned what lies below them.

use formats::NodeStatus;
use std::collections::{HashMap, HashSet};

use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::Rng;

use crate::trajectories::Trajectories;

/// Tries per easy negative to find a node of another theorem before giving up.
const EASY_TRIES: usize = 32;

/// How many negatives of each tier to aim for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TierPlan {
    pub negatives: usize,
    pub hard_ratio: f64,
    pub medium_ratio: f64,
    pub negatives_from: NegativesFrom,
}

impl TierPlan {
    /// Target counts `(hard, medium, easy)`, summing to `negatives`.
    pub fn counts(&self) -> (usize, usize, usize) {
        let k = self.negatives;
        let hard = ((k as f64 * self.hard_ratio).round() as usize).min(k);
        let medium = ((k as f64 * self.medium_ratio).round() as usize).min(k - hard);
        (hard, medium, k - hard - medium)
    }
}

/// Which off-path nodes may be negatives (`ebm train --negatives-from`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NegativesFrom {
    /// Only nodes the search expanded (or stopped at the depth limit): not `open`.
    Expanded,
    /// Every non-terminal off-path node.
    #[default]
    All,
}

impl std::str::FromStr for NegativesFrom {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "expanded" => Ok(NegativesFrom::Expanded),
            "all" => Ok(NegativesFrom::All),
            other => Err(format!("{other:?}: expected \"expanded\" or \"all\"")),
        }
    }
}

/// One InfoNCE group: node indices, the positive first.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    pub positive: usize,
    pub negatives: Vec<usize>,
}

/// Negatives drawn per tier over a whole sample (how often the shortfall rule kicked in).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct TierCounts {
    pub hard: usize,
    pub medium: usize,
    pub easy: usize,
    /// Slots filled by repeating an already drawn negative (all tiers exhausted).
    pub repeated: usize,
}

/// The node pools of one split (train or validation).
#[derive(Debug)]
pub struct Sampler<'a> {
    traj: &'a Trajectories,
    plan: TierPlan,
    positives: Vec<usize>,
    off_path_by_run: HashMap<usize, Vec<usize>>,
    off_path_all: Vec<usize>,
    /// Every node that may be a negative (the union of the pools above).
    negative: HashSet<usize>,
}

impl<'a> Sampler<'a> {
    /// `usable` says which nodes may appear at all (in the split and embedded).
    pub fn new(traj: &'a Trajectories, plan: TierPlan, usable: impl Fn(usize) -> bool) -> Self {
        // The first node of each (run, state): later repeats are the same example again.
        let mut seen: HashSet<(usize, &str)> = HashSet::new();
        let usable: HashSet<usize> = (0..traj.nodes.len())
            .filter(|&i| {
                let n = &traj.nodes[i];
                usable(i) && !n.status.is_terminal() && seen.insert((n.run, n.state.as_str()))
            })
            .collect();
        let mut positives = Vec::new();
        let mut off_path_by_run: HashMap<usize, Vec<usize>> = HashMap::new();
        let mut off_path_all = Vec::new();
        for (i, node) in traj.nodes.iter().enumerate() {
            if !usable.contains(&i) {
                continue;
            }
            if node.on_path {
                if node.parent.is_some() {
                    positives.push(i);
                }
            } else if plan.negatives_from == NegativesFrom::All || node.status != NodeStatus::Open {
                off_path_by_run.entry(node.run).or_default().push(i);
                off_path_all.push(i);
            }
        }
        let negative: HashSet<usize> = off_path_all.iter().copied().collect();
        Self {
            traj,
            plan,
            positives,
            off_path_by_run,
            off_path_all,
            negative,
        }
    }

    /// Proof-path nodes (the root and terminal nodes excluded), each state once per run.
    pub fn positives(&self) -> &[usize] {
        &self.positives
    }

    /// One example for `positive`, or `None` when no negative exists at all.
    pub fn sample(
        &self,
        positive: usize,
        rng: &mut StdRng,
        counts: &mut TierCounts,
    ) -> Option<Example> {
        let traj = self.traj;
        let pos_node = &traj.nodes[positive];
        let differs = |i: &usize| traj.nodes[*i].state != pos_node.state;
        let (want_hard, want_medium, want_easy) = self.plan.counts();
        let mut chosen: Vec<usize> = Vec::with_capacity(self.plan.negatives);

        let hard: Vec<usize> = traj
            .siblings_off_path(positive)
            .into_iter()
            .filter(|i| self.negative.contains(i) && differs(i))
            .collect();
        let hard_set: HashSet<usize> = hard.iter().copied().collect();
        chosen.extend(hard.choose_multiple(rng, want_hard).copied());
        counts.hard += chosen.len();
        let shortfall = want_hard - chosen.len();

        let medium: Vec<usize> = self
            .off_path_by_run
            .get(&pos_node.run)
            .map(|nodes| {
                nodes
                    .iter()
                    .copied()
                    .filter(|i| !hard_set.contains(i) && differs(i))
                    .collect()
            })
            .unwrap_or_default();
        let before = chosen.len();
        chosen.extend(
            medium
                .choose_multiple(rng, want_medium + shortfall)
                .copied(),
        );
        counts.medium += chosen.len() - before;
        let shortfall = want_medium + shortfall - (chosen.len() - before);

        let theorem = &traj.runs[pos_node.run].theorem;
        let mut easy_needed = want_easy + shortfall;
        let mut tries = 0;
        while easy_needed > 0
            && tries < EASY_TRIES * (want_easy + shortfall)
            && !self.off_path_all.is_empty()
        {
            tries += 1;
            let i = self.off_path_all[rng.random_range(0..self.off_path_all.len())];
            if &traj.runs[traj.nodes[i].run].theorem != theorem
                && differs(&i)
                && !chosen
                    .iter()
                    .any(|&c| traj.nodes[c].state == traj.nodes[i].state)
            {
                chosen.push(i);
                counts.easy += 1;
                easy_needed -= 1;
            }
        }
        if chosen.is_empty() {
            return None;
        }
        // Every group needs K negatives for one batch tensor: repeat drawn ones if short.
        while chosen.len() < self.plan.negatives {
            let again = chosen[rng.random_range(0..chosen.len())];
            chosen.push(again);
            counts.repeated += 1;
        }
        Some(Example {
            positive,
            negatives: chosen,
        })
    }

    /// One example per positive, in a shuffled order.
    pub fn epoch(&self, rng: &mut StdRng, counts: &mut TierCounts) -> Vec<Example> {
        let mut order = self.positives.clone();
        order.shuffle(rng);
        order
            .into_iter()
            .filter_map(|p| self.sample(p, rng, counts))
            .collect()
    }
}
