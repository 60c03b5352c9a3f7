//! A search keeps one shared copy of each repeated tactic and failure message, and the
//! failed-attempt rows it writes still carry every text in full, in the Parquet files too.

use crate::engine_support;

use std::sync::Arc;

use engine_support::*;
use formats::results::SearchStatus;
use formats::trajectory::{read_failed, trajectory_files, FailedRow, TrajectoryWriter};
use sim::world::Effect;

fn failing(message: &str) -> Effect {
    Effect::Error(message.into())
}

#[tokio::test]
async fn repeated_texts_are_shared_in_memory_and_written_in_full() {
    let w = world(
        "rep",
        &["⊢ P"],
        vec![
            state(
                &["⊢ P"],
                vec![
                    tactic("simp", -0.1, to(&["⊢ Q"])),
                    tactic("linarith", -0.2, failing("linarith failed")),
                    tactic("omega", -0.3, failing("linarith failed")),
                ],
            ),
            state(
                &["⊢ Q"],
                vec![
                    tactic("linarith", -0.1, failing("linarith failed")),
                    tactic("simp", -0.2, failing("simp made no progress")),
                ],
            ),
        ],
    );
    let sim = Sim::new(w);
    let out = run(&sim, &config(), false).await;
    assert_eq!(out.status, SearchStatus::Exhausted);

    let row = |parent_id, tactic: &str, message: &str| FailedRow {
        theorem: "rep".into(),
        parent_id,
        tactic: tactic.into(),
        outcome: "error".into(),
        message: message.into(),
        run_id: 7,
    };
    let expected = vec![
        row(0, "linarith", "linarith failed"),
        row(0, "omega", "linarith failed"),
        row(1, "linarith", "linarith failed"),
        row(1, "simp", "simp made no progress"),
    ];
    let (nodes, failed) = out.trajectory_rows("rep", 7);
    assert_eq!(failed, expected);
    let texts: Vec<_> = nodes
        .iter()
        .map(|n| (n.tactic.as_deref(), n.state.as_str()))
        .collect();
    assert_eq!(texts, [(None, "⊢ P"), (Some("simp"), "⊢ Q")]);

    // In memory, each repeated text is one allocation: the message of three attempts, the
    // tactic of two attempts, and `simp` of the node and of the attempt at that node.
    let f = &out.failed;
    assert!(Arc::ptr_eq(&f[0].message, &f[1].message));
    assert!(Arc::ptr_eq(&f[0].message, &f[2].message));
    assert!(Arc::ptr_eq(&f[0].tactic, &f[2].tactic));
    let simp = out.tree.get(1).tactic.as_ref().unwrap();
    assert!(Arc::ptr_eq(simp, &f[3].tactic));

    // The files hold the same rows.
    let dir = tempfile::tempdir().unwrap();
    let traj = dir.path().join("trajectories");
    let mut writer = TrajectoryWriter::new(&traj, 16, 50_000).unwrap();
    writer.push(nodes, failed).unwrap();
    writer.flush().unwrap();
    let (_, failed_files) = trajectory_files(&traj).unwrap();
    assert_eq!(read_failed(&failed_files).unwrap(), expected);
}
