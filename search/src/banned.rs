//! The banned-identifier rule (`search.banned_tactics`), in a module of its own because three
//! places apply it: the config's check of its probe tactics, candidate extraction, and the
//! replay of whole-proof samples.

/// Whether `tactic` uses one of `banned` as a whole Lean identifier: `sorry` is caught in
/// `exact sorry` or `(sorry)`, but not in `sorry_free`, `h_admit` or `Nat.sorry_lemma`.
pub fn is_banned(tactic: &str, banned: &[String]) -> bool {
    identifiers(tactic).any(|id| banned.iter().any(|b| b == id))
}

/// Maximal runs of identifier characters (letters, digits and subscripts in any script,
/// `_`, `'`, and `.` between components), without leading/trailing dots.
fn identifiers(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !(c.is_alphanumeric() || matches!(c, '_' | '\'' | '.')))
        .map(|run| run.trim_matches('.'))
        .filter(|id| !id.is_empty())
}

#[cfg(test)]
mod tests {
    use super::is_banned;

    #[test]
    fn banned_identifiers_are_whole_words() {
        let b = vec!["sorry".to_owned(), "admit".to_owned()];
        for t in [
            "sorry",
            "exact sorry",
            "(sorry)",
            "admit",
            "constructor <;> sorry",
            "exact ⟨sorry, h⟩",
        ] {
            assert!(is_banned(t, &b), "{t}");
        }
        for t in [
            "exact sorry_free",
            "apply h_admit",
            "exact Nat.sorry_lemma",
            "exact admit'",
            "simp [sorry₁]",
            "exact h.admit",
            "apply sorryAx",
        ] {
            assert!(!is_banned(t, &b), "{t}");
        }
    }
}
