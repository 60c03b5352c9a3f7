//! `stepwise verify` as a real process, over the simulated REPL (`stepwise sim repl`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};

fn world() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/lean_world.json")
}

/// Runs `stepwise verify` on `lines` with the simulated REPL as `lean.command`.
fn verify(dir: &Path, lines: &[Value]) -> (Output, PathBuf) {
    let proofs = dir.join("proofs.jsonl");
    let text: Vec<String> = lines.iter().map(Value::to_string).collect();
    std::fs::write(&proofs, text.join("\n") + "\n").unwrap();
    let config = dir.join("config.toml");
    std::fs::write(&config, "[lean]\nworkers = 2\ntactic_timeout = 10\n").unwrap();
    let command = json!([
        env!("CARGO_BIN_EXE_stepwise"),
        "sim",
        "repl",
        "--world",
        world()
    ]);
    let out = dir.join("verdicts.jsonl");
    let output = Command::new(env!("CARGO_BIN_EXE_stepwise"))
        .arg("verify")
        .arg("--config")
        .arg(&config)
        .arg("--proofs")
        .arg(&proofs)
        .arg("--out")
        .arg(&out)
        .args(["--set", &format!("lean.command={command}")])
        .output()
        .unwrap();
    (output, out)
}

fn proof(name: &str, statement: &str, proof: &str) -> Value {
    json!({"name": name, "formal_statement": statement, "proof": proof})
}

#[test]
fn verify_gives_the_right_verdict_for_each_kind_of_proof() {
    let and_intro = "theorem and_intro_steps (p q : Prop) (hp : p) (hq : q) : p ∧ q := by";
    let add_zero = "theorem add_zero_traps (x : ℕ) : x + 0 = x := by";
    let cases = [
        (
            proof("correct", and_intro, "constructor\nexact hp\nexact hq"),
            true,
        ),
        (proof("wrong", and_intro, "  exact hp"), false),
        (proof("sorry", add_zero, "sorry"), false),
        (proof("metavariable_trap", add_zero, "refine ?_"), false),
        (
            proof("sorry_trap", add_zero, "exact add_zero_sorry x"),
            false,
        ),
        (proof("native_decide", add_zero, "native_decide"), false),
        (proof("correct_too", add_zero, "simp"), true),
    ];
    let dir = tempfile::tempdir().unwrap();
    let inputs: Vec<Value> = cases.iter().map(|(line, _)| line.clone()).collect();
    let (output, out) = verify(dir.path(), &inputs);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("verified 2 of 7 proofs"), "{stdout}");

    let verdicts: Vec<Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(verdicts.len(), cases.len());
    for ((input, expected), verdict) in cases.iter().zip(&verdicts) {
        assert_eq!(verdict["name"], input["name"], "input order is kept");
        assert_eq!(verdict["verified"], *expected, "{verdict}");
        assert!(verdict["wall_ms"].is_u64());
        let errors = verdict["errors"].as_array().unwrap();
        assert_eq!(errors.is_empty(), *expected, "{verdict}");
    }
    assert!(verdicts[1]["errors"][0]
        .as_str()
        .unwrap()
        .starts_with("type mismatch"));
    assert!(verdicts[2]["errors"].to_string().contains("sorry"));
    let native = &verdicts[5];
    assert!(
        native["axioms"].to_string().contains("Lean.ofReduceBool"),
        "{native}"
    );
    assert_eq!(
        verdicts[0]["axioms"],
        json!(["propext", "Classical.choice", "Quot.sound"])
    );
}

#[test]
fn malformed_proofs_line_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let proofs = dir.path().join("proofs.jsonl");
    std::fs::write(
        &proofs,
        "{\"name\": \"a\", \"formal_statement\": \"theorem a : True := by\", \"proof\": \"trivial\"}\n{\"name\": \"b\"\n",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_stepwise"))
        .args(["verify", "--config", "configs/default.toml", "--proofs"])
        .arg(&proofs)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("{}:2", proofs.display())),
        "{stderr}"
    );
}

#[test]
fn repl_that_cannot_start_stops_the_run_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let proofs = dir.path().join("proofs.jsonl");
    std::fs::write(
        &proofs,
        "{\"name\": \"a\", \"formal_statement\": \"theorem a : True := by\", \"proof\": \"trivial\"}\n",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_stepwise"))
        .args(["verify", "--config", "configs/default.toml", "--proofs"])
        .arg(&proofs)
        .args([
            "--set",
            "lean.command=[\"/nonexistent/lake\", \"env\", \"repl\"]",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot start the Lean REPL `/nonexistent/lake env repl`"),
        "{stderr}"
    );
}

/// Re-indenting a script counts ASCII indentation in bytes; a line indented with another
/// space character (U+3000 is three bytes) must not split it (it panicked the run once).
#[test]
fn mixed_unicode_and_ascii_indentation_is_no_panic() {
    let and_intro = "theorem and_intro_steps (p q : Prop) (hp : p) (hq : q) : p ∧ q := by";
    let inputs = [
        proof(
            "ideographic",
            and_intro,
            "  constructor\n  exact hp\n\u{3000}exact hq",
        ),
        proof(
            "nbsp",
            and_intro,
            "  constructor\n\u{a0} exact hp\n  exact hq",
        ),
    ];
    let dir = tempfile::tempdir().unwrap();
    let (output, out) = verify(dir.path(), &inputs);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let verdicts = std::fs::read_to_string(&out).unwrap();
    assert_eq!(verdicts.lines().count(), inputs.len(), "{verdicts}");
}
