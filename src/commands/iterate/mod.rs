//! `stepwise iterate`: the value-model loop. Round 0 sweeps `--train` and `--eval` with the
//! policy alone; each round k = 1..N embeds the states of the `--train` sweeps of rounds
//! 0..k-1 that the cache lacks, trains a head on those sweeps only (the `--eval` theorems never
//! reach training), measures its sibling accuracy on its validation theorems, serves it
//! (`POST /head`) and sweeps `--eval` and `--train` with it. `iterate.json` and `report.md`
//! say per round what the head changed.
//!
//! Every step reuses the command it stands for (`sweep`'s [`execute`], `ebm embed`'s
//! [`embed_states`], `ebm train`, `ebm eval`), and every step's output is its own folder, so
//! `--resume` can tell what is done from the folders alone: a finished sweep is not touched
//! (its files keep their bytes), an unfinished one resumes as `sweep --resume` does, a head
//! folder without `train.json` trains again from the start.

mod layout;
mod record;
mod server;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use ebm::embed::{embed_states, embeddable_states, EmbedOptions};
use formats::iterate::IterateRecord;
use formats::manifest::{sha256_file, split_placement};
use formats::theorems::{read_theorems, Theorem};
use search::sweep::still_to_search;
use serde_json::{json, Value};

use super::ebm::TrainOptions;
use super::ebm_server_encoder::ServerEncoder;
use super::sweep::{execute, SweepRun};
use crate::ConfigArgs;
use layout::{Layout, Side};
use record::RoundFiles;
use server::EbmServer;

#[derive(Args, Debug)]
pub struct IterateArgs {
    /// The sweeps' config; rounds after 0 need `ebm.url` and `search.ebm_weight > 0`.
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Theorems whose sweeps train the heads (JSONL, as `sweep --theorems`).
    #[arg(long)]
    pub train: PathBuf,
    /// Theorems the heads are judged on and never trained on (no name may be in both files).
    #[arg(long)]
    pub eval: PathBuf,
    /// Rounds after round 0 (the policy alone); each trains a head and sweeps with it.
    #[arg(long)]
    pub rounds: usize,
    /// The loop's folder: round-K/{train,eval,head,eval.json}, embeddings.parquet,
    /// iterate.json, report.md.
    #[arg(long)]
    pub out: PathBuf,
    /// Continue --out: finished sweeps are left as they are, unfinished ones resume, an
    /// interrupted training starts again; more --rounds than before adds rounds.
    #[arg(long)]
    pub resume: bool,
    /// Start the EBM server from this argv, a JSON list (e.g. '["stepwise", "ebm", "serve",
    /// "--model", "DIR", "--port", "30001"]'), and stop it at the end; it must listen at
    /// `ebm.url`. Without it, the server already running at `ebm.url` is used.
    #[arg(long, value_name = "JSON_ARGV")]
    pub ebm_serve: Option<String>,
    /// Seconds to wait for the server --ebm-serve starts to answer `/health`.
    #[arg(long, default_value_t = 600.0)]
    pub ebm_serve_timeout: f64,
    /// States per `/encode` request when embedding.
    #[arg(long, default_value_t = 32)]
    pub embed_batch: usize,
    /// `/encode` requests in flight at once.
    #[arg(long, default_value_t = 4)]
    pub embed_concurrency: usize,
    /// How each round's head is trained (as `ebm train`).
    #[command(flatten)]
    pub training: TrainOptions,
}

pub fn run(args: IterateArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    let result = runtime.block_on(async {
        let mut iteration = Iteration::new(args)?;
        iteration.run().await
    });
    // A training interrupted by Ctrl-C goes on in its blocking thread: do not wait for it.
    runtime.shutdown_background();
    let record = result?;
    print!("{}", record::render(&record));
    Ok(())
}

/// A theorems file, read and hashed.
struct TheoremSet {
    path: PathBuf,
    theorems: Vec<Theorem>,
    sha256: String,
}

