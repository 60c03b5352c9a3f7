//! From raw completions to the candidate tactics the engine applies.
//!
//! A completion is whatever the model wrote after the prompt: often one tactic, but also code
//! fences, a `/- tactic state -/` comment it imagines next, the rest of the proof, or text
//! cut off at `max_new_tokens`. The first tactic is what Lean's own layout rule says it is:
//! the first line plus every following line indented deeper than it (its `calc` steps, `by`
//! blocks, `fun` bodies), `| alt =>` lines, `calc` steps (`_ = …`) at its own column, lines
//! joined by `<;>`, lines inside an open bracket, and a line after one that ends in a
//! separator or an infix operator ([`LINE_CONTINUES_AFTER`]). A candidate's log-prob is that
//! of the tokens the model spent to write it.

use crate::banned::is_banned;
use crate::policy::{Completion, STOP_REGEX};

#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// Normalised tactic text (single spaces; continuation lines keep their relative indent).
    pub tactic: String,
    /// Sum of the token log-probs covering the tactic (the best among duplicate samples).
    pub logprob: f64,
    /// Tokens behind `logprob`, for length normalisation.
    pub tokens: usize,
    /// How many samples gave this tactic.
    pub count: usize,
}

/// The candidates of one prompt's completions, with the counts the statistics report.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CandidateSet {
    /// Distinct, allowed tactics in the order they were first sampled.
    pub candidates: Vec<Candidate>,
    /// Completions seen.
    pub generated: usize,
    /// `candidates.len()`.
    pub unique: usize,
    /// Completions whose tactic uses a banned identifier.
    pub banned_count: usize,
    /// Completions without a usable tactic (blank, only comments, cut off by the token limit).
    pub empty_count: usize,
}

/// The column the completion starts at: the prompt's trailing spaces after its last newline
/// (the DeepSeek template ends with `\n  `, so the model writes at column 2). Zero for
/// prompts ending in other text (`TACTIC: `, `:::`), where layout starts afresh.
pub fn start_column(prompt: &str) -> usize {
    let last_line = prompt.rsplit('\n').next().unwrap_or("");
    if last_line.chars().all(|c| c == ' ') {
        last_line.len()
    } else {
        0
    }
}

/// Extracts, normalises, filters and deduplicates the first tactics of `completions`.
/// `start_column` is [`start_column`] of their prompt.
pub fn extract_candidates(
    completions: &[Completion],
    banned: &[String],
    start_column: usize,
) -> CandidateSet {
    let mut set = CandidateSet {
        generated: completions.len(),
        ..CandidateSet::default()
    };
    for completion in completions {
        let Some((tactic, end)) = first_tactic(&completion.text, start_column)
            .filter(|&(_, end)| !cut_off(completion, end))
        else {
            set.empty_count += 1;
            continue;
        };
        if is_banned(&tactic, banned) {
            set.banned_count += 1;
            continue;
        }
        let (logprob, tokens) = prefix_logprob(completion, end);
        match set.candidates.iter_mut().find(|c| c.tactic == tactic) {
            Some(seen) => {
                seen.count += 1;
                if logprob > seen.logprob {
                    seen.logprob = logprob;
                    seen.tokens = tokens;
                }
            }
            None => set.candidates.push(Candidate {
                tactic,
                logprob,
                tokens,
                count: 1,
            }),
        }
    }
    set.unique = set.candidates.len();
    set
}

/// The first tactic of a completion, normalised, and the byte offset in `text` where its
/// source ends. `None` when there is none, or when it is cut off inside a bracket.
pub fn first_tactic(text: &str, start_column: usize) -> Option<(String, usize)> {
    tactic_at(&clean(text), 0, start_column).map(|t| (t.tactic, t.end))
}

/// A tactic found in a cleaned completion.
struct Found {
    tactic: String,
    /// Byte offset where its source ends.
    end: usize,
    /// The column its first line starts at.
    column: usize,
}

/// The completion up to its closing fence, comments blanked; byte offsets are those of `text`.
fn clean(text: &str) -> String {
    blank_comments(strip_fences(text))
}

