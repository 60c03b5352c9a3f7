//! Sessions over the simulated REPL process: the completion rule, traps, Lean's errors, header
//! caching and header failures.

use crate::support;

use formats::theorems::Theorem;
use lean_bridge::{LeanError, LeanPool, TacticOutcome};
use support::lean::{config, logged_requests, start, theorem, world_path};
use support::load_world;

fn progress(outcome: TacticOutcome) -> (lean_bridge::StateId, Vec<String>) {
    match outcome {
        TacticOutcome::Progress { state, goals } => (state, goals),
        other => panic!("expected progress, got {other:?}"),
    }
}

#[tokio::test]
async fn proof_through_several_states_is_complete_only_on_completed_status() {
    let pool = LeanPool::new(config(&world_path(), &[]));
    let mut session = start(&pool, "and_intro_steps").await;
    let (root, goals) = session.root();
    assert_eq!(goals, ["p q : Prop\nhp : p\nhq : q\n⊢ p ∧ q"]);

    let (s1, goals) = progress(session.apply(root, "constructor").await.unwrap());
    assert_eq!(goals.len(), 2);
    let (s2, goals) = progress(session.apply(s1, "exact hp").await.unwrap());
    assert_eq!(goals, ["case right\np q : Prop\nhp : p\nhq : q\n⊢ q"]);
    let done = session.apply(s2, "exact hq").await.unwrap();
    let TacticOutcome::Complete {
        state,
        status_confirmed,
    } = done
    else {
        panic!("expected completion, got {done:?}");
    };
    assert!(status_confirmed);

    let path = session.tactic_path(state).unwrap();
    assert_eq!(path, ["constructor", "exact hp", "exact hq"]);
    let check = session.check_proof(&path).await.unwrap();
    assert!(check.verified, "{check:?}");
    assert_eq!(check.axioms, ["propext", "Classical.choice", "Quot.sound"]);
    assert_eq!(
        check.proof,
        "theorem and_intro_steps (p q : Prop) (hp : p) (hq : q) : p ∧ q := by\n  constructor\n  exact hp\n  exact hq"
    );
    assert_eq!(session.faults(), 0);
    pool.shutdown().await;
}

#[tokio::test]
async fn metavariable_and_sorry_traps_are_not_proofs() {
    let pool = LeanPool::new(config(&world_path(), &[]));
    let mut session = start(&pool, "add_zero_traps").await;
    let (root, _) = session.root();
    for (tactic, status) in [
        ("refine ?_", Some("Incomplete: contains metavariable(s)")),
        ("exact add_zero_sorry x", Some("Incomplete: contains sorry")),
        // Tactic-mode sorries come back in `sorries`: a rejected candidate, not a state.
        ("sorry", None),
    ] {
        let outcome = session.apply(root, tactic).await.unwrap();
        match (&outcome, status) {
            (TacticOutcome::Incomplete { status: found, .. }, Some(status)) => {
                assert_eq!(found, status, "{tactic}")
            }
            (TacticOutcome::Sorry { goals }, None) => {
                assert_eq!(goals, &["x : ℕ\n⊢ x + 0 = x"], "{tactic}")
            }
            other => panic!("{tactic}: {other:?}"),
        }
        let check = session.check_proof(&[tactic.to_owned()]).await.unwrap();
        assert!(!check.verified, "{tactic}: {check:?}");
        assert!(!check.errors.is_empty());
    }
    // The real proof still goes through on the same session.
    let outcome = session.apply(root, "simp").await.unwrap();
    assert!(matches!(
        outcome,
        TacticOutcome::Complete {
            status_confirmed: true,
            ..
        }
    ));
}

#[tokio::test]
async fn lean_errors_in_both_styles_are_tactic_errors() {
    let pool = LeanPool::new(config(&world_path(), &[]));
    let mut session = start(&pool, "and_intro_steps").await;
    let (root, _) = session.root();
    let message = |o: TacticOutcome| match o {
        TacticOutcome::Error { message } => message,
        other => panic!("expected an error, got {other:?}"),
    };
    // Error-severity message (with empty goals and "Incomplete: contains sorry" beside it).
    assert!(message(session.apply(root, "exact hp").await.unwrap()).starts_with("type mismatch"));
    // Thrown error.
    assert_eq!(
        message(session.apply(root, "simp").await.unwrap()),
        "Lean error:\nsimp made no progress"
    );
    assert!(message(session.apply(root, "linarith").await.unwrap()).contains("linarith"));
    // The root is still usable.
    progress(session.apply(root, "constructor").await.unwrap());
    assert!(matches!(
        session.apply(lean_bridge::StateId(42), "simp").await,
        Err(LeanError::UnknownState(_))
    ));
}

