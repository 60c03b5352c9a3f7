//! The trajectory view the trainer, the evaluator and `traj stats` share: search-tree nodes
//! grouped into theorem runs, with parent/children links, the proof path, and the three tiers
//! of negatives (siblings, same theorem, other theorems).
//!
//! A run is a maximal stretch of rows with one theorem name whose node ids do not repeat, so
//! the same theorem searched in two sweeps gives two runs (node ids restart per search).
//! Splits go by theorem *name*, so both runs land on the same side.

use formats::NodeStatus;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use formats::trajectory::{
    read_failed, read_nodes, trajectory_files, FailedRow, NodeRow, TrajectoryError,
};

#[derive(Debug, thiserror::Error)]
pub enum TrajError {
    #[error(transparent)]
    Read(#[from] TrajectoryError),
    #[error("bad trajectory pattern `{pattern}`: {message}")]
    Pattern { pattern: String, message: String },
    #[error("no trajectory files match `{0}`")]
    NoFiles(String),
    #[error("theorem `{theorem}`: node {node} names parent {parent}, which is not in the file")]
    MissingParent {
        theorem: String,
        node: u32,
        parent: u32,
    },
}

/// The node and failed-attempt files a pattern names: a sweep's `trajectories` directory (its
/// `nodes-*` files and the `failed-*` files of the `failed_attempts` folder beside it), a
/// file, or a glob. Files named `failed-*` hold failed attempts; all others nodes.
pub fn resolve_files(patterns: &[String]) -> Result<(Vec<PathBuf>, Vec<PathBuf>), TrajError> {
    let mut nodes = Vec::new();
    let mut failed = Vec::new();
    for pattern in patterns {
        let path = Path::new(pattern);
        if path.is_dir() {
            let (n, f) = trajectory_files(path).map_err(|e| TrajError::Pattern {
                pattern: pattern.clone(),
                message: e.to_string(),
            })?;
            if n.is_empty() {
                return Err(TrajError::NoFiles(pattern.clone()));
            }
            nodes.extend(n);
            failed.extend(f);
            continue;
        }
        let matches = glob::glob(pattern).map_err(|e| TrajError::Pattern {
            pattern: pattern.clone(),
            message: e.to_string(),
        })?;
        let mut matched: Vec<PathBuf> = matches
            .filter_map(Result::ok)
            .filter(|p| p.is_file())
            .collect();
        if matched.is_empty() {
            return Err(TrajError::NoFiles(pattern.clone()));
        }
        matched.sort();
        for file in matched {
            let name = file.file_name().unwrap_or_default().to_string_lossy();
            if name.starts_with("failed-") {
                failed.push(file);
            } else {
                nodes.push(file);
            }
        }
    }
    Ok((nodes, failed))
}

/// Reads the nodes (and failed attempts) of the files the patterns name, each theorem's runs
/// together and in the order of their theorem's name, then of their run (`run_id`): a sweep
/// writes theorems in the order they finish, which concurrency and timing decide, and what
/// trains or evaluates a head must not depend on it. A run's own rows keep their order.
pub fn load(patterns: &[String]) -> Result<(Trajectories, Vec<FailedRow>), TrajError> {
    let (node_files, failed_files) = resolve_files(patterns)?;
    let mut rows = read_nodes(&node_files)?;
    // Stable: rows of one run stay in file order, and two runs that share a name and a
    // `run_id` (files from before the column: 0) stay one after the other, so `from_rows`
    // still tells them apart by their repeated node ids.
    rows.sort_by(|a, b| (&a.theorem, a.run_id).cmp(&(&b.theorem, b.run_id)));
    let trajectories = Trajectories::from_rows(rows)?;
    Ok((trajectories, read_failed(&failed_files)?))
}

/// One search node, linked into its run.
#[derive(Debug, Clone)]
pub struct Node {
    pub run: usize,
    pub node_id: u32,
    pub parent: Option<usize>,
    pub depth: u32,
    pub state: String,
    pub llm_logprob: f64,
    pub on_path: bool,
    pub status: NodeStatus,
    /// Tactics from this node to the proof's end, on a proof path.
    pub remaining_depth: Option<u32>,
}

/// One theorem run: the indices of its nodes.
#[derive(Debug, Clone)]
pub struct Run {
    pub theorem: String,
    pub nodes: Vec<usize>,
}

impl Run {
    /// A run is proved when it has a proof path.
    pub fn proved(&self, all: &[Node]) -> bool {
        self.nodes.iter().any(|&i| all[i].on_path)
    }
}

/// A proof-path decision: an on-path parent with two or more children, one of them on the path.
#[derive(Debug, Clone)]
pub struct Decision {
    pub parent: usize,
    pub chosen: usize,
    /// All children, `chosen` included.
    pub children: Vec<usize>,
}

#[derive(Debug, Clone)]
pub struct Trajectories {
    pub nodes: Vec<Node>,
    pub runs: Vec<Run>,
    pub children: Vec<Vec<usize>>,
}

impl Trajectories {
    pub fn from_rows(rows: Vec<NodeRow>) -> Result<Self, TrajError> {
        let mut nodes: Vec<Node> = Vec::with_capacity(rows.len());
        let mut runs: Vec<Run> = Vec::new();
        let mut ids: HashMap<u32, usize> = HashMap::new();
        let mut parents: Vec<Option<u32>> = Vec::with_capacity(rows.len());
        for row in rows {
            let new_run = match runs.last() {
                Some(run) => run.theorem != row.theorem || ids.contains_key(&row.node_id),
                None => true,
            };
            if new_run {
                ids.clear();
                runs.push(Run {
                    theorem: row.theorem.clone(),
                    nodes: Vec::new(),
                });
            }
            let run = runs.len() - 1;
            ids.insert(row.node_id, nodes.len());
            runs[run].nodes.push(nodes.len());
            parents.push(row.parent_id);
            nodes.push(Node {
                run,
                node_id: row.node_id,
                parent: None,
                depth: row.depth,
                state: row.state,
                llm_logprob: row.llm_logprob,
                on_path: row.on_proof_path,
                status: row.status,
                remaining_depth: row.remaining_depth,
            });
        }
        // Parents are resolved per run once all its rows are in (a parent may come later).
        let mut children = vec![Vec::new(); nodes.len()];
        for run in &runs {
            let by_id: HashMap<u32, usize> =
                run.nodes.iter().map(|&i| (nodes[i].node_id, i)).collect();
            for &i in &run.nodes {
                if let Some(parent_id) = parents[i] {
                    let parent =
                        *by_id
                            .get(&parent_id)
                            .ok_or_else(|| TrajError::MissingParent {
                                theorem: run.theorem.clone(),
                                node: nodes[i].node_id,
                                parent: parent_id,
                            })?;
                    nodes[i].parent = Some(parent);
                    children[parent].push(i);
                }
            }
        }
        Ok(Self {
            nodes,
            runs,
            children,
        })
    }

