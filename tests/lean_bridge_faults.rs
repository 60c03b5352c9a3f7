//! Worker faults over the simulated REPL process: hangs, crashes, garbage, recycling, give-up.

use crate::support;

use std::path::Path;

use lean_bridge::{LeanError, LeanPool, TacticOutcome};
use sim::world::{Effect, World, WorldState, WorldTactic, WorldTheorem};
use support::lean::{
    apply_all, config, hanging_on_trivial, logged_requests, start, theorem, world_path,
};
use support::load_world;

/// Runs `constructor; exact hp; exact hq` and expects a confirmed completion.
async fn prove_and_intro(pool: &std::sync::Arc<LeanPool>) -> u32 {
    let mut session = start(pool, "and_intro_steps").await;
    let root = session.root().0;
    let state = apply_all(&mut session, root, &["constructor", "exact hp"]).await;
    let done = session.apply(state, "exact hq").await.unwrap();
    assert!(
        matches!(
            done,
            TacticOutcome::Complete {
                status_confirmed: true,
                ..
            }
        ),
        "{done:?}"
    );
    session.faults()
}

#[tokio::test]
async fn hung_tactic_is_killed_and_the_session_replays_to_the_same_state() {
    let log = tempfile::NamedTempFile::new().unwrap();
    let pool = LeanPool::new(hanging_on_trivial(log.path(), &[]));
    let mut session = start(&pool, "and_intro_steps").await;
    let (root, _) = session.root();
    let TacticOutcome::Progress { state: s1, .. } =
        session.apply(root, "constructor").await.unwrap()
    else {
        panic!()
    };
    let TacticOutcome::Progress { state: s2, .. } = session.apply(s1, "exact hp").await.unwrap()
    else {
        panic!()
    };
    assert_eq!(
        session.apply(s2, "trivial").await.unwrap(),
        TacticOutcome::Timeout
    );
    assert_eq!(session.faults(), 1);
    // Same state, next tactic: rebuilt on a fresh worker by replaying the path.
    let done = session.apply(s2, "exact hq").await.unwrap();
    assert!(
        matches!(
            done,
            TacticOutcome::Complete {
                status_confirmed: true,
                ..
            }
        ),
        "{done:?}"
    );

    let requests = logged_requests(log.path());
    let after_hang: Vec<String> = requests
        .iter()
        .skip_while(|r| r["tactic"] != "trivial")
        .skip(1)
        .map(|r| {
            r.get("tactic")
                .or(r.get("cmd"))
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    // The path comes back in ONE request: a parenthesised tactic sequence.
    assert_eq!(
        after_hang,
        [
            "import Mathlib\nopen Nat",
            "theorem and_intro_steps (p q : Prop) (hp : p) (hq : q) : p ∧ q := by sorry",
            "(constructor\n exact hp\n)",
            "exact hq"
        ]
    );
}

/// `n` two-step theorems: `intro h` then `exact h`.
fn chain_world(n: usize) -> World {
    let theorems = (0..n)
        .map(|i| {
            let root = vec![format!("⊢ A{i} → A{i}")];
            let mid = vec![format!("h : A{i}\n⊢ A{i}")];
            let tactic = |t: &str, goals| WorldTactic::new(t, -0.1, Effect::Goals(goals));
            WorldTheorem {
                name: format!("chain_{i}"),
                formal_statement: format!("theorem chain_{i} : A{i} → A{i} := by"),
                root: root.clone(),
                sketches: Vec::new(),
                states: vec![
                    WorldState {
                        goals: root,
                        tactics: vec![tactic("intro h", mid.clone())],
                    },
                    WorldState {
                        goals: mid,
                        tactics: vec![tactic("exact h", Vec::new())],
                    },
                ],
            }
        })
        .collect();
    World {
        modules: vec!["Mathlib".into()],
        theorems,
    }
}

fn write_world(world: &World, dir: &Path) -> std::path::PathBuf {
    let path = dir.join("world.json");
    std::fs::write(&path, serde_json::to_string(world).unwrap()).unwrap();
    path
}

#[tokio::test]
async fn crash_every_seven_requests_loses_none_of_fifty_theorems() {
    let dir = tempfile::tempdir().unwrap();
    let world = chain_world(50);
    let path = write_world(&world, dir.path());
    let mut config = config(&path, &["--crash-after", "7"]);
    config.workers = 2;
    let pool = LeanPool::new(config);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50 {
        let pool = pool.clone();
        let theorem = theorem(&world, &format!("chain_{i}"));
        tasks.spawn(async move {
            let mut session = pool.start_theorem(&theorem).await?;
            let TacticOutcome::Progress { state, .. } =
                session.apply(session.root().0, "intro h").await?
            else {
                panic!("intro h did not progress")
            };
            let done = session.apply(state, "exact h").await?;
            assert!(matches!(
                done,
                TacticOutcome::Complete {
                    status_confirmed: true,
                    ..
                }
            ));
            let check = session
                .check_proof(&["intro h".into(), "exact h".into()])
                .await?;
            Ok::<_, LeanError>((check.verified, session.faults()))
        });
    }
    let mut verified = 0;
    let mut faults = 0;
    while let Some(result) = tasks.join_next().await {
        let (ok, f) = result.unwrap().expect("no theorem may be lost to a crash");
        verified += ok as u32;
        faults += f;
    }
    assert_eq!(verified, 50);
    assert!(
        faults >= 20,
        "the workers did crash ({faults} faults survived)"
    );
}

#[tokio::test]
async fn worker_over_its_request_budget_is_recycled_without_the_caller_noticing() {
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut config = config(&world_path(), &["--log", log.path().to_str().unwrap()]);
    config.max_requests_per_worker = 3;
    let pool = LeanPool::new(config);
    assert_eq!(prove_and_intro(&pool).await, 0, "recycling is not a fault");
    assert_eq!(prove_and_intro(&pool).await, 0);
    let imports = logged_requests(log.path())
        .iter()
        .filter(|r| r["cmd"].as_str().is_some_and(|c| c.starts_with("import")))
        .count();
    assert!(
        imports >= 3,
        "fresh workers were started ({imports} header imports)"
    );
}

#[tokio::test]
async fn worker_over_its_memory_cap_is_recycled_without_the_caller_noticing() {
    let log = tempfile::NamedTempFile::new().unwrap();
    let mut config = config(&world_path(), &["--log", log.path().to_str().unwrap()]);
    config.max_rss_mb = 0;
    let pool = LeanPool::new(config);
    assert_eq!(prove_and_intro(&pool).await, 0, "recycling is not a fault");
    let imports = logged_requests(log.path())
        .iter()
        .filter(|r| r["cmd"].as_str().is_some_and(|c| c.starts_with("import")))
        .count();
    assert!(
        imports >= 2,
        "fresh workers were started ({imports} header imports)"
    );
}

#[tokio::test]
async fn sandbox_prefix_runs_before_the_command() {
    let mut config = config(&world_path(), &[]);
    config.sandbox = vec!["/usr/bin/env".into(), "STEPWISE_SANDBOXED=1".into()];
    let pool = LeanPool::new(config.clone());
    assert_eq!(prove_and_intro(&pool).await, 0);
    // The prefix is what gets executed.
    config.sandbox = vec!["/nonexistent/bwrap".into()];
    let world = load_world(&world_path());
    let error = LeanPool::new(config)
        .start_theorem(&theorem(&world, "and_intro_steps"))
        .await
        .err()
        .unwrap();
    let LeanError::Spawn { command, .. } = error else {
        panic!("expected a spawn error, got {error:?}")
    };
    assert!(command.starts_with("/nonexistent/bwrap "), "{command}");
}

#[tokio::test]
async fn tactic_that_kills_the_repl_is_an_error_not_a_lost_theorem() {
    let pool = LeanPool::new(config(&world_path(), &["--crash-on", "decide"]));
    let mut session = start(&pool, "and_intro_steps").await;
    let (root, _) = session.root();
    let outcome = session.apply(root, "decide").await.unwrap();
    let TacticOutcome::Error { message } = outcome else {
        panic!("expected an error, got {outcome:?}");
    };
    assert!(message.contains("died running this tactic"), "{message}");
    assert_eq!(session.faults(), 2);
    assert!(matches!(
        session.apply(root, "constructor").await.unwrap(),
        TacticOutcome::Progress { .. }
    ));
}

#[tokio::test]
async fn garbage_output_is_survived() {
    // The 6th request (the whole-proof check) gets garbage; a fresh worker answers it.
    let pool = LeanPool::new(config(&world_path(), &["--garbage-after", "5"]));
    let mut session = start(&pool, "and_intro_steps").await;
    let tactics = ["constructor", "exact hp", "exact hq"].map(String::from);
    let mut state = session.root().0;
    for tactic in &tactics {
        match session.apply(state, tactic).await.unwrap() {
            TacticOutcome::Progress { state: next, .. }
            | TacticOutcome::Complete { state: next, .. } => state = next,
            other => panic!("{tactic}: {other:?}"),
        }
    }
    assert_eq!(session.faults(), 0);
    assert!(session.check_proof(&tactics).await.unwrap().verified);
    assert_eq!(session.faults(), 1);
}

#[tokio::test]
async fn repeated_faults_give_an_infrastructure_error_with_the_repl_stderr() {
    let world = load_world(&world_path());
    let mut config = config(&world_path(), &["--crash-after", "0"]);
    config.max_faults_per_theorem = 3;
    let pool = LeanPool::new(config);
    let error = pool
        .start_theorem(&theorem(&world, "and_intro_steps"))
        .await
        .err()
        .expect("every worker dies");
    let LeanError::Infrastructure {
        reason,
        stderr_tail,
    } = &error
    else {
        panic!("expected an infrastructure error, got {error:?}");
    };
    assert!(reason.starts_with("3 worker faults"), "{reason}");
    assert!(
        stderr_tail.contains("simulated crash after 0 requests"),
        "{stderr_tail}"
    );
}

#[tokio::test]
async fn missing_repl_binary_is_a_spawn_error() {
    let mut config = config(&world_path(), &[]);
    config.command = vec!["/nonexistent/lean-repl".into()];
    let pool = LeanPool::new(config);
    let world = load_world(&world_path());
    let error = pool
        .start_theorem(&theorem(&world, "and_intro_steps"))
        .await
        .err()
        .unwrap();
    assert!(matches!(error, LeanError::Spawn { .. }), "{error:?}");
}