/// What a line may end with for the next line, at any column, to go on with the same tactic:
/// a separator, an open bracket, or an infix operator whose operand is still to come (Lean's
/// term parser reads on past the line break). Not `*` (`simp at *` is a whole tactic), `|`
/// (`|x|`), `-` or `/` (a comment may end in them). The DeepSeek tactic stop
/// ([`crate::templates::DEEPSEEK_TACTIC_END`]) never stops after them either.
pub const LINE_CONTINUES_AFTER: &str = ",([{⟨⦃+=<>:^≤≥≠∧∨→↔←∣∈∉⊆⊂∪∩•∘×¬";

/// The tactic whose first line is the first non-blank line of `clean[from..]`, by Lean's
/// layout rule. `start_column` is where `clean` itself starts (only its first line is shifted).
fn tactic_at(clean: &str, from: usize, start_column: usize) -> Option<Found> {
    let mut lines = Vec::new();
    let mut offset = from;
    for (index, line) in clean[from..].split('\n').enumerate() {
        lines.push((index, offset, line));
        offset += line.len() + 1;
    }
    let mut rest = lines.into_iter().filter(|(_, _, l)| !l.trim().is_empty());
    let (first_index, first_offset, first) = rest.next()?;
    let shift = if first_index == 0 && from == 0 {
        start_column
    } else {
        0
    };
    let base = indent(first) + shift;
    let mut tactic = normalise_line(first.trim());
    if let Some(bulleted) = tactic.strip_prefix(". ") {
        tactic = format!("· {bulleted}");
    }
    let mut depth = bracket_delta(first);
    let mut end = first_offset + first.trim_end().len();
    let mut previous = first.trim();
    for (_, line_offset, line) in rest {
        let content = line.trim();
        let ind = indent(line);
        let joined = depth > 0 || previous.ends_with("<;>") || content.starts_with("<;>");
        // No tactic starts with `_`: at the tactic's own column it is a step of its `calc`
        // (Lean's `calcSteps` takes steps at any column from the first one's,
        // leanprover/lean4 `src/Init/NotationExtra.lean`).
        let calc_step = ind == base && content.starts_with('_');
        // An operand or a list element still to come, at any column; a deeper line keeps
        // its own layout all the same (the block after a `=>`).
        let continued =
            previous.ends_with(|c| LINE_CONTINUES_AFTER.contains(c)) || content.starts_with(',');
        if !joined && (ind > base || content.starts_with('|') || calc_step) {
            tactic.push('\n');
            tactic.push_str(&" ".repeat(ind.saturating_sub(base)));
            tactic.push_str(&normalise_line(content));
        } else if joined || continued {
            tactic.push(' ');
            tactic.push_str(&normalise_line(content));
        } else {
            break;
        }
        depth += bracket_delta(line);
        end = line_offset + line.trim_end().len();
        previous = content;
    }
    (depth == 0).then_some(Found {
        tactic,
        end,
        column: base,
    })
}

/// One tactic of a whole-proof continuation, with the tokens the model spent on it.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Normalised, as [`Candidate::tactic`].
    pub tactic: String,
    /// Sum of the log-probs of this tactic's own tokens (from the end of the previous one).
    pub logprob: f64,
    pub tokens: usize,
}

/// The tactic sequence of a whole-proof continuation: [`first_tactic`]'s rules applied
/// again and again, as long as the next tactic starts at the first one's column (a line
/// further left is outside the proof). Ends at the closing fence, at a tactic cut off by the
/// token limit, and before a tactic cut off inside an open bracket.
pub fn tactic_sequence(completion: &Completion, start_column: usize) -> Vec<Step> {
    let clean = clean(&completion.text);
    let mut steps = Vec::new();
    let (mut from, mut covered, mut column) = (0, 0, None);
    while let Some(found) = tactic_at(&clean, from, start_column) {
        if *column.get_or_insert(found.column) != found.column || cut_off(completion, found.end) {
            break;
        }
        let upto = covering_tokens(completion, found.end).max(covered);
        steps.push(Step {
            tactic: found.tactic,
            logprob: completion.tokens[covered..upto]
                .iter()
                .map(|t| t.logprob)
                .sum(),
            tokens: upto - covered,
        });
        (from, covered) = (found.end, upto);
    }
    steps
}

/// A completion stopped by `max_new_tokens` (`length`), by the server (`abort`: SGLang's
/// `FINISH_ABORT`, `schedule_batch.py`) or by a stop regex, which leaves the start of the
/// next line in the text ([`STOP_REGEX`]), before any line break after the tactic: the
/// tactic (or its block) may go on, so it is not used.
fn cut_off(completion: &Completion, end: usize) -> bool {
    matches!(
        completion.finish_reason.as_str(),
        "length" | "abort" | STOP_REGEX
    ) && !completion.text[end..].contains('\n')
}

