//! Tactic mode (with and without stop strings), proof mode and pass@N side by side: one
//! world, one latency model, the real transports (the simulated SGLang over loopback HTTP,
//! the simulated REPL as this binary re-run with `--sim-repl`, one process per worker).
//!
//! The simulated model writes the rest of the proof after each sampled tactic, as
//! DeepSeek-Prover does (the state's most likely tactic at each following state, so a
//! likely dead end spoils the rest of the continuation), then the closing fence. Some
//! tactics it writes in layouts a tactic stop must not cut short: after a `--` comment or a
//! docstring, as a `calc` whose steps stand at the proof's column, broken after a `,` inside
//! brackets; and some broken inside brackets after an argument, which no stop regex can
//! keep (counted as empty samples). Tactic
//! requests use `deepseek-tactic-state` with no stop, its own stops (the fence, a blank line,
//! a state comment: none falls between two tactics of this model) or `"\n"`; proof requests
//! `deepseek-v1.5-proof` (the same prompt text, so prefill costs alike) stopping at the fence.
//! Full-scale costs: a generate
//! request 100 ms + 25 ms per decode step (the longest completion in the request, in
//! tokens) + 20 ms per distinct prompt (prefill); Lean 150 ms per request. Every delay is
//! divided by `SCALE`. Reported per mode: theorems proved, generate calls, tokens per proof,
//! tokens never replayed, samples without a usable tactic, simulated GPU-seconds per proof
//! (the SGLang simulator's charged time, scaled back), theorems per hour. Not a test: it
//! prints a table and writes
//! `target/bench/expansion_modes.json`.
//!
//! `cargo bench -p search --bench expansion_modes --profile dev`

use std::path::Path;
use std::time::Instant;

use search::config::{Config, Expansion};
use serde_json::json;
use sim::world::{Effect, World, WorldState, WorldTactic, WorldTheorem};

mod support;

use support::SCALE;
const THEOREMS: usize = 48;
const CONCURRENCY: usize = 4;
const NUM_CANDIDATES: usize = 8;

fn goals(theorem: usize, state: &str) -> Vec<String> {
    vec![format!(
        "x y : ℝ\nh₀ : 0 < x ∧ 0 < y\nh₁ : x + y = {theorem}\n⊢ goal_{state} x y"
    )]
}

/// Theorem `i`: a chain of 2 to 7 steps. At some states a dead-end side step is the model's
/// favourite (its continuation then fails); every state has a few failing tactics. Every
/// seventh theorem has no proof at all.
fn world() -> World {
    let theorems = (0..THEOREMS)
        .map(|i| {
            let depth = 2 + i % 6;
            let provable = i % 7 != 6;
            let mut states = Vec::new();
            for k in 0..depth {
                let next = if k + 1 == depth {
                    if provable {
                        Effect::Goals(Vec::new())
                    } else {
                        Effect::Error("linarith failed".into())
                    }
                } else {
                    Effect::Goals(goals(i, &format!("p{}", k + 1)))
                };
                let side = format!("s{k}");
                let side_first = (i * 7 + k * 3) % 4 == 0;
                let mut tactics = vec![
                    proving_tactic(i + k, k, next),
                    WorldTactic::new(
                        format!("apply side_lemma_{k}"),
                        if side_first { -0.2 } else { -0.9 },
                        Effect::Goals(goals(i, &side)),
                    ),
                ];
                for f in 0..3 {
                    tactic_failing(&mut tactics, f, k);
                }
                // A break after an argument inside brackets: the stop cuts the tactic there.
                if (i + k) % 6 == 5 {
                    let broken = tactics[2].tactic.replace("sq_nonneg (", "sq_nonneg\n  (");
                    tactics[2].completion = Some(format!("{broken}\n"));
                }
                states.push(WorldState {
                    goals: goals(i, &format!("p{k}")),
                    tactics,
                });
                let mut dead = Vec::new();
                tactic_failing(&mut dead, 9, k);
                states.push(WorldState {
                    goals: goals(i, &side),
                    tactics: dead,
                });
            }
            WorldTheorem {
                name: format!("em_{i}"),
                formal_statement: format!(
                    "theorem em_{i} (x y : ℝ) (h₀ : 0 < x ∧ 0 < y) (h₁ : x + y = {i}) : goal_p0 x y := by"
                ),
                root: goals(i, "p0"),
                states,
                sketches: Vec::new(),
            }
        })
        .collect();
    World {
        modules: vec!["Mathlib".into(), "Aesop".into()],
        theorems,
    }
}

/// The tactic that proves step `k`, in the layout `layout % 6` picks: plain (two in six),
/// after a comment, after a docstring, a `calc` with its steps at the proof's column, or
/// broken after a `,` inside brackets. A completion is written from the tactic's column, so
/// its later lines carry the proof's indentation.
fn proving_tactic(layout: usize, k: usize, next: Effect) -> WorldTactic {
    let plain = format!("nlinarith [sq_nonneg (x - y), step_{k}]");
    let written = |completion: String| WorldTactic {
        completion: Some(completion),
        ..WorldTactic::new(plain.clone(), -0.4, next.clone())
    };
    match layout % 6 {
        1 => written(format!("-- the step lemma closes it\n  {plain}\n")),
        2 => written(format!("/-- step {k} -/\n  {plain}\n")),
        3 => WorldTactic::new(
            format!("calc x + y = y + x := by ring\n_ = x + y := by nlinarith [step_{k}]"),
            -0.4,
            next,
        ),
        4 => written(format!("nlinarith [sq_nonneg (x - y),\n  step_{k}]\n")),
        _ => WorldTactic::new(plain, -0.4, next),
    }
}