impl TheoremSet {
    fn read(path: &Path, flag: &str) -> anyhow::Result<Self> {
        let theorems = read_theorems(path)?;
        anyhow::ensure!(
            !theorems.is_empty(),
            "{flag} {} holds no theorem",
            path.display()
        );
        Ok(TheoremSet {
            path: path.to_path_buf(),
            sha256: sha256_file(path).with_context(|| format!("cannot read {}", path.display()))?,
            theorems,
        })
    }

    fn identity(&self) -> Value {
        json!({"sha256": self.sha256, "count": self.theorems.len()})
    }
}

struct Iteration {
    args: IterateArgs,
    layout: Layout,
    /// The config of the rounds with a head; round 0 runs it without the value model.
    config: search::Config,
    train: TheoremSet,
    eval: TheoremSet,
    training: ebm::train::TrainConfig,
    /// What `iterate.json` records as the setup, checked on `--resume`.
    setup: Value,
    ebm_serve: Option<Vec<String>>,
    /// The finished rounds, read back from their folders.
    finished: Vec<RoundFiles>,
}

impl Iteration {
    /// Reads and checks everything before any work starts, so a wrong flag fails in a
    /// second, not after a sweep.
    fn new(args: IterateArgs) -> anyhow::Result<Self> {
        let config = search::Config::load(&args.config.config, &args.config.overrides)?;
        let config_file = args.config.config.display();
        if args.rounds > 0 {
            anyhow::ensure!(
                !config.ebm.url.trim().is_empty(),
                "ebm.url is empty in {config_file} (or its --set): rounds after 0 score states \
                 with the EBM server there (start it yourself, or pass --ebm-serve)"
            );
            anyhow::ensure!(
                config.search.ebm_weight > 0.0,
                "search.ebm_weight is 0 in {config_file} (or its --set): the heads would not \
                 steer the search; set it above 0"
            );
        }
        let train = TheoremSet::read(&args.train, "--train")?;
        let eval = TheoremSet::read(&args.eval, "--eval")?;
        let eval_names: std::collections::HashSet<&str> =
            eval.theorems.iter().map(|t| t.name.as_str()).collect();
        if let Some(both) = train
            .theorems
            .iter()
            .find(|t| eval_names.contains(t.name.as_str()))
        {
            anyhow::bail!(
                "theorem `{}` is in both --train {} and --eval {}: the eval theorems must never \
                 reach training",
                both.name,
                train.path.display(),
                eval.path.display()
            );
        }
        let training = args.training.config()?;
        // Checked now; each round's training parses it again on its own thread.
        let _device = ebm::parse_device(&args.training.device)?;
        let ebm_serve = match &args.ebm_serve {
            None => None,
            Some(text) => Some(serde_json::from_str::<Vec<String>>(text).with_context(|| {
                format!(
                    "--ebm-serve {text}: expected a JSON list of strings, e.g. '[\"stepwise\", \
                     \"ebm\", \"serve\", \"--model\", \"DIR\"]'"
                )
            })?),
        };
        let resolved = serde_json::to_value(&config).expect("the config serialises");
        let setup = json!({
            "train_theorems": train.identity(),
            "eval_theorems": eval.identity(),
            // Where the servers and Lean run is no part of what a round computes.
            "config": split_placement(&resolved).0,
            "training": training,
        });
        let layout = Layout::new(&args.out);
        check_out(&layout, &setup, args.resume)?;
        Ok(Iteration {
            args,
            layout,
            config,
            train,
            eval,
            training,
            setup,
            ebm_serve,
            finished: Vec::new(),
        })
    }

