//! The repl runs ONE tactic per `{"tactic": …}` request: it parses the string with
//! ``Parser.runParserCategory env `tactic t`` (repl `REPL/Snapshots.lean` @v4.24.0, still so at
//! v4.33.0-rc2, `runString`) and throws what the parser says (`REPL/Main.lean`: `"Lean
//! error:\n" ++ ex.toString`), so `ext1 x; ext1 n` is answered `{"message": "Lean
//! error:\n<input>:1:6: expected end of input"}` (repl issue #43). A model writes such
//! lines (`rw [hy]; norm_num`, `norm_num at h ⊢; linarith`), a proof-mode continuation holds
//! them, a path replays several tactics at once: each goes to Lean as ONE `paren` tactic,
//! `"(" tacticSeq ")"` (Lean `src/Init/Tactics.lean`: "the tactics can be either separated
//! by newlines or `;`"). Everything that records a tactic keeps the text as written.

/// Byte offsets in `text` where a top-level tactic after the first one begins, as far as the
/// repl's parser is concerned: a `;` that separates tactics (not the one in `<;>`), or the
/// first character of a line at or left of the first tactic's column that is not an `| alt`
/// line, a `<;>` line or a `calc` step (`_ = …`). Brackets, string and character literals
/// and comments hide both.
///
/// Each offset is where Lean's parser stands after the tactic before it and the blanks and
/// comments after that, which is where `runParserCategory` reports "expected end of input"
/// (Lean `src/Lean/Parser/Extension.lean`: `(s.mkError "end of input")` at `s.pos`): the
/// `;` itself, hence `<input>:1:6` for `ext1 x; ext1 n`, or the new line's first character.
/// Empty when `text` is one tactic.
///
/// A tactic that takes a sequence (`try`, `all_goals`, `·`, `by`, `=> …`) would take a `;`
/// after it as its own; it is counted as a separator all the same. That can only wrap a
/// single tactic in a block, which Lean parses the same way; the other mistake, sending two
/// tactics bare, cannot come from it.
pub fn tactic_breaks(text: &str) -> Vec<usize> {
    let mut breaks = Vec::new();
    let mut chars = text.char_indices();
    let mut comment_depth = 0usize;
    let mut line_comment = false;
    let mut in_string = false;
    let mut brackets = 0usize;
    let mut column = 0usize;
    let mut first_column = None;
    let mut fresh_line = false;
    let mut after_separator = false;
    // The byte after the last character that is neither blank nor comment.
    let mut code_end = 0;
    while let Some((i, c)) = chars.next() {
        let rest = &text[i..];
        let this_column = column;
        column += 1;
        if c == '\n' {
            column = 0;
            line_comment = false;
            fresh_line = !in_string;
            continue;
        }
        if line_comment {
            continue;
        }
        if comment_depth > 0 {
            let nesting = if rest.starts_with("-/") {
                comment_depth - 1
            } else if rest.starts_with("/-") {
                comment_depth + 1
            } else {
                continue;
            };
            comment_depth = nesting;
            chars.next();
            column += 1;
            continue;
        }
        if in_string {
            match c {
                '\\' => {
                    chars.next();
                    column += 1;
                }
                '"' => in_string = false,
                _ => {}
            }
            code_end = i + c.len_utf8();
            continue;
        }
        if c.is_whitespace() {
            continue;
        }
        if rest.starts_with("--") {
            line_comment = true;
            continue;
        }
        if rest.starts_with("/-") {
            comment_depth = 1;
            chars.next();
            column += 1;
            continue;
        }
        match first_column {
            None => first_column = Some(this_column),
            Some(first) => {
                let at_the_margin =
                    fresh_line && brackets == 0 && !after_separator && this_column <= first;
                // A `calc` step may stand at the column of `calc` itself (Lean's `calcSteps`,
                // leanprover/lean4 `src/Init/NotationExtra.lean`), and no tactic starts `_`.
                let continues = rest.starts_with('|')
                    || rest.starts_with('_')
                    || rest.starts_with("<;>")
                    || text[..code_end].ends_with("<;>");
                if at_the_margin && !continues {
                    breaks.push(i);
                }
            }
        }
        fresh_line = false;
        after_separator = false;
        code_end = i + c.len_utf8();
        match c {
            '"' => in_string = true,
            '\'' => {
                if let Some(len) = char_literal(text, i) {
                    for _ in 1..rest[..len].chars().count() {
                        chars.next();
                        column += 1;
                    }
                    code_end = i + len;
                }
            }
            '(' | '[' | '{' | '⟨' | '⦃' => brackets += 1,
            ')' | ']' | '}' | '⟩' | '⦄' => brackets = brackets.saturating_sub(1),
            ';' if brackets == 0 && !(text[..i].ends_with('<') && rest.starts_with(";>")) => {
                breaks.push(i);
                after_separator = true;
            }
            _ => {}
        }
    }
    breaks
}