fn tactic_failing(tactics: &mut Vec<WorldTactic>, f: usize, k: usize) {
    tactics.push(WorldTactic::new(
        format!(
            "field_simp [h₀.1.ne', mul_comm] at h₁ ⊢ <;> nlinarith [sq_nonneg (x - {f}), h_{k}]"
        ),
        -1.2 - f as f64 * 0.3,
        Effect::Error("simp made no progress".into()),
    ));
}

struct Mode {
    name: &'static str,
    expansion: Expansion,
    /// `[policy].stop` of tactic requests (proof requests stop at the fence).
    stop: Option<Vec<String>>,
    /// `[policy].stop_regex` of tactic requests (proof requests send none).
    stop_regex: Option<Vec<String>>,
    max_nodes: usize,
    num_candidates: usize,
}

fn config(mode: &Mode, url: &str, world_file: &Path) -> Config {
    let mut config = support::decode_latency_config(url, world_file, CONCURRENCY);
    config.search.expansion = mode.expansion;
    config.search.max_nodes = mode.max_nodes;
    config.search.num_candidates = mode.num_candidates;
    config.policy.stop = mode.stop.clone();
    config.policy.stop_regex = mode.stop_regex.clone();
    config
}

fn main() {
    if support::served_sim_repl() {
        return;
    }
    let world = world();
    let dir = tempfile::tempdir().expect("tempdir");
    let world_file = dir.path().join("world.json");
    support::write_world(&world_file, &world);
    let servers_rt = support::servers_runtime();
    let sglang = support::decode_latency_sglang(&servers_rt, &world);
    let url = sglang.url();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let modes = [
        Mode {
            name: "tactic, no stop",
            expansion: Expansion::Tactic,
            stop: Some(Vec::new()),
            stop_regex: Some(Vec::new()),
            max_nodes: 100,
            num_candidates: NUM_CANDIDATES,
        },
        Mode {
            name: "tactic, the template's stop strings",
            expansion: Expansion::Tactic,
            stop: None,
            stop_regex: Some(Vec::new()),
            max_nodes: 100,
            num_candidates: NUM_CANDIDATES,
        },
        Mode {
            name: "tactic, the template's stops (default)",
            expansion: Expansion::Tactic,
            stop: None,
            stop_regex: None,
            max_nodes: 100,
            num_candidates: NUM_CANDIDATES,
        },
        Mode {
            name: "tactic, stop \"\\n\"",
            expansion: Expansion::Tactic,
            stop: Some(vec!["\n".into()]),
            stop_regex: Some(Vec::new()),
            max_nodes: 100,
            num_candidates: NUM_CANDIDATES,
        },
        Mode {
            name: "proof",
            expansion: Expansion::Proof,
            stop: None,
            stop_regex: None,
            max_nodes: 100,
            num_candidates: NUM_CANDIDATES,
        },
        Mode {
            name: "pass@N",
            expansion: Expansion::Proof,
            stop: None,
            stop_regex: None,
            max_nodes: 1,
            num_candidates: NUM_CANDIDATES,
        },
    ];
    println!(
        "{THEOREMS} theorems, concurrency {CONCURRENCY}, num_candidates {NUM_CANDIDATES}; {}\n",
        support::decode_latency_line()
    );
    println!("| mode | proved | generate calls | tokens generated | tokens/proof | never replayed | empty samples | GPU-s/proof | theorems/hour |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut rows = Vec::new();
    for mode in &modes {
        let config = config(mode, &url, &world_file);
        let gpu_before = sglang.gpu_time.total();
        let out = dir.path().join(
            mode.name
                .replace([' ', ',', '"', '\\', '(', ')', '\''], "_"),
        );
        let started = Instant::now();
        let summary = support::sweep_world(&runtime, &config, &world, &out);
        let wall_s = started.elapsed().as_secs_f64() * f64::from(SCALE);
        let gpu_s = (sglang.gpu_time.total() - gpu_before).as_secs_f64() * f64::from(SCALE);
        let s = &summary;
        let proved = s.proved.max(1) as f64;
        let name = match s.mode.as_deref() {
            Some(m) if m.starts_with("pass@") => m.to_owned(),
            _ => mode.name.to_owned(),
        };
        println!(
            "| {name} | {} | {} | {} | {:.0} | {:.0}% | {} | {:.1} | {:.0} |",
            s.proved,
            s.totals.gen_calls,
            s.totals.tokens_generated,
            s.tokens_per_proof,
            100.0 * s.totals.tokens_unreplayed as f64 / s.totals.tokens_generated.max(1) as f64,
            s.totals.candidates_empty,
            gpu_s / proved,
            THEOREMS as f64 / wall_s * 3600.0,
        );
        rows.push(json!({
            "mode": name,
            "proved": s.proved,
            "theorems": s.theorems,
            "generate_calls": s.totals.gen_calls,
            "lean_calls": s.totals.lean_calls,
            "tokens_generated": s.totals.tokens_generated,
            "tokens_prompt": s.totals.tokens_prompt,
            "tokens_unreplayed": s.totals.tokens_unreplayed,
            "candidates_empty": s.totals.candidates_empty,
            "tokens_per_proof": s.tokens_per_proof,
            "replay_reused": s.totals.replay_reused,
            "simulated_gpu_s": gpu_s,
            "gpu_s_per_proof": gpu_s / proved,
            "wall_s_full_scale": wall_s,
            "theorems_per_hour_full_scale": THEOREMS as f64 / wall_s * 3600.0,
        }));
    }
    support::write_result(
        "expansion_modes",
        &json!({
            "theorems": THEOREMS,
            "concurrency": CONCURRENCY,
            "num_candidates": NUM_CANDIDATES,
            "latency": support::decode_latency_json(),
            "modes": rows,
        }),
    );
    drop(sglang);
}
