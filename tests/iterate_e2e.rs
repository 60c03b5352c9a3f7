//! `stepwise iterate` end to end over real processes and HTTP: the simulated SGLang in this
//! process, the simulated REPL and `stepwise ebm serve` on the tiny committed Llama as
//! processes, over a generated world whose dead ends only their text gives away
//! (`sim::signal_world`). A head trained on the `--train` theorems' trees must make the
//! sweeps of the `--eval` theorems cheaper, the same head negated dearer; a killed loop must
//! resume without touching a sweep it had finished.

use crate::support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use sim::sglang::{SglangHandle, SglangOptions};
use sim::signal_world::SignalWorld;
use support::iterate::{
    ebm_serve_argv, free_port, iterate, placement, write_world, LoopFiles, CONFIG, TRAINING,
};
use support::{read_json, read_jsonl};

/// Twelve theorems, every third one for eval: 8 to train on, 4 to judge.
fn small_world() -> SignalWorld {
    SignalWorld {
        theorems: 12,
        ..SignalWorld::default()
    }
}

async fn sglang(files: &LoopFiles, options: SglangOptions) -> SglangHandle {
    let world = support::load_world(&files.world);
    sim::sglang::spawn(world, options).await.unwrap()
}

/// Every round's eval sweep: total nodes expanded.
fn eval_expansions(dir: &Path) -> u64 {
    read_jsonl(&dir.join("results.jsonl"))
        .iter()
        .map(|r| r["nodes_expanded"].as_u64().unwrap())
        .sum()
}

