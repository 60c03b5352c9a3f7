//! `DIR/iterate.json` and `DIR/report.md`: what each round of `stepwise iterate` did, rebuilt
//! from the round folders alone (sweep results and manifests, `train.json`, `eval.json`), so a
//! resumed or re-read loop reports the same numbers as the run that made them.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;
use formats::iterate::{HeadRecord, IterateRecord, RoundRecord, SiblingAccuracy, SweepRecord};
use formats::manifest::Manifest;
use formats::results::{latest_by_name, read_results, TheoremResult, RESULTS_FILE};
use serde_json::Value;

use super::layout::{Layout, Side};

/// What one finished round's folders hold, before the comparisons across rounds.
pub struct RoundFiles {
    round: usize,
    head: Option<HeadRecord>,
    sibling_accuracy: Option<SiblingAccuracy>,
    eval: Vec<TheoremResult>,
    train: Vec<TheoremResult>,
}

impl RoundFiles {
    pub fn round(&self) -> usize {
        self.round
    }

    /// Reads round `round` from `layout`; its sweeps must be finished.
    pub fn read(layout: &Layout, round: usize) -> anyhow::Result<Self> {
        let results = |side: Side| -> anyhow::Result<Vec<TheoremResult>> {
            let path = layout.sweep(round, side).join(RESULTS_FILE);
            Ok(latest_by_name(read_results(&path)?))
        };
        let (head, sibling_accuracy) = if round == 0 {
            (None, None)
        } else {
            (
                Some(read_head(layout, round)?),
                Some(read_accuracy(&layout.eval_json(round))?),
            )
        };
        Ok(RoundFiles {
            round,
            head,
            sibling_accuracy,
            eval: results(Side::Eval)?,
            train: results(Side::Train)?,
        })
    }
}

fn read_json(path: &Path) -> anyhow::Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))
}

fn read_head(layout: &Layout, round: usize) -> anyhow::Result<HeadRecord> {
    let train_json = layout.train_json(round);
    let trained = read_json(&train_json)?;
    let count = |key: &str| -> anyhow::Result<usize> {
        trained[key]
            .as_array()
            .map(Vec::len)
            .with_context(|| format!("{}: no {key:?} list", train_json.display()))
    };
    let sweep = layout.sweep(round, Side::Eval);
    let manifest = Manifest::read(&sweep)?
        .with_context(|| format!("{}: no manifest.json", sweep.display()))?;
    Ok(HeadRecord {
        path: layout.relative(&layout.head(round)),
        identity: manifest.ebm,
        energy_scale: manifest.ebm_energy_scale,
        train_theorems: count("train_theorems")?,
        val_theorems: count("val_theorems")?,
        shuffle_labels: trained["config"]["shuffle_labels"].as_u64(),
    })
}

fn read_accuracy(path: &Path) -> anyhow::Result<SiblingAccuracy> {
    let eval = read_json(path)?;
    let number = |key: &str| -> anyhow::Result<f64> {
        eval[key]
            .as_f64()
            .with_context(|| format!("{}: no number {key:?}", path.display()))
    };
    Ok(SiblingAccuracy {
        split: eval["split"].as_str().unwrap_or("all").to_owned(),
        decisions: number("decisions")? as usize,
        head: number("ebm_accuracy")?,
        random: number("random_baseline")?,
        log_prob: number("llm_accuracy")?,
    })
}

