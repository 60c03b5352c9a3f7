//! Subgoal searches in the trajectories (`search.decompose`): a subgoal's root has no parent,
//! so it is a root of its own, never a child of the conditional node whose hole opened it, in
//! sibling decisions too; its proof path is on the theorem's proof path.

use crate::traj_fixture;

use ebm::trajectories::Trajectories;
use formats::NodeStatus;
use traj_fixture::row;

#[test]
fn a_subgoal_root_is_a_root_and_its_proof_path_makes_decisions() {
    let node = |id, parent, depth, on_path, status| {
        let mut r = row("t", id, parent, depth, on_path, -0.5);
        r.status = status;
        r
    };
    let mut rows = vec![
        node(0, None, 0, true, NodeStatus::Expanded),
        node(1, Some(0), 1, true, NodeStatus::Expanded), // the hole's node
        node(2, Some(0), 1, false, NodeStatus::Open),
        node(3, Some(1), 2, true, NodeStatus::Proof), // the conditional node, proved
        node(4, None, 0, true, NodeStatus::Expanded), // the subgoal's root
        node(5, Some(4), 1, true, NodeStatus::Expanded),
        node(6, Some(4), 1, false, NodeStatus::Open),
        node(7, Some(5), 2, true, NodeStatus::Proof),
    ];
    for r in &mut rows[4..] {
        r.subgoal_of = Some(3);
    }
    let trajectories = Trajectories::from_rows(rows).unwrap();
    assert_eq!(trajectories.runs.len(), 1, "one theorem, one run");
    assert!(trajectories.children[3].is_empty());
    assert_eq!(trajectories.nodes[4].parent, None);
    let decisions: Vec<(usize, usize, Vec<usize>)> = trajectories
        .decisions()
        .into_iter()
        .map(|d| (d.parent, d.chosen, d.children))
        .collect();
    assert_eq!(decisions, [(0, 1, vec![1, 2]), (4, 5, vec![5, 6])]);
}
