//! Subgoal decomposition (`search.decompose`) beside plain search, in proof and tactic mode:
//! one world of `have` chains, one latency model, the real transports (the simulated SGLang
//! over loopback HTTP, the simulated REPL as this binary re-run with `--sim-repl`).
//!
//! Theorem `i` is proved by `1 + i % 3` lemmas stated with `have` and a closing `linarith`.
//! The model states every lemma right; it gets a lemma's inner proof right only when
//! `(i + j) % 4 == 0` (lemma `j`), and the last lemma of every sixth theorem is false (the
//! model's tempting step: nothing proves it, though the goal would close from it). At each
//! lemma's own goal the model's favourite tactic fails and its second proves it. At the root
//! a side road of rewrites that never close (a binary tree of 15 states) draws the search
//! when the chain is stuck. Costs as in `expansion_modes`: a generate request 100 ms + 25 ms
//! per decode step + 20 ms per distinct prompt, Lean 150 ms per request, every delay divided
//! by `SCALE`. Not a test: it prints a table and writes `target/bench/decomposition.json`.
//!
//! `cargo bench -p search --bench decomposition --profile dev`

use std::time::Instant;

use search::config::Expansion;
use serde_json::json;
use sim::world::{Effect, World, WorldState, WorldTactic, WorldTheorem};

mod support;

use support::SCALE;
const THEOREMS: usize = 36;
const CONCURRENCY: usize = 4;
const NUM_CANDIDATES: usize = 8;
const MAX_NODES: usize = 40;
const SIDE_ROAD_DEPTH: usize = 3;

fn context(i: usize) -> String {
    format!("x y : ℝ\nh₀ : 0 < x ∧ 0 < y\nh₁ : x + y = {i}")
}

fn hypotheses(lemmas: usize) -> String {
    (1..=lemmas)
        .map(|j| format!("\nl{j} : lemma_{j} x y"))
        .collect()
}

/// The main goal after the first `lemmas` lemmas.
fn main_goal(i: usize, lemmas: usize) -> Vec<String> {
    vec![format!("{}{}\n⊢ goal x y", context(i), hypotheses(lemmas))]
}

fn theorem(i: usize) -> WorldTheorem {
    let lemmas = 1 + i % 3;
    let mut states = Vec::new();
    for j in 1..=lemmas {
        let statement = format!("have l{j} : lemma_{j} x y := by nlinarith [h₀.1, h₀.2]");
        let false_lemma = i % 6 == 5 && j == lemmas;
        let right = (i + j).is_multiple_of(4) && !false_lemma;
        let effect = if right {
            Effect::Goals(main_goal(i, j))
        } else {
            Effect::HaveFails("linarith failed to find a contradiction".into())
        };
        let mut tactics = vec![
            WorldTactic::new(statement, -0.3, effect),
            WorldTactic::new(
                "nlinarith [sq_nonneg (x - y)]",
                -1.0,
                Effect::Error("linarith failed to find a contradiction".into()),
            ),
        ];
        if j == 1 {
            tactics.push(WorldTactic::new(
                "norm_num at h₁ ⊢",
                -0.6,
                Effect::Goals(side_road(i, "")),
            ));
        }
        states.push(WorldState {
            goals: main_goal(i, j - 1),
            tactics,
        });
        let mut inner = vec![WorldTactic::new(
            "linarith",
            -0.2,
            Effect::Error("linarith failed".into()),
        )];
        if !false_lemma {
            inner.push(WorldTactic::new(
                format!("nlinarith [sq_nonneg (x + y), lemma_{j}_aux x y]"),
                -0.5,
                Effect::Goals(Vec::new()),
            ));
        }
        states.push(WorldState {
            goals: vec![format!(
                "{}{}\n⊢ lemma_{j} x y",
                context(i),
                hypotheses(j - 1)
            )],
            tactics: inner,
        });
    }
    let uses: Vec<String> = (1..=lemmas).map(|j| format!("l{j}")).collect();
    states.push(WorldState {
        goals: main_goal(i, lemmas),
        tactics: vec![WorldTactic::new(
            format!("linarith [{}]", uses.join(", ")),
            -0.1,
            Effect::Goals(Vec::new()),
        )],
    });
    side_road_states(i, "", &mut states);
    WorldTheorem {
        name: format!("dc_{i}"),
        formal_statement: format!(
            "theorem dc_{i} (x y : ℝ) (h₀ : 0 < x ∧ 0 < y) (h₁ : x + y = {i}) : goal x y := by"
        ),
        root: main_goal(i, 0),
        states,
        sketches: Vec::new(),
    }
}

fn side_road(i: usize, path: &str) -> Vec<String> {
    vec![format!("{}\n⊢ goal x y ∨ side{path} x y", context(i))]
}

