//! The simulated REPL speaks the real wire format: raw bytes over its stdin/stdout.

use crate::support;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};

use serde_json::Value;

/// Reads one response: lines up to the blank line that ends it.
fn read_frame(out: &mut impl BufRead) -> String {
    let mut frame = String::new();
    loop {
        let mut line = String::new();
        assert_ne!(
            out.read_line(&mut line).unwrap(),
            0,
            "EOF mid-frame: {frame:?}"
        );
        if line.trim().is_empty() {
            return frame;
        }
        frame.push_str(&line);
    }
}

#[test]
fn sim_repl_speaks_the_repl_wire_format() {
    let argv = support::lean::sim_repl();
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .args(["--world", support::lean::world_path().to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut ask = |request: &str| -> (String, Value) {
        stdin
            .write_all(format!("{request}\n\n").as_bytes())
            .unwrap();
        stdin.flush().unwrap();
        let frame = read_frame(&mut out);
        let value = serde_json::from_str(&frame).unwrap();
        (frame, value)
    };

    let (_, header) = ask(r#"{"cmd": "import Mathlib\nopen Nat"}"#);
    assert_eq!(header, serde_json::json!({"env": 0}));

    let start = r#"{"cmd": "theorem and_intro_steps (p q : Prop) (hp : p) (hq : q) : p ∧ q := by sorry", "env": 0}"#;
    let (frame, started) = ask(start);
    assert!(
        frame.lines().count() > 3,
        "pretty-printed over several lines: {frame}"
    );
    assert_eq!(started["sorries"][0]["proofState"], 0);
    assert_eq!(started["messages"][0]["data"], "declaration uses 'sorry'");

    let (frame, step) = ask(r#"{"tactic": "constructor", "proofState": 0}"#);
    assert_eq!(
        step["proofStatus"], "Incomplete: open goals remain",
        "{frame}"
    );
    assert_eq!(step["goals"].as_array().unwrap().len(), 2);

    let (_, thrown) = ask(r#"{"tactic": "simp", "proofState": 0}"#);
    assert_eq!(
        thrown,
        serde_json::json!({"message": "Lean error:\nsimp made no progress"})
    );

    let (_, unknown) = ask(r#"{"tactic": "exact hp", "proofState": 99}"#);
    assert_eq!(
        unknown,
        serde_json::json!({"message": "Unknown proof state."})
    );

    let (_, failed) = ask(r#"{"tactic": "linarith", "proofState": 0}"#);
    assert_eq!(failed["messages"][0]["severity"], "error");

    // Invalid JSON makes the REPL exit.
    stdin.write_all(b"{not json\n\n").unwrap();
    stdin.flush().unwrap();
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert!(rest.is_empty(), "{rest}");
    assert!(!child.wait().unwrap().success());
}
