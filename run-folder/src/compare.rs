//! `stepwise compare DIR...`: sweeps side by side — the knobs that differ and what each sweep
//! did (from each [`Summary`]), then the setups their manifests name.

use std::fmt::Write;

use formats::manifest::{ConfigDefaults, Manifest, Scope};

use crate::report::{ms, pct, secs};
use crate::summary::Summary;

/// The knobs `compare` shows when they differ between sweeps: (column, JSON pointer).
const KNOBS: &[(&str, &str)] = &[
    ("num_candidates", "/search/num_candidates"),
    ("temperature", "/policy/temperature"),
    ("bex", "/search/batch_expansion_size"),
    ("concurrency", "/sweep/concurrency"),
    ("fill_tail", "/sweep/fill_tail"),
    ("speculate", "/search/speculate"),
    ("speculate_tail", "/sweep/speculate_tail"),
    ("max_nodes", "/search/max_nodes"),
    ("ebm_weight", "/search/ebm_weight"),
];

fn knob(s: &Summary, pointer: &str) -> String {
    s.config
        .as_ref()
        .and_then(|c| c.pointer(pointer))
        .map_or_else(|| "?".to_owned(), |v| v.to_string())
}

fn ebm_on(s: &Summary) -> String {
    match s
        .config
        .as_ref()
        .and_then(|c| c.pointer("/ebm/url"))
        .and_then(|v| v.as_str())
    {
        Some("") => "off".into(),
        Some(_) => "on".into(),
        None => "?".into(),
    }
}

/// One row per sweep: the knobs that differ, then what each sweep did.
pub fn render_compare(sweeps: &[(String, Summary)]) -> String {
    let table = compare_table(sweeps);
    let widths: Vec<usize> = (0..table[0].len())
        .map(|c| {
            table
                .iter()
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in &table {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
    }
    out
}

/// The `compare` table, header row first: the sweep's name, the knobs that differ between the
/// sweeps, then what each sweep did.
pub fn compare_table(sweeps: &[(String, Summary)]) -> Vec<Vec<String>> {
    type Getter = Box<dyn Fn(&Summary) -> String>;
    let mut columns: Vec<(String, Getter)> = Vec::new();
    for (name, pointer) in KNOBS {
        let pointer = *pointer;
        columns.push((name.to_string(), Box::new(move |s| knob(s, pointer))));
    }
    columns.push(("EBM".into(), Box::new(ebm_on)));
    columns.push((
        "mode".into(),
        Box::new(|s| s.mode.clone().unwrap_or_else(|| "?".into())),
    ));
    columns.retain(|(_, get)| {
        let first = sweeps.first().map(|(_, s)| get(s));
        sweeps.iter().any(|(_, s)| Some(get(s)) != first)
    });
    let outcomes: Vec<(&str, Getter)> = vec![
        (
            "proved",
            Box::new(|s| format!("{}/{} ({})", s.proved, s.theorems, pct(s.prove_rate))),
        ),
        (
            "unique/exp",
            Box::new(|s| format!("{:.2}", s.unique_per_expansion)),
        ),
        (
            "children/exp",
            Box::new(|s| format!("{:.2}", s.children_per_expansion)),
        ),
        ("gen ms", Box::new(|s| ms(s.mean_generate_latency_ms))),
        (
            "tok/thm",
            Box::new(|s| format!("{:.0}", s.tokens_per_theorem)),
        ),
        (
            "tok/proof",
            Box::new(|s| format!("{:.0}", s.tokens_per_proof)),
        ),
        (
            "tok/node",
            Box::new(|s| format!("{:.1}", s.tokens_per_accepted_node)),
        ),
        ("Lean pass", Box::new(|s| pct(s.lean_pass_rate))),
        ("wall", Box::new(|s| secs(s.sweep_wall_ms))),
    ];
    columns.extend(outcomes.into_iter().map(|(n, g)| (n.to_owned(), g)));

    let mut table: Vec<Vec<String>> = vec![std::iter::once("sweep".to_owned())
        .chain(columns.iter().map(|(n, _)| n.clone()))
        .collect()];
    for (name, s) in sweeps {
        table.push(
            std::iter::once(name.clone())
                .chain(columns.iter().map(|(_, get)| get(s)))
                .collect(),
        );
    }
    table
}

/// `compare`'s setup section: per sweep the model, Lean, Mathlib, template and commit its
/// manifest names, then each sweep's differences from the first (every result-changing field,
/// config keys one by one). A sweep without a manifest shows `-`.
pub fn render_setup_comparison(sweeps: &[(String, Option<Manifest>)]) -> String {
    let dash = || "-".to_owned();
    let mut out = String::from(
        "\n## Setup (manifest.json)\n\n| sweep | model | Lean | Mathlib | template | stepwise commit |\n\
         |---|---|---|---|---|---|\n",
    );
    for (name, manifest) in sweeps {
        let cells = match manifest {
            None => vec![dash(); 5],
            Some(m) => vec![
                m.models
                    .iter()
                    .map(|model| model.name.clone().unwrap_or_else(dash))
                    .collect::<Vec<_>>()
                    .join(", "),
                m.lean.version.clone().unwrap_or_else(dash),
                m.lean.mathlib.clone().unwrap_or_else(dash),
                format!("{} ({:.12})", m.template.name, m.template.sha256),
                m.last_build()
                    .map_or_else(dash, |b| format!("{:.12}", b.commit)),
            ],
        };
        out.push_str(&format!("| {name} | {} |\n", cells.join(" | ")));
    }
    let Some((first_name, Some(first))) = sweeps.first() else {
        return out;
    };
    for (name, manifest) in &sweeps[1..] {
        let Some(manifest) = manifest else { continue };
        // No defaults: a key one sweep's manifest lacks shows as absent, as it was recorded.
        let mut differences: Vec<String> = first
            .differences(manifest, Scope::Resume, &ConfigDefaults::default())
            .iter()
            .map(ToString::to_string)
            .collect();
        let commits = (first.last_build(), manifest.last_build());
        if let (Some(a), Some(b)) = commits {
            if a.commit != b.commit {
                differences.push(format!("stepwise commit: {} -> {}", a.commit, b.commit));
            }
        }
        if differences.is_empty() {
            out.push_str(&format!("\n{name}: the same setup as {first_name}.\n"));
        } else {
            out.push_str(&format!("\n{name} differs from {first_name} in:\n"));
            for d in differences {
                out.push_str(&format!("- {d}\n"));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::summary;

    #[test]
    fn compare_shows_only_knobs_that_differ() {
        let t = render_compare(&[
            ("a".into(), summary(16, "")),
            ("b".into(), summary(32, "http://x")),
        ]);
        let header = t.lines().next().unwrap();
        assert!(
            header.contains("num_candidates") && header.contains("EBM"),
            "{t}"
        );
        assert!(
            !header.contains("temperature") && !header.contains("concurrency"),
            "{t}"
        );
        assert!(t.lines().nth(2).unwrap().contains("32"), "{t}");
        assert!(
            header.contains("proved") && header.contains("Lean pass"),
            "{t}"
        );
        assert!(
            header.contains("tok/proof") && !header.contains("mode"),
            "{t}"
        );
    }
}
