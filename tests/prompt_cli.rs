//! `stepwise prompt` as a real process: the node's goals come from the simulated REPL
//! (`stepwise sim repl`), the bytes on stdout are the prompt the server would get.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::json;

/// The theorem of the V1.5 prompt tests in `search/src/templates.rs` (a header, an
/// `informal_prefix` docstring, the statement), with a tactic that gives a two-line goal.
fn write_inputs(dir: &Path) {
    let world = json!({"theorems": [{
        "name": "foo",
        "formal_statement": "theorem foo : 1 + 1 = 2 := by\n",
        "root": ["⊢ 1 + 1 = 2"],
        "states": [{"goals": ["⊢ 1 + 1 = 2"], "tactics": [
            {"tactic": "have h : (2:ℕ) = 2 := rfl", "logprob": -0.5,
             "effect": {"goals": ["h : 2 = 2\n⊢ 1 + 1 = 2"]}}
        ]}]
    }]});
    std::fs::write(dir.join("world.json"), world.to_string()).unwrap();
    let theorem = json!({"name": "foo", "header": "import Mathlib\n",
        "informal_prefix": "/-- Show that 1+1=2 -/\n",
        "formal_statement": "theorem foo : 1 + 1 = 2 := by\n"});
    std::fs::write(dir.join("theorems.jsonl"), format!("{theorem}\n")).unwrap();
    std::fs::write(
        dir.join("config.toml"),
        "[policy]\ntemplate = \"deepseek-tactic-state\"\n[lean]\nworkers = 1\ntactic_timeout = 10\n",
    )
    .unwrap();
}

fn prompt(dir: &Path, extra: &[&str]) -> Output {
    let command = json!([
        env!("CARGO_BIN_EXE_stepwise"),
        "sim",
        "repl",
        "--world",
        dir.join("world.json")
    ]);
    Command::new(env!("CARGO_BIN_EXE_stepwise"))
        .arg("prompt")
        .arg("--config")
        .arg(dir.join("config.toml"))
        .arg("--theorems")
        .arg(dir.join("theorems.jsonl"))
        .args(["--set", &format!("lean.command={command}")])
        .args(extra)
        .output()
        .unwrap()
}