/// The byte length of a character literal (`'a'`, `'\n'`) starting at `at`, if one does: a
/// `'` right after a name is part of it (`h'`), never a literal.
fn char_literal(text: &str, at: usize) -> Option<usize> {
    let before = text[..at].chars().next_back();
    if before.is_some_and(|b| b.is_alphanumeric() || matches!(b, '_' | '\'' | '.' | '!' | '?')) {
        return None;
    }
    let mut inner = text[at + 1..].chars();
    let len = match inner.next()? {
        '\\' => 2 + inner.next()?.len_utf8(),
        '\'' | '\n' => return None,
        c => 1 + c.len_utf8(),
    };
    (inner.next()? == '\'').then_some(len + 1)
}

/// The top-level tactics of `text` (see [`tactic_breaks`]), trimmed, empty ones left out.
pub fn split_tactics(text: &str) -> Vec<&str> {
    let breaks = tactic_breaks(text);
    let starts = std::iter::once(0).chain(breaks.iter().copied());
    let ends = breaks.iter().copied().chain(std::iter::once(text.len()));
    starts
        .zip(ends)
        .map(|(start, end)| text[start..end].trim_start_matches(';').trim())
        .filter(|t| !t.is_empty())
        .collect()
}

/// The statement part of a `have`/`obtain` step with a proof, `have h : P` of
/// `have h : P := by nlinarith [...]`: the text before its first `:=` outside brackets,
/// strings and comments, when that text states a type (has a `:` after the keyword). `None`
/// for any other tactic, and for `have h := e`, whose type only its proof gives.
pub fn have_head(tactic: &str) -> Option<&str> {
    let text = tactic.trim_start();
    let keyword = ["have", "obtain"].into_iter().find(|k| {
        text.strip_prefix(k)
            .is_some_and(|rest| rest.starts_with([' ', ':', '\n']))
    })?;
    let (mut brackets, mut typed) = (0usize, false);
    for (i, c) in code_chars(text) {
        match c {
            '(' | '[' | '{' | '⟨' | '⦃' => brackets += 1,
            ')' | ']' | '}' | '⟩' | '⦄' => brackets = brackets.saturating_sub(1),
            ':' if brackets == 0 && text[i..].starts_with(":=") => {
                return (typed && i > keyword.len()).then(|| text[..i].trim_end());
            }
            ':' if brackets == 0 && i >= keyword.len() => typed = true,
            _ => {}
        }
    }
    None
}

/// Byte offsets of each `sorry` in `text` that Lean would elaborate, in order: not part of a
/// longer name, nor inside a comment or a string literal.
pub fn sorry_tokens(text: &str) -> Vec<usize> {
    let ident = |c: char| c.is_alphanumeric() || matches!(c, '_' | '.' | '\'' | '!' | '?');
    code_chars(text)
        .map(|(i, _)| i)
        .filter(|&i| {
            text[i..].starts_with("sorry")
                && !text[..i].chars().next_back().is_some_and(ident)
                && !text[i + "sorry".len()..].chars().next().is_some_and(ident)
        })
        .collect()
}

