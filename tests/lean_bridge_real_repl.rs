//! The bridge against behaviours of the real leanprover-community/repl (and of Lean) that a
//! first run on a real node would meet, over the simulated REPL process
//! (`tests/data/real_repl_world.json`). Each test's comment states the behaviour it relies on
//! and, where that comes from the repl or Lean, cites the file, test, issue or PR.

use crate::support;

use std::path::PathBuf;
use std::time::Duration;

use formats::theorems::Theorem;
use lean_bridge::worker::Worker;
use lean_bridge::{LeanConfig, LeanError, LeanPool, TacticOutcome};
use support::lean::{
    apply_all, config, hanging_on_trivial, logged_requests, start, statement, theorem, world_path,
};
use support::load_world;

fn real_world() -> PathBuf {
    support::data("real_repl_world.json")
}

fn named(name: &str) -> Theorem {
    theorem(&load_world(&real_world()), name)
}

/// `stop` (`repeat sorry`) and `sorry` leave goals admitted; the repl lists them in
/// `sorries` without `pos` (repl `REPL/JSON.lean`, `ToJson Sorry`). Such an answer is a
/// rejected candidate, and costs no worker.
#[tokio::test]
async fn tactics_that_admit_goals_are_rejected_without_a_fault() {
    let pool = LeanPool::new(config(&real_world(), &[]));
    let mut session = pool.start_theorem(&named("sorry_stop")).await.unwrap();
    let TacticOutcome::Progress { state, goals } = session
        .apply(session.root().0, "constructor")
        .await
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(
        session.apply(state, "stop").await.unwrap(),
        TacticOutcome::Sorry { goals }
    );
    // `sorry` admits the main goal only: goals remain, still no child.
    let TacticOutcome::Sorry { goals } = session.apply(state, "sorry").await.unwrap() else {
        panic!()
    };
    assert_eq!(goals.len(), 1);
    assert_eq!(session.faults(), 0);
    // The state is still good for real tactics.
    assert!(matches!(
        session.apply(state, "exact hp").await.unwrap(),
        TacticOutcome::Progress { .. }
    ));
}

/// With `open Nat` and a `Nat.axiom_user` in the library, `#print axioms axiom_user` prints
/// `'Nat.axiom_user' does not depend on any axioms` first (Lean: `cs.forM printAxiomsOf`).
#[tokio::test]
async fn axioms_of_every_resolved_constant_count() {
    let pool = LeanPool::new(config(&real_world(), &["--shadow-namespace", "Nat"]));
    let mut session = pool.start_theorem(&named("axiom_user")).await.unwrap();
    let check = session
        .check_proof(&["native_decide".into()])
        .await
        .unwrap();
    assert!(!check.verified, "{check:?}");
    assert!(check.axioms.contains(&"Lean.ofReduceBool".to_owned()));
    let check = session.check_proof(&["norm_num".into()]).await.unwrap();
    assert!(check.verified, "{check:?}");
}

#[tokio::test]
async fn theorem_names_are_read_past_docstrings_attributes_and_universes() {
    let pool = LeanPool::new(config(&real_world(), &[]));
    let mut session = pool.start_theorem(&named("univ_thm")).await.unwrap();
    let check = session.check_proof(&["rfl".into()]).await.unwrap();
    assert!(check.verified, "{check:?}");
}

#[tokio::test]
async fn an_example_is_refused_before_any_search() {
    let pool = LeanPool::new(config(&real_world(), &[]));
    match pool.start_theorem(&statement("example : True := by")).await {
        Err(LeanError::Statement { message }) => {
            assert!(message.contains("`example` has no name"), "{message}")
        }
        Err(other) => panic!("expected a statement error, got {other}"),
        Ok(_) => panic!("an example was started"),
    }
}

/// The repl's `proofStatus` can be wrong with empty goals (repl PR #82 fixed one such case:
/// valid proofs using local hypotheses were rejected in tactic mode): the bridge hands the
/// state on (`Incomplete`) so the search can run the whole-proof check, which accepts the proof.
#[tokio::test]
async fn empty_goals_with_a_wrong_status_still_reach_the_whole_proof_check() {
    let pool = LeanPool::new(config(&real_world(), &[]));
    let mut session = pool.start_theorem(&named("misreported")).await.unwrap();
    let outcome = session.apply(session.root().0, "omega").await.unwrap();
    assert!(
        matches!(outcome, TacticOutcome::Incomplete { .. }),
        "{outcome:?}"
    );
    let check = session.check_proof(&["omega".into()]).await.unwrap();
    assert!(check.verified, "{check:?}");
}

/// A statement that kills a fresh REPL twice is the statement's error, not the pool's; the
/// pool goes on with the next theorem.
#[tokio::test]
async fn a_statement_that_kills_the_repl_is_a_statement_error() {
    let pool = LeanPool::new(config(&real_world(), &["--crash-on-cmd", "crash_stmt"]));
    match pool.start_theorem(&named("crash_stmt")).await {
        Err(LeanError::Statement { message }) => {
            assert!(message.contains("failed twice"), "{message}")
        }
        Err(other) => panic!("expected a statement error, got {other}"),
        Ok(_) => panic!("the statement started"),
    }
    assert!(pool.start_theorem(&named("sorry_stop")).await.is_ok());
}