/// The log-prob and count of the tokens that produced `text[..end]`.
fn prefix_logprob(completion: &Completion, end: usize) -> (f64, usize) {
    let covering = covering_tokens(completion, end);
    let logprob = completion.tokens[..covering]
        .iter()
        .map(|t| t.logprob)
        .sum();
    (logprob, covering)
}

/// How many leading tokens produced `text[..end]`. Token texts, when the server sent them
/// and they spell the completion, give exact boundaries; otherwise the share of tokens is
/// taken in proportion to characters.
fn covering_tokens(completion: &Completion, end: usize) -> usize {
    let tokens = &completion.tokens;
    if tokens.is_empty() {
        return 0;
    }
    exact_cover(completion, end).unwrap_or_else(|| {
        let total = completion.text.chars().count().max(1);
        let used = completion.text[..end].chars().count();
        (tokens.len() * used).div_ceil(total).clamp(1, tokens.len())
    })
}

/// Number of leading tokens whose texts cover `text[..end]`, if the texts spell it.
fn exact_cover(completion: &Completion, end: usize) -> Option<usize> {
    let target = &completion.text.as_bytes()[..end];
    let mut spelled = Vec::with_capacity(end);
    for (i, token) in completion.tokens.iter().enumerate() {
        spelled.extend_from_slice(token.text.as_deref()?.as_bytes());
        let n = spelled.len().min(end);
        if spelled[..n] != target[..n] {
            return None;
        }
        if spelled.len() >= end {
            return Some(i + 1);
        }
    }
    None
}

/// The completion up to its first closing fence, with an opening fence line blanked.
/// Blanking keeps byte offsets, so positions found later are positions in `text`.
fn strip_fences(text: &str) -> String {
    let mut out = text.to_owned();
    let mut search_from = 0;
    if let Some(open) = text.find("```") {
        if text[..open].trim().is_empty() {
            let line_end = text[open..].find('\n').map_or(text.len(), |i| open + i);
            out.replace_range(open..line_end, &" ".repeat(line_end - open));
            search_from = line_end;
        }
    }
    if let Some(close) = out[search_from..].find("```") {
        out.truncate(search_from + close);
    }
    out
}

/// `--` and (nested) `/- -/` comments replaced by spaces of the same byte length, newlines
/// kept; string literals are left alone. An unclosed block comment runs to the end.
fn blank_comments(text: String) -> String {
    let bytes = text.as_bytes();
    let mut blank = vec![false; bytes.len()];
    let (mut i, mut depth, mut in_string) = (0, 0usize, false);
    while i < bytes.len() {
        let two = &bytes[i..bytes.len().min(i + 2)];
        if in_string {
            match bytes[i] {
                b'\\' => i += 1,
                b'"' => in_string = false,
                _ => {}
            }
            i += 1;
        } else if depth > 0 {
            if two == b"-/" {
                depth -= 1;
                blank[i] = true;
                blank[i + 1] = true;
                i += 2;
            } else if two == b"/-" {
                depth += 1;
                blank[i] = true;
                blank[i + 1] = true;
                i += 2;
            } else {
                blank[i] = bytes[i] != b'\n';
                i += 1;
            }
        } else if two == b"/-" {
            depth = 1;
            blank[i] = true;
            blank[i + 1] = true;
            i += 2;
        } else if two == b"--" {
            while i < bytes.len() && bytes[i] != b'\n' {
                blank[i] = true;
                i += 1;
            }
        } else {
            in_string = bytes[i] == b'"';
            i += 1;
        }
    }
    let mut out = String::with_capacity(text.len());
    for (start, c) in text.char_indices() {
        if blank[start] {
            out.extend(std::iter::repeat_n(' ', c.len_utf8()));
        } else {
            out.push(c);
        }
    }
    out
}

fn indent(line: &str) -> usize {
    line.chars().take_while(|c| c.is_whitespace()).count()
}