    async fn run(&mut self) -> anyhow::Result<IterateRecord> {
        std::fs::create_dir_all(self.layout.root())
            .with_context(|| format!("cannot create {}", self.layout.root().display()))?;
        // The setup goes down before any work, so a resume can check it; a resumed folder's
        // record stays as it is until a round is read back.
        if !self.layout.record().exists() {
            self.write_record()?;
        }
        let rounds = self.args.rounds;
        tracing::info!("round 0 of {rounds}: the policy alone");
        let mut baseline = self.config.clone();
        baseline.ebm.url = String::new();
        baseline.search.ebm_weight = 0.0;
        self.sweep(0, Side::Eval, &baseline, None).await?;
        self.sweep(0, Side::Train, &baseline, None).await?;
        self.finish_round(0)?;
        let mut server: Option<EbmServer> = None;
        for round in 1..=rounds {
            if self.round_done(round)? {
                // Nothing left to do, so no server is needed for it (a resumed loop that
                // only adds rounds starts its server for the new ones).
                tracing::info!("round {round} of {rounds} is finished: left as it is");
                self.finish_round(round)?;
                continue;
            }
            if server.is_none() {
                server = Some(
                    interruptible(EbmServer::connect(
                        &self.config.ebm,
                        self.ebm_serve.as_deref(),
                        Duration::from_secs_f64(self.args.ebm_serve_timeout.max(0.0)),
                        &self.layout.server_log(),
                    ))
                    .await?,
                );
            }
            let server = server.as_ref().expect("connected above");
            tracing::info!("round {round} of {rounds}: embedding the new states");
            interruptible(self.embed(round, server)).await?;
            interruptible(self.train_and_evaluate(round)).await?;
            let head = self.layout.head(round);
            let sha256 = ebm::identity::file_sha256(&[&head])?;
            let served = server.serve(&head, &sha256).await?;
            tracing::info!(
                "round {round} of {rounds}: sweeping with the head {} ({sha256})",
                head.display()
            );
            for side in [Side::Eval, Side::Train] {
                self.sweep(round, side, &self.config, Some((server, &served.identity)))
                    .await?;
            }
            self.finish_round(round)?;
        }
        if let Some(server) = server {
            server.stop().await;
        }
        Ok(self.record())
    }

