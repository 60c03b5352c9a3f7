//! `docs/design.md` owns the design: every config key, every `results.jsonl` field and every
//! trajectory column the code has must have exactly one table row there, and every row must
//! name something the code has. The names come from the code itself (the config parser, a
//! serialised result line, the Parquet schemas), so a key added or renamed in the code fails
//! here until the doc says what it is.
//!
//! A row is a table line whose first cell is a name in backticks (`` | `search.max_nodes` | ``),
//! under the doc's heading for that table; config rows give the key as `section.key`.

use std::collections::BTreeSet;

use formats::results::{ErrorKind, SearchStatus, TheoremResult};
use formats::stats::{SearchStats, TimeAccount};
use serde_json::{json, Value};

const DOC: &str = include_str!("../docs/design.md");

/// The first-cell names of the table rows under `heading` (up to the next heading of the same
/// or a higher level), each required to appear once.
fn rows_under(heading: &str) -> BTreeSet<String> {
    let level = heading.chars().take_while(|&c| c == '#').count();
    let mut lines = DOC.lines().skip_while(|l| *l != heading);
    assert!(
        lines.next().is_some(),
        "docs/design.md has no heading {heading:?}"
    );
    let mut names = BTreeSet::new();
    for line in lines {
        let heading_level = line.chars().take_while(|&c| c == '#').count();
        if heading_level > 0 && heading_level <= level && line[heading_level..].starts_with(' ') {
            break;
        }
        let Some(cell) = line.strip_prefix("| `") else {
            continue;
        };
        let name = cell.split('`').next().unwrap_or_default().to_owned();
        assert!(
            names.insert(name.clone()),
            "`{name}` has two rows under {heading:?}: one fact, one place"
        );
    }
    names
}

/// Fails naming what the code has and the doc lacks, and what the doc names that the code
/// does not have.
fn assert_documented(what: &str, heading: &str, in_code: &BTreeSet<String>) {
    let in_doc = rows_under(heading);
    let undocumented: Vec<_> = in_code.difference(&in_doc).collect();
    let stale: Vec<_> = in_doc.difference(in_code).collect();
    assert!(
        undocumented.is_empty() && stale.is_empty(),
        "{what}: without a row under {heading:?} in docs/design.md: {undocumented:?}; \
         rows there naming none: {stale:?}"
    );
}

