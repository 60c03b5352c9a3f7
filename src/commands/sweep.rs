//! `stepwise sweep`: best-first search over a theorems file, into a results directory.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use formats::theorems::Theorem;
use formats::theorems::{read_theorems, select, Shard};
use lean_bridge::LeanPool;
use search::bos::{problem, BosCount};
use search::lean_env::LeanEnv;
use search::manifest::{begin_run, describe_run, end_run, RunRequest};
use search::planner::build_planner;
use search::policy::{build_policy, check_bos, Policy};
use search::request_setup::RequestSetup;
use search::sweep::{run_sweep, still_to_search, Backends, SweepOptions, SweepReport};
use search::value::{EbmClient, ValueScorer};

use crate::ConfigArgs;

#[derive(Args, Debug)]
pub struct SweepArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// JSONL: `name`, `formal_statement`, optional `header`.
    #[arg(long)]
    pub theorems: PathBuf,
    /// Results directory: results.jsonl, trajectories/, config.json, summary.json, report.md.
    #[arg(long)]
    pub out: PathBuf,
    /// Theorems searched at once (overrides `[sweep].concurrency`).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Only the first N theorems (of this shard).
    #[arg(long)]
    pub max_theorems: Option<usize>,
    /// Continue the sweep in --out: skip finished theorems, re-run those that ended in error.
    #[arg(long)]
    pub resume: bool,
    /// `I/N`: this machine's share of the theorems (position modulo N); N machines given the
    /// same file cover it exactly once.
    #[arg(long)]
    pub shard: Option<Shard>,
    /// With --resume: continue even though the directory's manifest.json names a different
    /// setup (config, theorems, model, template, Lean, EBM); the manifest records it.
    #[arg(long, requires = "resume")]
    pub force: bool,
}

/// What one sweep run is given besides the config and its theorems: recorded in the
/// directory's manifest.json, checked against it on --resume.
pub struct SweepRun<'a> {
    pub theorems_path: &'a Path,
    /// Theorems in the file (before --shard and --max-theorems).
    pub theorems_count: usize,
    pub shard: Option<Shard>,
    pub resume: bool,
    pub force: bool,
}

pub fn run(args: SweepArgs) -> anyhow::Result<()> {
    let mut config = search::Config::load(&args.config.config, &args.config.overrides)?;
    if let Some(c) = args.concurrency {
        anyhow::ensure!(c > 0, "--concurrency must be at least 1");
        config.sweep.concurrency = c;
    }
    if config.sweep.concurrency > config.lean.workers {
        tracing::warn!(
            "concurrency {} > lean.workers {}: searches will wait for a Lean worker (wait_ms)",
            config.sweep.concurrency,
            config.lean.workers
        );
    }
    let all = read_theorems(&args.theorems)?;
    let run = SweepRun {
        theorems_path: &args.theorems,
        theorems_count: all.len(),
        shard: args.shard,
        resume: args.resume,
        force: args.force,
    };
    let theorems = select(all, args.shard, args.max_theorems);
    let runtime = tokio::runtime::Runtime::new()?;
    let total = theorems.len();
    let (report, s) = runtime.block_on(execute(&config, theorems, &args.out, run))?;
    println!(
        "proved {} of {} ({:.1}%); searched {} now, {} done before; results in {}",
        s.proved,
        s.theorems,
        s.prove_rate * 100.0,
        report.searched,
        report.skipped,
        args.out.display()
    );
    if report.stopped {
        println!(
            "stopped early: {} of {total} theorems done; continue with --resume",
            s.theorems
        );
    }
    Ok(())
}

