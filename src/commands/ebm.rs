//! `stepwise ebm ...`: the energy-based value model. One variant per subcommand, each with
//! its own args struct.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};
use ebm::batcher::BatchLimits;
use ebm::server::RequestLimits;
use ebm::{EbmServer, LlamaEncoder, ServedHead, ServerOptions};

#[derive(Subcommand, Debug)]
pub enum EbmCommand {
    /// Serve POST /encode and /score (and POST /head, GET /health, /stats) with dynamic batching.
    Serve(ServeArgs),
    /// Embed every distinct state of trajectory files once, into a Parquet cache.
    Embed(EmbedArgs),
    /// Train an energy head with InfoNCE and tiered negatives on cached embeddings.
    Train(TrainArgs),
    /// Sibling accuracy of a head at proof-path decisions, beside random and the LLM.
    Eval(EvalArgs),
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Hugging Face model directory: config.json, *.safetensors (or sharded + index), tokenizer.json.
    #[arg(long)]
    pub model: PathBuf,
    /// Energy head weights (NAME.safetensors, with NAME.json beside it). Without it /score
    /// answers 400 until a head is posted to /head.
    #[arg(long)]
    pub head: Option<PathBuf>,
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    #[arg(long, default_value_t = 30001)]
    pub port: u16,
    /// "cpu" (f32) or "cuda:N" (bf16; needs a build with `--features cuda`).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// How long a batch waits for more texts after its first (0: take only what is queued).
    #[arg(long, default_value_t = ServerOptions::default().batch.linger.as_millis() as u64)]
    pub linger_ms: u64,
    /// Texts per forward pass.
    #[arg(long, default_value_t = ServerOptions::default().batch.max_batch)]
    pub max_batch: usize,
    /// Padded tokens (batch size x longest text) per forward pass.
    #[arg(long, default_value_t = ServerOptions::default().batch.max_batch_tokens)]
    pub max_batch_tokens: usize,
    /// Batch size x longest text², which attention memory grows with (at least
    /// --max-text-tokens²). The log line at start-up gives the peak these limits allow.
    #[arg(long, default_value_t = ServerOptions::default().batch.max_batch_square_tokens)]
    pub max_batch_square_tokens: usize,
    /// MiB of attention scores computed at once; attention runs over as many heads at a
    /// time as fit (at least one).
    #[arg(long, default_value_t = ebm::llama_encoder::DEFAULT_ATTENTION_BUDGET >> 20)]
    pub attention_chunk_mib: usize,
    /// Embeddings kept in the LRU cache (0 = off).
    #[arg(long, default_value_t = ServerOptions::default().cache_size)]
    pub cache_size: usize,
    /// Texts per request (more is 413).
    #[arg(long, default_value_t = RequestLimits::default().max_texts)]
    pub max_texts: usize,
    /// Tokens per text: a longer text keeps BOS and its last tokens (counted in /stats).
    #[arg(long, default_value_t = RequestLimits::default().max_text_tokens)]
    pub max_text_tokens: usize,
}

pub fn run(command: EbmCommand) -> anyhow::Result<()> {
    match command {
        EbmCommand::Serve(args) => serve(args),
        EbmCommand::Embed(args) => embed(args),
        EbmCommand::Train(args) => train(args),
        EbmCommand::Eval(args) => eval(args),
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let device = ebm::parse_device(&args.device)?;
    let encoder = LlamaEncoder::load(&args.model, &device)
        .with_context(|| format!("loading the encoder from {}", args.model.display()))?
        .with_attention_budget(args.attention_chunk_mib << 20);
    let head = match &args.head {
        Some(path) => Some(
            ServedHead::load(path, &encoder)
                .with_context(|| format!("loading the energy head {}", path.display()))?,
        ),
        None => {
            tracing::warn!("no --head: /score will answer 400 until POST /head, /encode works");
            None
        }
    };
    let defaults = RequestLimits::default();
    let options = ServerOptions {
        batch: BatchLimits {
            linger: Duration::from_millis(args.linger_ms),
            max_batch: args.max_batch,
            max_batch_tokens: args.max_batch_tokens,
            max_batch_square_tokens: args.max_batch_square_tokens,
        },
        cache_size: args.cache_size,
        limits: RequestLimits {
            max_texts: args.max_texts,
            max_text_tokens: args.max_text_tokens,
            ..defaults
        },
    };
    let addr: SocketAddr = format!("{}:{}", args.host, args.port)
        .parse()
        .with_context(|| {
            format!(
                "--host {} --port {} is not an address",
                args.host, args.port
            )
        })?;
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let server = EbmServer::new(Arc::new(encoder), head, options)?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding {addr}"))?;
        let bound = listener.local_addr()?;
        tracing::info!(addr = %bound, "ebm server listening");
        server
            .serve(listener, async {
                let _ = tokio::signal::ctrl_c().await;
                tracing::info!("shutting down");
            })
            .await?;
        Ok(())
    })
}

