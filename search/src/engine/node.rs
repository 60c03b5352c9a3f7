//! The search tree of one theorem: an arena of nodes indexed by id, with an index of the goals
//! texts already seen (for transpositions). Subgoal searches (`search.decompose`) grow in the
//! same arena from roots of their own (`parent = None`), each its own transposition scope.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

use formats::{join_goals, NodeStatus};
use lean_bridge::{Hole, StateId};

pub type NodeId = u32;

#[derive(Debug, Clone)]
pub struct Node {
    pub id: NodeId,
    pub parent: Option<NodeId>,
    /// The tactic from the parent; `None` at the root. Shared with every other node and failed
    /// attempt of the search that has the same tactic text (see `Interner`).
    pub tactic: Option<Arc<str>>,
    /// Goals joined by a blank line ([`join_goals`]); empty when complete. Boxed: no spare
    /// capacity is kept beside the text.
    pub goals: Box<str>,
    pub goal_count: u32,
    pub state: StateId,
    pub depth: u32,
    pub llm_logprob: f64,
    pub tokens: u32,
    pub cum_logprob: f64,
    pub energy: Option<f64>,
    /// The frontier priority (0 for nodes never queued).
    pub score: f64,
    pub status: NodeStatus,
    /// Milliseconds since the theorem's start.
    pub created_ms: f64,
    /// The subgoal search this node belongs to (see `decompose::Subgoals`); `None` in the
    /// main tree.
    pub subgoal: Option<u32>,
    /// The holes this node's tactic opened (a `have … := by sorry` the engine sent).
    pub holes: Box<[Hole]>,
    /// Holes opened on the path from the root to here, this node's included.
    pub holes_on_path: u32,
    /// Made by a planner's sketch.
    pub sketch: bool,
}

/// A child as the engine learned it, before it gets an id.
#[derive(Debug, Clone)]
pub struct NewNode {
    pub tactic: Arc<str>,
    pub goals: Vec<String>,
    pub state: StateId,
    pub llm_logprob: f64,
    pub tokens: u32,
    pub status: NodeStatus,
    pub created_ms: f64,
    /// The holes the tactic opened; empty for every tactic but a hole or a sketch.
    pub holes: Vec<Hole>,
    /// The tactic is a planner's sketch.
    pub sketch: bool,
}

/// The arena. Goals texts are indexed by hash (not a second copy of the text) within their
/// search (the main tree or one subgoal search); a hash collision between different texts
/// only means one of them is not indexed. A node that carries holes never stands in for one
/// that does not: the index then moves to the hole-free node.
#[derive(Debug, Default)]
pub struct Tree {
    nodes: Vec<Node>,
    seen: HashMap<u64, NodeId>,
}

pub(super) fn text_hash(text: &str) -> u64 {
    let mut h = DefaultHasher::new();
    text.hash(&mut h);
    h.finish()
}

/// The transposition index's key: the goals text within one search.
fn state_key(subgoal: Option<u32>, goals: &str) -> u64 {
    let mut h = DefaultHasher::new();
    subgoal.hash(&mut h);
    goals.hash(&mut h);
    h.finish()
}

impl Tree {
    pub fn with_root(state: StateId, goals: &[String]) -> Self {
        let mut tree = Tree::default();
        tree.add_root(None, join_goals(goals), goals.len() as u32, state, 0.0);
        tree
    }

    /// The root of subgoal search `subgoal`: the hole's own proof state and goal.
    pub fn add_subgoal_root(&mut self, subgoal: u32, hole: &Hole, created_ms: f64) -> NodeId {
        self.add_root(Some(subgoal), hole.goal.clone(), 1, hole.state, created_ms)
    }