async fn ok(mut cmd: tokio::process::Command) -> std::process::Output {
    let output = cmd.kill_on_drop(true).output().await.unwrap();
    assert!(
        output.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// A copy of the head at `head` whose energies are the negated ones: the last layer's weights
/// and bias (f32, little-endian) with their sign bits flipped, and a `train.json` whose scale
/// is the negated head's (mean negated, the new weights' sha256), so the search standardises
/// it exactly as it does the original.
fn negated_head(head: &Path, dir: &Path) -> PathBuf {
    let bytes = std::fs::read(head).unwrap();
    let header_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: Value = serde_json::from_slice(&bytes[8..8 + header_len]).unwrap();
    let last = header
        .as_object()
        .unwrap()
        .keys()
        .filter_map(|k| {
            k.strip_prefix("layers.")?
                .split('.')
                .next()?
                .parse::<usize>()
                .ok()
        })
        .max()
        .unwrap();
    let mut out = bytes.clone();
    for name in [
        format!("layers.{last}.weight"),
        format!("layers.{last}.bias"),
    ] {
        let tensor = &header[&name];
        assert_eq!(tensor["dtype"], "F32", "{name}: {tensor}");
        let begin = 8 + header_len + tensor["data_offsets"][0].as_u64().unwrap() as usize;
        let end = 8 + header_len + tensor["data_offsets"][1].as_u64().unwrap() as usize;
        for at in (begin..end).step_by(4) {
            out[at + 3] ^= 0x80;
        }
    }
    std::fs::create_dir_all(dir).unwrap();
    let negated = dir.join("head.safetensors");
    std::fs::write(&negated, &out).unwrap();
    std::fs::copy(head.with_extension("json"), negated.with_extension("json")).unwrap();
    let mut trained = read_json(&head.with_file_name("train.json"));
    let scale = &mut trained["energy_scale"];
    scale["mean"] = Value::from(-scale["mean"].as_f64().unwrap());
    scale["head_sha256"] = Value::from(formats::manifest::sha256_file(&negated).unwrap());
    std::fs::write(dir.join("train.json"), trained.to_string()).unwrap();
    negated
}

/// `stepwise ebm serve` on the tiny Llama at `port` (optionally with `--head`), up.
async fn ebm_serve(port: u16, head: Option<&Path>) -> tokio::process::Child {
    let argv = ebm_serve_argv(port);
    let mut cmd = tokio::process::Command::new(&argv[0]);
    cmd.args(&argv[1..]).kill_on_drop(true);
    if let Some(head) = head {
        cmd.arg("--head").arg(head);
    }
    let child = cmd.spawn().unwrap();
    let health = format!("http://127.0.0.1:{port}/health");
    let started = Instant::now();
    while reqwest_ok(&health).await.is_none() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "ebm serve did not start"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    child
}

/// The JSON of a GET that answered 2xx, else None.
async fn reqwest_ok(url: &str) -> Option<Value> {
    let response = reqwest::get(url).await.ok()?;
    if !response.status().is_success() {
        return None;
    }
    response.json().await.ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_head_trained_on_the_train_sweeps_cuts_eval_expansions_and_negated_raises_them() {
    let dir = tempfile::tempdir().unwrap();
    let files = write_world(dir.path(), &small_world(), 3);
    let server = sglang(&files, SglangOptions::default()).await;
    let port = free_port();
    let out = dir.path().join("loop");
    let argv = serde_json::to_string(&ebm_serve_argv(port)).unwrap();
    let output = ok(tokio::process::Command::from(iterate(
        &files,
        &dir.path().join("config.toml"),
        &out,
        1,
        &placement(&files, &server.url(), port),
        &[&["--ebm-serve", argv.as_str()], TRAINING].concat(),
    )))
    .await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("| round | head |"), "{stdout}");
    // iterate stopped the server it started.
    assert!(reqwest_ok(&format!("http://127.0.0.1:{port}/health"))
        .await
        .is_none());

    // The head learned from the --train sweeps only.
    let trained = read_json(&out.join("round-1/head/train.json"));
    let names = |key: &str| -> Vec<String> {
        trained[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_str().unwrap().to_owned())
            .collect()
    };
    let seen: Vec<String> = [names("train_theorems"), names("val_theorems")].concat();
    assert!(!seen.is_empty());
    for name in &seen {
        assert!(
            !files.eval_names.contains(name),
            "{name} is an eval theorem"
        );
        assert!(files.train_names.contains(name), "{name}");
    }

    // Every sweep's manifest names the head it used; round 0 used none.
    let head_sha =
        formats::manifest::sha256_file(&out.join("round-1/head/head.safetensors")).unwrap();
    for side in ["eval", "train"] {
        let manifest = read_json(&out.join(format!("round-1/{side}/manifest.json")));
        assert_eq!(manifest["ebm"]["head_sha256"], head_sha.as_str(), "{side}");
        assert!(manifest["ebm_energy_scale"]["std"].as_f64().unwrap() > 0.0);
        let baseline = read_json(&out.join(format!("round-0/{side}/manifest.json")));
        assert!(baseline["ebm"].is_null(), "{side}: {baseline}");
    }

    // iterate.json: the head made the eval sweep cheaper on the same proofs, and it ranks
    // siblings better than chance and than the policy it corrects.
    let record = read_json(&out.join("iterate.json"));
    let rounds = record["rounds"].as_array().unwrap();
    assert_eq!(rounds.len(), 2, "{record}");
    let (base, with_head) = (&rounds[0]["eval"], &rounds[1]["eval"]);
    assert_eq!(base["proved"], with_head["proved"], "{record}");
    assert!(
        with_head["expansions_per_proof"].as_f64().unwrap()
            < base["expansions_per_proof"].as_f64().unwrap(),
        "{record}"
    );
    let accuracy = &rounds[1]["sibling_accuracy"];
    let head = accuracy["head"].as_f64().unwrap();
    assert!(head > accuracy["random"].as_f64().unwrap(), "{record}");
    assert!(head > accuracy["log_prob"].as_f64().unwrap(), "{record}");
    assert_eq!(
        rounds[1]["head"]["identity"]["head_sha256"],
        head_sha.as_str()
    );
    assert!(out.join("report.md").exists() && out.join("round-1/eval.json").exists());

    // With weight 0 (round 0), with the head (round 1), with the head negated.
    let without = eval_expansions(&out.join("round-0/eval"));
    let with = eval_expansions(&out.join("round-1/eval"));
    let negated = negated_head(
        &out.join("round-1/head/head.safetensors"),
        &dir.path().join("negated"),
    );
    let port = free_port();
    let _ebm = ebm_serve(port, Some(&negated)).await;
    let config = dir.path().join("sweep.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let mut sweep = tokio::process::Command::new(support::iterate::stepwise());
    sweep
        .arg("sweep")
        .arg("--config")
        .arg(&config)
        .arg("--theorems")
        .arg(&files.eval)
        .arg("--out")
        .arg(dir.path().join("negated-sweep"))
        .args(placement(&files, &server.url(), port));
    ok(sweep).await;
    let against = eval_expansions(&dir.path().join("negated-sweep"));
    assert!(with < without, "with the head {with}, without {without}");
    assert!(against > without, "negated {against}, without {without}");
}

/// sha256 of every file under `dir`, by path relative to it.
fn hashes(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(at) = stack.pop() {
        for entry in std::fs::read_dir(&at).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let name = path.strip_prefix(dir).unwrap().display().to_string();
                out.insert(name, formats::manifest::sha256_file(&path).unwrap());
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loop_killed_mid_round_retrains_resumes_and_leaves_finished_sweeps_as_they_were() {
    let dir = tempfile::tempdir().unwrap();
    let files = write_world(dir.path(), &small_world(), 3);
    // Slow enough generate calls that the kill lands inside round 1's eval sweep.
    let server = sglang(
        &files,
        SglangOptions {
            delay_per_request: Duration::from_millis(40),
            ..Default::default()
        },
    )
    .await;
    // The user's own server: iterate swaps its head and leaves it running.
    let port = free_port();
    let ebm = ebm_serve(port, None).await;
    let out = dir.path().join("loop");
    let config = dir.path().join("config.toml");
    let sets = placement(&files, &server.url(), port);
    let mut first =
        tokio::process::Command::from(iterate(&files, &config, &out, 1, &sets, TRAINING));
    let mut child = first.kill_on_drop(true).spawn().unwrap();
    let in_flight = out.join("round-1/eval/results.jsonl");
    let started = Instant::now();
    while read_jsonl(&in_flight).is_empty() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "iterate ended before the kill"
        );
        assert!(
            started.elapsed() < Duration::from_secs(50),
            "round 1 never started sweeping"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().await.unwrap();
    let finished = [out.join("round-0/eval"), out.join("round-0/train")];
    let before: Vec<_> = finished.iter().map(|d| hashes(d)).collect();
    let done_before: Vec<Value> = read_jsonl(&in_flight);
    assert!(
        done_before.len() < files.eval_names.len(),
        "the kill came too late"
    );
    // As if the kill had come during the training: its folder lacks train.json, written
    // last. The resumed loop trains again, and the same data make the same head, which the
    // interrupted sweep's manifest check accepts.
    let head = out.join("round-1/head/head.safetensors");
    let head_sha = formats::manifest::sha256_file(&head).unwrap();
    std::fs::remove_file(out.join("round-1/head/train.json")).unwrap();
    std::fs::remove_file(&head).unwrap();

    ok(tokio::process::Command::from(iterate(
        &files,
        &config,
        &out,
        1,
        &sets,
        &[&["--resume"], TRAINING].concat(),
    )))
    .await;
    let after: Vec<_> = finished.iter().map(|d| hashes(d)).collect();
    assert_eq!(before, after, "a finished sweep was touched");
    // The interrupted sweep resumed: what it had finished kept its line, the rest ran once.
    let resumed = read_jsonl(&in_flight);
    assert_eq!(resumed.len(), files.eval_names.len());
    for line in &done_before {
        assert!(resumed.contains(line), "{line} was searched again");
    }
    assert_eq!(formats::manifest::sha256_file(&head).unwrap(), head_sha);
    let manifest = read_json(&out.join("round-1/eval/manifest.json"));
    assert_eq!(manifest["runs"].as_array().unwrap().len(), 2);
    assert_eq!(manifest["ebm"]["head_sha256"], head_sha.as_str());
    let record = read_json(&out.join("iterate.json"));
    assert_eq!(record["rounds"].as_array().unwrap().len(), 2, "{record}");

    // A finished loop resumed again needs no server and changes no byte.
    drop(ebm);
    let whole = hashes(&out);
    ok(tokio::process::Command::from(iterate(
        &files,
        &config,
        &out,
        1,
        &sets,
        &[&["--resume"], TRAINING].concat(),
    )))
    .await;
    assert_eq!(whole, hashes(&out));
}
