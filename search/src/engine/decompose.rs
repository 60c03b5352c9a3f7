//! Subgoal decomposition (`search.decompose`): the texts and the bookkeeping. A failed
//! `have h : P := …` step is sent again as `have h : P := by sorry` ([`hole_tactic`]); the
//! sorry is a hole with a proof state of its own. A node whose goals close on a path that
//! carries holes is conditional: proved once each hole's goal is. Each distinct hole goal
//! ([`goal_key`]) gets one subgoal search in the same tree and frontier ([`Subgoals`]), and a
//! conditional node whose holes are all proved is checked whole, its sorries replaced by the
//! subgoals' scripts ([`assemble`]).

use std::collections::HashMap;

use lean_bridge::one_tactic::{have_head, sorry_tokens};

use super::node::NodeId;

/// The hole to send in place of a failed `have`/`obtain` step with a stated type:
/// `have h : P := by sorry`.
pub fn hole_tactic(tactic: &str) -> Option<String> {
    have_head(tactic).map(|head| format!("{head} := by sorry"))
}

/// The sorries of a hole tactic or a sketch, as Lean elaborates them: one hole each.
pub fn sorry_count(tactic: &str) -> usize {
    sorry_tokens(tactic).len()
}

/// `tactic` with its k-th `sorry` replaced by `scripts[k]` (a subgoal's tactics as applied,
/// each at column 0 of its own text), laid out for Lean's indentation: after `by` or `:=`,
/// the script goes on the lines below, two columns deeper than the line (`:= sorry` becomes
/// `:= by`); a `sorry` standing as a tactic (`· sorry`) becomes the script at its column.
fn fill_sorries(tactic: &str, scripts: &[&[String]]) -> String {
    let mut text = tactic.to_owned();
    let at = sorry_tokens(tactic);
    for (&at, script) in at.iter().zip(scripts).rev() {
        let line_start = text[..at].rfind('\n').map_or(0, |i| i + 1);
        let line = &text[line_start..at];
        let indent = line.len() - line.trim_start().len();
        let lines = script.iter().flat_map(|t| t.trim_end().lines());
        let before = line.trim_end();
        let (from, mut filled) = if before.ends_with(" by") || before == "by" {
            (line_start + before.len(), String::new())
        } else if before.ends_with(":=") {
            (line_start + before.len(), " by".to_owned())
        } else {
            // A tactic at this column: the first line in place, the rest under it.
            let column = line.chars().count();
            let mut inline = String::new();
            for (i, l) in lines.enumerate() {
                if i > 0 {
                    inline.push('\n');
                    inline.push_str(&" ".repeat(column));
                }
                inline.push_str(l);
            }
            text.replace_range(at..at + "sorry".len(), &inline);
            continue;
        };
        for l in lines {
            filled.push('\n');
            filled.push_str(&" ".repeat(indent + 2));
            filled.push_str(l);
        }
        text.replace_range(from..at + "sorry".len(), &filled);
    }
    text
}

