//! `stepwise doctor`: check each part a config names, print a checklist with a fix for every
//! failure, exit non-zero if anything failed. Every check is bounded in time so a missing
//! server or toolchain fails fast instead of hanging.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Args;
use formats::theorems::{read_theorems, Theorem};
use lean_bridge::LeanPool;
use search::bos::{problem, BosCount};
use search::config::{PlannerConfig, PolicyConfig};
use search::planner::{build_planner, planner_template};
use search::policy::http_policy::PROBE_PROMPT;
use search::policy::{build_policy, check_bos};
use search::request_setup::{RequestSetup, SetupError};
use search::templates::PromptInput;
use search::Config;

use crate::ConfigArgs;

#[derive(Args, Debug)]
pub struct DoctorArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// The folder sweeps will write into.
    #[arg(long, default_value = "runs")]
    pub out: PathBuf,
    /// Seconds allowed for each HTTP check.
    #[arg(long, default_value_t = 10.0)]
    pub timeout: f64,
    /// Theorems JSONL: the BOS check sends the first one's root prompt (default: a one-line
    /// statement's).
    #[arg(long)]
    pub theorems: Option<PathBuf>,
    /// The policy model's folder, where its BOS token is read (overrides `policy.model_dir`).
    #[arg(long)]
    pub model_dir: Option<PathBuf>,
}

/// One line of the checklist.
struct Check {
    what: String,
    result: Result<String, Failure>,
    /// Printed under the line; does not fail the check.
    warning: Option<String>,
}

struct Failure {
    problem: String,
    fix: String,
}

fn fail(problem: impl Into<String>, fix: impl Into<String>) -> Result<String, Failure> {
    Err(Failure {
        problem: problem.into(),
        fix: fix.into(),
    })
}

pub fn run(args: DoctorArgs) -> anyhow::Result<()> {
    println!("stepwise doctor: {}", args.config.config.display());
    let mut config = match Config::load(&args.config.config, &args.config.overrides) {
        Ok(config) => config,
        Err(e) => {
            print_check(&Check {
                what: "config".into(),
                result: fail(
                    e.to_string(),
                    "fix the key or value named above (docs/design.md, \"Config\", lists every key)",
                ),
                warning: None,
            });
            anyhow::bail!("the config does not load");
        }
    };
    if let Some(dir) = &args.model_dir {
        config.policy.model_dir = Some(dir.display().to_string());
    }
    let runtime = tokio::runtime::Runtime::new()?;
    let checks = runtime.block_on(run_checks(&config, &args));
    let failed = checks.iter().filter(|c| c.result.is_err()).count();
    for check in &checks {
        print_check(check);
    }
    if failed > 0 {
        anyhow::bail!("{failed} of {} checks failed", checks.len());
    }
    println!("all {} checks passed", checks.len());
    Ok(())
}

fn print_check(check: &Check) {
    match &check.result {
        Ok(detail) => println!("  [ok]   {}: {detail}", check.what),
        Err(f) => {
            println!("  [FAIL] {}: {}", check.what, f.problem);
            println!("         fix: {}", f.fix);
        }
    }
    if let Some(warning) = &check.warning {
        println!("  [warn] {}: {warning}", check.what);
    }
}