/// A REPL that dies on every 7th request (the header and the theorem start count) costs
/// retries, never the theorem: only faults without progress count, and a state eight
/// tactics deep comes back in one request.
#[tokio::test]
async fn a_repl_dying_every_seventh_request_costs_no_deep_proof() {
    let log = tempfile::NamedTempFile::new().unwrap();
    let pool = LeanPool::new(config(
        &real_world(),
        &["--crash-after", "6", "--log", log.path().to_str().unwrap()],
    ));
    let mut session = pool.start_theorem(&named("deep")).await.unwrap();
    let mut state = session.root().0;
    let mut tactics = Vec::new();
    for k in 1..=8 {
        // A failed sibling first, as the search tries several candidates per node.
        let wrong = session.apply(state, &format!("wrong_{k}")).await.unwrap();
        assert!(matches!(wrong, TacticOutcome::Error { .. }), "{wrong:?}");
        tactics.push(format!("step_{k}"));
        match session.apply(state, &tactics[k - 1]).await.unwrap() {
            TacticOutcome::Progress { state: next, .. } => state = next,
            TacticOutcome::Complete { .. } => assert_eq!(k, 8),
            other => panic!("step_{k}: {other:?}"),
        }
    }
    let check = session.check_proof(&tactics).await.unwrap();
    assert!(check.verified, "{check:?}");
    assert!(session.faults() >= 3, "it did crash: {}", session.faults());
    let blocks = logged_requests(log.path())
        .iter()
        .filter(|r| {
            r["tactic"]
                .as_str()
                .is_some_and(|t| t.starts_with("(step_1\n step_2"))
        })
        .count();
    assert!(blocks >= 1, "deep states were rebuilt as one block");
}

/// Where a paren block does not reproduce the state, the path is replayed step by step.
#[tokio::test]
async fn a_refused_tactic_block_falls_back_to_replay_step_by_step() {
    let log = tempfile::NamedTempFile::new().unwrap();
    let pool = LeanPool::new(hanging_on_trivial(log.path(), &["--no-tactic-blocks"]));
    let mut session = start(&pool, "and_intro_steps").await;
    let root = session.root().0;
    let state = apply_all(&mut session, root, &["constructor", "exact hp"]).await;
    assert_eq!(
        session.apply(state, "trivial").await.unwrap(),
        TacticOutcome::Timeout
    );
    assert!(matches!(
        session.apply(state, "exact hq").await.unwrap(),
        TacticOutcome::Complete { .. }
    ));
    let requests = logged_requests(log.path());
    let after_hang: Vec<&str> = requests
        .iter()
        .skip_while(|r| r["tactic"] != "trivial")
        .skip(1)
        .filter_map(|r| r["tactic"].as_str())
        .collect();
    assert_eq!(
        after_hang,
        [
            "(constructor\n exact hp\n)",
            "constructor",
            "exact hp",
            "exact hq"
        ]
    );
}

/// `lake env repl` runs the REPL as a child; a process whose parent exited belongs to no
/// one's tree, but stays in the worker's process group, and its memory counts.
#[tokio::test]
async fn memory_is_summed_over_the_whole_process_group() {
    let config = LeanConfig {
        command: vec![
            "sh".into(),
            "-c".into(),
            // An orphan holding ~64 MB in a shell variable, then a REPL stand-in.
            "( (x=$(head -c 64000000 /dev/zero | tr '\\0' a); sleep 600; echo ${#x}) & ); exec cat"
                .into(),
        ],
        ..LeanConfig::default()
    };
    let worker = Worker::spawn(&config).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut rss = None;
    while tokio::time::Instant::now() < deadline {
        rss = worker.rss_mb();
        if rss.is_some_and(|mb| mb >= 50) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(rss.is_some_and(|mb| mb >= 50), "group RSS {rss:?} MiB");
}

/// Tactic mode runs at Lean's default 200000 heartbeats whatever the header says (repl issue
/// #69); the whole-proof check runs as a command on the header's environment, so the
/// header's `set_option maxHeartbeats` decides there.
#[tokio::test]
async fn the_whole_proof_check_runs_under_the_headers_heartbeats() {
    let tactic = "interval_cases n <;> simp_all".to_owned();
    let mut roomy = config(&real_world(), &[]);
    roomy.header = "import Mathlib\nset_option maxHeartbeats 400000".into();
    let pool = LeanPool::new(roomy);
    let mut session = pool.start_theorem(&named("heavy")).await.unwrap();
    match session.apply(session.root().0, &tactic).await.unwrap() {
        TacticOutcome::Error { message } => assert!(
            message.contains("maximum number of heartbeats (200000)"),
            "{message}"
        ),
        other => panic!("tactic mode ignores the header's options: {other:?}"),
    }
    let check = session
        .check_proof(std::slice::from_ref(&tactic))
        .await
        .unwrap();
    assert!(check.verified, "{check:?}");

    // Under the default budget the same proof is out of heartbeats in the check too.
    let pool = LeanPool::new(config(&real_world(), &[]));
    let mut session = pool.start_theorem(&named("heavy")).await.unwrap();
    let check = session.check_proof(&[tactic]).await.unwrap();
    assert!(!check.verified, "{check:?}");
    assert!(check.errors[0].contains("heartbeats (200000)"), "{check:?}");
}

/// `Unknown proof state.` mid-session (the repl, `REPL/Main.lean`: `| none => return .inr
/// ⟨"Unknown proof state."⟩`) is a worker fault: a fresh worker replays the path and the
/// proof goes on, instead of the tactic being recorded as Lean's error.
#[tokio::test]
async fn a_repl_that_lost_our_states_is_replaced_and_the_proof_goes_on() {
    // Header, start, `constructor`, `exact hp` answered; then the states are gone. A fresh
    // worker needs four requests for `exact hq`: header, start, the path as one block, it.
    let pool = LeanPool::new(config(&world_path(), &["--forget-after", "4"]));
    let mut session = start(&pool, "and_intro_steps").await;
    let root = session.root().0;
    let state = apply_all(&mut session, root, &["constructor", "exact hp"]).await;
    assert!(matches!(
        session.apply(state, "exact hq").await.unwrap(),
        TacticOutcome::Complete { .. }
    ));
    assert!(session.faults() >= 1);
}