/// The subgoal cache's key: a goal's text (context and target) with each run of whitespace
/// made one space, so the same goal pretty-printed at another width is the same key.
pub fn goal_key(goal: &str) -> String {
    goal.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The tactics of a conditional node's path (`path`: (tactic, goals of the holes it opened,
/// in the order of its sorries) from the root), each sorry filled with its subgoal's script
/// from `scripts` (by goal key). `None` while a hole has no script.
pub fn assemble(
    path: &[(String, Vec<String>)],
    scripts: &HashMap<String, Vec<String>>,
) -> Option<Vec<String>> {
    path.iter()
        .map(|(tactic, hole_goals)| {
            let filling = hole_goals
                .iter()
                .map(|goal| scripts.get(&goal_key(goal)).map(Vec::as_slice))
                .collect::<Option<Vec<_>>>()?;
            Some(if filling.is_empty() {
                tactic.clone()
            } else {
                fill_sorries(tactic, &filling)
            })
        })
        .collect()
}

/// A subgoal search: one per distinct hole goal of the theorem.
#[derive(Debug)]
pub struct Subgoal {
    /// The goal as Lean printed it at the first hole that opened the search.
    pub goal: String,
    /// The search's root node (`parent = None`).
    pub root: NodeId,
    /// The conditional node whose hole opened it (the `subgoal_of` column).
    pub opener: NodeId,
    /// Added to the priority of every node of this search: the opener's own priority, so a
    /// subgoal is searched about as eagerly as the main-tree node it would finish.
    pub base: f64,
    /// The node whose goals closed, while the subgoal counts as proved.
    pub proof: Option<NodeId>,
    /// Conditional nodes that need this goal, in the order they came.
    pub waiting: Vec<NodeId>,
}

/// The subgoal searches of one theorem, and the cache of proved goals (a subgoal whose
/// `proof` is set) keyed by [`goal_key`].
#[derive(Debug, Default)]
pub struct Subgoals {
    pub list: Vec<Subgoal>,
    by_key: HashMap<String, u32>,
}

impl Subgoals {
    pub fn find(&self, goal: &str) -> Option<u32> {
        self.by_key.get(&goal_key(goal)).copied()
    }

    pub fn add(&mut self, subgoal: Subgoal) -> u32 {
        let id = self.list.len() as u32;
        self.by_key.insert(goal_key(&subgoal.goal), id);
        self.list.push(subgoal);
        id
    }

    pub fn get(&self, id: u32) -> &Subgoal {
        &self.list[id as usize]
    }

    pub fn get_mut(&mut self, id: u32) -> &mut Subgoal {
        &mut self.list[id as usize]
    }
}

/// A subgoal as a theorem statement for the policy's prompt (DSP and BFS-Prover-V2 hand
/// their provers subgoals as lemmas): `theorem NAME (x : ℕ) (h : 0 < x) : x ≠ 0 := by`.
/// Only a prompt: Lean never sees it (the hole's own proof state is searched), and the
/// prompt also shows the goal itself, so what this cannot say exactly (instance arguments
/// and inaccessible names, written as `[C]` and plain names) costs the model little.
pub fn lemma_statement(name: &str, goal: &str) -> String {
    let mut hypotheses: Vec<String> = Vec::new();
    let mut target: Option<String> = None;
    for line in goal.lines() {
        let continues = line.starts_with([' ', '\t']);
        let part = line.trim();
        match (&mut target, continues) {
            (Some(t), _) => {
                t.push(' ');
                t.push_str(part);
            }
            (None, true) => {
                if let Some(last) = hypotheses.last_mut() {
                    last.push(' ');
                    last.push_str(part);
                }
            }
            (None, false) if part.starts_with('⊢') => {
                target = Some(part.trim_start_matches('⊢').trim().to_owned());
            }
            (None, false) if part.starts_with("case ") => {}
            (None, false) => hypotheses.push(part.to_owned()),
        }
    }
    let binders: Vec<String> = hypotheses
        .iter()
        .filter_map(|h| {
            let (names, ty) = h.split_once(" : ")?;
            Some(if names.starts_with("inst✝") {
                format!("[{ty}]")
            } else {
                let names: Vec<&str> = names
                    .split_whitespace()
                    .map(|n| n.split('✝').next().unwrap_or(n))
                    .collect();
                format!("({} : {ty})", names.join(" "))
            })
        })
        .collect();
    let mut statement = format!("theorem {name}");
    for binder in binders {
        statement.push(' ');
        statement.push_str(&binder);
    }
    statement.push_str(&format!(" : {} := by", target.unwrap_or_default()));
    statement
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_have_becomes_its_hole_and_the_hole_takes_the_subgoal_s_script() {
        let hole = hole_tactic("have h : x = 1 := by\n  nlinarith [sq_nonneg x]").unwrap();
        assert_eq!(hole, "have h : x = 1 := by sorry");
        assert_eq!(hole_tactic("simp"), None);
        let script = vec![
            "norm_num".to_owned(),
            "cases h with\n| inl => simp".to_owned(),
        ];
        assert_eq!(
            fill_sorries(&hole, &[&script]),
            "have h : x = 1 := by\n  norm_num\n  cases h with\n  | inl => simp"
        );
    }

    #[test]
    fn a_sketch_s_sorries_are_filled_where_they_stand() {
        let sketch = "have h₁ : a ≤ b := by\n  sorry\nhave h₂ : b ≤ c := sorry\nconstructor\n· sorry\n· exact h₂";
        let one = ["linarith".to_owned()];
        let two = ["norm_num".to_owned(), "exact le_refl _".to_owned()];
        let three = ["calc a ≤ b := h₁\n_ ≤ c := h₂".to_owned()];
        assert_eq!(
            fill_sorries(sketch, &[&one, &two, &three]),
            "have h₁ : a ≤ b := by\n  linarith\nhave h₂ : b ≤ c := by\n  norm_num\n  exact le_refl _\nconstructor\n· calc a ≤ b := h₁\n  _ ≤ c := h₂\n· exact h₂"
        );
        assert_eq!(sorry_count(sketch), 3);
    }

    #[test]
    fn assembly_fills_each_hole_by_its_goal_and_waits_for_every_one() {
        let path = vec![
            ("intro x".to_owned(), vec![]),
            (
                "have h : x = 1 := by sorry".to_owned(),
                vec!["x : ℕ\n⊢ x = 1".to_owned()],
            ),
            ("simp [h]".to_owned(), vec![]),
        ];
        let mut scripts = HashMap::new();
        assert_eq!(assemble(&path, &scripts), None);
        scripts.insert(goal_key("x : ℕ\n⊢  x = 1"), vec!["omega".to_owned()]);
        assert_eq!(
            assemble(&path, &scripts).unwrap(),
            ["intro x", "have h : x = 1 := by\n  omega", "simp [h]"]
        );
    }

    #[test]
    fn goal_keys_ignore_line_breaking() {
        assert_eq!(
            goal_key("a b : ℝ\nh : a +\n    b = 1\n⊢ a ≤ 1"),
            goal_key("a b : ℝ\nh : a + b = 1\n⊢ a ≤ 1")
        );
        assert_ne!(goal_key("a : ℝ\n⊢ a ≤ 1"), goal_key("a : ℝ\n⊢ a ≤ 2"));
    }

    #[test]
    fn a_goal_reads_as_a_lemma_statement() {
        assert_eq!(
            lemma_statement(
                "t_subgoal_1",
                "case h\nx y : ℕ\ninst✝ : Fact (1 < 2)\nh₀ : x +\n    y = 3\nn✝ : ℕ\n⊢ x ≤ 3"
            ),
            "theorem t_subgoal_1 (x y : ℕ) [Fact (1 < 2)] (h₀ : x + y = 3) (n : ℕ) : x ≤ 3 := by"
        );
    }
}