/// Runs of whitespace as one space.
fn normalise_line(line: &str) -> String {
    line.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Opening minus closing brackets, outside string literals.
fn bracket_delta(line: &str) -> i64 {
    let mut in_string = false;
    let mut escaped = false;
    let mut delta = 0;
    for c in line.chars() {
        if in_string {
            match (escaped, c) {
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => escaped = false,
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '(' | '[' | '{' | '⟨' | '⦃' => delta += 1,
            ')' | ']' | '}' | '⟩' | '⦄' => delta -= 1,
            _ => {}
        }
    }
    delta
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::TokenLogprob;

    fn first(text: &str) -> Option<String> {
        first_tactic(text, 2).map(|(t, _)| t)
    }

    fn banned() -> Vec<String> {
        vec!["sorry".into(), "admit".into()]
    }

    #[test]
    fn start_column_of_prompts() {
        assert_eq!(
            start_column("theorem t := by\n  /- tactic state:\n  -/\n  "),
            2
        );
        assert_eq!(start_column("---\nTACTIC: "), 0);
        assert_eq!(start_column("⊢ p:::"), 0);
    }

    #[test]
    fn single_line_then_a_second_tactic_is_cut() {
        assert_eq!(
            first("nlinarith [sq_nonneg (a - b), sq_nonneg (a + b)]\n  linarith\n").as_deref(),
            Some("nlinarith [sq_nonneg (a - b), sq_nonneg (a + b)]")
        );
        assert_eq!(first("norm_num [h₀]\n").as_deref(), Some("norm_num [h₀]"));
        assert_eq!(first("simp").as_deref(), Some("simp"));
    }

    #[test]
    fn deepseek_completion_with_a_next_state_comment() {
        let text =
            "field_simp [h₀]\n  /- tactic state:\n    x : ℝ\n    ⊢ x * 2 = 4\n  -/\n  ring_nf\n```";
        assert_eq!(first(text).as_deref(), Some("field_simp [h₀]"));
    }

    #[test]
    fn code_fences_and_leading_blank_lines() {
        assert_eq!(
            first("```lean4\n  intro x\n  simp\n```").as_deref(),
            Some("intro x")
        );
        assert_eq!(
            first("```lean\nomega\n```\nThe proof is done.").as_deref(),
            Some("omega")
        );
        assert_eq!(first("\n\n   \n  decide\n").as_deref(), Some("decide"));
        assert_eq!(first("linarith\n```\n").as_deref(), Some("linarith"));
        assert_eq!(first("```\n```"), None);
        assert_eq!(first("\n\n  "), None);
    }

    #[test]
    fn trailing_comments_are_removed() {
        assert_eq!(
            first("simp only [Nat.add_comm] -- commute\n").as_deref(),
            Some("simp only [Nat.add_comm]")
        );
        assert_eq!(
            first("/- We first simplify. -/\n  norm_num").as_deref(),
            Some("norm_num")
        );
        assert_eq!(
            first("ring_nf /- normalise -/ -- done").as_deref(),
            Some("ring_nf")
        );
        assert_eq!(first("-- just a comment\n"), None);
        assert_eq!(
            first("/- nested /- inner -/ still -/ exact h").as_deref(),
            Some("exact h")
        );
        // `--` inside a string literal is not a comment.
        assert_eq!(
            first("trace \"a -- b\"").as_deref(),
            Some("trace \"a -- b\"")
        );
    }

    #[test]
    fn whitespace_is_normalised() {
        assert_eq!(
            first("  simp   [foo,\tbar]   \n").as_deref(),
            Some("simp [foo, bar]")
        );
    }

    #[test]
    fn bullets_keep_their_block() {
        let text = "· nlinarith [h₀]\n  · linarith\n";
        assert_eq!(first(text).as_deref(), Some("· nlinarith [h₀]"));
        let text = ". intro h\n    simp at h\n  . exact h";
        assert_eq!(first(text).as_deref(), Some("· intro h\n  simp at h"));
    }

    #[test]
    fn have_with_an_indented_by_block() {
        let text = "have h₁ : x = 2 := by\n    linarith\n  subst h₁\n  norm_num";
        assert_eq!(
            first(text).as_deref(),
            Some("have h₁ : x = 2 := by\n  linarith")
        );
    }

    #[test]
    fn calc_blocks() {
        let text =
            "calc\n      a * b = b * a := by ring\n      _ = c := by rw [h]\n  exact le_refl _";
        assert_eq!(
            first(text).as_deref(),
            Some("calc\n    a * b = b * a := by ring\n    _ = c := by rw [h]")
        );
        let text = "calc a = b := h₀\n    _ = c := h₁\n";
        assert_eq!(
            first(text).as_deref(),
            Some("calc a = b := h₀\n  _ = c := h₁")
        );
    }

    /// Mathlib's layout: the steps at the column of `calc` itself.
    #[test]
    fn calc_steps_at_the_tactics_own_column() {
        let text = "calc a = b := h₀\n  _ = c := by\n    rw [h₁]\n  exact le_refl _";
        assert_eq!(
            first(text).as_deref(),
            Some("calc a = b := h₀\n_ = c := by\n  rw [h₁]")
        );
        let c = completion(&[("calc a = b := h₀\n  _ = c := h₁\n  linarith", -1.0)]);
        let tactics: Vec<String> = sequence(&c).into_iter().map(|s| s.0).collect();
        assert_eq!(tactics, ["calc a = b := h₀\n_ = c := h₁", "linarith"]);
    }

    #[test]
    fn a_line_ending_in_an_operator_or_separator_goes_on_at_any_column() {
        let text = "have h : x + y =\n  3 := by\n    linarith\n  simp";
        assert_eq!(
            first(text).as_deref(),
            Some("have h : x + y = 3 := by\n  linarith")
        );
        assert_eq!(first("use 1,\n  2\n  simp").as_deref(), Some("use 1, 2"));
        assert_eq!(first("use 1\n  , 2\n  simp").as_deref(), Some("use 1 , 2"));
        // `*` and `|` end tactics as often as they are operators.
        assert_eq!(first("simp at *\n  linarith").as_deref(), Some("simp at *"));
        assert_eq!(
            first("have h : 0 ≤ |x|\n  positivity").as_deref(),
            Some("have h : 0 ≤ |x|")
        );
        // A deeper block after `=>` keeps its layout.
        let text = "cases h with\n  | inl h =>\n    simp at h\n    exact h\n  | inr h => exact h";
        assert_eq!(
            first_tactic(text, 0).map(|t| t.0).as_deref(),
            Some("cases h with\n  | inl h =>\n    simp at h\n    exact h\n  | inr h => exact h")
        );
    }

    /// The DeepSeek tactic stop never ends a line that extraction goes on from.
    #[test]
    fn the_deepseek_stop_and_extraction_agree_on_what_continues_a_line() {
        let class = format!("(?<![{}]\\n)", LINE_CONTINUES_AFTER.replace('[', "\\["));
        let pattern = crate::templates::DEEPSEEK_TACTIC_END;
        assert!(pattern.contains(&class), "{pattern} lacks {class}");
    }

    #[test]
    fn fun_and_by_blocks_and_match_alternatives() {
        let text = "refine fun n => by\n    induction n with\n    | zero => simp\n    | succ k ih => omega\n  done";
        assert_eq!(
            first(text).as_deref(),
            Some(
                "refine fun n => by\n  induction n with\n  | zero => simp\n  | succ k ih => omega"
            )
        );
        // At column 0, a deeper line continues the last alternative, as in Lean.
        let text = "induction n with\n  | zero => rfl\n  | succ k ih => simp [ih]\n  simp";
        assert_eq!(
            first_tactic(text, 0).map(|t| t.0).as_deref(),
            Some("induction n with\n  | zero => rfl\n  | succ k ih => simp [ih]\n  simp")
        );
        let text = "cases h with\n  | inl h => exact h\n  | inr h => exact h.symm";
        assert_eq!(
            first(text).as_deref(),
            Some("cases h with\n| inl h => exact h\n| inr h => exact h.symm")
        );
    }

    #[test]
    fn combinator_lines_are_joined() {
        assert_eq!(
            first("constructor <;>\n  norm_num\n  linarith").as_deref(),
            Some("constructor <;> norm_num")
        );
        assert_eq!(
            first("constructor\n  <;> simp\n  <;> linarith\n  done").as_deref(),
            Some("constructor <;> simp <;> linarith")
        );
    }

    #[test]
    fn open_brackets_continue_and_cut_off_ones_are_dropped() {
        let text = "nlinarith [sq_nonneg (x - 1),\n  sq_nonneg (x + 1),\n  h₀]\n  linarith";
        assert_eq!(
            first(text).as_deref(),
            Some("nlinarith [sq_nonneg (x - 1), sq_nonneg (x + 1), h₀]")
        );
        assert_eq!(first("nlinarith [sq_nonneg (x - 1), sq_nonneg (x"), None);
    }

    fn completion(pieces: &[(&str, f64)]) -> Completion {
        Completion {
            text: pieces.iter().map(|p| p.0).collect(),
            tokens: pieces
                .iter()
                .enumerate()
                .map(|(i, (t, lp))| TokenLogprob {
                    logprob: *lp,
                    token_id: Some(i as u32),
                    text: Some((*t).into()),
                })
                .collect(),
            finish_reason: "stop".into(),
            ..Completion::default()
        }
    }

    #[test]
    fn logprob_sums_the_tokens_covering_the_tactic() {
        let c = completion(&[
            ("lin", -0.5),
            ("arith", -0.25),
            ("\n", -0.1),
            ("  simp", -2.0),
            ("\n", -0.1),
        ]);
        let set = extract_candidates(&[c], &banned(), 2);
        assert_eq!(
            set.candidates,
            vec![Candidate {
                tactic: "linarith".into(),
                logprob: -0.75,
                tokens: 2,
                count: 1
            }]
        );
        // The fence tokens the model spent before the tactic count too.
        let c = completion(&[("```lean4\n", -0.2), ("omega", -0.3), ("\n```", -0.1)]);
        let set = extract_candidates(&[c], &banned(), 2);
        assert_eq!(
            (set.candidates[0].logprob, set.candidates[0].tokens),
            (-0.5, 2)
        );
    }

    #[test]
    fn logprob_falls_back_to_character_share_without_texts() {
        let mut c = completion(&[("simp", -1.0), ("\n", -1.0), ("ring", -1.0), ("\n", -1.0)]);
        for t in &mut c.tokens {
            t.text = None;
        }
        // "simp" is 4 of 10 characters: ceil(4 tokens * 0.4) = 2 tokens.
        let set = extract_candidates(&[c], &banned(), 2);
        assert_eq!(
            (set.candidates[0].logprob, set.candidates[0].tokens),
            (-2.0, 2)
        );
        // Token texts that do not spell the text (byte-level pieces) also fall back.
        let mut c = completion(&[("sim", -1.0), ("p", -1.0)]);
        c.text = "simp".into();
        c.tokens[0].text = Some("\u{fffd}".into());
        let set = extract_candidates(&[c], &banned(), 2);
        assert_eq!(set.candidates[0].tokens, 2);
    }

    #[test]
    fn tactics_cut_by_the_token_limit_are_not_used() {
        let mut cut = completion(&[("nlinarith [sq_nonneg (a - b), sq_", -3.0)]);
        cut.finish_reason = "length".into();
        let mut cut_in_block = completion(&[
            ("have h : a = b := by\n    simp only [", -1.0),
            ("foo]", -1.0),
        ]);
        cut_in_block.finish_reason = "length".into();
        let mut cut_word = completion(&[("linar", -0.5)]);
        cut_word.finish_reason = "length".into();
        let mut ended = completion(&[("linarith\n  nlinarith [sq_nonneg (a", -1.0)]);
        ended.finish_reason = "length".into();
        let set = extract_candidates(&[cut, cut_in_block, cut_word, ended], &banned(), 2);
        assert_eq!(set.empty_count, 3);
        assert_eq!(set.candidates.len(), 1);
        assert_eq!(set.candidates[0].tactic, "linarith");
    }

    #[test]
    fn a_stop_regex_match_is_the_start_of_the_next_tactic() {
        // SGLang keeps the matched text: the tactic is everything before that last line.
        let mut next = completion(&[("  subst h", -0.5), ("\n  n", -0.2)]);
        next.finish_reason = STOP_REGEX.into();
        // A completion that opens a code block first: the match is the tactic's own line.
        let mut own_line = completion(&[("```lean4\n  o", -0.5)]);
        own_line.finish_reason = STOP_REGEX.into();
        let set = extract_candidates(&[next, own_line], &banned(), 0);
        assert_eq!(set.empty_count, 1);
        assert_eq!(
            (set.candidates[0].tactic.as_str(), set.candidates[0].tokens),
            ("subst h", 1)
        );
    }

    #[test]
    fn deepseek_v2_style_completions() {
        // A `have` whose proof spans lines, then the next state comment and more proof.
        let text = "have h₂ : (x - 1) ^ 2 ≥ 0 := by\n    nlinarith [sq_nonneg (x - 1),\n      sq_nonneg (x + 1)]\n  /- tactic state:\n    x : ℝ\n    h₂ : (x - 1) ^ 2 ≥ 0\n    ⊢ x ^ 2 + 1 ≥ 2 * x\n  -/\n  nlinarith [h₂]\n```";
        assert_eq!(
            first(text).as_deref(),
            Some("have h₂ : (x - 1) ^ 2 ≥ 0 := by\n  nlinarith [sq_nonneg (x - 1), sq_nonneg (x + 1)]")
        );
        // `rcases` patterns and an anonymous-constructor `exact` on one line.
        let text = "rcases h₀ with ⟨a, b, hab⟩\n  exact ⟨a, by omega⟩";
        assert_eq!(first(text).as_deref(), Some("rcases h₀ with ⟨a, b, hab⟩"));
        // Interval cases with a combinator on the next line.
        let text = "interval_cases x\n  <;> simp_all\n  all_goals omega";
        assert_eq!(
            first(text).as_deref(),
            Some("interval_cases x <;> simp_all")
        );
    }

    #[test]
    fn dedup_banned_and_empty_counts() {
        let cs = vec![
            completion(&[("norm_num", -1.0), ("\n", 0.0)]),
            completion(&[("sorry", -0.1)]),
            completion(&[("norm_num  ", -0.5), ("\n  linarith", -1.0)]),
            completion(&[("-- nothing", -0.3)]),
            completion(&[("exact sorry_free", -2.0)]),
            completion(&[("admit", -0.2)]),
        ];
        let set = extract_candidates(&cs, &banned(), 2);
        assert_eq!(set.generated, 6);
        assert_eq!(set.banned_count, 2);
        assert_eq!(set.empty_count, 1);
        assert_eq!(set.unique, 2);
        assert_eq!(
            set.candidates[0],
            Candidate {
                tactic: "norm_num".into(),
                logprob: -0.5,
                tokens: 1,
                count: 2
            }
        );
        assert_eq!(set.candidates[1].tactic, "exact sorry_free");
    }

    fn sequence(c: &Completion) -> Vec<(String, f64, usize)> {
        tactic_sequence(c, 2)
            .into_iter()
            .map(|s| (s.tactic, s.logprob, s.tokens))
            .collect()
    }

    #[test]
    fn a_continuation_splits_into_its_tactics_with_their_own_tokens() {
        let c = completion(&[
            ("have h : x = 2 := by", -1.0),
            ("\n    linarith", -0.5),
            ("\n  /- tactic state:\n    ⊢ x = 2\n  -/", -0.25),
            ("\n  subst h", -0.125),
            ("\n  constructor <;>\n    norm_num", -2.0),
            ("\n```", -0.0625),
            ("\nThe proof is done.", -4.0),
        ]);
        assert_eq!(
            sequence(&c),
            vec![
                ("have h : x = 2 := by\n  linarith".to_owned(), -1.5, 2),
                ("subst h".to_owned(), -0.375, 2),
                ("constructor <;> norm_num".to_owned(), -2.0, 1),
            ]
        );
        // The same rules as `first_tactic` for the first step.
        assert_eq!(
            first_tactic(&c.text, 2).map(|(t, _)| t),
            Some(sequence(&c)[0].0.clone())
        );
    }

    #[test]
    fn a_continuation_ends_outside_the_proof_or_where_it_is_cut() {
        // A line left of the proof's column is no longer the proof.
        let c = completion(&[("simp\n  ring\ntheorem other : True := by\n  trivial", -1.0)]);
        let tactics: Vec<String> = sequence(&c).into_iter().map(|s| s.0).collect();
        assert_eq!(tactics, ["simp", "ring"]);
        // Cut by the token limit: the last tactic may go on, so it is dropped.
        let mut cut = completion(&[("simp\n", -1.0), ("  nlinarith [sq_nonneg", -1.0)]);
        cut.finish_reason = "length".into();
        assert_eq!(sequence(&cut).len(), 1);
        let mut cut = completion(&[("simp\n", -1.0), ("  linarith", -1.0)]);
        cut.finish_reason = "length".into();
        assert_eq!(sequence(&cut).len(), 1);
        assert!(sequence(&completion(&[("-- nothing", -1.0)])).is_empty());
    }
}
