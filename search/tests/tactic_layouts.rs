//! Layouts a real model writes its tactic in, sampled from the simulated SGLang (which applies
//! the DeepSeek tactic template's `stop_regex` after each token, as SGLang does), read by the
//! policy client and extracted: each keeps its first tactic, and its sample still ends a
//! token into the tactic written after it. A break inside brackets after an argument is the
//! known loss: the stop cuts the tactic there and the sample comes back empty.

use formats::theorems::Theorem;
use search::candidates::{extract_candidates, start_column, tactic_sequence};
use search::config::{Config, Expansion};
use search::policy::{build_policy, Completion, STOP_REGEX};
use search::request_setup::RequestSetup;
use search::templates::PromptInput;
use sim::sglang::{spawn, SglangOptions};
use sim::world::{Effect, World, WorldState, WorldTactic, WorldTheorem};

const STATEMENT: &str = "theorem t (x : ℕ) (h₀ : x = 2) : x + x = 4 := by";
const GOAL: &str = "x : ℕ\nh₀ : x = 2\n⊢ x + x = 4";
/// Where each layout leads, and what the model writes there: the next tactic.
const NEXT_GOAL: &str = "⊢ 2 + 2 = 4";
const NEXT: &str = "norm_num";

/// (the tactic as extraction gives it to Lean, what the model writes from the tactic's
/// column; `None`: the tactic itself, laid out at the proof's column).
const KEPT: &[(&str, Option<&str>)] = &[
    ("linarith", Some("-- use the hypothesis\n  linarith\n")),
    ("omega", Some("/-- by arithmetic on `x` -/\n  omega\n")),
    (
        "calc x + x = 2 + 2 := by rw [h₀]\n_ = 4 := by norm_num",
        None,
    ),
    (
        "nlinarith [sq_nonneg (x - 2), h₀]",
        Some("nlinarith [sq_nonneg (x - 2),\n  h₀]\n"),
    ),
    ("rw [ h₀]", Some("rw [\n  h₀]\n")),
    (
        "have h : x + x = 4 := by omega",
        Some("have h : x + x =\n  4 := by omega\n"),
    ),
];
const LOST: (&str, &str) = (
    "nlinarith [mul_self_nonneg x]",
    "nlinarith [mul_self_nonneg\n  x]\n",
);

/// One theorem whose root offers each layout (most likely first, the lost one last); each
/// leads to a state whose tactic the model writes after it.
fn world() -> World {
    let next = || Effect::Goals(vec![NEXT_GOAL.to_owned()]);
    let layouts = KEPT
        .iter()
        .copied()
        .chain([(LOST.0, Some(LOST.1))])
        .enumerate()
        .map(|(i, (tactic, written))| WorldTactic {
            completion: written.map(str::to_owned),
            ..WorldTactic::new(tactic, -0.1 * (i + 1) as f64, next())
        })
        .collect();
    World {
        modules: vec!["Mathlib".into()],
        theorems: vec![WorldTheorem {
            name: "t".into(),
            formal_statement: STATEMENT.into(),
            root: vec![GOAL.into()],
            sketches: Vec::new(),
            states: vec![
                WorldState {
                    goals: vec![GOAL.into()],
                    tactics: layouts,
                },
                WorldState {
                    goals: vec![NEXT_GOAL.into()],
                    tactics: vec![WorldTactic::new(NEXT, -0.1, Effect::Goals(Vec::new()))],
                },
            ],
        }],
    }
}

/// One sample of each root tactic, with the default config's request setup for `expansion`
/// (the DeepSeek templates and their stops), and the root prompt's column.
async fn samples(expansion: Expansion) -> (Vec<Completion>, usize) {
    let world = world();
    let server = spawn(world.clone(), SglangOptions::default())
        .await
        .unwrap();
    let mut config = Config::default();
    config.policy.urls = vec![server.url()];
    config.search.expansion = expansion;
    let setup = RequestSetup::from_config(&config).unwrap();
    let policy = build_policy(&config.policy, &setup).unwrap();
    let theorem: Theorem = world.theorems[0].input();
    let root = PromptInput::new(&theorem, &config.lean.header, &[], GOAL);
    let prompt = setup.template.render(&root);
    let mut out = policy
        .generate(std::slice::from_ref(&prompt), KEPT.len() + 1)
        .await
        .unwrap();
    (out.remove(0), start_column(&prompt))
}

#[tokio::test]
async fn each_layout_keeps_its_first_tactic_through_the_tactic_stop() {
    let (samples, column) = samples(Expansion::Tactic).await;
    let set = extract_candidates(&samples, &[], column);
    let lost: Vec<String> = samples
        .iter()
        .zip(KEPT)
        .filter(|(sample, (tactic, _))| {
            // Stopped on the regex a token into the next tactic, the first one extracted.
            let last = sample.text.rsplit('\n').next().unwrap_or_default();
            let stopped = sample.finish_reason == STOP_REGEX
                && !last.trim().is_empty()
                && format!("  {NEXT}").starts_with(last);
            !(stopped && set.candidates.iter().any(|c| c.tactic == *tactic))
        })
        .map(|(sample, (tactic, _))| format!("{tactic:?}, sampled as {:?}", sample.text))
        .collect();
    assert!(lost.is_empty(), "lost:\n{}", lost.join("\n"));
    assert_eq!(set.candidates.len(), KEPT.len(), "{:?}", set.candidates);
    let cut = samples.last().unwrap();
    assert!(cut.text.ends_with("mul_self_nonneg\n  x"), "{cut:?}");
    assert_eq!(set.empty_count, 1);
}

/// Whole proofs have no stop regex; the `calc` steps at the proof's column stay one tactic.
#[tokio::test]
async fn a_whole_proof_keeps_calc_steps_at_the_proofs_column() {
    let (samples, column) = samples(Expansion::Proof).await;
    let calc = KEPT[2].0;
    let steps: Vec<String> = tactic_sequence(&samples[2], column)
        .into_iter()
        .map(|s| s.tactic)
        .collect();
    assert_eq!(steps, [calc, NEXT], "{:?}", samples[2].text);
}