    /// Whether an earlier run finished round `round`: its head trained and evaluated, both
    /// of its sweeps finished.
    fn round_done(&self, round: usize) -> anyhow::Result<bool> {
        if !(self.layout.train_json(round).exists() && self.layout.eval_json(round).exists()) {
            return Ok(false);
        }
        for (side, set) in [(Side::Eval, &self.eval), (Side::Train, &self.train)] {
            if !sweep_finished(&set.theorems, &self.layout.sweep(round, side))? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// One sweep of a round, unless an earlier run finished it: then its folder is left as
    /// it is. With a head, the server must still serve it when the sweep ends.
    async fn sweep(
        &self,
        round: usize,
        side: Side,
        config: &search::Config,
        head: Option<(&EbmServer, &formats::identity::ModelIdentity)>,
    ) -> anyhow::Result<()> {
        let set = match side {
            Side::Train => &self.train,
            Side::Eval => &self.eval,
        };
        let out = self.layout.sweep(round, side);
        let name = format!("round {round}'s {} sweep", side.name());
        if sweep_finished(&set.theorems, &out)? {
            tracing::info!("{name} is finished ({}): left as it is", out.display());
            return Ok(());
        }
        let resume = out.exists();
        tracing::info!(
            "{name}: {} theorems into {}{}",
            set.theorems.len(),
            out.display(),
            if resume { " (resumed)" } else { "" }
        );
        let run = SweepRun {
            theorems_path: &set.path,
            theorems_count: set.theorems.len(),
            shard: None,
            resume,
            force: false,
        };
        let (report, summary) = execute(config, set.theorems.clone(), &out, run)
            .await
            .with_context(|| format!("{name} ({})", out.display()))?;
        if report.stopped {
            anyhow::bail!(
                "{name} was stopped ({} of {} theorems done); continue with `stepwise iterate \
                 --resume`",
                summary.theorems,
                set.theorems.len()
            );
        }
        tracing::info!("{name}: proved {} of {}", summary.proved, summary.theorems);
        if let Some((server, identity)) = head {
            server.check_serving(identity, &name).await?;
        }
        Ok(())
    }

    /// The `--train` sweeps round `round` learns from: rounds 0..round-1.
    fn training_sweeps(&self, round: usize) -> Vec<String> {
        (0..round)
            .map(|r| {
                self.layout
                    .sweep(r, Side::Train)
                    .join("trajectories")
                    .display()
                    .to_string()
            })
            .collect()
    }

    /// Embeds the states of round `round`'s training sweeps that the cache lacks.
    async fn embed(&self, round: usize, server: &EbmServer) -> anyhow::Result<()> {
        let patterns = self.training_sweeps(round);
        let (traj, _) = ebm::trajectories::load(&patterns)
            .with_context(|| format!("reading the trajectories of {patterns:?}"))?;
        let cache = self.layout.embeddings();
        let report = embed_states(
            std::sync::Arc::new(ServerEncoder::new(server.url())?),
            embeddable_states(traj),
            &cache,
            EmbedOptions {
                batch: self.args.embed_batch,
                concurrency: self.args.embed_concurrency,
                // Only the states not yet cached are sent; a killed embedding keeps its parts.
                resume: true,
            },
        )
        .await
        .with_context(|| format!("embedding into {}", cache.display()))?;
        tracing::info!(
            "round {round}: {} distinct states, {} already cached, {} embedded",
            report.distinct_states,
            report.already_cached,
            report.embedded
        );
        Ok(())
    }

    /// Trains round `round`'s head unless its `train.json` says an earlier run finished it
    /// (a head folder without one is retrained from the start), then writes `eval.json` if
    /// missing. Both on a blocking thread: the trainer is CPU-bound and synchronous.
    async fn train_and_evaluate(&self, round: usize) -> anyhow::Result<()> {
        let trained = self.layout.train_json(round).exists();
        let evaluated = self.layout.eval_json(round).exists();
        if !trained {
            tracing::info!(
                "round {round}: training a head on the --train sweeps of rounds 0..{}",
                round - 1
            );
        }
        if !(trained && evaluated) {
            let patterns = self.training_sweeps(round);
            let cache = self.layout.embeddings();
            let out = self.layout.head_dir(round);
            let head = self.layout.head(round);
            let eval_json = self.layout.eval_json(round);
            let config = self.training.clone();
            let device = self.args.training.device.clone();
            tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
                let (traj, _) = ebm::trajectories::load(&patterns)?;
                let cache = ebm::embedding_cache::EmbeddingCache::load(&cache)?;
                if !trained {
                    let device = ebm::parse_device(&device)?;
                    ebm::train::train(&traj, &cache, &config, &device, &out)
                        .with_context(|| format!("training the head in {}", out.display()))?;
                }
                let report =
                    ebm::eval::evaluate_checkpoint(&traj, &cache, &head, eval_split(&head)?)
                        .with_context(|| format!("evaluating {}", head.display()))?;
                let text = serde_json::to_string_pretty(&report).expect("the report serialises");
                formats::append::write_atomically(&eval_json, &(text + "\n"))
                    .with_context(|| format!("cannot write {}", eval_json.display()))
            })
            .await
            .context("the training thread failed")??;
        }
        self.check_trained_on_train_only(round)
    }

    /// The loop's promise: no `--eval` theorem reached the head's training or validation.
    fn check_trained_on_train_only(&self, round: usize) -> anyhow::Result<()> {
        let path = self.layout.train_json(round);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let trained: Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", path.display()))?;
        let eval: std::collections::HashSet<&str> =
            self.eval.theorems.iter().map(|t| t.name.as_str()).collect();
        for key in ["train_theorems", "val_theorems"] {
            let leaked = trained[key]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .find(|name| eval.contains(name));
            if let Some(name) = leaked {
                anyhow::bail!(
                    "{}: the eval theorem `{name}` is among the head's {key}",
                    path.display()
                );
            }
        }
        Ok(())
    }

    /// Records round `round` as finished and rewrites `iterate.json` and `report.md`.
    fn finish_round(&mut self, round: usize) -> anyhow::Result<()> {
        if self.finished.iter().all(|r| r.round() != round) {
            self.finished.push(RoundFiles::read(&self.layout, round)?);
        }
        self.write_record()
    }

    fn record(&self) -> IterateRecord {
        record::build(
            &self.layout,
            self.setup.clone(),
            self.args.rounds,
            &self.finished,
        )
    }

