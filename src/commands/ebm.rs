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
use ebm::{EbmServer, EnergyHead, LlamaEncoder, ServerOptions};

#[derive(Subcommand, Debug)]
pub enum EbmCommand {
    /// Serve POST /encode and /score (and GET /health, /stats) with dynamic batching.
    Serve(ServeArgs),
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    /// Hugging Face model directory: config.json, *.safetensors (or sharded + index), tokenizer.json.
    #[arg(long)]
    pub model: PathBuf,
    /// Energy head weights (NAME.safetensors, with NAME.json beside it). Without it /score answers 400.
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
    #[arg(long, default_value_t = 5)]
    pub linger_ms: u64,
    /// Texts per forward pass.
    #[arg(long, default_value_t = 64)]
    pub max_batch: usize,
    /// Padded tokens (batch size x longest text) per forward pass.
    #[arg(long, default_value_t = 32768)]
    pub max_batch_tokens: usize,
    /// Embeddings kept in the LRU cache (0 = off).
    #[arg(long, default_value_t = 50_000)]
    pub cache_size: usize,
    /// Texts per request (more is 413).
    #[arg(long, default_value_t = 4096)]
    pub max_texts: usize,
    /// Tokens per text (more is 400).
    #[arg(long, default_value_t = 8192)]
    pub max_text_tokens: usize,
}

pub fn run(command: EbmCommand) -> anyhow::Result<()> {
    match command {
        EbmCommand::Serve(args) => serve(args),
    }
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let device = ebm::parse_device(&args.device)?;
    let encoder = LlamaEncoder::load(&args.model, &device)
        .with_context(|| format!("loading the encoder from {}", args.model.display()))?;
    let head = match &args.head {
        Some(path) => Some(Arc::new(
            EnergyHead::load(path, &device)
                .with_context(|| format!("loading the energy head {}", path.display()))?,
        )),
        None => {
            tracing::warn!("no --head: /score will answer 400, /encode works");
            None
        }
    };
    let defaults = RequestLimits::default();
    let options = ServerOptions {
        batch: BatchLimits {
            linger: Duration::from_millis(args.linger_ms),
            max_batch: args.max_batch,
            max_batch_tokens: args.max_batch_tokens,
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
