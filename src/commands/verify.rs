//! `stepwise verify`: the whole-proof check (the same one a sweep applies before it reports
//! a proof) over a JSONL file of proofs, on the Lean pool.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use formats::theorems::Theorem;
use indicatif::{ProgressBar, ProgressStyle};
use lean_bridge::{LeanConfig, LeanError, LeanPool};
use serde::Serialize;

use crate::ConfigArgs;

#[derive(Args, Debug)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// JSONL: `name`, `formal_statement`, optional `header`, and `proof` (the script after `by`).
    #[arg(long)]
    pub proofs: PathBuf,
    /// Results as JSONL, one line per input in input order; stdout if absent.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// One proof to check.
struct ProofEntry {
    theorem: Theorem,
    proof: String,
}

/// One output line.
#[derive(Serialize)]
struct Verdict {
    name: String,
    verified: bool,
    /// Lean's errors, or why the proof was rejected (sorry, axioms, infrastructure).
    errors: Vec<String>,
    axioms: Vec<String>,
    wall_ms: u64,
}

pub fn run(args: VerifyArgs) -> anyhow::Result<()> {
    let config = search::Config::load(&args.config.config, &args.config.overrides)?;
    let entries = read_proofs(&args.proofs)?;
    let out: Box<dyn Write> = match &args.out {
        Some(path) => Box::new(BufWriter::new(
            File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
        )),
        None => Box::new(std::io::stdout().lock()),
    };
    let runtime = tokio::runtime::Runtime::new()?;
    let started = Instant::now();
    let (verified, total) = runtime.block_on(verify_all(config.lean, entries, out))?;
    let summary = format!(
        "verified {verified} of {total} proofs ({} rejected) in {:.1} s",
        total - verified,
        started.elapsed().as_secs_f64()
    );
    // With results on stdout the summary goes to stderr, keeping stdout pure JSONL.
    if args.out.is_some() {
        println!("{summary}");
    } else {
        eprintln!("{summary}");
    }
    Ok(())
}

/// Reads the proofs file; a malformed line is an error naming the file and the line.
fn read_proofs(path: &Path) -> anyhow::Result<Vec<ProofEntry>> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut entries = Vec::new();
    for (index, line) in BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("cannot read {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let at = || format!("{}:{}", path.display(), index + 1);
        let mut object: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&line).with_context(|| format!("{}: not a JSON object", at()))?;
        let proof = match object.remove("proof") {
            Some(serde_json::Value::String(proof)) => proof,
            _ => anyhow::bail!("{}: needs a string field \"proof\"", at()),
        };
        let theorem: Theorem = serde_json::from_value(object.into())
            .with_context(|| format!("{}: not a theorem", at()))?;
        entries.push(ProofEntry { theorem, proof });
    }
    Ok(entries)
}

/// Checks every entry (the pool runs `lean.workers` at once) and writes each verdict as
/// soon as all earlier ones are written, so the output is in input order and a killed run
/// keeps what finished. Returns (verified, total).
async fn verify_all(
    config: LeanConfig,
    entries: Vec<ProofEntry>,
    mut out: Box<dyn Write>,
) -> anyhow::Result<(usize, usize)> {
    let total = entries.len();
    let pool = LeanPool::new(config);
    let bar = ProgressBar::new(total as u64).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} proofs, {msg} [{elapsed} < {eta}]")
            .expect("valid progress template"),
    );
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for (index, entry) in entries.into_iter().enumerate() {
        let pool = Arc::clone(&pool);
        let tx = tx.clone();
        tokio::spawn(async move {
            let verdict = verify_one(&pool, entry).await;
            let _ = tx.send((index, verdict));
        });
    }
    drop(tx);
    let mut pending = BTreeMap::new();
    let (mut next, mut verified) = (0, 0);
    while let Some((index, verdict)) = rx.recv().await {
        pending.insert(index, verdict?);
        while let Some(verdict) = pending.remove(&next) {
            verified += verdict.verified as usize;
            serde_json::to_writer(&mut out, &verdict)?;
            writeln!(out)?;
            out.flush()?;
            next += 1;
        }
        bar.inc(1);
        bar.set_message(format!("{verified} verified"));
    }
    bar.finish_and_clear();
    pool.shutdown().await;
    anyhow::ensure!(next == total, "{} proofs were not checked", total - next);
    Ok((verified, total))
}

/// A verdict, or the error that stops the whole run: a REPL that cannot be started or a
/// config that cannot work would fail every line the same way.
async fn verify_one(pool: &Arc<LeanPool>, entry: ProofEntry) -> Result<Verdict, LeanError> {
    let started = Instant::now();
    let (verified, errors, axioms) = match pool.check_proof(&entry.theorem, &entry.proof).await {
        Ok(check) => (check.verified, check.errors, check.axioms),
        Err(e @ (LeanError::Spawn { .. } | LeanError::Config { .. })) => return Err(e),
        Err(e) => {
            tracing::warn!(theorem = %entry.theorem.name, "{e}");
            (false, vec![e.to_string()], Vec::new())
        }
    };
    Ok(Verdict {
        name: entry.theorem.name,
        verified,
        errors,
        axioms,
        wall_ms: started.elapsed().as_millis() as u64,
    })
}
