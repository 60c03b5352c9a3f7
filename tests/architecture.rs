//! The crate graph follows the process graph (ARCHITECTURE.md): the prover (`search`) and the
//! value model (`ebm`) meet only at `formats`, never through each other or any other crate,
//! and library crates take the simulators (`sim`) only as a dev-dependency. Read from the
//! members' declared dependencies (`cargo metadata`) and followed transitively, so an edge
//! hidden behind a third crate fails too (registry crates cannot reach back into ours).

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use serde_json::Value;

/// Normal (and build) dependency edges between workspace packages, by package name.
type Graph = BTreeMap<String, BTreeSet<String>>;

fn workspace_graph() -> Graph {
    let output = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).expect("metadata is JSON");
    graph_of(&metadata)
}

/// The workspace members' non-dev edges among themselves, as their manifests declare them
/// (`--no-deps` needs no download; paths tell a member from a registry crate of the same name).
fn graph_of(metadata: &Value) -> Graph {
    let packages = metadata["packages"].as_array().expect("packages");
    let member_at: BTreeMap<&str, &str> = packages
        .iter()
        .map(|p| {
            let manifest = p["manifest_path"].as_str().unwrap();
            let dir = manifest.strip_suffix("/Cargo.toml").unwrap_or(manifest);
            (dir, p["name"].as_str().unwrap())
        })
        .collect();
    let mut graph = Graph::new();
    for package in packages {
        let edges = graph
            .entry(package["name"].as_str().unwrap().to_owned())
            .or_default();
        for dep in package["dependencies"].as_array().unwrap() {
            let normal = dep["kind"].as_str() != Some("dev");
            if let Some(name) = dep["path"].as_str().and_then(|p| member_at.get(p)) {
                if normal {
                    edges.insert((*name).to_owned());
                }
            }
        }
    }
    graph
}

/// Every package `from` reaches through normal dependencies.
fn reachable(graph: &Graph, from: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![from.to_owned()];
    while let Some(p) = todo.pop() {
        for dep in graph.get(&p).into_iter().flatten() {
            if seen.insert(dep.clone()) {
                todo.push(dep.clone());
            }
        }
    }
    seen
}

/// The rules, as messages naming each broken one.
fn violations(graph: &Graph) -> Vec<String> {
    let mut broken = Vec::new();
    for (a, b) in [("search", "ebm"), ("ebm", "search"), ("ebm", "lean-bridge")] {
        if reachable(graph, a).contains(b) {
            broken.push(format!("`{a}` depends on `{b}`: they run in different processes and meet only at `formats`"));
        }
    }
    // A run folder is read from its files alone, by any process on any node.
    for engine in ["search", "lean-bridge", "ebm"] {
        if reachable(graph, "run-folder").contains(engine) {
            broken.push(format!(
                "`run-folder` depends on `{engine}`: the run folder's readers meet the sweep only at `formats`"
            ));
        }
    }
    if reachable(graph, "search").contains("run-folder") {
        broken.push("`search` depends on `run-folder`: the sweep writes the run folder through `formats`, the reports are read back by the CLI".into());
    }
    for library in ["formats", "lean-bridge", "search", "run-folder", "ebm"] {
        if reachable(graph, library).contains("sim") {
            broken.push(format!(
                "`{library}` depends on the simulators (`sim`) outside dev-dependencies"
            ));
        }
    }
    if !reachable(graph, "formats").is_empty() {
        broken.push("`formats` depends on another workspace crate: it must stand alone".into());
    }
    broken
}

#[test]
fn the_crate_graph_follows_the_process_graph() {
    let graph = workspace_graph();
    let libraries = [
        "formats",
        "lean-bridge",
        "search",
        "run-folder",
        "ebm",
        "sim",
    ];
    for crate_name in libraries.iter().chain(&["stepwise"]) {
        assert!(
            graph.contains_key(*crate_name),
            "{crate_name} is a member: {graph:?}"
        );
    }
    assert_eq!(violations(&graph), Vec::<String>::new());
    // The binary wires them all, the demo included.
    let binary = reachable(&graph, "stepwise");
    for crate_name in libraries {
        assert!(binary.contains(crate_name), "stepwise -> {crate_name}");
    }
}

/// The violations of the workspace graph with one edge added.
fn violations_with(from: &str, to: &str) -> Vec<String> {
    let mut graph = workspace_graph();
    graph.get_mut(from).unwrap().insert(to.to_owned());
    violations(&graph)
}

#[test]
fn a_forbidden_edge_is_caught_even_through_another_crate() {
    for ((from, to), caught) in [
        // ebm -> formats -> search would hide the edge from a direct check.
        (("formats", "search"), "`ebm` depends on `search`"),
        (("search", "sim"), "`search` depends on the simulators"),
        (
            ("run-folder", "lean-bridge"),
            "`run-folder` depends on `lean-bridge`",
        ),
    ] {
        let broken = violations_with(from, to);
        assert!(broken.iter().any(|m| m.contains(caught)), "{broken:?}");
    }
}
