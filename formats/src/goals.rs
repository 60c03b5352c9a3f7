/// A proof state as one text: the REPL's goals joined by a blank line, the layout Lean's own
/// "unsolved goals" message uses. Empty when the proof is complete. The search's
/// transposition index, the trajectory `state` column and the EBM's input all use it.
pub fn join_goals(goals: &[String]) -> String {
    goals.join("\n\n")
}