/// The fields `search::Config` expects at `value`'s unknown key, from the refusal that
/// `deny_unknown_fields` gives: serde's message lists every field, unset `Option`s included
/// ("unknown field `x`, expected one of `a`, `b`", or "expected `a`", or "`a` or `b`").
fn expected_fields(value: Value) -> Vec<String> {
    let error = serde_json::from_value::<search::Config>(value.clone())
        .expect_err("an unknown key is refused")
        .to_string();
    let (_, expected) = error
        .split_once("expected")
        .unwrap_or_else(|| panic!("{value}: serde's refusal lists no fields: {error}"));
    expected
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

const UNKNOWN: &str = "no_such_key";

/// Every key a config file accepts, as `section.key`.
fn config_keys() -> BTreeSet<String> {
    let mut keys = BTreeSet::new();
    for section in expected_fields(json!({ UNKNOWN: {} })) {
        for key in expected_fields(json!({ section.clone(): { UNKNOWN: 0 } })) {
            keys.insert(format!("{section}.{key}"));
        }
    }
    keys
}

#[test]
fn every_config_key_has_its_row() {
    let keys = config_keys();
    // What config.json records (the default config serialised) must be among the parsed keys,
    // which checks that reading serde's message found them all.
    let written = serde_json::to_value(search::Config::default()).unwrap();
    for (section, table) in written.as_object().unwrap() {
        for key in table.as_object().unwrap().keys() {
            let key = format!("{section}.{key}");
            assert!(keys.contains(&key), "{key} is missing from {keys:?}");
        }
    }
    assert_documented("config keys", "## Config", &keys);
}

#[test]
fn every_results_field_has_its_row() {
    // Every optional field set, so none is skipped when serialised.
    let line = TheoremResult {
        name: "t".into(),
        proved: false,
        status: SearchStatus::Error,
        error: Some("why".into()),
        error_kind: Some(ErrorKind::Infrastructure),
        proof_tactics: vec!["simp".into()],
        proof: Some("theorem t : True := by\n  simp".into()),
        axioms: vec!["propext".into()],
        finished_unix_ms: 1,
        stats: SearchStats::default(),
        time: TimeAccount::default(),
    };
    let fields = serde_json::to_value(line)
        .unwrap()
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_documented("results.jsonl fields", "### `results.jsonl`", &fields);
}

#[test]
fn every_trajectory_column_has_its_row() {
    let nodes: BTreeSet<String> = formats::trajectory::node_schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_documented(
        "node columns",
        "### `trajectories/nodes-NNNNN.parquet`",
        &nodes,
    );
    let failed: BTreeSet<String> = formats::trajectory::failed_schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    assert_documented(
        "failed-attempt columns",
        "### `failed_attempts/failed-NNNNN.parquet`",
        &failed,
    );
}

/// The dotted paths of `value`'s fields (`rounds[].head.path`): objects are walked, an array
/// by its first element. `opaque` paths are one row (their insides are documented where
/// they come from); `rounds[].train` has the fields of `rounds[].eval`, listed once.
fn field_paths(at: &str, value: &Value, opaque: &[&str], out: &mut BTreeSet<String>) {
    // An array's element is its field's row (`rounds`), not one of its own.
    if !at.is_empty() && !at.ends_with("[]") {
        out.insert(at.to_owned());
    }
    if opaque.contains(&at) || at == "rounds[].train" {
        return;
    }
    match value {
        Value::Object(fields) => {
            for (key, inner) in fields {
                let path = if at.is_empty() {
                    key.clone()
                } else {
                    format!("{at}.{key}")
                };
                field_paths(&path, inner, opaque, out);
            }
        }
        Value::Array(items) => {
            if let Some(first) = items.first() {
                field_paths(&format!("{at}[]"), first, opaque, out);
            }
        }
        _ => {}
    }
}

#[test]
fn every_iterate_json_field_has_its_row() {
    use formats::iterate::{HeadRecord, IterateRecord, RoundRecord, SiblingAccuracy, SweepRecord};
    let sweep = SweepRecord {
        dir: "round-1/eval".into(),
        theorems: 1,
        proved: 1,
        nodes_expanded: 1,
        proved_in_every_round: 1,
        expansions_per_proof: Some(1.0),
        expansions_vs_round_0: Some(1.0),
        gen_calls_per_proof: Some(1.0),
        tokens_per_proof: Some(1.0),
    };
    // Every optional field set, so none is skipped when serialised.
    let record = IterateRecord {
        setup: json!({"train_theorems": {}}),
        rounds_requested: 1,
        rounds: vec![RoundRecord {
            round: 1,
            head: Some(HeadRecord {
                path: "round-1/head/head.safetensors".into(),
                identity: None,
                energy_scale: None,
                train_theorems: 1,
                val_theorems: 1,
                shuffle_labels: Some(1),
            }),
            sibling_accuracy: Some(SiblingAccuracy {
                split: "val".into(),
                decisions: 1,
                head: 1.0,
                random: 0.5,
                log_prob: 0.0,
            }),
            eval: sweep.clone(),
            train: sweep,
        }],
    };
    let mut fields = BTreeSet::new();
    field_paths(
        "",
        &serde_json::to_value(record).unwrap(),
        &[
            "setup",
            "rounds[].head.identity",
            "rounds[].head.energy_scale",
        ],
        &mut fields,
    );
    assert_documented("iterate.json fields", "### `iterate.json`", &fields);
}
