//! `stepwise sim repl|sglang|ebm`: the simulators (test doubles, see the `sim` crate) as
//! processes, so `demo`, the tests and scripts outside the workspace (the Slurm check) start
//! them the way they start the real programs. Hidden from `--help`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};

#[derive(Subcommand, Debug)]
pub enum SimCommand {
    /// The simulated Lean REPL on stdin/stdout (flags: see `sim::repl`).
    Repl(SimReplArgs),
    /// The simulated SGLang server on loopback HTTP, until Ctrl-C.
    Sglang(SimSglangArgs),
    /// The simulated EBM `/score` server on loopback HTTP, until Ctrl-C.
    Ebm(SimEbmArgs),
}

#[derive(Args, Debug)]
pub struct SimReplArgs {
    /// `--world FILE.json [--log FILE] [--delay-ms N] [--crash-after N] ...`
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

#[derive(Args, Debug)]
pub struct SimSglangArgs {
    /// The scripted world the simulated model samples from.
    #[arg(long)]
    pub world: PathBuf,
    #[arg(long, default_value = "127.0.0.1:30000")]
    pub addr: SocketAddr,
    /// Answer 503 to every k-th generation request.
    #[arg(long)]
    pub fail_every: Option<u64>,
    #[arg(long, default_value_t = 0)]
    pub delay_per_request_ms: u64,
    #[arg(long, default_value_t = 0)]
    pub delay_per_sample_ms: u64,
    /// Per decode step: the longest completion of a request, in tokens.
    #[arg(long, default_value_t = 0)]
    pub delay_per_token_us: u64,
    /// Per distinct prompt of a request (prefill).
    #[arg(long, default_value_t = 0)]
    pub delay_per_prompt_us: u64,
    /// The model name `/get_model_info` and `/v1/models` report.
    #[arg(long)]
    pub model: Option<String>,
    /// The tokenizer adds no BOS before a prompt (a model whose `tokenizer_config.json` says
    /// `add_bos_token: false`); by default it adds DeepSeek's.
    #[arg(long)]
    pub no_bos: bool,
    /// Answer vLLM's `POST /tokenize`.
    #[arg(long)]
    pub tokenize_route: bool,
}

#[derive(Args, Debug)]
pub struct SimEbmArgs {
    #[arg(long, default_value = "127.0.0.1:30100")]
    pub addr: SocketAddr,
    #[arg(long, default_value_t = 0)]
    pub delay_per_request_ms: u64,
    /// A request holding a state that contains TEXT gets `ebm serve`'s 500 (repeatable).
    #[arg(long, value_name = "TEXT")]
    pub unscorable: Vec<String>,
}

pub fn run(command: SimCommand) -> anyhow::Result<()> {
    match command {
        SimCommand::Repl(args) => {
            let args = sim::repl::ReplArgs::parse(args.args)?;
            sim::repl::run(args)?;
            Ok(())
        }
        SimCommand::Sglang(args) => serve_sglang(args),
        SimCommand::Ebm(args) => serve_ebm(args),
    }
}

#[tokio::main]
async fn serve_sglang(args: SimSglangArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.world)
        .with_context(|| format!("cannot read world {}", args.world.display()))?;
    let world: sim::world::World = serde_json::from_str(&text)
        .with_context(|| format!("invalid world {}", args.world.display()))?;
    let mut options = sim::sglang::SglangOptions {
        addr: args.addr,
        fail_every: args.fail_every,
        delay_per_request: Duration::from_millis(args.delay_per_request_ms),
        delay_per_sample: Duration::from_millis(args.delay_per_sample_ms),
        delay_per_token: Duration::from_micros(args.delay_per_token_us),
        delay_per_prompt: Duration::from_micros(args.delay_per_prompt_us),
        add_bos: !args.no_bos,
        tokenize_route: args.tokenize_route,
        ..Default::default()
    };
    if let Some(model) = args.model {
        options.model = model;
    }
    let server = sim::sglang::spawn(world, options)
        .await
        .with_context(|| format!("cannot listen on {}", args.addr))?;
    eprintln!(
        "simulated SGLang (a test double) listening on {}",
        server.url()
    );
    tokio::signal::ctrl_c().await?;
    server.shutdown().await?;
    Ok(())
}

#[tokio::main]
async fn serve_ebm(args: SimEbmArgs) -> anyhow::Result<()> {
    let server = sim::ebm::spawn(sim::ebm::EbmOptions {
        addr: args.addr,
        delay_per_request: Duration::from_millis(args.delay_per_request_ms),
        unscorable: args.unscorable,
    })
    .await
    .with_context(|| format!("cannot listen on {}", args.addr))?;
    eprintln!(
        "simulated EBM (a test double) listening on {}",
        server.url()
    );
    tokio::signal::ctrl_c().await?;
    Ok(())
}