/// Flags of `ebm embed`.
#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("encoder").required(true).args(["server", "model"])))]
pub struct EmbedArgs {
    /// Trajectory files, globs or directories (repeatable).
    #[arg(long, required = true, num_args = 1..)]
    pub trajectories: Vec<String>,
    /// An `ebm serve` URL whose /encode embeds the states.
    #[arg(long)]
    pub server: Option<String>,
    /// A Hugging Face model directory to embed with in-process.
    #[arg(long)]
    pub model: Option<std::path::PathBuf>,
    /// The embedding cache to write (Parquet: `state`, `embedding`).
    #[arg(long)]
    pub out: std::path::PathBuf,
    /// Continue a partial or older cache: only missing states are embedded.
    #[arg(long)]
    pub resume: bool,
    /// States per request.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Requests in flight at once.
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Device of the in-process encoder (`--model`): "cpu" or "cuda:N".
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

/// Flags of `ebm train`.
#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    /// Trajectory files, globs or directories (repeatable).
    #[arg(long, required = true, num_args = 1..)]
    pub trajectories: Vec<String>,
    /// The embedding cache written by `ebm embed`.
    #[arg(long)]
    pub embeddings: std::path::PathBuf,
    /// Output directory: head.safetensors + head.json, checkpoints/, metrics.jsonl, train.json.
    #[arg(long)]
    pub out: std::path::PathBuf,
    #[command(flatten)]
    pub options: TrainOptions,
}

/// How a head is trained: the flags `ebm train` and `iterate` share.
#[derive(clap::Args, Debug, Clone)]
pub struct TrainOptions {
    /// Negatives per positive (K).
    #[arg(long, default_value_t = ebm::train::TrainConfig::default().negatives)]
    pub negatives: usize,
    /// Negatives from "expanded" nodes only, or from "all" non-terminal ones (never-expanded
    /// `open` nodes included).
    #[arg(long, default_value = "all")]
    pub negatives_from: ebm::train_sampler::NegativesFrom,
    /// Share of negatives drawn from the positive's off-path siblings.
    #[arg(long, default_value_t = ebm::train::TrainConfig::default().hard_ratio)]
    pub hard_ratio: f64,
    /// Share drawn from other off-path nodes of the same theorem (the rest: other theorems).
    #[arg(long, default_value_t = ebm::train::TrainConfig::default().medium_ratio)]
    pub medium_ratio: f64,
    #[arg(long, default_value_t = ebm::train::TrainConfig::default().epochs)]
    pub epochs: usize,
    /// Peak learning rate (after warm-up; cosine decay to 0).
    #[arg(long, default_value_t = ebm::train::TrainConfig::default().lr)]
    pub lr: f64,
    #[arg(long, default_value_t = ebm::train::TrainConfig::default().weight_decay)]
    pub weight_decay: f64,
    /// InfoNCE groups per step.
    #[arg(long, default_value_t = ebm::train::TrainConfig::default().batch_size)]
    pub batch_size: usize,
    #[arg(long, default_value_t = ebm::train::TrainConfig::default().seed)]
    pub seed: u64,
    /// Share of theorems held out for validation.
    #[arg(long, default_value_t = ebm::train::TrainConfig::default().val_fraction)]
    pub val_fraction: f64,
    /// Share of all steps spent on linear warm-up.
    #[arg(long, default_value_t = ebm::train::TrainConfig::default().warmup_fraction)]
    pub warmup_fraction: f64,
    /// Clip gradients to this global norm.
    #[arg(long, default_value_t = ebm::train::TrainConfig::default().max_grad_norm)]
    pub max_grad_norm: f64,
    /// Hidden layer widths, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = ebm::train::TrainConfig::default().hidden)]
    pub hidden: Vec<usize>,
    /// Dropout after each hidden layer (> 0 makes runs not bit-reproducible on CPU).
    #[arg(long, default_value_t = ebm::train::TrainConfig::default().dropout)]
    pub dropout: f32,
    #[arg(long)]
    pub spectral_norm: bool,
    /// Learn an InfoNCE temperature (training only; the served energy is the raw one).
    #[arg(long)]
    pub learnable_temperature: bool,
    /// Weight of the auxiliary remaining-depth loss on positives (0 = off).
    #[arg(long, default_value_t = ebm::train::TrainConfig::default().depth_loss_weight)]
    pub depth_loss_weight: f64,
    /// Where the head trains: "cpu" or "cuda:N" (bit-for-bit repeatable on CPU).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// The control: permute `on_proof_path` among siblings with this seed before training
    /// (recorded in train.json).
    #[arg(long, value_name = "SEED")]
    pub shuffle_labels: Option<u64>,
}

