//! The engine's own cost, with instant in-process doubles (no HTTP, no processes, no EBM):
//! expansions per second of one search on one core (a current-thread tokio runtime), and the
//! peak heap per node of a single search of about 100k nodes, measured by a counting global
//! allocator. The doubles make realistic text: 16 samples per prompt with duplicates, 300-500
//! byte goal texts, Lean-style error messages; no proof is ever found, so the search runs to
//! its node budget. Not a test: it prints numbers and writes `target/bench/engine.json`.
//!
//! `cargo bench -p search --bench engine`

use std::alloc::{GlobalAlloc, Layout, System};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use async_trait::async_trait;
use search::config::SearchConfig;
use search::engine::{
    search_theorem, FailedAttempt, Node, SearchOutcome, SearchParams, SystemClock,
};
use search::env::{EnvError, ProofCheck, ProofEnv, ProofSession, StateId, TacticOutcome, Theorem};
use search::policy::{Completion, Policy, PolicyError, TokenLogprob};
use search::templates::PromptTemplate;
use serde_json::json;

mod support;

/// Counts live heap bytes and their high-water mark.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let live = LIVE.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

// SAFETY: defers every allocation to the system allocator; only counts sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        System.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        System.dealloc(ptr, layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size >= layout.size() {
            grew(new_size - layout.size());
        } else {
            LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
        }
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const NUM_CANDIDATES: usize = 16;

fn hash(parts: &[&str]) -> u64 {
    let mut h = DefaultHasher::new();
    parts.hash(&mut h);
    h.finish()
}

/// Tactics of the kind DeepSeek-Prover proposes; a prompt gets 16 samples from 10 of them,
/// so about 10 are unique after deduplication.
const TACTICS: [&str; 24] = [
    "nlinarith [sq_nonneg (a - b), sq_nonneg (b - c), sq_nonneg (c - a), mul_pos h₀.1 h₀.2.1]",
    "norm_num [Nat.factorial, Finset.sum_range_succ]",
    "simp only [mul_comm, mul_assoc, mul_left_comm] at h₁ ⊢",
    "field_simp [ha.ne', hb.ne']",
    "rw [div_add_div _ _ (ne_of_gt hb) (ne_of_gt hc), le_div_iff (by positivity)]",
    "ring_nf",
    "linarith [h₁, h₂, sq_nonneg (x + y)]",
    "have h₃ : 0 < a * b := mul_pos ha hb",
    "omega",
    "positivity",
    "intro x hx",
    "constructor",
    "rcases h₀ with ⟨ha, hb, hc⟩",
    "induction n with\n  | zero => simp\n  | succ k ih => simp [Finset.sum_range_succ, ih]; ring",
    "apply mul_pos <;> assumption",
    "exact ⟨by norm_num, by norm_num⟩",
    "nlinarith [mul_self_nonneg (a * b - 1), mul_self_nonneg (a - 1)]",
    "simp_all",
    "aesop",
    "norm_num at h₀ h₁ ⊢",
    "subst h₀",
    "decide",
    "push_cast [Int.emod_emod_of_dvd] at *",
    "gcongr",
];

const HYPOTHESES: [&str; 8] = [
    "a b c : ℝ",
    "h₀ : 0 < a ∧ 0 < b ∧ 0 < c",
    "h₁ : a * b * c = 1",
    "h₂ : a + b + c = 3",
    "f : ℕ → ℕ",
    "hf : ∀ (n : ℕ), f (f n) = n + 2",
    "x y : ℤ",
    "h₃ : x ^ 2 + y ^ 2 = 25",
];

