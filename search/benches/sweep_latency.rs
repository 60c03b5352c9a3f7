//! Sweeps against latency-model fakes of the three servers, over their real transports: the
//! simulated SGLang (loopback HTTP), the simulated REPL (this binary re-run as `--sim-repl`,
//! one child process per Lean worker) and the simulated EBM (loopback HTTP). Full-scale
//! costs: generate 1.8 s per request + 20 ms per sample, 150 ms per Lean request, 300 ms per
//! EBM call; every delay is divided by `SCALE` so the whole run takes about a minute.
//!
//! At concurrency 1, 2, 4, 8, 16 it reports theorems per hour (scaled back), the generate
//! server's idle share from the client's own request timeline over the whole sweep, where
//! that idle time fell (start-up before the first request; mid-sweep; the tail after the last
//! theorem started, when slots drain), and the time-accounting shares. Then, at concurrency 1, what overlapping the next node's
//! generation with the current node's Lean checks could gain, and how often it would change
//! the search order. Then the short sweep (issue 13): 50 theorems of 1-6 steps at concurrency
//! 4 and 8, every header import costing [`HEADER_IMPORT`], first with a cold pool, then with
//! the pool warmed while the policy server loads (as `stepwise sweep` does), then warmed and
//! with `sweep.fill_tail`, then warmed and with `search.speculate` (always, and only in the
//! tail: `sweep.speculate_tail`). Not a test: it
//! prints numbers and writes `target/bench/sweep_latency.json`.
//!
//! `cargo bench -p search --bench sweep_latency [-- main|short]`

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use formats::NodeStatus;
use lean_bridge::{LeanConfig, LeanPool};
use search::config::{Config, Sampling};
use search::engine::{search_theorem, Frontier, SearchParams, SystemClock, Tree};
use search::env::{EnvError, ProofEnv, ProofSession, Theorem};
use search::lean_env::LeanEnv;
use search::policy::{build_policy, Policy};
use search::request_setup::RequestSetup;
use search::sweep::{run_sweep, Backends, SweepOptions};
use search::value::{EbmClient, ValueScorer};
use serde_json::json;
use sim::ebm::EbmOptions;
use sim::sglang::SglangOptions;
use sim::world::{Effect, World, WorldState, WorldTactic, WorldTheorem};

mod support;

/// Every full-scale delay is divided by this.
const SCALE: u32 = 25;
const GEN_PER_REQUEST: Duration = Duration::from_millis(1800);
const GEN_PER_SAMPLE: Duration = Duration::from_millis(20);
const LEAN_PER_REQUEST_MS: u64 = 150;
const EBM_PER_REQUEST: Duration = Duration::from_millis(300);
const CONCURRENCY: [usize; 5] = [1, 2, 4, 8, 16];
/// The short sweep (issue 13): theorems of 1-6 steps, where start-up and tail dominate.
const SHORT_THEOREMS: usize = 50;
const SHORT_CONCURRENCY: [usize; 2] = [4, 8];
/// A Mathlib header import on one worker (warm file cache; a cold one takes minutes).
const HEADER_IMPORT: Duration = Duration::from_secs(60);
/// A 7B policy server from launch to ready (loading the weights, capturing CUDA graphs).
const SERVER_LOADING: Duration = Duration::from_secs(120);
const NUM_CANDIDATES: usize = 16;