    /// A node without a parent: the tree's root, or a subgoal search's.
    fn add_root(
        &mut self,
        subgoal: Option<u32>,
        goals: String,
        goal_count: u32,
        state: StateId,
        created_ms: f64,
    ) -> NodeId {
        let id = self.nodes.len() as NodeId;
        self.seen.insert(state_key(subgoal, &goals), id);
        self.nodes.push(Node {
            id,
            parent: None,
            tactic: None,
            goals: goals.into_boxed_str(),
            goal_count,
            state,
            depth: 0,
            llm_logprob: 0.0,
            tokens: 0,
            cum_logprob: 0.0,
            energy: None,
            score: 0.0,
            status: NodeStatus::Open,
            created_ms,
            subgoal,
            holes: Box::default(),
            holes_on_path: 0,
            sketch: false,
        });
        id
    }

    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    pub fn get(&self, id: NodeId) -> &Node {
        &self.nodes[id as usize]
    }

    pub fn get_mut(&mut self, id: NodeId) -> &mut Node {
        &mut self.nodes[id as usize]
    }

    /// The main-tree node whose goals text is `goals`, if one exists.
    pub fn find_state(&self, goals: &[String]) -> Option<NodeId> {
        let text = join_goals(goals);
        self.seen
            .get(&state_key(None, &text))
            .copied()
            .filter(|id| *self.get(*id).goals == *text)
    }

    /// The node of `parent`'s search whose goals text is `goals`, if one exists and a child
    /// of `parent` opening `holes` more holes may stand on it (a transposition).
    pub fn transposition(&self, parent: NodeId, goals: &[String], holes: usize) -> Option<NodeId> {
        let p = self.get(parent);
        let text = join_goals(goals);
        let carries_holes = p.holes_on_path as usize + holes > 0;
        self.seen
            .get(&state_key(p.subgoal, &text))
            .copied()
            .filter(|id| *self.get(*id).goals == *text)
            .filter(|id| carries_holes || self.get(*id).holes_on_path == 0)
    }

    /// Adds a child of `parent`, in its search. Complete proofs (no goals) are not indexed as
    /// states.
    pub fn add_child(&mut self, parent: NodeId, new: NewNode) -> NodeId {
        let id = self.nodes.len() as NodeId;
        let p = self.get(parent);
        let (depth, cum_logprob) = (p.depth + 1, p.cum_logprob + new.llm_logprob);
        let (subgoal, holes_on_path) = (p.subgoal, p.holes_on_path + new.holes.len() as u32);
        let goals = join_goals(&new.goals);
        if !new.status.is_terminal() {
            let indexed = self.seen.entry(state_key(subgoal, &goals)).or_insert(id);
            if *indexed != id
                && holes_on_path == 0
                && self.nodes[*indexed as usize].holes_on_path > 0
            {
                *indexed = id;
            }
        }
        self.nodes.push(Node {
            id,
            parent: Some(parent),
            tactic: Some(new.tactic),
            goals: goals.into_boxed_str(),
            goal_count: new.goals.len() as u32,
            state: new.state,
            depth,
            llm_logprob: new.llm_logprob,
            tokens: new.tokens,
            cum_logprob,
            energy: None,
            score: 0.0,
            status: new.status,
            created_ms: new.created_ms,
            subgoal,
            holes: new.holes.into_boxed_slice(),
            holes_on_path,
            sketch: new.sketch,
        });
        id
    }

    /// Node ids from the root of `id`'s search (the tree's root, or a subgoal's) to `id`,
    /// inclusive.
    pub fn path(&self, id: NodeId) -> Vec<NodeId> {
        let mut path = vec![id];
        let mut cur = id;
        while let Some(p) = self.get(cur).parent {
            path.push(p);
            cur = p;
        }
        path.reverse();
        path
    }

    /// The tactics from the root of `id`'s search to `id`.
    pub fn tactics_to(&self, id: NodeId) -> Vec<String> {
        self.path(id)
            .into_iter()
            .filter_map(|n| self.get(n).tactic.as_deref().map(str::to_owned))
            .collect()
    }
}