/// A goals text of 300-500 bytes, unique per `seed`.
fn goals_text(seed: u64) -> String {
    let target_len = 300 + (seed % 200) as usize;
    let mut text = String::new();
    let mut k = seed;
    while text.len() + 60 < target_len {
        text.push_str(HYPOTHESES[(k % HYPOTHESES.len() as u64) as usize]);
        text.push('\n');
        k = k
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407)
            >> 7;
    }
    text.push_str(&format!(
        "⊢ a ^ 2 / (b + c) + b ^ 2 / (c + a) + c ^ 2 / (a + b) ≥ {seed} / 2"
    ));
    text
}

/// Samples tactics without a server: deterministic per prompt, 4-character tokens.
struct InstantPolicy;

#[async_trait]
impl Policy for InstantPolicy {
    async fn generate(
        &self,
        prompts: &[String],
        n: usize,
    ) -> Result<Vec<Vec<Completion>>, PolicyError> {
        Ok(prompts
            .iter()
            .map(|p| {
                let h = hash(&[p]);
                (0..n)
                    .map(|j| {
                        let pick = (h as usize + (j % 10) * 7) % TACTICS.len();
                        completion(TACTICS[pick], -0.2 - (j % 10) as f64 * 0.3)
                    })
                    .collect()
            })
            .collect())
    }
}

fn completion(tactic: &str, logprob: f64) -> Completion {
    let text = format!("{tactic}\n");
    let chars: Vec<char> = text.chars().collect();
    let pieces: Vec<String> = chars.chunks(4).map(|c| c.iter().collect()).collect();
    let each = logprob / pieces.len() as f64;
    Completion {
        tokens: pieces
            .into_iter()
            .enumerate()
            .map(|(i, t)| TokenLogprob {
                logprob: each,
                token_id: Some(i as u32),
                text: Some(t),
            })
            .collect(),
        text,
        finish_reason: "stop".into(),
        ..Completion::default()
    }
}

/// A Lean that answers at once: a quarter of the tactics make progress (a new, unique goals
/// text), the rest fail with an error message of realistic length; nothing completes.
struct InstantEnv;

struct InstantSession {
    root: Vec<String>,
    next_state: u32,
}

#[async_trait]
impl ProofEnv for InstantEnv {
    async fn start(&self, _theorem: &Theorem) -> Result<Box<dyn ProofSession>, EnvError> {
        Ok(Box::new(InstantSession {
            root: vec![goals_text(0)],
            next_state: 1,
        }))
    }
}

#[async_trait]
impl ProofSession for InstantSession {
    fn root(&self) -> (StateId, &[String]) {
        (StateId(0), &self.root)
    }

    async fn apply(&mut self, state: StateId, tactic: &str) -> Result<TacticOutcome, EnvError> {
        let h = hash(&[&state.0.to_string(), tactic]);
        Ok(if h.is_multiple_of(4) {
            let id = self.next_state;
            self.next_state += 1;
            TacticOutcome::Progress {
                state: StateId(id),
                goals: vec![goals_text(u64::from(id))],
            }
        } else {
            TacticOutcome::Error {
                message: format!(
                    "linarith failed to find a contradiction\ncase a\na b c : ℝ\nh₀ : 0 < a ∧ 0 < b ∧ 0 < c\n⊢ False failed (state {})",
                    state.0
                ),
            }
        })
    }

    async fn check_proof(&mut self, tactics: &[String]) -> Result<ProofCheck, EnvError> {
        Ok(ProofCheck {
            verified: false,
            proof: tactics.join("\n"),
            errors: vec!["unreachable: nothing completes".into()],
            axioms: Vec::new(),
        })
    }
}

fn theorem() -> Theorem {
    Theorem {
        name: "bench".into(),
        formal_statement: "theorem bench (a b c : ℝ) (h₀ : 0 < a ∧ 0 < b ∧ 0 < c) (h₁ : a * b * c = 1) : a ^ 2 / (b + c) + b ^ 2 / (c + a) + c ^ 2 / (a + b) ≥ 3 / 2 := by".into(),
        header: None,
        extra: Default::default(),
    }
}