async fn run_checks(config: &Config, args: &DoctorArgs) -> Vec<Check> {
    let timeout = Duration::from_secs_f64(args.timeout);
    let mut checks = vec![Check {
        what: "config".into(),
        result: Ok("loaded".into()),
        warning: None,
    }];
    checks.push(Check {
        what: "lean".into(),
        result: check_lean(config).await,
        warning: None,
    });
    let client = reqwest::Client::new();
    // What a sweep's requests carry, so the generate check sends what the sweep will.
    let setup = RequestSetup::from_config(config);
    let first = match first_theorem(args.theorems.as_deref()) {
        Ok(theorem) => Some(theorem),
        Err(e) => {
            checks.push(Check {
                what: "theorems".into(),
                result: fail(
                    format!("{e:#}"),
                    "pass --theorems a JSONL file of the sweep's theorems",
                ),
                warning: None,
            });
            None
        }
    };
    for url in &config.policy.urls {
        let result = match &setup {
            Ok(setup) => check_policy(&client, &config.policy, setup, url, timeout).await,
            Err(SetupError::Template(e)) => fail(
                e.to_string(),
                "set [policy].template (or, with search.expansion = \"proof\", \
                 [policy].proof_template) to a built-in name or a template containing {state}",
            ),
            Err(SetupError::Bos(e)) => fail(
                e.to_string(),
                "point policy.model_dir (or --model-dir) at the policy model's folder, \
                 or set policy.bos = \"server\"",
            ),
        };
        let warning = match (&result, &setup) {
            (Ok(_), Ok(setup)) => model_warning(&client, setup.template.name(), url, timeout).await,
            _ => None,
        };
        let healthy = result.is_ok();
        checks.push(Check {
            what: format!("policy {url}"),
            result,
            warning,
        });
        if let (true, Ok(setup), Some(theorem)) = (healthy, &setup, &first) {
            let prompt = setup.first_prompt(theorem, theorem.header_or(&config.lean.header));
            let (result, warning) =
                check_prompt_bos(&config.policy, setup, url, timeout, &prompt).await;
            checks.push(Check {
                what: format!("BOS {url}"),
                result,
                warning,
            });
        }
    }
    for url in &config.planner.urls {
        let header = &config.lean.header;
        let result = check_planner(
            &client,
            &config.planner,
            url,
            timeout,
            first.as_ref(),
            header,
        )
        .await;
        let warning = match (&result, planner_template(&config.planner)) {
            (Ok(_), Ok(template)) => model_warning(&client, template.name(), url, timeout).await,
            _ => None,
        };
        checks.push(Check {
            what: format!("planner {url}"),
            result,
            warning,
        });
    }
    if !config.ebm.url.is_empty() {
        checks.push(Check {
            what: format!("ebm {}", config.ebm.url),
            result: check_ebm(&client, &config.ebm.url, timeout).await,
            warning: None,
        });
    }
    checks.push(Check {
        what: format!("output folder {}", args.out.display()),
        result: check_writable(&args.out),
        warning: None,
    });
    checks
}

/// Starts one worker, loads the header and checks a one-line proof: the whole path a sweep
/// takes, timed.
async fn check_lean(config: &Config) -> Result<String, Failure> {
    let lean = &config.lean;
    let argv: Vec<&String> = lean.sandbox.iter().chain(&lean.command).collect();
    let program = argv[0];
    if find_program(program, Path::new(&lean.cwd)).is_none() {
        return fail(
            format!("`{program}` (from [lean].command) is not installed or not on PATH"),
            "install Lean with elan and build the REPL (python-servers/README.md, \"Lean\"), \
             then point [lean].command and [lean].cwd at it",
        );
    }
    if !Path::new(&lean.cwd).is_dir() {
        return fail(
            format!("[lean].cwd `{}` is not a folder", lean.cwd),
            "set [lean].cwd to your Lean project with Mathlib",
        );
    }
    let mut single = lean.clone();
    single.workers = 1;
    let pool = LeanPool::new(single);
    let theorem = Theorem {
        name: "stepwise_doctor_check".into(),
        formal_statement: "theorem stepwise_doctor_check : True := by".into(),
        header: None,
        extra: Default::default(),
    };
    let started = Instant::now();
    let outcome = Arc::clone(&pool).check_proof(&theorem, "trivial").await;
    let took = started.elapsed().as_secs_f64();
    pool.shutdown().await;
    match outcome {
        Ok(check) if check.verified => Ok(format!(
            "REPL started, header loaded and a proof checked in {took:.1} s"
        )),
        Ok(check) => fail(
            format!(
                "the REPL rejected `trivial` for `True`: {}",
                check.errors.join("; ")
            ),
            "check that [lean].command runs the leanprover-community REPL of this project",
        ),
        Err(e) => fail(
            e.to_string(),
            "run the command by hand in [lean].cwd (python-servers/README.md shows how) \
             and check the header's imports are built (`lake build`)",
        ),
    }
}

