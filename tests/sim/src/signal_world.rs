//! A generated world for the value-model loop (`stepwise iterate`): dead ends that only their
//! text gives away, which the policy sometimes favours, so a value model trained on one set of
//! theorems' trees can steer the search of others where the policy's log-probs cannot.
//!
//! Theorem `i` is proved in 2 to 4 steps (`unfold_step`, then `rfl`). At every state on the
//! proof path the model also proposes tactics that lead to a goal of `False` (`exfalso`,
//! `by_contra`, ...). At most decisions the policy is right: the path's tactic is its
//! favourite. At every `misled_every`-th one (by theorem and step) it is misled: most dead
//! ends rank above the path. Below each dead end a chain of `dead_end_depth` rewrites keeps
//! the goal `False` (each step likelier than any first step), then the model knows nothing
//! more. So the policy alone expands the dead ends it favours, with their chains, before the
//! next step of the proof; a search that reads `⊢ False` as hopeless expands only the path;
//! one that prefers it opens every dead end. The signal is textual (`⊢ False` as the target,
//! the same in every theorem), which is what lets a head trained on some theorems generalise
//! to the rest.
//!
//! The policy is better than chance overall (right at most decisions), as a real one is, so
//! a head that only adds noise to the priority costs expansions where the policy was right
//! about as often as it saves them where it was misled: a world where the policy were wrong
//! everywhere would reward any noise, and the shuffled-label control could not tell a learned
//! head from a lucky one.
//!
//! Every child of a decision adds `facts` hypotheses of its own, of varied shape: siblings
//! differ in much more than the signal, so a head that did not learn the signal ranks them by
//! chance rather than by a side of the signal its random weights happen to take, and the
//! control stays a control.
//!
//! Every state a theorem's tree can hold is distinct (a stage hypothesis names the step and
//! each child adds its own facts), so the tree has no transpositions, and each
//! decision has exactly `1 + dead_ends.len()` live children: a head trained with only
//! sibling negatives (`ebm train --hard-ratio 1`) sees the choice the search faces.

use crate::world::{Effect, World, WorldState, WorldTactic, WorldTheorem};

/// The shape of a generated world. Log-probs are per completion, as the world stores them.
#[derive(Debug, Clone, PartialEq)]
pub struct SignalWorld {
    /// Theorems, named `sig_0`, `sig_1`, ...
    pub theorems: usize,
    /// Log-probs of the dead-end tactics at every state on the proof path.
    pub dead_ends: Vec<f64>,
    /// Log-prob of the path's tactic where the policy is right.
    pub path_logprob: f64,
    /// Log-prob of the path's tactic where the policy is misled.
    pub misled_path_logprob: f64,
    /// Decision `stage` of theorem `i` is misled when `(i + stage) % misled_every == 0`.
    pub misled_every: usize,
    /// Rewrites below each dead end before the model knows nothing more.
    pub dead_end_depth: usize,
    /// Log-prob of each of those rewrites.
    pub chain_logprob: f64,
    /// Hypotheses of varied shape each child of a decision (the path's and every dead end)
    /// adds, its own: siblings then differ in much more than the signal, so a head that has
    /// not learned the signal ranks them by what it happens to make of the rest.
    pub facts: usize,
}

impl Default for SignalWorld {
    fn default() -> Self {
        SignalWorld {
            theorems: 48,
            dead_ends: vec![-0.6, -0.9, -1.2, -1.5],
            path_logprob: -0.3,
            misled_path_logprob: -1.35,
            misled_every: 2,
            dead_end_depth: 2,
            chain_logprob: -0.2,
            facts: 2,
        }
    }
}

/// The dead-end tactics, most likely first; a world uses as many as it has log-probs for.
const DEAD_ENDS: [&str; 6] = [
    "exfalso",
    "by_contra hc",
    "by_contra! hc",
    "contrapose! h₀",
    "contrapose! h₁",
    "refine absurd h₁ ?_",
];

/// A reproducible mix of `parts` (splitmix64), for the facts' shapes.
fn mix(parts: &[usize]) -> u64 {
    parts.iter().fold(0x9e37_79b9_7f4a_7c15u64, |h, &p| {
        let mut z = h ^ (p as u64).wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    })
}

/// `count` hypotheses of varied shape, one a line, each led by a newline; `key` picks them.
fn facts(key: &[usize], count: usize) -> String {
    const TERMS: [&str; 8] = [
        "n",
        "m",
        "n + m",
        "2 * n",
        "m ^ 2",
        "Nat.succ n",
        "n % 7",
        "Nat.gcd n m",
    ];
    const RELATIONS: [&str; 5] = ["<", "≤", "≠", "∣", "="];
    const NAMES: [&str; 6] = ["hf", "hg", "hk", "hq", "hu", "hw"];
    (0..count)
        .map(|k| {
            let h = mix(&[key, &[k]].concat());
            let pick = |shift: u32, len: usize| ((h >> shift) % len as u64) as usize;
            format!(
                "\n{}{} : {} {} {} + {}",
                NAMES[pick(0, NAMES.len())],
                k,
                TERMS[pick(8, TERMS.len())],
                RELATIONS[pick(16, RELATIONS.len())],
                TERMS[pick(24, TERMS.len())],
                (h >> 32) % 97
            )
        })
        .collect()
}

impl SignalWorld {
    /// Whether the policy favours dead ends over the path at `stage` of theorem `i`.
    pub fn misled(&self, i: usize, stage: usize) -> bool {
        (i + stage).is_multiple_of(self.misled_every.max(1))
    }

