//! Contract tests: the byte-exact `test/*.in` / `test/*.expected.out` pairs of
//! leanprover-community/repl @v4.24.0 (commit 8fff8552292860d349b459d6a811e6915671dc0d),
//! copied into `tests/data/repl/`, are facts about the protocol. The simulated REPL must
//! answer the `.in` requests with exactly those bytes, and our bridge must read those bytes,
//! sent by a real process over a pipe, the way the repl means them.

use crate::support;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use lean_bridge::protocol::Request;
use lean_bridge::worker::{Fault, Worker};
use lean_bridge::{LeanConfig, LeanError, LeanPool, TacticOutcome};
use support::lean::statement;

fn repl_data(file: &str) -> PathBuf {
    support::data("repl").join(file)
}

/// Runs the simulated REPL over `NAME.in` as its whole stdin and returns its stdout.
fn sim_output(name: &str) -> String {
    let argv = support::lean::sim_repl();
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .args(["--world", repl_data("world.json").to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let input = std::fs::read(repl_data(&format!("{name}.in"))).unwrap();
    child.stdin.take().unwrap().write_all(&input).unwrap();
    let output = child.wait_with_output().unwrap();
    String::from_utf8(output.stdout).unwrap()
}

#[test]
fn sim_repl_answers_the_repls_own_tests_byte_for_byte() {
    for name in [
        "proof_step",
        "tactic_mode_sorry",
        "sorry_hypotheses",
        "invalid_tactic",
        "unknown_tactic",
        "unknown_proof_state",
        "unknown_environment",
        "self_proof_apply_check",
        "have_by_sorry",
    ] {
        let expected = std::fs::read_to_string(repl_data(&format!("{name}.expected.out"))).unwrap();
        assert_eq!(sim_output(name), expected, "test/{name}");
    }
}

/// A "REPL" that writes the repl's recorded answers in order, whatever it is asked (and
/// then waits for its stdin to close, as a live REPL would).
fn recorded(name: &str) -> LeanConfig {
    replaying(&repl_data(&format!("{name}.expected.out")))
}

/// As [`recorded`], the answers in the file `out`.
fn replaying(out: &std::path::Path) -> LeanConfig {
    LeanConfig {
        command: vec![
            "sh".into(),
            "-c".into(),
            "cat \"$0\"; exec cat >/dev/null".into(),
            out.display().to_string(),
        ],
        workers: 1,
        header: String::new(),
        tactic_timeout: 10.0,
        header_timeout: 10.0,
        max_faults_per_theorem: 2,
        ..LeanConfig::default()
    }
}

#[tokio::test]
async fn tactic_mode_sorries_without_pos_are_a_rejected_candidate() {
    // test/tactic_mode_sorry: `{"sorries": [{"proofState": 1, "goal": "⊢ Nat"}], ...}`.
    let pool = LeanPool::new(recorded("tactic_mode_sorry"));
    let mut session = pool
        .start_theorem(&statement("def f : Nat := by"))
        .await
        .unwrap();
    assert_eq!(session.root().1, ["⊢ Nat"]);
    let outcome = session.apply(session.root().0, "sorry").await.unwrap();
    assert_eq!(
        outcome,
        TacticOutcome::Sorry {
            goals: vec!["⊢ Nat".into()]
        }
    );
    assert_eq!(session.faults(), 0, "a sorry answer is no worker fault");

    // test/sorry_hypotheses: goals remain, but one was admitted: still no child.
    let pool = LeanPool::new(recorded("sorry_hypotheses"));
    let mut session = pool
        .start_theorem(&statement("theorem foo (x : Int) : x = x := by"))
        .await
        .unwrap();
    let outcome = session
        .apply(session.root().0, "have h : x = 1 := sorry")
        .await
        .unwrap();
    assert_eq!(
        outcome,
        TacticOutcome::Sorry {
            goals: vec!["x : Int\n⊢ x = 1".into()]
        }
    );
}

#[tokio::test]
async fn recorded_answers_read_as_the_repl_means_them() {
    // test/proof_step: two children of the root, then a completion.
    let pool = LeanPool::new(recorded("proof_step"));
    let mut session = pool
        .start_theorem(&statement("def f : Nat := by"))
        .await
        .unwrap();
    let root = session.root().0;
    let TacticOutcome::Progress { goals, .. } =
        session.apply(root, "apply Int.natAbs").await.unwrap()
    else {
        panic!()
    };
    assert_eq!(goals, ["⊢ Int"]);
    let TacticOutcome::Progress { state, goals } =
        session.apply(root, "have t : Nat := 42").await.unwrap()
    else {
        panic!()
    };
    assert_eq!(goals, ["t : Nat\n⊢ Nat"]);
    let done = session.apply(state, "exact t").await.unwrap();
    assert!(matches!(
        done,
        TacticOutcome::Complete {
            status_confirmed: true,
            ..
        }
    ));

    // test/invalid_tactic: empty goals and "Incomplete: contains sorry" beside an error.
    let pool = LeanPool::new(recorded("invalid_tactic"));
    let mut session = pool
        .start_theorem(&statement("theorem my_theorem (x : Nat) : x = x := by"))
        .await
        .unwrap();
    assert_eq!(
        session
            .apply(session.root().0, "exact my_fake_premise")
            .await
            .unwrap(),
        TacticOutcome::Error {
            message: "Unknown identifier `my_fake_premise`".into()
        }
    );

    // test/unknown_tactic: the thrown form.
    let pool = LeanPool::new(recorded("unknown_tactic"));
    let mut session = pool
        .start_theorem(&statement("def f : Nat := by"))
        .await
        .unwrap();
    assert_eq!(
        session.apply(session.root().0, "exat 42").await.unwrap(),
        TacticOutcome::Error {
            message: "Lean error:\n<input>:1:1: unknown tactic".into()
        }
    );
}

#[tokio::test]
async fn a_theorem_that_applies_itself_is_never_complete_in_tactic_mode() {
    // test/self_proof_apply_check (repl issue #44, PR #63): no goals are left, but the repl's
    // kernel check answers an `Error:` status, so the whole-proof check (which Lean's
    // termination check fails) decides. The bridge starts a theorem with a `sorry`, so it
    // gets the answers from the term-mode `sorry` on.
    let answers =
        std::fs::read_to_string(repl_data("self_proof_apply_check.expected.out")).unwrap();
    let (_, from_sorry) = answers.split_once("\n\n").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("from_sorry.out");
    std::fs::write(&out, from_sorry).unwrap();
    let pool = LeanPool::new(replaying(&out));
    let mut session = pool
        .start_theorem(&statement("theorem ex : False := by"))
        .await
        .unwrap();
    assert_eq!(session.root().1, ["⊢ False"]);
    match session.apply(session.root().0, "apply ex").await.unwrap() {
        TacticOutcome::Incomplete { status, .. } => assert_eq!(
            status,
            "Error: kernel type check failed: (kernel) declaration has free variables '[anonymous]'"
        ),
        other => panic!("expected an incomplete proof, got {other:?}"),
    }
}

#[tokio::test]
async fn unknown_proof_state_is_a_worker_fault_never_a_tactic_verdict() {
    // test/unknown_proof_state: every fresh process answers the tactic the same way, so the
    // faults repeat without progress and the theorem ends as an infrastructure error.
    let pool = LeanPool::new(recorded("unknown_proof_state"));
    let mut session = pool
        .start_theorem(&statement("def f : Nat := by"))
        .await
        .unwrap();
    match session.apply(session.root().0, "exact 42").await {
        Err(LeanError::Infrastructure { reason, .. }) => {
            assert!(reason.contains("Unknown proof state."), "{reason}")
        }
        other => panic!("expected an infrastructure error, got {other:?}"),
    }
}

#[tokio::test]
async fn unknown_environment_kills_the_worker() {
    // test/unknown_environment.
    let mut worker = Worker::spawn(&recorded("unknown_environment")).unwrap();
    let reply = worker
        .send::<lean_bridge::protocol::CommandResponse>(
            &Request::command("def f : Nat := by sorry", Some(5)),
            Duration::from_secs(10),
        )
        .await;
    assert_eq!(
        reply.unwrap_err(),
        Fault::LostState("Unknown environment.".into())
    );
    assert!(worker.is_dead());
}

#[tokio::test]
async fn a_hole_the_search_sent_reads_as_a_hole_and_a_model_s_sorry_as_a_rejection() {
    // test/have_by_sorry (repl PR #90): `have h : x = 1 := by sorry` in tactic mode answers
    // the sorry's own proof state and goal, the new proof state and its goals, no `pos`. The
    // bridge starts from the command's `:= by sorry` (the second answer).
    let answers = std::fs::read_to_string(repl_data("have_by_sorry.expected.out")).unwrap();
    let (_, from_sorry) = answers.split_once("\n\n").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("from_sorry.out");
    std::fs::write(&out, from_sorry).unwrap();
    let statement = statement("theorem foo (x : Int) : x = x := by");
    let pool = LeanPool::new(replaying(&out));
    let mut session = pool.start_theorem(&statement).await.unwrap();
    let root = session.root().0;
    let TacticOutcome::Holes {
        state,
        goals,
        holes,
    } = session
        .apply_with_holes(root, "have h : x = 1 := by sorry")
        .await
        .unwrap()
    else {
        panic!("expected a hole");
    };
    assert_eq!(goals, ["x : Int\nh : x = 1\n⊢ x = 1"]);
    assert_eq!(holes.len(), 1);
    assert_eq!(holes[0].goal, "x : Int\n⊢ x = 1");
    assert_ne!(holes[0].state, state, "the hole is a state of its own");
    assert_eq!(session.faults(), 0);

    // The same answer to a tactic the model wrote is a rejected candidate.
    let pool = LeanPool::new(replaying(&out));
    let mut session = pool.start_theorem(&statement).await.unwrap();
    let root = session.root().0;
    assert_eq!(
        session
            .apply(root, "have h : x = 1 := by sorry")
            .await
            .unwrap(),
        TacticOutcome::Sorry {
            goals: vec!["x : Int\n⊢ x = 1".into()]
        }
    );
}