    fn write_record(&self) -> anyhow::Result<()> {
        let record = self.record();
        record::write(&record, &self.layout.record())?;
        record::write_report(&record, &self.layout.report(), self.layout.root())
    }
}

/// `--out` must be new or empty, unless resuming; a resumed folder must have been made with
/// the same setup (theorem files, config, training options; `--rounds` may grow).
fn check_out(layout: &Layout, setup: &Value, resume: bool) -> anyhow::Result<()> {
    let root = layout.root();
    let empty = std::fs::read_dir(root).map_or(true, |mut entries| entries.next().is_none());
    if !resume {
        anyhow::ensure!(
            empty,
            "{} is not empty: pass --resume to continue it, or choose another --out",
            root.display()
        );
        return Ok(());
    }
    let path = layout.record();
    if !path.exists() {
        return Ok(());
    }
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    let recorded: Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let differences = differences("", &recorded["setup"], setup);
    anyhow::ensure!(
        differences.is_empty(),
        "{} was made by another setup than this --resume ({}): its rounds would not compare; \
         use another --out",
        path.display(),
        differences.join("; ")
    );
    Ok(())
}

/// The leaves where `a` and `b` differ, as `key.key: a -> b`.
fn differences(at: &str, a: &Value, b: &Value) -> Vec<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter()
                .flat_map(|k| {
                    let at = if at.is_empty() {
                        k.clone()
                    } else {
                        format!("{at}.{k}")
                    };
                    differences(
                        &at,
                        x.get(k).unwrap_or(&Value::Null),
                        y.get(k).unwrap_or(&Value::Null),
                    )
                })
                .collect()
        }
        _ if a == b => Vec::new(),
        _ => vec![format!("{at}: {a} -> {b}")],
    }
}

/// A sweep an earlier run finished: every theorem has its result (none left for `--resume`
/// to search again) and its reports were written at its end.
fn sweep_finished(theorems: &[Theorem], out: &Path) -> anyhow::Result<bool> {
    if !out.join("summary.json").exists() {
        return Ok(false);
    }
    Ok(still_to_search(theorems, out, true)?.is_empty())
}

/// The head's validation theorems, or its training ones when it has none (`--val-fraction 0`).
fn eval_split(head: &Path) -> anyhow::Result<ebm::eval::Split> {
    let val = ebm::eval::split_theorems(head, ebm::eval::Split::Val)?;
    Ok(match val {
        Some(names) if names.is_empty() => ebm::eval::Split::Train,
        _ => ebm::eval::Split::Val,
    })
}

/// `step`, unless Ctrl-C comes first: then iterate stops (`--resume` redoes the step).
async fn interruptible<T>(
    step: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    tokio::select! {
        result = step => result,
        _ = tokio::signal::ctrl_c() => anyhow::bail!("interrupted; continue with `stepwise iterate --resume`"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setup(max_nodes: u64, seed: u64) -> Value {
        json!({
            "train_theorems": {"sha256": "t", "count": 2},
            "eval_theorems": {"sha256": "e", "count": 1},
            "config": {"search": {"max_nodes": max_nodes}},
            "training": {"seed": seed},
        })
    }

    #[test]
    fn a_resumed_folder_of_another_setup_is_refused_naming_what_differs() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path());
        // A fresh folder, or one without a record yet, is fine either way.
        check_out(&layout, &setup(600, 0), false).unwrap();
        check_out(&layout, &setup(600, 0), true).unwrap();
        let record = json!({"setup": setup(600, 0), "rounds_requested": 1, "rounds": []});
        std::fs::write(layout.record(), record.to_string()).unwrap();
        let refused = check_out(&layout, &setup(600, 0), false).unwrap_err();
        assert!(refused.to_string().contains("--resume"), "{refused}");
        check_out(&layout, &setup(600, 0), true).unwrap();
        let refused = check_out(&layout, &setup(100, 1), true)
            .unwrap_err()
            .to_string();
        assert!(
            refused.contains("config.search.max_nodes: 600 -> 100")
                && refused.contains("training.seed: 0 -> 1"),
            "{refused}"
        );
    }
}