    /// Every proof-path decision, in node order, as the search faced it: terminal children
    /// (never scored) are left out, and so is a decision whose chosen child is terminal;
    /// children with the same state count once (the chosen one's copy kept).
    pub fn decisions(&self) -> Vec<Decision> {
        self.nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.on_path)
            .filter_map(|(parent, _)| {
                let live: Vec<usize> = self.children[parent]
                    .iter()
                    .copied()
                    .filter(|&c| !self.nodes[c].status.is_terminal())
                    .collect();
                let mut on_path = self.children[parent]
                    .iter()
                    .filter(|&&c| self.nodes[c].on_path);
                let chosen = *on_path.next()?;
                // Several on-path children would make the decision ambiguous: skip it.
                if on_path.next().is_some() || self.nodes[chosen].status.is_terminal() {
                    return None;
                }
                let mut seen = std::collections::HashSet::from([self.nodes[chosen].state.as_str()]);
                let children: Vec<usize> = live
                    .into_iter()
                    .filter(|&c| c == chosen || seen.insert(self.nodes[c].state.as_str()))
                    .collect();
                (children.len() >= 2).then_some(Decision {
                    parent,
                    chosen,
                    children,
                })
            })
            .collect()
    }

    /// Off-path children of `node`'s parent, other than `node` (hard negatives).
    pub fn siblings_off_path(&self, node: usize) -> Vec<usize> {
        let Some(parent) = self.nodes[node].parent else {
            return Vec::new();
        };
        self.children[parent]
            .iter()
            .copied()
            .filter(|&c| c != node && !self.nodes[c].on_path)
            .collect()
    }

    /// Permutes `on_path` (and `remaining_depth`, which goes with it) among the non-terminal
    /// children of each parent, by a shuffle seeded with `seed`: the labels of `ebm train
    /// --shuffle-labels`, which keep one positive per decision and no signal. Terminal
    /// children keep theirs: training and evaluation never use them, and a label moved onto
    /// or off one would change how many positives there are. Every run keeps its count of
    /// on-path nodes, so the proved/unproved split is the same as without the shuffle.
    /// Returns the nodes whose `on_path` changed.
    pub fn shuffle_labels(&mut self, seed: u64) -> usize {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut moved = 0;
        for parent in 0..self.nodes.len() {
            let live: Vec<usize> = self.children[parent]
                .iter()
                .copied()
                .filter(|&c| !self.nodes[c].status.is_terminal())
                .collect();
            if live.len() < 2 || !live.iter().any(|&c| self.nodes[c].on_path) {
                continue;
            }
            let mut labels: Vec<(bool, Option<u32>)> = live
                .iter()
                .map(|&c| (self.nodes[c].on_path, self.nodes[c].remaining_depth))
                .collect();
            labels.shuffle(&mut rng);
            for (&child, (on_path, remaining_depth)) in live.iter().zip(labels) {
                let node = &mut self.nodes[child];
                moved += usize::from(node.on_path != on_path);
                node.on_path = on_path;
                node.remaining_depth = remaining_depth;
            }
        }
        moved
    }

    /// Theorem names in first-seen order, each once.
    pub fn theorem_names(&self) -> Vec<&str> {
        let mut seen = std::collections::HashSet::new();
        self.runs
            .iter()
            .map(|r| r.theorem.as_str())
            .filter(|t| seen.insert(*t))
            .collect()
    }
}
