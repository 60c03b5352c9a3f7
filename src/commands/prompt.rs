//! `stepwise prompt`: the exact bytes a policy server (or, with `--planner`, the planner)
//! receives for one node of one theorem,
//! so a user can hold them against the model card before spending a GPU-hour. The node's
//! goals come from Lean (the config's `[lean]`), as in a sweep: the tactics are applied one
//! after another from the root.

use std::io::Write;
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::Args;
use formats::join_goals;
use formats::theorems::read_theorems;
use lean_bridge::one_tactic::split_tactics;
use lean_bridge::{LeanPool, TacticOutcome};
use search::env::ProofEnv;
use search::lean_env::LeanEnv;
use search::planner::planner_template;
use search::request_setup::RequestSetup;
use search::templates::{prompt_budget, PromptInput};

use crate::ConfigArgs;

#[derive(Args, Debug)]
pub struct PromptArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Theorems JSONL (the sweep's input).
    #[arg(long)]
    pub theorems: std::path::PathBuf,
    /// The theorem; the file's first when absent.
    #[arg(long)]
    pub name: Option<String>,
    /// Tactics from the root to the node, separated by `;` or lines, as in a proof (a `<;>`
    /// or a `;` in brackets stays in its tactic).
    #[arg(long, default_value = "")]
    pub tactics: String,
    /// The planner's prompt (`[planner]`) for the node instead of the policy's.
    #[arg(long)]
    pub planner: bool,
}

/// Writes the prompt bytes, unchanged, to stdout, and the template's name, the stops (JSON),
/// whether the BOS text is part of the bytes and the context bound used to stderr, so `stepwise prompt ... > prompt.txt` holds the
/// prompt alone. All as a sweep with this config sends them, `search.expansion` included.
pub fn run(args: PromptArgs) -> anyhow::Result<()> {
    let config = search::Config::load(&args.config.config, &args.config.overrides)?;
    let setup = RequestSetup::from_config(&config)?;
    let theorems = read_theorems(&args.theorems)?;
    let theorem = match &args.name {
        Some(name) => theorems
            .iter()
            .find(|t| &t.name == name)
            .with_context(|| format!("no theorem `{name}` in {}", args.theorems.display()))?,
        None => theorems
            .first()
            .with_context(|| format!("{} holds no theorem", args.theorems.display()))?,
    };
    let tactics: Vec<String> = split_tactics(&args.tactics)
        .into_iter()
        .map(String::from)
        .collect();
    let runtime = tokio::runtime::Runtime::new()?;
    let goals = runtime.block_on(node_goals(&config, theorem, &tactics))?;
    let header = theorem.header_or(&config.lean.header);
    let input = PromptInput::new(theorem, header, &tactics, &goals);
    if args.planner {
        let template = planner_template(&config.planner)?;
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(template.render(&input).as_bytes())?;
        stdout.flush()?;
        eprintln!("planner template: {}", template.name());
        eprintln!(
            "planner backend: {}; {} sketches, max_new_tokens {}, no stops",
            serde_json::to_string(&config.planner.backend)?,
            config.planner.num_sketches,
            config.planner.max_new_tokens
        );
        return Ok(());
    }
    let budget = setup
        .context_tokens
        .map(|context| prompt_budget(context, setup.max_new_tokens));
    let prompt = setup.template.render_within(&input, budget);
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(prompt.as_bytes())?;
    stdout.flush()?;
    eprintln!("template: {}", setup.template.name());
    eprintln!(
        "stop strings: {}",
        serde_json::to_string(&setup.stops.strings)?
    );
    if !setup.stops.regexes.is_empty() {
        eprintln!(
            "stop regexes (SGLang): {}",
            serde_json::to_string(&setup.stops.regexes)?
        );
    }
    match &setup.bos_text {
        Some(bos) => eprintln!(
            "BOS text in the bytes: {:?} (policy.bos = \"template\", from {})",
            bos.text, bos.source
        ),
        None => eprintln!(
            "BOS text in the bytes: none (policy.bos = \"server\": the server's tokenizer adds it)"
        ),
    }
    match budget {
        Some(tokens) => eprintln!("prompt bounded to an estimated {tokens} tokens"),
        None => eprintln!(
            "prompt not bounded: policy.context_tokens is unset (a sweep asks the server)"
        ),
    }
    Ok(())
}

/// The goals after `tactics`, applied in Lean from the theorem's root.
async fn node_goals(
    config: &search::Config,
    theorem: &formats::theorems::Theorem,
    tactics: &[String],
) -> anyhow::Result<String> {
    let mut lean = config.lean.clone();
    lean.workers = 1;
    let pool = LeanPool::new(lean);
    let env = LeanEnv(Arc::clone(&pool));
    let goals = async {
        let mut session = env.start(theorem).await?;
        let (mut state, root) = session.root();
        let mut goals = join_goals(root);
        for tactic in tactics {
            match session.apply(state, tactic).await? {
                TacticOutcome::Progress {
                    state: next,
                    goals: g,
                } => {
                    state = next;
                    goals = join_goals(&g);
                }
                TacticOutcome::Complete { .. } => {
                    bail!("`{tactic}` closes every goal: there is no node to prompt for")
                }
                other => bail!("Lean did not accept `{tactic}`: {other:?}"),
            }
        }
        Ok(goals)
    }
    .await;
    pool.shutdown().await;
    goals
}