/// Expected bytes: DeepSeek-Prover-V1.5 @ 2c4ba91 `prover/utils.py` `non_cot_prompt` plus the
/// RMaxTS `_extra_prompt` (tactic code + `prover/lean/proof.py` state comment), as Python
/// builds them for this node.
#[test]
fn prompt_prints_deepseek_v15_bytes_for_the_node() {
    let dir = tempfile::tempdir().unwrap();
    write_inputs(dir.path());
    let out = prompt(dir.path(), &["--tactics", "have h : (2:ℕ) = 2 := rfl"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "Complete the following Lean 4 code:\n\n```lean4\nimport Mathlib\n\
         /-- Show that 1+1=2 -/\ntheorem foo : 1 + 1 = 2 := by\n  have h : (2:ℕ) = 2 := rfl\n  \
         /- tactic state:\n    h : 2 = 2\n    ⊢ 1 + 1 = 2\n  -/\n"
    );
    assert!(
        stderr.contains(r#"stop strings: ["```","\n\n","/- tactic state:"]"#),
        "{stderr}"
    );

    // The root: V1.5 writes no state comment there.
    let out = prompt(dir.path(), &["--name", "foo"]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "Complete the following Lean 4 code:\n\n```lean4\nimport Mathlib\n\
         /-- Show that 1+1=2 -/\ntheorem foo : 1 + 1 = 2 := by\n"
    );
}

/// Under `search.expansion = "proof"` the sweep sends the proof template (DeepSeek-Prover-V2's
/// chat framing, its assistant turn pre-filled up to the node) with the fence as its only
/// stop, and so does `prompt` print: `[policy].template` and `[policy].stop` are the tactic
/// requests'.
#[test]
fn prompt_under_proof_expansion_prints_the_proof_templates_bytes() {
    let dir = tempfile::tempdir().unwrap();
    write_inputs(dir.path());
    let out = prompt(
        dir.path(),
        &[
            "--set",
            "search.expansion=proof",
            "--set",
            r#"policy.stop=["\n"]"#,
            "--tactics",
            "have h : (2:ℕ) = 2 := rfl",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let block = "```lean4\nimport Mathlib\n/-- Show that 1+1=2 -/\ntheorem foo : 1 + 1 = 2 := by\n";
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!(
            "<\u{ff5c}User\u{ff5c}>Complete the following Lean 4 code:\n\n{block}  sorry\n```\
             <\u{ff5c}Assistant\u{ff5c}>{block}  have h : (2:ℕ) = 2 := rfl\n  \
             /- tactic state:\n    h : 2 = 2\n    ⊢ 1 + 1 = 2\n  -/\n"
        )
    );
    assert!(stderr.contains("template: deepseek-v2-proof"), "{stderr}");
    assert!(stderr.contains(r#"stop strings: ["```"]"#), "{stderr}");
    assert!(!stderr.contains("stop regexes"), "{stderr}");
}

#[test]
fn prompt_names_a_tactic_lean_rejects_and_an_unknown_theorem() {
    let dir = tempfile::tempdir().unwrap();
    write_inputs(dir.path());
    let out = prompt(dir.path(), &["--tactics", "nonsense_tactic"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("nonsense_tactic"), "{stderr}");
    let out = prompt(dir.path(), &["--name", "bar"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no theorem `bar`"));
}

#[test]
fn policy_stop_overrides_the_templates_stop_strings() {
    let dir = tempfile::tempdir().unwrap();
    write_inputs(dir.path());
    let out = prompt(dir.path(), &["--set", r#"policy.stop=["\n"]"#]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(r#"stop strings: ["\n"]"#), "{stderr}");
}

/// `policy.bos = "template"` puts the BOS text first in the bytes, and `prompt` says so; by
/// default the bytes have none (the server's tokenizer adds it).
#[test]
fn prompt_says_whether_the_bos_text_is_part_of_the_bytes() {
    let dir = tempfile::tempdir().unwrap();
    write_inputs(dir.path());
    let plain = prompt(dir.path(), &[]);
    assert!(plain.status.success());
    let stderr = String::from_utf8_lossy(&plain.stderr);
    assert!(
        stderr.contains("BOS text in the bytes: none (policy.bos = \"server\""),
        "{stderr}"
    );
    let with_bos = prompt(dir.path(), &["--set", "policy.bos=template"]);
    let stderr = String::from_utf8_lossy(&with_bos.stderr);
    assert!(with_bos.status.success(), "{stderr}");
    let bos = search::bos::DEEPSEEK_BOS;
    assert_eq!(with_bos.stdout, [bos.as_bytes(), &plain.stdout].concat());
    assert!(
        stderr.contains(&format!(
            "BOS text in the bytes: {bos:?} (policy.bos = \"template\""
        )),
        "{stderr}"
    );
}

/// DeepSeek-Prover-V2's chain-of-thought prompt (deepseek-ai/DeepSeek-Prover-V2 README) in
/// its chat framing, with the sketch request after it: the planner's bytes at the root, and
/// below it the proof so far and the node's state in the code.
#[test]
fn prompt_under_planner_prints_the_planner_s_bytes() {
    let dir = tempfile::tempdir().unwrap();
    write_inputs(dir.path());
    let out = prompt(dir.path(), &["--planner"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = concat!(
        "<｜User｜>Complete the following Lean 4 code:\n\n",
        "```lean4\nimport Mathlib\n/-- Show that 1+1=2 -/\ntheorem foo : 1 + 1 = 2 := by\n  sorry\n```\n\n",
        "Before producing the Lean 4 code to formally prove the given theorem, provide a detailed proof plan outlining the main proof steps and strategies.\n",
        "The plan should highlight key ideas, intermediate lemmas, and proof structures that will guide the construction of the final formal proof.\n",
        "Then write the proof as a sketch: state each intermediate lemma with `have`, prove each with `sorry`, and close the goal from the lemmas.",
        "<｜Assistant｜>"
    );
    assert_eq!(String::from_utf8(out.stdout).unwrap(), expected);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("planner template: deepseek-v2-sketch"),
        "{stderr}"
    );

    let out = prompt(
        dir.path(),
        &["--planner", "--tactics", "have h : (2:ℕ) = 2 := rfl"],
    );
    let below = String::from_utf8(out.stdout).unwrap();
    assert!(
        below.contains(":= by\n  have h : (2:ℕ) = 2 := rfl\n  /- tactic state:\n    h : 2 = 2\n    ⊢ 1 + 1 = 2\n  -/\n  sorry\n```"),
        "{below}"
    );
}