/// The characters of `text` that are code, with their byte offsets: those of comments
/// (`--` to the line's end, nested `/- -/`) and string literals left out.
fn code_chars(text: &str) -> impl Iterator<Item = (usize, char)> + '_ {
    let (mut comment_depth, mut line_comment, mut in_string) = (0usize, false, false);
    let mut chars = text.char_indices();
    std::iter::from_fn(move || {
        while let Some((i, c)) = chars.next() {
            let rest = &text[i..];
            if line_comment {
                line_comment = c != '\n';
            } else if comment_depth > 0 {
                if rest.starts_with("-/") {
                    comment_depth -= 1;
                    chars.next();
                } else if rest.starts_with("/-") {
                    comment_depth += 1;
                    chars.next();
                }
            } else if in_string {
                match c {
                    '\\' => {
                        chars.next();
                    }
                    '"' => in_string = false,
                    _ => {}
                }
            } else if rest.starts_with("--") {
                line_comment = true;
            } else if rest.starts_with("/-") {
                comment_depth = 1;
                chars.next();
            } else if c == '"' {
                in_string = true;
            } else {
                return Some((i, c));
            }
        }
        None
    })
}

/// `tactics`, one after the other, as the text of ONE tactic: a single tactic as it is,
/// anything more as Lean's `paren` tactic. A newline-separated `tacticSeq` needs each tactic
/// at the column of the first (`sepByIndent`: `checkColEq`), which is 1 after `(`, so every
/// line after the first moves right by one. `)` goes on its own line, where a trailing `--`
/// comment cannot swallow it. `(t)` runs as `t`, so wrapping too much is harmless.
pub(crate) fn tactic_block<S: AsRef<str>>(tactics: &[S]) -> String {
    if let [tactic] = tactics {
        if tactic_breaks(tactic.as_ref()).is_empty() {
            return tactic.as_ref().to_owned();
        }
    }
    let lines: Vec<&str> = tactics
        .iter()
        .flat_map(|t| t.as_ref().trim_end().lines())
        .collect();
    let mut block = String::from("(");
    for (i, line) in lines.iter().enumerate() {
        if i > 0 {
            block.push_str("\n ");
        }
        block.push_str(line);
    }
    block.push_str("\n)");
    block
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorries_are_found_as_lean_reads_them() {
        let text = "have h : p := by sorry -- not this sorry\nhave s : q := sorry\n/- sorry -/ exact sorry_lemma h s \"sorry\"\n· sorry";
        let found: Vec<&str> = sorry_tokens(text)
            .into_iter()
            .map(|at| &text[at.saturating_sub(3)..at + 5])
            .collect();
        assert_eq!(found, ["by sorry", ":= sorry", "· sorry"]);
    }

    #[test]
    fn a_have_with_a_stated_type_has_a_head_before_its_proof() {
        assert_eq!(
            have_head("have h : x = 1 := by nlinarith [sq_nonneg (x - 1)]"),
            Some("have h : x = 1")
        );
        assert_eq!(
            have_head("have : a ≤ b := le_of_lt h"),
            Some("have : a ≤ b")
        );
        assert_eq!(
            have_head("have h : f (x := 1) = 2 := by\n  simp [f]"),
            Some("have h : f (x := 1) = 2"),
            "a named argument's `:=` is inside brackets"
        );
        assert_eq!(
            have_head("obtain ⟨k, hk⟩ : ∃ k, n = 2 * k := by omega"),
            Some("obtain ⟨k, hk⟩ : ∃ k, n = 2 * k")
        );
        assert_eq!(
            have_head("have h :\n    a + b = c := by ring"),
            Some("have h :\n    a + b = c")
        );
        assert_eq!(have_head("have h := foo x"), None, "no stated type");
        assert_eq!(have_head("have h : p"), None, "no proof to replace");
        assert_eq!(have_head("haveI : Fact p := ⟨hp⟩"), None);
        assert_eq!(have_head("simp [h] -- have h : p := q"), None);
        assert_eq!(
            have_head("have h : \":=\" = s := rfl"),
            Some("have h : \":=\" = s")
        );
    }

    fn one(text: &str) -> bool {
        tactic_breaks(text).is_empty()
    }

    #[test]
    fn a_single_tactic_is_one_and_sent_unchanged() {
        for tactic in [
            "simp",
            "rw [h] at hx ⊢",
            "constructor <;> simp",
            "constructor <;>\n  simp",
            "constructor\n<;> simp",
            "nlinarith [sq_nonneg (a - b), sq_nonneg (a + b)]",
            "have h : p := by\n  simp\n  exact q",
            "rcases h with h | h\n| inl => simp",
            "exact fun x =>\n  x",
            "",
        ] {
            assert!(one(tactic), "{tactic:?}: {:?}", tactic_breaks(tactic));
            assert_eq!(tactic_block(&[tactic]), tactic);
        }
    }

    #[test]
    fn semicolons_split_only_at_the_top_level() {
        assert_eq!(tactic_breaks("ext1 x; ext1 n"), [6]);
        assert_eq!(tactic_breaks("ext1 x ; ext1 n"), [7]);
        assert_eq!(
            split_tactics("norm_num at h ⊢; linarith"),
            ["norm_num at h ⊢", "linarith"]
        );
        // In brackets of every kind, `<;>`, strings, character literals and comments.
        for tactic in [
            "simp [a; b]",
            "exact (by simp; rfl)",
            "exact ⟨by simp; rfl, h⟩",
            "refine { x := 1; y := 2 }",
            "all_goals simp <;> linarith",
            "trace \"a; b\"",
            "trace \"say \\\";\\\" twice\"",
            "exact ';'",
            "simp -- then; linarith",
            "simp /- then; /- nested; -/ linarith -/",
        ] {
            assert!(one(tactic), "{tactic:?}: {:?}", tactic_breaks(tactic));
        }
        // A primed name is no character literal: the `;` after it still splits.
        assert_eq!(split_tactics("exact h'; rfl"), ["exact h'", "rfl"]);
        assert_eq!(
            split_tactics("simp [f'];linarith"),
            ["simp [f']", "linarith"]
        );
        // A trailing `;` is a second (empty) tactic to the repl's parser.
        assert_eq!(tactic_breaks("simp;"), [4]);
        assert_eq!(
            split_tactics("intro x; constructor <;> simp ;  linarith ;"),
            ["intro x", "constructor <;> simp", "linarith"]
        );
        assert!(split_tactics("").is_empty());
    }

    #[test]
    fn lines_at_the_first_tactic_s_column_are_tactics_of_their_own() {
        assert_eq!(tactic_breaks("norm_num\nlinarith"), [9]);
        assert_eq!(
            split_tactics("intro x\n-- a comment\nconstructor\n· simp\n· exact x"),
            [
                "intro x\n-- a comment",
                "constructor",
                "· simp",
                "· exact x"
            ]
        );
        // Deeper lines and lines inside an open bracket continue the tactic.
        assert!(one("calc a = b := by simp\n  _ = c := by simp"));
        assert!(one("nlinarith [sq_nonneg a,\nsq_nonneg b]"));
        // The first tactic's column, not column 0, decides.
        assert_eq!(split_tactics("  simp\n  rfl"), ["simp", "rfl"]);
        assert_eq!(split_tactics("  simp\nrfl"), ["simp", "rfl"]);
        // After a `;`, the next line is the tactic that `;` began, not one more.
        assert_eq!(tactic_breaks("simp;\nrfl"), [4]);
        // A string literal spanning lines hides its lines.
        assert!(one("trace \"a\nb\""));
    }

    #[test]
    fn several_tactics_go_in_one_paren_block_laid_out_for_its_tactic_seq() {
        assert_eq!(tactic_block(&["rw [h]; norm_num"]), "(rw [h]; norm_num\n)");
        assert_eq!(
            tactic_block(&["norm_num\nlinarith -- done"]),
            "(norm_num\n linarith -- done\n)"
        );
        assert_eq!(
            tactic_block(&["intro x", "have h : p := by\n  simp", "exact h; rfl"]),
            "(intro x\n have h : p := by\n   simp\n exact h; rfl\n)"
        );
        // The block is one tactic: wrapping it again changes nothing.
        let block = tactic_block(&["intro x", "exact h"]);
        assert_eq!(tactic_block(&[&block]), block);
    }
}