async fn search(max_nodes: usize) -> SearchOutcome {
    let config = SearchConfig {
        max_nodes,
        max_depth: 1000,
        num_candidates: NUM_CANDIDATES,
        timeout_per_theorem: 1e9,
        ..SearchConfig::default()
    };
    let template = PromptTemplate::from_config("deepseek-tactic-state").expect("template");
    let clock = SystemClock::default();
    let params = SearchParams {
        config: &config,
        template: &template,
        default_header: "import Mathlib\nimport Aesop\nset_option maxHeartbeats 400000\nopen BigOperators Real Nat Topology Rat",
        clock: &clock,
        width: None,
        planner: None,
    };
    search_theorem(&theorem(), &params, &InstantPolicy, None, &InstantEnv).await
}

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");

    // Throughput: the best of a few 5k-expansion searches (the machine is shared).
    runtime.block_on(search(500));
    let rates: Vec<f64> = (0..5)
        .map(|_| {
            let t = Instant::now();
            let out = runtime.block_on(search(5_000));
            out.stats.nodes_expanded as f64 / t.elapsed().as_secs_f64()
        })
        .collect();
    let best = rates.iter().cloned().fold(0.0, f64::max);
    let median = support::median(&rates);

    // Memory: one search of about 100k nodes (40k expansions x ~2.5 children).
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let t = Instant::now();
    let out = runtime.block_on(search(40_000));
    let secs = t.elapsed().as_secs_f64();
    let peak = PEAK.load(Ordering::Relaxed) - base;
    let retained = LIVE.load(Ordering::Relaxed) - base;
    let nodes = out.tree.len();
    let goal_bytes: usize = out.tree.nodes().iter().map(|n| n.goals.len()).sum();
    let failed = out.failed.len();
    // What the failed-attempt records hold beside the tree: the structs, and each distinct
    // shared text once (an `Arc<str>` allocation: two counters and the bytes). Tactic texts
    // are shared with the tree's nodes, so they are counted here, not there.
    let mut texts = std::collections::HashSet::new();
    let failed_bytes = out.failed.capacity() * std::mem::size_of::<FailedAttempt>()
        + out
            .failed
            .iter()
            .flat_map(|f| [&f.tactic, &f.message])
            .filter(|text| texts.insert(text.as_ptr()))
            .map(|text| 2 * std::mem::size_of::<usize>() + text.len())
            .sum::<usize>();
    drop(out);

    let result = json!({
        "num_candidates": NUM_CANDIDATES,
        "expansions_per_sec_best": best,
        "expansions_per_sec_median": median,
        "expansions_per_sec_runs": rates,
        "big_search": {
            "nodes": nodes,
            "expansions": 40_000,
            "failed_attempts": failed,
            "seconds": secs,
            "peak_heap_bytes": peak,
            "retained_heap_bytes": retained,
            "peak_bytes_per_node": peak as f64 / nodes as f64,
            "retained_bytes_per_node": retained as f64 / nodes as f64,
            "goal_text_bytes_per_node": goal_bytes as f64 / nodes as f64,
            "failed_attempt_bytes_per_node": failed_bytes as f64 / nodes as f64,
            "node_struct_bytes": std::mem::size_of::<Node>(),
        },
    });
    println!(
        "engine alone, one core: {best:.0} expansions/s (best of 5; median {median:.0}), num_candidates {NUM_CANDIDATES}"
    );
    println!(
        "100k-node search: {nodes} nodes, {failed} failed attempts, {secs:.2} s; peak heap {:.1} MB = {:.0} bytes/node (retained {:.0}; of which goal text {:.0}, failed-attempt records {:.0}; Node struct {} bytes)",
        peak as f64 / 1e6,
        peak as f64 / nodes as f64,
        retained as f64 / nodes as f64,
        goal_bytes as f64 / nodes as f64,
        failed_bytes as f64 / nodes as f64,
        std::mem::size_of::<Node>(),
    );
    support::write_result("engine", &result);
}