#[tokio::test]
async fn old_repl_without_proof_status_gives_unconfirmed_completion() {
    let pool = LeanPool::new(config(&world_path(), &["--no-proof-status"]));
    let mut session = start(&pool, "add_zero_traps").await;
    let (root, _) = session.root();
    // Without proofStatus the metavariable trap looks finished: only the check can tell.
    let outcome = session.apply(root, "refine ?_").await.unwrap();
    assert!(matches!(
        outcome,
        TacticOutcome::Complete {
            status_confirmed: false,
            ..
        }
    ));
    let check = session
        .check_proof(&["refine ?_".to_owned()])
        .await
        .unwrap();
    assert!(!check.verified, "{check:?}");
    let outcome = session.apply(root, "simp").await.unwrap();
    assert!(matches!(
        outcome,
        TacticOutcome::Complete {
            status_confirmed: false,
            ..
        }
    ));
    assert!(
        session
            .check_proof(&["simp".to_owned()])
            .await
            .unwrap()
            .verified
    );
}

#[tokio::test]
async fn header_is_imported_once_per_worker_and_distinct_header() {
    let world = load_world(&world_path());
    let log = tempfile::NamedTempFile::new().unwrap();
    let pool = LeanPool::new(config(
        &world_path(),
        &["--log", log.path().to_str().unwrap()],
    ));
    for name in [
        "and_intro_steps",
        "add_zero_traps",
        "and_intro_steps",
        "add_zero_traps",
    ] {
        let session = pool.start_theorem(&theorem(&world, name)).await.unwrap();
        drop(session);
    }
    let mut other = theorem(&world, "add_zero_traps");
    other.header = Some("import Mathlib\nimport Aesop".into());
    pool.start_theorem(&other).await.unwrap();
    pool.check_proof(&other, "simp").await.unwrap();
    let imports: Vec<String> = logged_requests(log.path())
        .iter()
        .filter_map(|r| {
            r["cmd"]
                .as_str()
                .filter(|c| c.starts_with("import"))
                .map(String::from)
        })
        .collect();
    assert_eq!(
        imports,
        ["import Mathlib\nopen Nat", "import Mathlib\nimport Aesop"]
    );
}

#[tokio::test]
async fn failing_header_quotes_leans_message() {
    let world = load_world(&world_path());
    let pool = LeanPool::new(config(&world_path(), &[]));
    let mut bad = theorem(&world, "and_intro_steps");
    bad.header = Some("import Mathlib\nimport NoSuchModule".into());
    let error = pool
        .start_theorem(&bad)
        .await
        .err()
        .expect("the header must fail");
    let LeanError::Header { header, message } = &error else {
        panic!("expected a header error, got {error:?}");
    };
    assert_eq!(header, "import Mathlib\nimport NoSuchModule");
    assert!(
        message.starts_with("unknown module prefix 'NoSuchModule'\n\nNo directory 'NoSuchModule' or file 'NoSuchModule.olean' in the search path entries:"),
        "{message}"
    );
    assert!(error
        .to_string()
        .contains("unknown module prefix 'NoSuchModule'"));
    // The same pool goes on with good theorems.
    pool.start_theorem(&theorem(&world, "and_intro_steps"))
        .await
        .unwrap();
}

#[tokio::test]
async fn statement_lean_does_not_know_is_a_statement_error() {
    let pool = LeanPool::new(config(&world_path(), &[]));
    let unknown = Theorem {
        name: "nope".into(),
        formal_statement: "theorem nope : False := by".into(),
        header: None,
        extra: Default::default(),
    };
    let error = pool.start_theorem(&unknown).await.err().unwrap();
    assert!(matches!(error, LeanError::Statement { .. }), "{error:?}");
}

