//! The simulated REPL speaks the real wire format: raw bytes over its stdin/stdout.

use crate::support;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use serde_json::{json, Value};

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

/// The simulated REPL over `lean_world.json`, spoken to in raw bytes.
struct SimRepl {
    child: Child,
    stdin: ChildStdin,
    out: BufReader<ChildStdout>,
}

impl SimRepl {
    fn spawn() -> Self {
        let argv = support::lean::sim_repl();
        let mut child = Command::new(&argv[0])
            .args(&argv[1..])
            .args(["--world", support::lean::world_path().to_str().unwrap()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        Self { child, stdin, out }
    }

    /// Sends `request` and one blank line; the answer's text and value.
    fn ask(&mut self, request: &str) -> (String, Value) {
        self.stdin
            .write_all(format!("{request}\n\n").as_bytes())
            .unwrap();
        self.stdin.flush().unwrap();
        let frame = read_frame(&mut self.out);
        let value = serde_json::from_str(&frame).unwrap();
        (frame, value)
    }
}

#[test]
fn sim_repl_speaks_the_repl_wire_format() {
    let mut repl = SimRepl::spawn();
    let mut ask = |request: &str| repl.ask(request);

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
    repl.stdin.write_all(b"{not json\n\n").unwrap();
    repl.stdin.flush().unwrap();
    let mut rest = String::new();
    repl.out.read_to_string(&mut rest).unwrap();
    assert!(rest.is_empty(), "{rest}");
    assert!(!repl.child.wait().unwrap().success());
}

/// Not from the repl's own tests: leanprover-community/repl issue #43 (open) reports that
/// `{"tactic": "ext1 x; ext1 n", "proofState": 0}` is answered `'Lean error:\n<input>:1:6:
/// expected end of input'`, the parser stopping at the `;`, since a request holds ONE
/// tactic. The simulated REPL refuses two tactics the same way, so a bridge that sent them
/// bare would fail here as on the real REPL.
#[test]
fn two_bare_tactics_are_expected_end_of_input_as_repl_issue_43_shows() {
    let mut repl = SimRepl::spawn();
    repl.ask(r#"{"cmd": "import Mathlib\nopen Nat"}"#);
    let start = r#"{"cmd": "theorem and_intro_steps (p q : Prop) (hp : p) (hq : q) : p ∧ q := by sorry", "env": 0}"#;
    assert_eq!(repl.ask(start).1["sorries"][0]["proofState"], 0);

    let (_, answer) = repl.ask(r#"{"tactic": "ext1 x; ext1 n", "proofState": 0}"#);
    assert_eq!(
        answer,
        json!({"message": "Lean error:\n<input>:1:6: expected end of input"})
    );
    // The same rule where the second tactic starts a line (the parser stops at it).
    let (_, answer) = repl.ask(r#"{"tactic": "constructor\nexact hp", "proofState": 0}"#);
    assert_eq!(
        answer,
        json!({"message": "Lean error:\n<input>:2:0: expected end of input"})
    );
    // One tactic: `<;>` combines two, and the `paren` block holds a sequence.
    let (_, answer) = repl.ask(r#"{"tactic": "constructor <;> simp", "proofState": 0}"#);
    assert_eq!(answer["messages"][0]["severity"], "error", "{answer}");
    let (_, answer) = repl.ask(r#"{"tactic": "(constructor\n exact hp\n)", "proofState": 0}"#);
    assert_eq!(answer["goals"].as_array().unwrap().len(), 1, "{answer}");
}
