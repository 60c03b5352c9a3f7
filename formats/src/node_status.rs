//! A node's status, as the engine keeps it and the trajectory `status` column stores it.

use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeStatus {
    /// Queued, never expanded.
    Open,
    Expanded,
    /// At `max_depth`: kept, never queued.
    DepthLimit,
    /// The proof is complete and passed the whole-proof check.
    Proof,
    /// Lean called the proof complete but the whole-proof check rejected it.
    Unverified,
    /// The goals closed on a path that carries holes (`have … := by sorry` the engine sent,
    /// `search.decompose`): complete given proofs of its holes, never expanded.
    Conditional,
    /// A conditional node whose assembled proof the whole-proof check rejected.
    CheckFailed,
}

impl NodeStatus {
    pub const ALL: [NodeStatus; 7] = [
        NodeStatus::Open,
        NodeStatus::Expanded,
        NodeStatus::DepthLimit,
        NodeStatus::Proof,
        NodeStatus::Unverified,
        NodeStatus::Conditional,
        NodeStatus::CheckFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NodeStatus::Open => "open",
            NodeStatus::Expanded => "expanded",
            NodeStatus::DepthLimit => "depth_limit",
            NodeStatus::Proof => "proof",
            NodeStatus::Unverified => "unverified",
            NodeStatus::Conditional => "conditional",
            NodeStatus::CheckFailed => "check_failed",
        }
    }

    /// Terminal nodes (complete proofs, checked or not, conditional or not) have no goals:
    /// they are never scored, queued or embedded.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            NodeStatus::Proof
                | NodeStatus::Unverified
                | NodeStatus::Conditional
                | NodeStatus::CheckFailed
        )
    }
}

impl fmt::Display for NodeStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for NodeStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        NodeStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| {
                let known: Vec<_> = NodeStatus::ALL.iter().map(|s| s.as_str()).collect();
                format!("unknown node status {s:?} (known: {})", known.join(", "))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_round_trips_through_its_column_text() {
        for status in NodeStatus::ALL {
            assert_eq!(status.as_str().parse::<NodeStatus>(), Ok(status));
        }
        assert!("verified"
            .parse::<NodeStatus>()
            .unwrap_err()
            .contains("unverified"));
    }
}