#[tokio::test]
async fn whole_proof_check_rejects_disallowed_axioms_and_reports_them() {
    let world = load_world(&world_path());
    let traps = theorem(&world, "add_zero_traps");
    let pool = LeanPool::new(config(&world_path(), &[]));
    let check = pool.check_proof(&traps, "native_decide").await.unwrap();
    assert!(!check.verified);
    assert!(
        check.axioms.contains(&"Lean.ofReduceBool".to_owned()),
        "{check:?}"
    );
    assert!(check.errors[0].contains("Lean.ofReduceBool"), "{check:?}");

    let mut lenient = config(&world_path(), &[]);
    lenient.allowed_axioms.push("Lean.ofReduceBool".into());
    let pool = LeanPool::new(lenient);
    assert!(
        pool.check_proof(&traps, "native_decide")
            .await
            .unwrap()
            .verified
    );
    let wrong = pool.check_proof(&traps, "omega").await.unwrap();
    assert!(!wrong.verified);
    assert!(
        wrong.errors[0].starts_with("omega could not prove the goal"),
        "{wrong:?}"
    );
    let unsolved = pool
        .check_proof(
            &theorem(&world, "and_intro_steps"),
            "  constructor\n  exact hp\n",
        )
        .await
        .unwrap();
    assert!(!unsolved.verified);
    assert!(
        unsolved.errors[0].starts_with("unsolved goals"),
        "{unsolved:?}"
    );
}

#[tokio::test]
async fn idle_worker_with_the_theorems_header_loaded_is_preferred() {
    let world = load_world(&world_path());
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut config = config(&world_path(), &["--log", log.path().to_str().unwrap()]);
    config.workers = 2;
    let pool = LeanPool::new(config);
    let mut a = theorem(&world, "and_intro_steps");
    a.header = Some("import Mathlib".into());
    let mut b = theorem(&world, "add_zero_traps");
    b.header = Some("import Aesop".into());
    for _ in 0..3 {
        // Both workers busy at once, then both idle: each theorem must find its own again.
        let first = pool.start_theorem(&a).await.unwrap();
        let second = pool.start_theorem(&b).await.unwrap();
        drop(first);
        drop(second);
    }
    let imports = logged_requests(log.path())
        .iter()
        .filter(|r| r["cmd"].as_str().is_some_and(|c| c.starts_with("import")))
        .count();
    assert_eq!(imports, 2);
}

#[tokio::test]
async fn holes_take_tactics_and_a_path_closed_over_one_says_it_contains_sorry() {
    // The REPL's statuses around holes (repl `test/have_by_sorry`, PR #90): a branch that
    // closes after a hole is "Incomplete: contains sorry"; a proof on the hole's own state
    // may end "Incomplete: contains metavariable(s)". Neither is a completion.
    let world_file = support::data("decompose_world.json");
    let pool = LeanPool::new(config(&world_file, &[]));
    let world = load_world(&world_file);
    let mut session = pool
        .start_theorem(&theorem(&world, "dc_chain"))
        .await
        .unwrap();
    let root = session.root().0;
    let hole = |outcome: TacticOutcome| match outcome {
        TacticOutcome::Holes {
            state,
            goals,
            mut holes,
        } => (state, goals, holes.remove(0)),
        other => panic!("expected a hole, got {other:?}"),
    };
    let (s1, goals, h1) = hole(
        session
            .apply_with_holes(root, "have h₁ : (a - b) ^ 2 ≥ 0 := by sorry")
            .await
            .unwrap(),
    );
    assert_eq!(
        goals,
        ["a b : ℝ\nh₀ : a + b = 2\nh₁ : (a - b) ^ 2 ≥ 0\n⊢ a * b ≤ 1"]
    );
    assert_eq!(h1.goal, "a b : ℝ\nh₀ : a + b = 2\n⊢ (a - b) ^ 2 ≥ 0");
    let (s2, _, _) = hole(
        session
            .apply_with_holes(s1, "have h₂ : a * b = (4 - (a - b) ^ 2) / 4 := by sorry")
            .await
            .unwrap(),
    );
    let TacticOutcome::Incomplete { status, .. } =
        session.apply(s2, "nlinarith [h₁, h₂]").await.unwrap()
    else {
        panic!("a path closed over holes is no completion");
    };
    assert_eq!(status, "Incomplete: contains sorry");
    let TacticOutcome::Incomplete { status, .. } =
        session.apply(h1.state, "positivity").await.unwrap()
    else {
        panic!("a proof on a hole's state is no completion");
    };
    assert_eq!(status, "Incomplete: contains metavariable(s)");
    // The model's own `by sorry` is still a rejected candidate.
    assert!(matches!(
        session
            .apply(root, "have h₁ : (a - b) ^ 2 ≥ 0 := by sorry")
            .await
            .unwrap(),
        TacticOutcome::Sorry { .. }
    ));
}