/// `/health`, the sweep's start-up check (`Policy::health_check`: a server that does not
/// take `setup`'s stop regexes fails here as the sweep would stop), then a one-token generate
/// with `setup`'s stops whose answer must carry token log-probs.
async fn check_policy(
    client: &reqwest::Client,
    policy: &PolicyConfig,
    setup: &RequestSetup,
    url: &str,
    timeout: Duration,
) -> Result<String, Failure> {
    let health = format!("{}/health", url.trim_end_matches('/'));
    if let Err(e) = search::http_retry::probe(client, &health, timeout).await {
        return fail(
            format!("GET {health}: {e}"),
            "start SGLang (python-servers/sglang/launch.sh) or fix [policy].urls; \
             a 503 means the model is still loading",
        );
    }
    let one = one_server(policy, url, timeout);
    let one_token = RequestSetup {
        max_new_tokens: 1,
        ..setup.clone()
    };
    let started = Instant::now();
    let answer = match build_policy(&one, &one_token) {
        Ok(p) => match p.health_check().await {
            Ok(()) => p.generate(&[PROBE_PROMPT.into()], 1).await,
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    match answer {
        Ok(groups) => {
            let token = groups
                .first()
                .and_then(|g| g.first())
                .and_then(|c| c.tokens.first());
            match token {
                Some(t) if t.logprob.is_finite() => Ok(format!(
                    "healthy; one-token generate in {:.2} s with log-probs",
                    started.elapsed().as_secs_f64()
                )),
                _ => fail(
                    "generate answered without token log-probs",
                    "use SGLang's native /generate (backend = \"sglang\") or a server \
                     that honours return_logprob / logprobs",
                ),
            }
        }
        Err(e) => {
            let why = e.to_string();
            let fix = if why.contains("stop_regex") {
                "this SGLang does not take stop_regex: upgrade to the pinned version \
                 (python-servers/requirements.txt) or set policy.stop_regex = []"
            } else {
                "check [policy].backend matches the server (sglang: /generate, openai: /v1/completions)"
            };
            fail(why, fix)
        }
    }
}

/// The planner at `url`: it answers `/health`, its model list, and a one-token request with
/// the planner's own prompt for the first theorem (its template checked on its wire).
async fn check_planner(
    client: &reqwest::Client,
    planner: &PlannerConfig,
    url: &str,
    timeout: Duration,
    theorem: Option<&Theorem>,
    header: &str,
) -> Result<String, Failure> {
    let health = format!("{}/health", url.trim_end_matches('/'));
    if let Err(e) = search::http_retry::probe(client, &health, timeout).await {
        return fail(
            format!("GET {health}: {e}"),
            "start the planner's server or fix [planner].urls; a 503 means the model is still loading",
        );
    }
    let one = PlannerConfig {
        urls: vec![url.to_owned()],
        max_retries: 0,
        request_timeout: timeout.as_secs_f64(),
        max_new_tokens: 1,
        ..planner.clone()
    };
    let built = match build_planner(&one, 0.0) {
        Ok(Some(built)) => built,
        Ok(None) => unreachable!("a planner with a url is built"),
        Err(e) => {
            return fail(
                e.to_string(),
                "set [planner].template to `deepseek-v2-sketch`, `chat-sketch` or a custom \
                 template containing {statement} (with backend = \"openai-chat\": not one that \
                 writes chat markers)",
            )
        }
    };
    let prompt = match theorem {
        Some(theorem) => {
            let input = PromptInput::new(theorem, theorem.header_or(header), &[], "");
            built.template.render(&input)
        }
        None => PROBE_PROMPT.to_owned(),
    };
    let started = Instant::now();
    let answer = match built.client.health_check().await {
        Ok(()) => built.client.generate(&[prompt], 1).await,
        Err(e) => Err(e),
    };
    match answer {
        Ok(_) => Ok(format!(
            "healthy; its prompt ({}) answered in {:.2} s",
            built.template.name(),
            started.elapsed().as_secs_f64()
        )),
        Err(e) => fail(
            e.to_string(),
            "check [planner].backend matches the server (sglang: /generate, openai: \
             /v1/completions, openai-chat: /v1/chat/completions) and [planner].model",
        ),
    }
}

/// `policy` talking to `url` alone, one attempt of at most `timeout`: a check names its server.
fn one_server(policy: &PolicyConfig, url: &str, timeout: Duration) -> PolicyConfig {
    let mut one = policy.clone();
    one.urls = vec![url.to_owned()];
    one.max_retries = 0;
    one.request_timeout = timeout.as_secs_f64();
    // Its `/health` answered already: nothing to wait for.
    one.startup_timeout = 0.0;
    one
}

/// The first theorem of `path`, or a stand-in of the start-up probe's statement
/// ([`PROBE_PROMPT`]).
fn first_theorem(path: Option<&Path>) -> anyhow::Result<Theorem> {
    let Some(path) = path else {
        return Ok(Theorem {
            name: "t".into(),
            formal_statement: PROBE_PROMPT.into(),
            header: None,
            extra: Default::default(),
        });
    };
    read_theorems(path)?
        .into_iter()
        .next()
        .with_context(|| format!("{} holds no theorem", path.display()))
}

/// How many BOS tokens the server puts before `prompt` (`search::bos`): one passes; none or
/// two fail with the fix; a count it cannot make passes with a warning saying why.
async fn check_prompt_bos(
    policy: &PolicyConfig,
    setup: &RequestSetup,
    url: &str,
    timeout: Duration,
    prompt: &str,
) -> (Result<String, Failure>, Option<String>) {
    let check = match build_policy(&one_server(policy, url, timeout), setup) {
        Ok(client) => check_bos(&*client, prompt, setup.bos_token.as_ref()).await,
        Err(e) => Err(e),
    };
    let check = match check {
        Ok(check) => check,
        Err(e) => {
            return (
                fail(
                    format!("cannot see how the server tokenizes a prompt: {e}"),
                    "check [policy].backend matches the server",
                ),
                None,
            )
        }
    };
    match (problem(check.count, policy.bos), check.count) {
        (Some((problem, fix)), _) => (fail(format!("{problem} ({})", check.detail), fix), None),
        (None, BosCount::Unchecked) => (Ok("unchecked".into()), Some(check.detail)),
        (None, count) => (Ok(format!("{count} ({})", check.detail)), None),
    }
}

/// The served model, as `GET /v1/models` (vLLM, SGLang) or SGLang's `GET /get_model_info`
/// name it, against the template (a built-in's name, or `custom`): a prompt written for
/// another model family wastes the GPU.
async fn model_warning(
    client: &reqwest::Client,
    template: &str,
    url: &str,
    timeout: Duration,
) -> Option<String> {
    let base = url.trim_end_matches('/');
    let models = search::http_retry::get_json::<serde_json::Value>(
        client,
        &format!("{base}/v1/models"),
        timeout,
    )
    .await;
    let mut served: Vec<String> = models
        .ok()
        .and_then(|m| m.get("data").and_then(|d| d.as_array()).cloned())
        .into_iter()
        .flatten()
        .filter_map(|card| card.get("id").and_then(|id| id.as_str()).map(str::to_owned))
        .collect();
    if served.is_empty() {
        let info = search::http_retry::get_json::<serde_json::Value>(
            client,
            &format!("{base}/get_model_info"),
            timeout,
        )
        .await;
        served.extend(info.ok().and_then(|i| {
            i.get("model_path")
                .and_then(|p| p.as_str())
                .map(str::to_owned)
        }));
    }
    served
        .first()
        .and_then(|model| search::templates::model_mismatch(template, model))
}

async fn check_ebm(
    client: &reqwest::Client,
    url: &str,
    timeout: Duration,
) -> Result<String, Failure> {
    let health = format!("{}/health", url.trim_end_matches('/'));
    match search::http_retry::probe(client, &health, timeout).await {
        Ok(()) => Ok("healthy".into()),
        Err(e) => fail(
            format!("GET {health}: {e}"),
            "start `stepwise ebm serve --model DIR --head FILE`, or set [ebm].url = \"\" to search without it",
        ),
    }
}

fn check_writable(dir: &Path) -> Result<String, Failure> {
    let probe = dir.join(".stepwise-doctor-probe");
    let written = std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&probe, b"ok"))
        .and_then(|()| std::fs::remove_file(&probe));
    match written {
        Ok(()) => Ok("writable".into()),
        Err(e) => fail(
            format!("cannot write there: {e}"),
            "pass --out with a folder you can write, or fix its permissions",
        ),
    }
}

/// Where `program` would be found: a path as given (relative to the REPL's `cwd`), or the
/// first match on PATH.
fn find_program(program: &str, cwd: &Path) -> Option<PathBuf> {
    if program.contains('/') {
        let path = cwd.join(program);
        return path.is_file().then_some(path);
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}
