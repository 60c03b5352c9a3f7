//! The value-model loop measured: `stepwise iterate --rounds 2` over the signal world
//! (`sim::signal_world`: dead ends the policy favours, recognisable only from their text),
//! once with the labels the sweeps found and three times as the shuffled-label control
//! (`--shuffle-labels 1|2|3`), on the tiny committed Llama as the encoder. Every process is the
//! real binary (`stepwise iterate`, `sim repl`, `ebm serve`); the simulated SGLang runs in
//! this process. Not a test: it prints a table and writes `target/bench/iterate.json`.
//!
//! The targets (issue 22): on the eval theorems, expansions per proof at round 2 at most 0.8×
//! round 0 with the learned head; the controls' mean at least 0.9× round 0 and at least 0.1
//! above the learned head.
//!
//! `CARGO_INCREMENTAL=0 cargo bench --bench iterate --profile dev`; add `-- --default-tiers`
//! to train on `ebm train`'s default negatives (7, drawn from siblings, the same theorem and
//! other theorems) instead of sibling negatives alone.

use std::path::Path;
use std::time::Instant;

use serde_json::{json, Value};
use sim::sglang::SglangOptions;
use sim::signal_world::SignalWorld;

#[path = "../search/benches/support/mod.rs"]
mod bench_support;
#[path = "../tests/support/iterate.rs"]
#[allow(dead_code)] // the tests' half of it
mod iterate_support;

use iterate_support::{ebm_serve_argv, free_port, iterate, placement, write_world};

const ROUNDS: usize = 2;
const EVAL_EVERY: usize = 3;
const CONTROL_SEEDS: [u64; 3] = [1, 2, 3];
/// The training flags that pick negatives, left out with `--default-tiers`.
const TIER_FLAGS: [&str; 3] = ["--negatives", "--hard-ratio", "--medium-ratio"];

fn main() {
    let default_tiers = std::env::args().any(|a| a == "--default-tiers");
    let mut training: Vec<&str> = Vec::new();
    for pair in iterate_support::TRAINING.chunks(2) {
        if !(default_tiers && TIER_FLAGS.contains(&pair[0])) {
            training.extend(pair);
        }
    }
    let name = if default_tiers {
        "iterate-default-tiers"
    } else {
        "iterate"
    };
    let root = bench_support::out_dir().join(name);
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).expect("create the bench folder");
    // `--theorems N`: another world size (the default's is in docs/performance.md).
    let args: Vec<String> = std::env::args().collect();
    let theorems = args
        .iter()
        .position(|a| a == "--theorems")
        .and_then(|i| args.get(i + 1)?.parse().ok());
    let shape = SignalWorld {
        theorems: theorems.unwrap_or(SignalWorld::default().theorems),
        ..SignalWorld::default()
    };
    let files = write_world(&root, &shape, EVAL_EVERY);
    println!(
        "signal world: {} theorems ({} train, {} eval), {} dead ends per state, {} rewrites \
         deep, the policy misled at every {}th decision",
        shape.theorems,
        files.train_names.len(),
        files.eval_names.len(),
        shape.dead_ends.len(),
        shape.dead_end_depth,
        shape.misled_every
    );
    let servers = bench_support::servers_runtime();
    let world: sim::world::World =
        serde_json::from_slice(&std::fs::read(&files.world).expect("world")).expect("world");
    let sglang = servers
        .block_on(sim::sglang::spawn(world, SglangOptions::default()))
        .expect("simulated SGLang");

    let mut runs: Vec<(String, Option<u64>)> = vec![("learned".into(), None)];
    runs.extend(CONTROL_SEEDS.map(|s| (format!("control, seed {s}"), Some(s))));
    let mut results = Vec::new();
    for (name, seed) in &runs {
        let out = root.join(name.replace([',', ' '], "-"));
        let port = free_port();
        let argv = serde_json::to_string(&ebm_serve_argv(port)).expect("argv");
        let seed_text = seed.map(|s| s.to_string());
        let mut extra = vec!["--ebm-serve", argv.as_str()];
        extra.extend(&training);
        if let Some(seed) = &seed_text {
            // The seed draws the labels' permutation and the head's initial weights (and
            // its train/validation split): a control that kept the learned run's
            // initialisation would be three draws of one noise head, not three.
            extra.extend(["--shuffle-labels", seed.as_str(), "--seed", seed.as_str()]);
        }
        let started = Instant::now();
        let output = iterate(
            &files,
            &root.join("config.toml"),
            &out,
            ROUNDS,
            &placement(&files, &sglang.url(), port),
            &extra,
        )
        .output()
        .expect("run stepwise iterate");
        assert!(
            output.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let seconds = started.elapsed().as_secs_f64();
        println!("\n{name} ({seconds:.0} s): {}", out.display());
        print!("{}", String::from_utf8_lossy(&output.stdout));
        results.push(json!({"run": name, "seed": seed, "seconds": seconds, "iterate": read(&out.join("iterate.json"))}));
    }

    let ratio =
        |run: &Value| run["iterate"]["rounds"][ROUNDS]["eval"]["expansions_vs_round_0"].as_f64();
    let learned = ratio(&results[0]).expect("the learned run has a ratio");
    let controls: Vec<f64> = results[1..].iter().filter_map(ratio).collect();
    let control_mean = controls.iter().sum::<f64>() / controls.len() as f64;
    let met = [
        ("learned ≤ 0.8× round 0", learned <= 0.8),
        ("control mean ≥ 0.9× round 0", control_mean >= 0.9),
        (
            "control mean ≥ learned + 0.1",
            control_mean >= learned + 0.1,
        ),
    ];
    println!("\neval expansions per proof, round {ROUNDS} over round 0:");
    println!("  learned head   {learned:.3}");
    for (run, r) in results[1..].iter().zip(&controls) {
        println!("  {:<14} {r:.3}", run["run"].as_str().unwrap_or(""));
    }
    println!("  control mean   {control_mean:.3}");
    for (target, ok) in met {
        println!("  {target}: {}", if ok { "met" } else { "NOT met" });
    }
    bench_support::write_result(
        name,
        &json!({
            "world": {
                "theorems": shape.theorems,
                "train": files.train_names.len(),
                "eval": files.eval_names.len(),
                "dead_ends": shape.dead_ends,
                "path_logprob": shape.path_logprob,
                "misled_path_logprob": shape.misled_path_logprob,
                "misled_every": shape.misled_every,
                "dead_end_depth": shape.dead_end_depth,
                "chain_logprob": shape.chain_logprob,
            },
            "config": iterate_support::CONFIG,
            "training": training,
            "rounds": ROUNDS,
            "learned_ratio": learned,
            "control_ratios": controls,
            "control_mean_ratio": control_mean,
            "targets_met": met.iter().map(|(t, ok)| json!({"target": t, "met": ok})).collect::<Vec<_>>(),
            "runs": results,
        }),
    );
}

fn read(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).expect("iterate.json")).expect("iterate.json")
}
