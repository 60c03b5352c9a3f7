//! `traj stats` numbers against a hand count of a small written trajectory file.

use crate::traj_fixture;

use ebm::traj_stats::{Summary, TrajStats};
use ebm::trajectories;
use formats::trajectory::FailedRow;
use formats::NodeStatus;
use traj_fixture::row;

fn failed(theorem: &str, outcome: &str) -> FailedRow {
    FailedRow {
        theorem: theorem.to_string(),
        parent_id: 0,
        tactic: "bad".to_string(),
        outcome: outcome.to_string(),
        message: "no".to_string(),
        run_id: 1,
    }
}

#[test]
fn stats_match_a_hand_count() {
    // a: 0 -> {1, 2, 3}; 1 -> {4, 5}; 4 -> {6}; proof path 0-1-4-6 (3 tactics).
    let a = vec![
        row("a", 0, None, 0, true, 0.0),
        row("a", 1, Some(0), 1, true, -0.1),
        row("a", 2, Some(0), 1, false, -0.2),
        row("a", 3, Some(0), 1, false, -0.3),
        row("a", 4, Some(1), 2, true, -0.1),
        row("a", 5, Some(1), 2, false, -0.4),
        row("a", 6, Some(4), 3, true, -0.2),
    ];
    // b (unproved): 0 -> {1, 2}; 1 expanded but every tactic failed.
    let mut b = vec![
        row("b", 0, None, 0, false, 0.0),
        row("b", 1, Some(0), 1, false, -0.5),
        row("b", 2, Some(0), 1, false, -0.6),
    ];
    b[1].status = NodeStatus::Expanded;
    let dir = tempfile::tempdir().unwrap();
    let traj_dir = dir.path().join("trajectories");
    traj_fixture::write(
        &traj_dir,
        &[a, b],
        vec![
            failed("a", "error"),
            failed("b", "error"),
            failed("b", "timeout"),
        ],
    );

    let (traj, failed_rows) = trajectories::load(&[traj_dir.display().to_string()]).unwrap();
    let stats = TrajStats::compute(&traj, &failed_rows);
    assert_eq!(stats.total_nodes, 10);
    assert_eq!(
        (stats.runs, stats.distinct_theorems, stats.runs_proved),
        (2, 2, 1)
    );
    assert_eq!((stats.positive_labels, stats.negative_labels), (4, 6));
    assert!((stats.positive_fraction - 0.4).abs() < 1e-12);
    // Expanded: a0, a1, a4 (children) and b0 (children), b1 (status) -> 8 children / 5.
    assert_eq!(stats.expanded_nodes, 5);
    assert!((stats.branching_factor - 1.6).abs() < 1e-12);
    let hist: Vec<(u32, usize)> = stats
        .depth_histogram
        .iter()
        .map(|(d, c)| (*d, *c))
        .collect();
    assert_eq!(hist, vec![(0, 2), (1, 5), (2, 2), (3, 1)]);
    let three = Summary {
        min: 3.0,
        max: 3.0,
        mean: 3.0,
        median: 3.0,
    };
    assert_eq!(stats.proof_depths, Some(three));
    assert_eq!(
        stats.nodes_per_run,
        Some(Summary {
            min: 3.0,
            max: 7.0,
            mean: 5.0,
            median: 5.0
        })
    );
    let outcomes: Vec<(&str, usize)> = stats
        .failed_by_outcome
        .iter()
        .map(|(o, c)| (o.as_str(), *c))
        .collect();
    assert_eq!(outcomes, vec![("error", 2), ("timeout", 1)]);

    let text = stats.render();
    assert!(text.contains("nodes            10"), "{text}");
    assert_eq!(stats.distinct_theorems_proved, 1);
    assert!(text.contains("1 runs proved"), "{text}");
    let json: serde_json::Value = serde_json::to_value(&stats).unwrap();
    assert_eq!(json["depth_histogram"]["1"], 5);
}

#[test]
fn a_repeated_theorem_is_two_runs_and_one_theorem() {
    let run = || {
        vec![
            row("a", 0, None, 0, false, 0.0),
            row("a", 1, Some(0), 1, false, -0.1),
        ]
    };
    let dir = tempfile::tempdir().unwrap();
    let traj_dir = dir.path().join("trajectories");
    traj_fixture::write(&traj_dir, &[run(), run()], vec![]);
    let (traj, _) = trajectories::load(&[traj_dir.display().to_string()]).unwrap();
    let stats = TrajStats::compute(&traj, &[]);
    assert_eq!((stats.runs, stats.distinct_theorems), (2, 1));
    assert_eq!(stats.nodes_per_run.unwrap().mean, 2.0);
}