/// `iterate.json` from the finished rounds, oldest first.
pub fn build(
    layout: &Layout,
    setup: Value,
    rounds_requested: usize,
    rounds: &[RoundFiles],
) -> IterateRecord {
    let side = |pick: fn(&RoundFiles) -> &[TheoremResult], name: Side| -> Vec<SweepRecord> {
        // The theorems proved in every round: expansions are compared on these alone, so
        // a round that proves more (or fewer) theorems is not judged on different proofs.
        let common: BTreeSet<&str> = rounds
            .iter()
            .map(|r| {
                pick(r)
                    .iter()
                    .filter(|t| t.proved)
                    .map(|t| t.name.as_str())
                    .collect::<BTreeSet<_>>()
            })
            .reduce(|a, b| a.intersection(&b).copied().collect())
            .unwrap_or_default();
        let records: Vec<SweepRecord> = rounds
            .iter()
            .map(|r| {
                sweep_record(
                    layout.relative(&layout.sweep(r.round, name)),
                    pick(r),
                    &common,
                )
            })
            .collect();
        let first = records.first().and_then(|r| r.expansions_per_proof);
        records
            .into_iter()
            .map(|mut r| {
                r.expansions_vs_round_0 = match (r.expansions_per_proof, first) {
                    (Some(x), Some(base)) if base > 0.0 => Some(x / base),
                    _ => None,
                };
                r
            })
            .collect()
    };
    let eval = side(|r| &r.eval, Side::Eval);
    let train = side(|r| &r.train, Side::Train);
    IterateRecord {
        setup,
        rounds_requested,
        rounds: rounds
            .iter()
            .zip(eval.into_iter().zip(train))
            .map(|(r, (eval, train))| RoundRecord {
                round: r.round,
                head: r.head.clone(),
                sibling_accuracy: r.sibling_accuracy.clone(),
                eval,
                train,
            })
            .collect(),
    }
}

fn sweep_record(dir: String, results: &[TheoremResult], common: &BTreeSet<&str>) -> SweepRecord {
    let proved = results.iter().filter(|t| t.proved).count();
    let per_proof = |total: u64| (proved > 0).then(|| total as f64 / proved as f64);
    let in_common: Vec<&TheoremResult> = results
        .iter()
        .filter(|t| common.contains(t.name.as_str()))
        .collect();
    SweepRecord {
        dir,
        theorems: results.len(),
        proved,
        nodes_expanded: results.iter().map(|t| t.stats.nodes_expanded).sum(),
        proved_in_every_round: in_common.len(),
        expansions_per_proof: (!in_common.is_empty()).then(|| {
            in_common
                .iter()
                .map(|t| t.stats.nodes_expanded)
                .sum::<u64>() as f64
                / in_common.len() as f64
        }),
        expansions_vs_round_0: None,
        gen_calls_per_proof: per_proof(results.iter().map(|t| t.stats.gen_calls).sum()),
        tokens_per_proof: per_proof(results.iter().map(|t| t.stats.tokens_generated).sum()),
    }
}

/// Writes `iterate.json`.
pub fn write(record: &IterateRecord, path: &Path) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(record).expect("the record serialises") + "\n";
    write_atomically(path, &text)
}

/// The report table, one row per finished round.
pub fn render(record: &IterateRecord) -> String {
    let mut out = String::new();
    let opt =
        |v: Option<f64>, digits: usize| v.map_or("–".to_owned(), |v| format!("{v:.digits$}"));
    let common = record
        .rounds
        .first()
        .map_or(0, |r| r.eval.proved_in_every_round);
    let _ = writeln!(
            out,
            "| round | head | eval proved | expansions/proof | vs round 0 | generate calls/proof | tokens/proof | sibling accuracy: head | random | log-prob | train proved |"
        );
    let _ = writeln!(
        out,
        "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for r in &record.rounds {
        let head = match &r.head {
            None => "none (the policy alone)".to_owned(),
            Some(h) => {
                let sha = h
                    .identity
                    .as_ref()
                    .and_then(|i| i.head_sha256.as_deref())
                    .map_or("unknown", |s| &s[..s.len().min(12)]);
                match h.shuffle_labels {
                    Some(seed) => format!("`{sha}` (shuffled labels, seed {seed})"),
                    None => format!("`{sha}`"),
                }
            }
        };
        let (acc, random, llm) = match &r.sibling_accuracy {
            Some(a) => (
                format!("{:.3}", a.head),
                format!("{:.3}", a.random),
                format!("{:.3}", a.log_prob),
            ),
            None => ("–".into(), "–".into(), "–".into()),
        };
        let _ = writeln!(
            out,
            "| {} | {head} | {}/{} | {} | {} | {} | {} | {acc} | {random} | {llm} | {}/{} |",
            r.round,
            r.eval.proved,
            r.eval.theorems,
            opt(r.eval.expansions_per_proof, 1),
            opt(r.eval.expansions_vs_round_0, 2),
            opt(r.eval.gen_calls_per_proof, 1),
            opt(r.eval.tokens_per_proof, 0),
            r.train.proved,
            r.train.theorems,
        );
    }
    let _ = writeln!(
        out,
        "\nexpansions/proof: mean nodes expanded over the {common} eval theorems proved in \
             every round; generate calls and tokens: the whole eval sweep's over its proofs; \
             sibling accuracy: at the proof-path decisions of the head's validation theorems."
    );
    out
}