    /// Steps of theorem `i`'s proof: 2, 3 or 4, on a period of 5 so that a split by
    /// position ([`split`]) takes every length to both sides.
    pub fn proof_length(i: usize) -> usize {
        2 + (i % 5) % 3
    }

    pub fn name(i: usize) -> String {
        format!("sig_{i}")
    }

    pub fn build(&self) -> World {
        assert!(
            self.dead_ends.len() <= DEAD_ENDS.len(),
            "at most {} dead ends per state",
            DEAD_ENDS.len()
        );
        World {
            modules: crate::world::default_modules(),
            theorems: (0..self.theorems).map(|i| self.theorem(i)).collect(),
        }
    }

    fn theorem(&self, i: usize) -> WorldTheorem {
        let (a, b) = (i % 7 + 2, 10 + 3 * i);
        let context = format!("n m : ℕ\nh₀ : {a} < n\nh₁ : n + m = {b}");
        let steps = Self::proof_length(i);
        let value = |stage: usize| 5 * i + stage;
        // A path state's own facts are those its decision drew for the path's child (child
        // 0); the root has none.
        let path = |stage: usize| {
            let own = match stage {
                0 => String::new(),
                _ => facts(&[i, stage - 1, 0], self.facts),
            };
            format!(
                "{context}\nhs : stage {stage} n m{own}\n⊢ reduce n m = {}",
                value(stage)
            )
        };
        let mut states = Vec::new();
        for stage in 0..steps {
            let goals = path(stage);
            let next = if stage + 1 == steps {
                Effect::Goals(Vec::new())
            } else {
                Effect::Goals(vec![path(stage + 1)])
            };
            let tactic = if stage + 1 == steps {
                "rfl".to_string()
            } else {
                format!("unfold_step {stage}")
            };
            let path_logprob = if self.misled(i, stage) {
                self.misled_path_logprob
            } else {
                self.path_logprob
            };
            let mut tactics = vec![WorldTactic::new(tactic, path_logprob, next)];
            for (d, (&logprob, dead_tactic)) in self.dead_ends.iter().zip(DEAD_ENDS).enumerate() {
                let added = facts(&[i, stage, d + 1], self.facts);
                let dead = |depth: usize| {
                    let rewrites: String =
                        (0..depth).map(|k| format!("\nr{k} : n ≠ {k}")).collect();
                    format!("{context}\nhs : stage {stage} n m{added}{rewrites}\n⊢ False")
                };
                tactics.push(WorldTactic::new(
                    dead_tactic,
                    logprob,
                    Effect::Goals(vec![dead(0)]),
                ));
                // The chain: each state rewrites once more; the last one the model does not
                // know (it samples junk there, which Lean refuses).
                for depth in 0..self.dead_end_depth {
                    states.push(WorldState {
                        goals: vec![dead(depth)],
                        tactics: vec![WorldTactic::new(
                            format!("simp at r{depth}"),
                            self.chain_logprob,
                            Effect::Goals(vec![dead(depth + 1)]),
                        )],
                    });
                }
            }
            states.push(WorldState {
                goals: vec![goals],
                tactics,
            });
        }
        let name = Self::name(i);
        WorldTheorem {
            formal_statement: format!(
                "theorem {name} (n m : ℕ) (h₀ : {a} < n) (h₁ : n + m = {b}) : reduce n m = {} := by",
                value(0)
            ),
            root: vec![path(0)],
            name,
            states,
            sketches: Vec::new(),
        }
    }
}

/// `world`'s theorems split by position: every `eval_every`-th into the second list (the
/// theorems a value model is judged on), the rest into the first. Theorems of every proof
/// length land on both sides.
pub fn split(
    world: &World,
    eval_every: usize,
) -> (
    Vec<formats::theorems::Theorem>,
    Vec<formats::theorems::Theorem>,
) {
    let (eval, train): (Vec<_>, Vec<_>) = world
        .theorems
        .iter()
        .enumerate()
        .partition(|(i, _)| i % eval_every == eval_every - 1);
    let inputs =
        |side: Vec<(usize, &WorldTheorem)>| side.into_iter().map(|(_, t)| t.input()).collect();
    (inputs(train), inputs(eval))
}

#[cfg(test)]
mod tests {
    use super::*;
    use formats::join_goals;
    use std::collections::HashSet;

    #[test]
    fn every_state_is_distinct_and_every_dead_end_reads_false() {
        let world = SignalWorld::default().build();
        let mut seen = HashSet::new();
        for theorem in &world.theorems {
            for state in &theorem.states {
                assert!(seen.insert(join_goals(&state.goals)), "{:?}", state.goals);
                let dead = state.goals[0].ends_with("⊢ False");
                for tactic in &state.tactics {
                    if let Effect::Goals(next) = &tactic.effect {
                        // Once dead, always dead; a path state leads to the path or to `False`.
                        if dead {
                            assert!(next[0].ends_with("⊢ False"));
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn the_split_keeps_every_proof_length_on_both_sides() {
        let world = SignalWorld::default().build();
        let (train, eval) = split(&world, 3);
        assert_eq!((train.len(), eval.len()), (32, 16));
        let lengths = |side: &[formats::theorems::Theorem]| -> HashSet<usize> {
            side.iter()
                .map(|t| SignalWorld::proof_length(t.name[4..].parse().unwrap()))
                .collect()
        };
        assert_eq!(lengths(&train), lengths(&eval));
    }
}