/// A sweep with the backends `config` names: the policy servers and the EBM are
/// health-checked first (naming any that is down), the run is described in `out/manifest.json`
/// (a resumed directory must have been made by the same setup), Lean runs on a [`LeanPool`],
/// and Ctrl-C stops it cleanly (first: start nothing new; second: write what is buffered and
/// abandon running theorems; third: exit). Also what `stepwise demo` runs.
pub async fn execute(
    config: &search::Config,
    theorems: Vec<Theorem>,
    out: &Path,
    run: SweepRun<'_>,
) -> anyhow::Result<(SweepReport, run_folder::Summary)> {
    let setup = RequestSetup::from_config(config)?;
    if let Some(bos) = &setup.bos_text {
        tracing::info!(
            "policy.bos = \"template\": every prompt starts with {:?}, from {}",
            bos.text,
            bos.source
        );
    }
    let policy = build_policy(&config.policy, &setup)?;
    let pool = LeanPool::new(config.lean.clone());
    // Asked before the warm-up holds every worker for its import, so a resumed directory made
    // by another setup is refused in seconds, not after minutes of importing Mathlib. The
    // worker that answers is then warmed like the others.
    let lean_version = pool.lean_version().await.map_err(|e| e.to_string());
    // The Lean workers import their first theorems' headers (minutes for Mathlib) while the
    // servers are health-checked (a policy server may still be loading its model), so no
    // theorem waits for an import. Dropping the set (any early return) stops the warm-up.
    let first: Vec<Theorem> = still_to_search(&theorems, out, run.resume)?
        .into_iter()
        .take(config.lean.workers)
        .cloned()
        .collect();
    let mut warming = tokio::task::JoinSet::new();
    warming.spawn({
        let pool = pool.clone();
        async move { pool.warm_up(&first).await }
    });
    policy
        .health_check()
        .await
        .context("the policy server is not ready")?;
    let planner = build_planner(&config.planner, config.policy.startup_timeout)?.map(Arc::new);
    if let Some(planner) = &planner {
        planner
            .client
            .health_check()
            .await
            .context("the planner server is not ready")?;
    }
    let bos = match theorems.first() {
        Some(theorem) => {
            let count = count_bos(config, &setup, &*policy, theorem).await;
            if count.is_err() {
                pool.shutdown().await;
            }
            count?
        }
        None => BosCount::Unchecked,
    };
    let ebm = match EbmClient::from_config(&config.ebm)? {
        Some(client) => {
            client
                .health()
                .await
                .with_context(|| format!("the EBM server {} is not ready", client.url()))?;
            Some(client)
        }
        None => None,
    };
    // One read of what the EBM serves: the manifest names the head whose scale the priority
    // standardises energies with.
    let ebm_at_start = match &ebm {
        Some(client) => Some(client.at_start().await),
        None => None,
    };
    let energy_scale = ebm_at_start
        .as_ref()
        .and_then(|start| start.energy_scale(&config.search));
    let ebm = ebm.map(|client| Arc::new(client.with_energy_scale(energy_scale)));
    let described = describe_run(
        config,
        RunRequest {
            build: crate::build_info(),
            command: std::env::args().collect(),
            theorems_path: run.theorems_path,
            theorems_count: run.theorems_count,
            shard: run.shard,
            selected: theorems.len(),
            benchmarks: crate::BENCHMARK_SUMS,
            lean_version,
            ebm: ebm_at_start.as_ref(),
            energy_scale,
            bos,
            setup: &setup,
        },
    )
    .await?;
    std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut manifest = match begin_run(out, described, run.resume, run.force) {
        Ok(manifest) => manifest,
        Err(e) => {
            pool.shutdown().await;
            return Err(e.into());
        }
    };
    let scorer = ebm.map(|client| client as Arc<dyn ValueScorer>);
    let backends = Backends {
        policy,
        scorer,
        env: Arc::new(LeanEnv(pool.clone())),
        planner,
    };

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(0u32);
    let interrupts = tokio::spawn(async move {
        let mut level = 0;
        while tokio::signal::ctrl_c().await.is_ok() {
            level += 1;
            if level >= 3 {
                std::process::exit(130);
            }
            let _ = stop_tx.send(level);
        }
    });
    let options = SweepOptions {
        resume: run.resume,
        progress: true,
        stop: Some(stop_rx),
        ..SweepOptions::default()
    };
    let report = run_sweep(config, theorems, out, options, backends).await;
    warming.abort_all();
    interrupts.abort();
    pool.shutdown().await;
    let report = report?;
    end_run(out, &mut manifest)?;
    let summary = run_folder::write_reports(out)?;
    if let Some(reason) = &report.aborted {
        anyhow::bail!("the sweep gave up: {reason}; fix the cause and continue with --resume");
    }
    Ok((report, summary))
}

/// The start-up BOS check on `theorem`'s root prompt: a prompt without the BOS the model was
/// trained with, or with two, fails nothing and worsens every sample (`search::bos`), so it
/// stops the sweep before the first theorem, naming the fix. A server that cannot answer the
/// check leaves the count unknown: its generate requests are what the sweep needs.
async fn count_bos(
    config: &search::Config,
    setup: &RequestSetup,
    policy: &dyn Policy,
    theorem: &Theorem,
) -> anyhow::Result<BosCount> {
    let prompt = setup.first_prompt(theorem, theorem.header_or(&config.lean.header));
    let check = match check_bos(policy, &prompt, setup.bos_token.as_ref()).await {
        Ok(check) => check,
        Err(e) => {
            tracing::warn!("cannot count the BOS tokens of the first prompt: {e}");
            return Ok(BosCount::Unchecked);
        }
    };
    if let Some((problem, fix)) = problem(check.count, config.policy.bos) {
        anyhow::bail!(
            "{problem} ({}); no theorem was searched. Fix: {fix}",
            check.detail
        );
    }
    match check.count {
        BosCount::Unchecked => tracing::warn!(
            "the BOS tokens before the prompt are not counted: {}",
            check.detail
        ),
        count => tracing::info!("BOS check: {count} ({})", check.detail),
    }
    Ok(check.count)
}