/// `report.md`: the table under a title naming the folder.
pub fn write_report(record: &IterateRecord, path: &Path, dir: &Path) -> anyhow::Result<()> {
    let text = format!(
        "# stepwise iterate: {}\n\n{}",
        dir.display(),
        render(record)
    );
    write_atomically(path, &text)
}

fn write_atomically(path: &Path, text: &str) -> anyhow::Result<()> {
    formats::append::write_atomically(path, text)
        .with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use formats::results::SearchStatus;

    fn result(name: &str, proved: bool, expanded: u64) -> TheoremResult {
        TheoremResult {
            name: name.into(),
            proved,
            status: if proved {
                SearchStatus::Proved
            } else {
                SearchStatus::NodeBudget
            },
            error: None,
            error_kind: None,
            proof_tactics: Vec::new(),
            proof: None,
            axioms: Vec::new(),
            finished_unix_ms: 0,
            stats: formats::stats::SearchStats {
                nodes_expanded: expanded,
                gen_calls: expanded + 1,
                tokens_generated: 10 * expanded,
                ..Default::default()
            },
            time: Default::default(),
        }
    }

    fn round(round: usize, eval: Vec<TheoremResult>) -> RoundFiles {
        RoundFiles {
            round,
            head: None,
            sibling_accuracy: None,
            train: eval.clone(),
            eval,
        }
    }

    /// Rounds are compared on the theorems every one of them proved; per-proof costs are
    /// the whole sweep's over its proofs.
    #[test]
    fn expansions_are_compared_on_the_theorems_every_round_proved() {
        let rounds = [
            round(
                0,
                vec![
                    result("a", true, 10),
                    result("b", true, 20),
                    result("c", false, 50),
                ],
            ),
            round(
                1,
                vec![
                    result("a", true, 4),
                    result("b", false, 60),
                    result("c", true, 5),
                ],
            ),
        ];
        let record = build(
            &Layout::new(Path::new("/loop")),
            serde_json::json!({}),
            1,
            &rounds,
        );
        let (base, next) = (&record.rounds[0].eval, &record.rounds[1].eval);
        assert_eq!(base.dir, "round-0/eval");
        assert_eq!((base.proved, next.proved), (2, 2));
        assert_eq!(
            (base.proved_in_every_round, next.proved_in_every_round),
            (1, 1)
        );
        assert_eq!(base.expansions_per_proof, Some(10.0));
        assert_eq!(next.expansions_per_proof, Some(4.0));
        assert_eq!(next.expansions_vs_round_0, Some(0.4));
        assert_eq!(base.nodes_expanded, 80);
        assert_eq!(base.gen_calls_per_proof, Some(83.0 / 2.0));
        assert_eq!(next.tokens_per_proof, Some(690.0 / 2.0));
        let table = render(&record);
        assert!(
            table
                .lines()
                .any(|l| l.starts_with("| 1 |") && l.contains("| 4.0 | 0.40 |")),
            "{table}"
        );
    }
}