/// A deterministic stream of small numbers (no RNG crate needed).
fn mix(a: usize, b: usize) -> usize {
    let mut x =
        (a as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (b as u64).wrapping_add(0x632B_E59B);
    x ^= x >> 29;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    (x ^ (x >> 32)) as usize
}

/// A goals text of 300-500 bytes, unique per (theorem, state).
fn goals(theorem: usize, state: &str) -> Vec<String> {
    let len = 300 + mix(theorem, state.len() + 7) % 200;
    let mut text = format!("x y z : ℝ\nh₀ : 0 < x ∧ 0 < y ∧ 0 < z\nh₁ : x * y * z = {theorem}\n");
    let mut k = 0;
    while text.len() + 40 < len {
        text.push_str(&format!(
            "h{state}_{k} : x ^ {k} + y ^ {k} ≤ z ^ {} + {theorem}\n",
            k + 2
        ));
        k += 1;
    }
    text.push_str(&format!("⊢ x / y + y / z + z / x ≥ 3 -- {state}"));
    vec![text]
}

fn failing(theorem: usize, state: &str, count: usize) -> Vec<WorldTactic> {
    (0..count)
        .map(|j| {
            WorldTactic::new(
                format!("nlinarith [sq_nonneg (x - y), mul_pos h₀.1 h₀.2.1, h{state}_{j}]"),
                -1.0 - j as f64 * 0.4,
                Effect::Error(format!(
                    "linarith failed to find a contradiction\ncase a\nx y z : ℝ\n⊢ False ({theorem})"
                )),
            )
        })
        .collect()
}

/// Theorem `i`: a proof path of 4-8 steps; at each step a side tactic leads to a dead end
/// (sometimes ranked above the path, so the search backtracks) and 2-6 tactics fail. So an
/// expansion sends 4-8 unique tactics to Lean and theorems drift out of step.
fn world(theorems: usize) -> World {
    World {
        modules: vec!["Mathlib".into(), "Aesop".into()],
        theorems: (0..theorems)
            .map(|i| world_theorem(i, "lat", 4 + i % 5))
            .collect(),
    }
}

/// The short sweep's theorems: the same shape with proof paths of 1-6 steps, so start-up and
/// tail are a large share of the sweep. Indices from [`SHORT_BASE`] keep their goals distinct
/// from [`world`]'s.
fn short_world(theorems: usize) -> World {
    World {
        modules: vec!["Mathlib".into(), "Aesop".into()],
        theorems: (0..theorems)
            .map(|i| world_theorem(SHORT_BASE + i, "short", 1 + i % 6))
            .collect(),
    }
}

const SHORT_BASE: usize = 10_000;

fn world_theorem(i: usize, prefix: &str, depth: usize) -> WorldTheorem {
    let mut states = Vec::new();
    for k in 0..depth {
        let here = format!("p{k}");
        let next = if k + 1 == depth {
            Vec::new()
        } else {
            goals(i, &format!("p{}", k + 1))
        };
        let side = format!("s{k}");
        let side_first = mix(i, k).is_multiple_of(3);
        let mut tactics = vec![
            WorldTactic::new(format!("apply step_{k}"), -0.4, Effect::Goals(next)),
            WorldTactic::new(
                format!("apply side_{k}"),
                if side_first { -0.2 } else { -0.8 },
                Effect::Goals(goals(i, &side)),
            ),
        ];
        tactics.extend(failing(i, &here, 2 + mix(i, k + 100) % 5));
        states.push(WorldState {
            goals: goals(i, &here),
            tactics,
        });
        states.push(WorldState {
            goals: goals(i, &side),
            tactics: failing(i, &side, 2 + mix(i, k + 200) % 3),
        });
    }
    WorldTheorem {
        name: format!("{prefix}_{i}"),
        formal_statement: format!(
            "theorem {prefix}_{i} (x y z : ℝ) (h₀ : 0 < x ∧ 0 < y ∧ 0 < z) (h₁ : x * y * z = {i}) : x / y + y / z + z / x ≥ 3 := by"
        ),
        root: goals(i, "p0"),
        states,
        sketches: Vec::new(),
    }
}

/// Wraps the Lean environment to note when the sweep's last theorem starts: from then on
/// fewer than `concurrency` theorems run (the tail).
struct TailMark {
    inner: LeanEnv,
    starts: AtomicUsize,
    last_start: usize,
    mark: Mutex<Option<Instant>>,
}

#[async_trait]
impl ProofEnv for TailMark {
    async fn start(&self, theorem: &Theorem) -> Result<Box<dyn ProofSession>, EnvError> {
        if self.starts.fetch_add(1, Ordering::SeqCst) + 1 == self.last_start {
            *self.mark.lock().expect("mark") = Some(Instant::now());
        }
        self.inner.start(theorem).await
    }
}

/// Wraps the policy to keep every generate call's (start, end), so the generate server's idle
/// time can be placed: before the first request (start-up), mid-sweep, or in the tail.
struct Timed {
    inner: Arc<dyn Policy>,
    calls: Mutex<Vec<(Instant, Instant)>>,
}

#[async_trait]
impl Policy for Timed {
    async fn generate(
        &self,
        prompts: &[String],
        n: usize,
    ) -> Result<Vec<Vec<search::policy::Completion>>, search::policy::PolicyError> {
        let start = Instant::now();
        let out = self.inner.generate(prompts, n).await;
        self.calls
            .lock()
            .expect("calls")
            .push((start, Instant::now()));
        out
    }

    fn utilisation(&self) -> Vec<formats::utilisation::UrlUtilisation> {
        self.inner.utilisation()
    }

    fn drain_in_flight_steps(&self, keep_recording: bool) -> Vec<formats::progress::InFlightStep> {
        self.inner.drain_in_flight_steps(keep_recording)
    }
}

/// Idle time (ms) with no generate call in flight: before the first call, from then to
/// `mark`, and from `mark` to `end`; plus the longest mid-sweep gap.
fn idle_gaps(
    mut calls: Vec<(Instant, Instant)>,
    begin: Instant,
    mark: Instant,
    end: Instant,
) -> [f64; 4] {
    calls.sort();
    let ms = |a: Instant, b: Instant| b.saturating_duration_since(a).as_secs_f64() * 1000.0;
    let mut gaps = [0.0; 4];
    let Some(&(first, _)) = calls.first() else {
        return [ms(begin, end), 0.0, 0.0, 0.0];
    };
    gaps[0] = ms(begin, first);
    let mut covered = first;
    let book = |from: Instant, to: Instant, gaps: &mut [f64; 4]| {
        let mid = ms(from, to.min(mark));
        gaps[1] += mid;
        gaps[3] = f64::max(gaps[3], mid);
        gaps[2] += ms(from.max(mark), to);
    };
    for (start, stop) in calls {
        if start > covered {
            book(covered, start, &mut gaps);
        }
        covered = covered.max(stop);
    }
    book(covered, end, &mut gaps);
    gaps
}

struct Servers {
    sglang_url: String,
    ebm_url: String,
    world_file: std::path::PathBuf,
    // Dropping these stops the servers.
    _sglang: sim::sglang::SglangHandle,
    _ebm: sim::ebm::EbmHandle,
}

/// `world_file` is what the simulated REPL workers load: each parses it whole at start.
fn config(servers: &Servers, concurrency: usize, world_file: &Path) -> Config {
    config_with(servers, concurrency, world_file, 0)
}

/// As [`config`], with every header import taking `header_delay_ms` more (scaled).
fn config_with(
    servers: &Servers,
    concurrency: usize,
    world_file: &Path,
    header_delay_ms: u64,
) -> Config {
    let mut config = Config::default();
    config.search.num_candidates = NUM_CANDIDATES;
    config.search.ebm_weight = 0.3;
    config.search.timeout_per_theorem = 1e6;
    config.policy.urls = vec![servers.sglang_url.clone()];
    // The simulator matches each prompt text against every world state; `n` sends each
    // prompt once instead of 16 times, so the simulator's own CPU stays out of the numbers.
    config.policy.sampling = Sampling::N;
    config.ebm.url = servers.ebm_url.clone();
    config.sweep.concurrency = concurrency;
    let exe = std::env::current_exe().expect("current exe");
    config.lean = LeanConfig {
        command: vec![
            exe.display().to_string(),
            "--sim-repl".into(),
            "--world".into(),
            world_file.display().to_string(),
            "--delay-ms".into(),
            (LEAN_PER_REQUEST_MS / u64::from(SCALE)).to_string(),
            "--header-delay-ms".into(),
            header_delay_ms.to_string(),
        ],
        workers: concurrency,
        ..LeanConfig::default()
    };
    config
}

fn share(summary: &run_folder::Summary, phase: &str) -> f64 {
    summary
        .time
        .iter()
        .find(|p| p.phase == phase)
        .map_or(0.0, |p| p.share)
}

/// One sweep of the table: its theorems, concurrency, and the start-up it models.
struct Case {
    /// Names the case in the JSON and the world file.
    label: String,
    theorems: Vec<WorldTheorem>,
    concurrency: usize,
    /// Scaled extra time of every header import (0: the simulator's own start only).
    header_delay_ms: u64,
    /// The policy server is ready this long (scaled) after the sweep command starts, and the
    /// Lean pool warms meanwhile, as `stepwise sweep` does during its health check. `None`:
    /// the server was up already and the pool starts cold (main before the warm-up).
    warm_while_loading: Option<Duration>,
    /// `sweep.fill_tail`.
    fill_tail: bool,
    /// `search.speculate`.
    speculate: bool,
    /// `sweep.speculate_tail`.
    speculate_tail: bool,
}

/// The main table's sweep at `concurrency`: enough theorems per slot that start-up and tail
/// are a modest share of the sweep; at 16 slots, one miniF2F split (244), the size of a real
/// sweep.
fn main_case(world: &World, concurrency: usize) -> Case {
    let n = match concurrency {
        1 => 6,
        2 => 8,
        16 => 244,
        c => 8 * c,
    };
    Case {
        label: format!("c{concurrency}"),
        theorems: world.theorems[..n].to_vec(),
        concurrency,
        header_delay_ms: 0,
        warm_while_loading: None,
        fill_tail: false,
        speculate: false,
        speculate_tail: false,
    }
}

async fn sweep_at(
    servers: &Servers,
    case: &Case,
    dir: &Path,
    gap_lines: &mut Vec<String>,
) -> serde_json::Value {
    let concurrency = case.concurrency;
    let n = case.theorems.len();
    // The workers load only this sweep's theorems: parsing a world file is the simulator's
    // cost, not one the latency model describes.
    let world_file = dir.join(format!("world-{}.json", case.label));
    let subset = World {
        modules: vec!["Mathlib".into(), "Aesop".into()],
        theorems: case.theorems.clone(),
    };
    std::fs::write(
        &world_file,
        serde_json::to_vec(&subset).expect("world json"),
    )
    .expect("write world");
    let mut config = config_with(servers, concurrency, &world_file, case.header_delay_ms);
    config.sweep.fill_tail = case.fill_tail;
    config.search.speculate = case.speculate;
    config.sweep.speculate_tail = case.speculate_tail;
    let timed = Arc::new(Timed {
        inner: build_policy(
            &config.policy,
            &RequestSetup::from_config(&config).expect("template"),
        )
        .expect("policy"),
        calls: Mutex::new(Vec::new()),
    });
    let policy: Arc<dyn Policy> = timed.clone();
    let scorer: Arc<dyn ValueScorer> = Arc::new(
        EbmClient::from_config(&config.ebm)
            .expect("ebm")
            .expect("url"),
    );
    let pool = LeanPool::new(config.lean.clone());
    let env = Arc::new(TailMark {
        inner: LeanEnv(pool.clone()),
        starts: AtomicUsize::new(0),
        last_start: n,
        mark: Mutex::new(None),
    });
    let out = dir.join(&case.label);
    let theorems: Vec<Theorem> = subset.theorems[..n]
        .iter()
        .map(WorldTheorem::input)
        .collect();
    if let Some(loading) = case.warm_while_loading {
        // What `stepwise sweep` does before its sweep: warm the pool while it waits for the
        // policy server (modelled as the wait alone).
        let warming = tokio::spawn({
            let (pool, first) = (pool.clone(), theorems[..concurrency.min(n)].to_vec());
            async move { pool.warm_up(&first).await }
        });
        tokio::time::sleep(loading).await;
        if !warming.is_finished() {
            println!(
                "({}: the warm-up outlasted the server's loading)",
                case.label
            );
        }
    }
    let started = Instant::now();
    run_sweep(
        &config,
        theorems,
        &out,
        SweepOptions::default(),
        Backends {
            policy: policy.clone(),
            scorer: Some(scorer),
            env: env.clone(),
            planner: None,
        },
    )
    .await
    .expect("sweep");
    let wall_ms = started.elapsed().as_secs_f64() * 1000.0;
    let ended = Instant::now();
    pool.shutdown().await;
    let mark_at = env
        .mark
        .lock()
        .expect("mark")
        .take()
        .expect("last start seen");
    let gaps = idle_gaps(
        std::mem::take(&mut *timed.calls.lock().expect("calls")),
        started,
        mark_at,
        ended,
    );
    // From the first generate request to the last theorem's start: all slots busy.
    let mid_ms = (mark_at - started).as_secs_f64() * 1000.0 - gaps[0];
    let summary = run_folder::Summary::from_dir(&out).expect("summary");
    let s = &summary;
    // The sweep's own record of the generate server (runs.jsonl, from the client's timeline).
    let server = &s.generate_servers[0];
    let thm_per_hour = n as f64 / (wall_ms / 1000.0 * f64::from(SCALE)) * 3600.0;
    let row = json!({
        "case": case.label,
        "header_import_ms_scaled": case.header_delay_ms,
        "warm_while_loading_ms_scaled": case.warm_while_loading.map(|d| d.as_millis() as u64),
        "fill_tail": case.fill_tail,
        "speculate": case.speculate,
        "speculate_tail": case.speculate_tail,
        "speculated": s.totals.speculated,
        "speculation_misses": s.totals.speculation_misses,
        "generate_calls": s.totals.gen_calls,
        "concurrency": concurrency,
        "theorems": n,
        "proved": s.proved,
        "wall_s": wall_ms / 1000.0,
        "theorems_per_hour_full_scale": thm_per_hour,
        "generate_busy_share": server.busy_share,
        "generate_idle_share": 1.0 - server.busy_share,
        "mean_prompts_in_flight": server.mean_prompts_in_flight,
        "mid_sweep_s": mid_ms / 1000.0,
        "mid_sweep_generate_idle_share": gaps[1] / mid_ms,
        "generate_requests": server.requests,
        "idle_ms": {"before_first_request": gaps[0], "mid_sweep": gaps[1], "tail": gaps[2], "longest_mid_sweep_gap": gaps[3]},
        "shares": s.time.iter().map(|p| (p.phase.clone(), json!(p.share))).collect::<serde_json::Map<_, _>>(),
        "mean_generate_latency_ms": s.mean_generate_latency_ms,
        "unique_per_expansion": s.unique_per_expansion,
    });
    println!(
        "| {} | {n:>2} | {:>2} | {:>5.1} | {:>5.0} | {:>5.1}% | {:>5.1}% | {:>5.1} | {:>5.1}% | {:>5.1}% | {:>5.1}% | {:>4.1}% | {:>5.2}% | {:>5.2}% |",
        case.label,
        s.proved,
        wall_ms / 1000.0,
        thm_per_hour,
        100.0 * (1.0 - server.busy_share),
        100.0 * gaps[1] / mid_ms,
        server.mean_prompts_in_flight,
        100.0 * share(s, "generate"),
        100.0 * share(s, "lean"),
        100.0 * share(s, "ebm"),
        100.0 * share(s, "wait"),
        100.0 * share(s, "engine"),
        100.0 * share(s, "unaccounted"),
    );
    if case.speculate || case.speculate_tail {
        println!(
            "({}: {} of {} generate calls speculated, {} dropped: the children outranked their nodes)",
            case.label, s.totals.speculated, s.totals.gen_calls, s.totals.speculation_misses
        );
    }
    gap_lines.push(format!(
        "| {} | {:>5.0} | {:>5.0} ({:.1}%) | {:>5.0} | {:>4.0} |",
        case.label,
        gaps[0],
        gaps[1],
        100.0 * gaps[1] / mid_ms,
        gaps[2],
        gaps[3]
    ));
    row
}

/// Milliseconds from a cold pool to a started theorem (spawn, header, statement): the
/// sweep's start-up before its first generate request, less the root's EBM call.
async fn worker_start(servers: &Servers, world: &World) -> f64 {
    let pool = LeanPool::new(config(servers, 1, &servers.world_file).lean);
    let started = Instant::now();
    let session = pool
        .start_theorem(&world.theorems[0].input())
        .await
        .expect("start");
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    drop(session);
    pool.shutdown().await;
    ms
}

/// The expansion order a finished tree was searched in, replayed through the same frontier:
/// returns (expansions, how many of them popped a child of the node expanded just before).
/// A pipelined expansion pops the next node before the current node's children are queued,
/// so at each of those steps it would have expanded a different node.
fn order_changes(tree: &Tree) -> (usize, usize) {
    let nodes = tree.nodes();
    let mut children: Vec<Vec<u32>> = vec![Vec::new(); nodes.len()];
    for n in nodes {
        if let Some(p) = n.parent {
            if matches!(n.status, NodeStatus::Open | NodeStatus::Expanded) {
                children[p as usize].push(n.id);
            }
        }
    }
    let mut frontier = Frontier::default();
    frontier.push(0, nodes[0].score);
    let (mut expansions, mut changes, mut previous) = (0, 0, None);
    while let Some(id) = frontier.pop() {
        if nodes[id as usize].status != NodeStatus::Expanded {
            break;
        }
        expansions += 1;
        if previous.is_some() && nodes[id as usize].parent == previous {
            changes += 1;
        }
        for &c in &children[id as usize] {
            frontier.push(c, nodes[c as usize].score);
        }
        previous = Some(id);
    }
    (expansions, changes)
}

/// At concurrency 1, theorem by theorem: the accounting, the most a pipelined expansion could
/// save (per step it overlaps the next generate with this step's Lean and EBM calls, so the
/// theorem saves at most min(generate, Lean + EBM)), and how often it would change the order.
async fn pipelining_at_1(servers: &Servers, world: &World) -> serde_json::Value {
    let config = config(servers, 1, &servers.world_file);
    let setup = RequestSetup::from_config(&config).expect("template");
    let policy = build_policy(&config.policy, &setup).expect("policy");
    let scorer = EbmClient::from_config(&config.ebm)
        .expect("ebm")
        .expect("url");
    let pool = LeanPool::new(config.lean.clone());
    let env = LeanEnv(pool.clone());
    let template = setup.template;
    let clock = SystemClock::default();
    let params = SearchParams {
        config: &config.search,
        template: &template,
        default_header: &config.lean.header,
        clock: &clock,
        width: None,
        planner: None,
    };
    let (mut wall, mut gen, mut lean_ebm, mut bound) = (0.0, 0.0, 0.0, 0.0);
    let (mut expansions, mut changes) = (0, 0);
    for theorem in world.theorems[..8].iter().map(WorldTheorem::input) {
        let out = search_theorem(&theorem, &params, policy.as_ref(), Some(&scorer), &env).await;
        let t = out.timer.finish(&clock);
        wall += t.wall_ms;
        gen += t.gen_ms;
        lean_ebm += t.lean_ms + t.ebm_ms;
        bound += t.gen_ms.min(t.lean_ms + t.ebm_ms);
        let (e, c) = order_changes(&out.tree);
        assert_eq!(
            e as u64, out.stats.nodes_expanded,
            "the replay matches the search"
        );
        expansions += e;
        changes += c;
    }
    pool.shutdown().await;
    println!(
        "\npipelined expansion at concurrency 1 (8 theorems): wall {:.2} s = generate {:.1}% + Lean/EBM {:.1}% (+ rest); \
         overlap could save at most {:.1}% of a theorem's wall time; it would pop a different node at {changes} of {expansions} expansions ({:.0}%)",
        wall / 1000.0,
        100.0 * gen / wall,
        100.0 * lean_ebm / wall,
        100.0 * bound / wall,
        100.0 * changes as f64 / expansions.max(1) as f64,
    );
    json!({
        "theorems": 8,
        "wall_ms": wall,
        "gen_ms": gen,
        "lean_plus_ebm_ms": lean_ebm,
        "max_saving_share": bound / wall,
        "expansions": expansions,
        "order_changes": changes,
        "order_change_share": changes as f64 / expansions.max(1) as f64,
    })
}

fn main() {
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().map(String::as_str) == Some("--sim-repl") {
        let parsed = sim::repl::ReplArgs::parse(args.skip(1)).expect("sim-repl args");
        if let Err(e) = sim::repl::run(parsed) {
            eprintln!("sim-repl: {e}");
            std::process::exit(1);
        }
        return;
    }

    // `cargo bench` adds `--bench`; other words pick sections (`main`, `short`; default both).
    let sections: Vec<String> = args.filter(|a| !a.starts_with("--")).collect();
    let run = |section: &str| sections.is_empty() || sections.iter().any(|s| s == section);

    let world = world(244);
    let short = short_world(SHORT_THEOREMS);
    let dir = tempfile::tempdir().expect("tempdir");
    let world_file = dir.path().join("world.json");
    std::fs::write(&world_file, serde_json::to_vec(&world).expect("world json"))
        .expect("write world");

    // The fakes run on their own runtime thread, as separate servers would.
    let servers_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let (sglang, ebm) = servers_rt.block_on(async {
        let mut both = world.clone();
        both.theorems.extend(short.theorems.iter().cloned());
        let sglang = sim::sglang::spawn(
            both,
            SglangOptions {
                delay_per_request: GEN_PER_REQUEST / SCALE,
                delay_per_sample: GEN_PER_SAMPLE / SCALE,
                ..SglangOptions::default()
            },
        )
        .await
        .expect("sim sglang");
        let ebm = sim::ebm::spawn(EbmOptions {
            delay_per_request: EBM_PER_REQUEST / SCALE,
            ..EbmOptions::default()
        })
        .await
        .expect("sim ebm");
        (sglang, ebm)
    });
    let servers = Servers {
        sglang_url: sglang.url(),
        ebm_url: ebm.url(),
        world_file,
        _sglang: sglang,
        _ebm: ebm,
    };

    println!(
        "latency model (full scale, every delay / {SCALE} here): generate {:?} + {:?}/sample, Lean {LEAN_PER_REQUEST_MS} ms/request, EBM {:?}/call; num_candidates {NUM_CANDIDATES}",
        GEN_PER_REQUEST, GEN_PER_SAMPLE, EBM_PER_REQUEST
    );
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let worker_start_ms = runtime.block_on(worker_start(&servers, &world));
    println!(
        "one simulated Lean worker from spawn to a started theorem (world file {:.1} MB, parsed at start): {worker_start_ms:.0} ms",
        std::fs::metadata(&servers.world_file).map_or(0.0, |m| m.len() as f64 / 1e6)
    );
    let header = "| case | thms | proved | wall s | thm/h (full scale) | gen idle | gen idle mid-sweep | prompts in flight | generate | lean | ebm | wait | engine | unaccounted |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|";
    let gap_header = "\ngenerate idle (ms of scaled time): before the first request | from the first request until the last theorem starts (share of that window) | in the tail | longest mid-sweep gap\n| case | start-up | mid-sweep | tail | longest |\n|---:|---:|---:|---:|---:|";
    let mut rows = Vec::new();
    let mut pipelining = serde_json::Value::Null;
    if run("main") {
        println!("\n{header}");
        let mut gap_lines = Vec::new();
        for &c in &CONCURRENCY {
            let case = main_case(&world, c);
            rows.push(runtime.block_on(sweep_at(&servers, &case, dir.path(), &mut gap_lines)));
        }
        println!("{gap_header}");
        gap_lines.iter().for_each(|l| println!("{l}"));
        pipelining = runtime.block_on(pipelining_at_1(&servers, &world));
    }
    let mut short_rows = Vec::new();
    if run("short") {
        println!(
            "\nshort sweep: {SHORT_THEOREMS} theorems of 1-6 steps; every header import takes {:?} at full scale",
            HEADER_IMPORT
        );
        println!("{header}");
        let mut gap_lines = Vec::new();
        for &c in &SHORT_CONCURRENCY {
            for (warm, fill_tail, speculate, speculate_tail, label) in [
                (false, false, false, false, "cold"),
                (true, false, false, false, "warm"),
                (true, true, false, false, "warm-fill"),
                (true, false, true, false, "warm-spec"),
                (true, false, false, true, "warm-spec-tail"),
            ] {
                let case = Case {
                    label: format!("short-c{c}-{label}"),
                    theorems: short.theorems.clone(),
                    concurrency: c,
                    header_delay_ms: (HEADER_IMPORT / SCALE).as_millis() as u64,
                    warm_while_loading: warm.then_some(SERVER_LOADING / SCALE),
                    fill_tail,
                    speculate,
                    speculate_tail,
                };
                short_rows.push(runtime.block_on(sweep_at(
                    &servers,
                    &case,
                    dir.path(),
                    &mut gap_lines,
                )));
            }
        }
        println!("{gap_header}");
        gap_lines.iter().for_each(|l| println!("{l}"));
    }
    support::write_result(
        "sweep_latency",
        &json!({
            "scale": SCALE,
            "full_scale_costs": {
                "generate_per_request_ms": GEN_PER_REQUEST.as_millis() as u64,
                "generate_per_sample_ms": GEN_PER_SAMPLE.as_millis() as u64,
                "lean_per_request_ms": LEAN_PER_REQUEST_MS,
                "ebm_per_request_ms": EBM_PER_REQUEST.as_millis() as u64,
            },
            "num_candidates": NUM_CANDIDATES,
            "worker_start_ms": worker_start_ms,
            "header_import_ms": HEADER_IMPORT.as_millis() as u64,
            "sweeps": rows,
            "short_sweeps": short_rows,
            "pipelining_at_concurrency_1": pipelining,
        }),
    );
    drop(servers);
    drop(servers_rt);
}