impl TrainOptions {
    /// The trainer's config, checked.
    pub fn config(&self) -> anyhow::Result<ebm::train::TrainConfig> {
        let config = ebm::train::TrainConfig {
            negatives: self.negatives,
            negatives_from: self.negatives_from,
            hard_ratio: self.hard_ratio,
            medium_ratio: self.medium_ratio,
            epochs: self.epochs,
            lr: self.lr,
            weight_decay: self.weight_decay,
            batch_size: self.batch_size,
            seed: self.seed,
            val_fraction: self.val_fraction,
            warmup_fraction: self.warmup_fraction,
            max_grad_norm: self.max_grad_norm,
            hidden: self.hidden.clone(),
            dropout: self.dropout,
            spectral_norm: self.spectral_norm,
            learnable_temperature: self.learnable_temperature,
            depth_loss_weight: self.depth_loss_weight,
            shuffle_labels: self.shuffle_labels,
        };
        config.validate()?;
        Ok(config)
    }
}

/// Flags of `ebm eval`.
#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    /// Trajectory files, globs or directories (repeatable).
    #[arg(long, required = true, num_args = 1..)]
    pub trajectories: Vec<String>,
    /// The embedding cache written by `ebm embed`.
    #[arg(long)]
    pub embeddings: std::path::PathBuf,
    /// A head checkpoint (`head.safetensors`, its `head.json` beside it).
    #[arg(long)]
    pub head: std::path::PathBuf,
    /// Print JSON instead of the text report.
    #[arg(long)]
    pub json: bool,
    /// "all" theorems, or "val" / "train": that side of the head's training split (read
    /// from the run's train.json), so accuracy can be on theorems the head never saw.
    #[arg(long, default_value = "all")]
    pub split: ebm::eval::Split,
}

fn train(args: TrainArgs) -> anyhow::Result<()> {
    let config = args.options.config()?;
    let device = ebm::parse_device(&args.options.device)?;
    let (traj, _) = ebm::trajectories::load(&args.trajectories).context("reading trajectories")?;
    let cache = ebm::embedding_cache::EmbeddingCache::load(&args.embeddings)?;
    let report = ebm::train::train(&traj, &cache, &config, &device, &args.out)?;
    let best = &report.epochs[report.best_epoch - 1];
    println!(
        "trained on {} theorems ({} positives), validated on {}; best epoch {}: eval loss {:.4}, rank-1 {:.3}, gap {:.3}",
        report.train_theorems.len(),
        report.train_positives,
        report.val_theorems.len(),
        report.best_epoch,
        best.eval_loss,
        best.rank1_accuracy,
        best.energy_gap
    );
    if let Some(moved) = report.labels_moved {
        println!(
            "labels shuffled among siblings (seed {}): {moved} nodes changed label",
            config.shuffle_labels.unwrap_or_default()
        );
    }
    match &report.energy_scale {
        Some(s) => println!(
            "energies over the {} split's {} nodes: mean {:.4}, std {:.4}",
            s.split, s.nodes, s.scale.mean, s.scale.std
        ),
        None => println!("energies collapsed: no energy scale recorded"),
    }
    println!("head: {}", report.head.display());
    Ok(())
}

fn eval(args: EvalArgs) -> anyhow::Result<()> {
    let (traj, _) = ebm::trajectories::load(&args.trajectories).context("reading trajectories")?;
    let cache = ebm::embedding_cache::EmbeddingCache::load(&args.embeddings)?;
    let report = ebm::eval::evaluate_checkpoint(&traj, &cache, &args.head, args.split)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.render());
    }
    Ok(())
}

fn embed(args: EmbedArgs) -> anyhow::Result<()> {
    use ebm::embed::{embed_states, ensure_writable, EmbedOptions, LocalEncoder};
    ensure_writable(&args.out, args.resume)?;
    let (traj, _) = ebm::trajectories::load(&args.trajectories).context("reading trajectories")?;
    let states = ebm::embed::embeddable_states(traj);
    let options = EmbedOptions {
        batch: args.batch,
        concurrency: args.concurrency,
        resume: args.resume,
    };
    let runtime = tokio::runtime::Runtime::new()?;
    let report = runtime.block_on(async {
        if let Some(url) = &args.server {
            let client = super::ebm_server_encoder::ServerEncoder::new(url)?;
            anyhow::Ok(embed_states(Arc::new(client), states, &args.out, options).await?)
        } else {
            let dir = args
                .model
                .as_ref()
                .expect("clap requires --server or --model");
            let device = ebm::parse_device(&args.device)?;
            let encoder = LlamaEncoder::load(dir, &device)
                .with_context(|| format!("loading the encoder from {}", dir.display()))?;
            let encoder = Arc::new(LocalEncoder(Arc::new(encoder)));
            anyhow::Ok(embed_states(encoder, states, &args.out, options).await?)
        }
    })?;
    if report.skipped_empty_state {
        println!("the empty state (a completed proof) is never embedded: left out");
    }
    println!(
        "{} distinct states: {} already cached, {} embedded; {} rows of width {} in {}",
        report.distinct_states,
        report.already_cached,
        report.embedded,
        report.cache_rows,
        report.dim,
        args.out.display()
    );
    Ok(())
}