/// Rewrites that never close: two at each state, to `SIDE_ROAD_DEPTH`.
fn side_road_states(i: usize, path: &str, states: &mut Vec<WorldState>) {
    let mut tactics = vec![WorldTactic::new(
        "nlinarith [h₀.1, h₀.2]",
        -0.8,
        Effect::Error("linarith failed to find a contradiction".into()),
    )];
    if path.len() < SIDE_ROAD_DEPTH {
        for (k, tactic) in ["norm_num", "ring_nf"].into_iter().enumerate() {
            let next = format!("{path}{k}");
            tactics.push(WorldTactic::new(
                tactic,
                -0.5 - 0.1 * k as f64,
                Effect::Goals(side_road(i, &next)),
            ));
            side_road_states(i, &next, states);
        }
    }
    states.push(WorldState {
        goals: side_road(i, path),
        tactics,
    });
}

fn world() -> World {
    World {
        modules: vec!["Mathlib".into(), "Aesop".into()],
        theorems: (0..THEOREMS).map(theorem).collect(),
    }
}

struct Mode {
    name: &'static str,
    expansion: Expansion,
    decompose: bool,
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
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let modes = [
        Mode {
            name: "proof",
            expansion: Expansion::Proof,
            decompose: false,
        },
        Mode {
            name: "proof, decompose",
            expansion: Expansion::Proof,
            decompose: true,
        },
        Mode {
            name: "tactic",
            expansion: Expansion::Tactic,
            decompose: false,
        },
        Mode {
            name: "tactic, decompose",
            expansion: Expansion::Tactic,
            decompose: true,
        },
    ];
    println!(
        "{THEOREMS} theorems, concurrency {CONCURRENCY}, num_candidates {NUM_CANDIDATES}, max_nodes {MAX_NODES}; {}\n",
        support::decode_latency_line()
    );
    println!("| mode | proved | by decomposition | generate calls | Lean calls | tokens generated | tokens/proof | holes | subgoals opened / proved / reused | GPU-s/proof | theorems/hour |\n|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|");
    let mut rows = Vec::new();
    for mode in &modes {
        let mut config = support::decode_latency_config(&sglang.url(), &world_file, CONCURRENCY);
        config.search.expansion = mode.expansion;
        config.search.decompose = mode.decompose;
        config.search.max_nodes = MAX_NODES;
        config.search.num_candidates = NUM_CANDIDATES;
        let gpu_before = sglang.gpu_time.total();
        let out = dir.path().join(mode.name.replace([' ', ','], "_"));
        let started = Instant::now();
        let s = support::sweep_world(&runtime, &config, &world, &out);
        let wall_s = started.elapsed().as_secs_f64() * f64::from(SCALE);
        let gpu_s = (sglang.gpu_time.total() - gpu_before).as_secs_f64() * f64::from(SCALE);
        let t = &s.totals;
        let proved = s.proved.max(1) as f64;
        println!(
            "| {} | {} | {} | {} | {} | {} | {:.0} | {} | {} / {} / {} | {:.1} | {:.0} |",
            mode.name,
            s.proved,
            t.proved_by_decomposition,
            t.gen_calls,
            t.lean_calls,
            t.tokens_generated,
            s.tokens_per_proof,
            t.holes_opened,
            t.subgoals_opened,
            t.subgoals_proved,
            t.subgoals_reused,
            gpu_s / proved,
            THEOREMS as f64 / wall_s * 3600.0,
        );
        rows.push(json!({
            "mode": mode.name,
            "proved": s.proved,
            "proved_by_decomposition": t.proved_by_decomposition,
            "theorems": s.theorems,
            "generate_calls": t.gen_calls,
            "lean_calls": t.lean_calls,
            "tokens_generated": t.tokens_generated,
            "tokens_prompt": t.tokens_prompt,
            "tokens_per_proof": s.tokens_per_proof,
            "holes_opened": t.holes_opened,
            "conditional_nodes": t.conditional_nodes,
            "subgoals_opened": t.subgoals_opened,
            "subgoals_proved": t.subgoals_proved,
            "subgoals_reused": t.subgoals_reused,
            "check_failures": t.check_failures,
            "simulated_gpu_s": gpu_s,
            "gpu_s_per_proof": gpu_s / proved,
            "wall_s_full_scale": wall_s,
            "theorems_per_hour_full_scale": THEOREMS as f64 / wall_s * 3600.0,
        }));
    }
    support::write_result(
        "decomposition",
        &json!({
            "theorems": THEOREMS,
            "concurrency": CONCURRENCY,
            "num_candidates": NUM_CANDIDATES,
            "max_nodes": MAX_NODES,
            "latency": support::decode_latency_json(),
            "modes": rows,
        }),
    );
    drop(sglang);
}
