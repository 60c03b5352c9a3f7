//! The bridge's own cost per tactic round trip, against the simulated REPL with zero delay,
//! beside a raw pipe echo (`cat`) and a raw frame round trip to the same simulated REPL, all in
//! one run. The three are timed in interleaved blocks (the machine is shared, so load
//! drifts) and each reports its fastest block, both in wall time and in this process's own
//! CPU time (user + sys): the CPU figure is what the bridge itself spends per round trip,
//! the REPL's work being in the child. Not a test: it prints numbers.
//!
//! `cargo bench -p lean-bridge --bench round_trip`

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use formats::theorems::Theorem;
use lean_bridge::protocol::Request;
use lean_bridge::{LeanConfig, LeanPool, Session, StateId, TacticOutcome};
use sim::world::World;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

const WARMUP: u32 = 200;
const BLOCKS: u32 = 10;
const ROUNDS_PER_BLOCK: u32 = 500;

fn world_path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/lean_world.json")
}

/// A child process spoken to in raw frames: write, read lines up to a blank one.
struct RawPipe {
    _child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    line: String,
}

impl RawPipe {
    fn spawn(argv: &[&str]) -> Self {
        let mut child = Command::new(argv[0])
            .args(&argv[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn");
        Self {
            stdin: child.stdin.take().unwrap(),
            stdout: BufReader::new(child.stdout.take().unwrap()),
            _child: child,
            line: String::new(),
        }
    }

    async fn round(&mut self, frame: &str) {
        self.stdin.write_all(frame.as_bytes()).await.unwrap();
        self.stdin.flush().await.unwrap();
        loop {
            self.line.clear();
            assert!(
                self.stdout.read_line(&mut self.line).await.unwrap() > 0,
                "EOF"
            );
            if self.line.trim().is_empty() {
                return;
            }
        }
    }
}

async fn apply(session: &mut Session, root: StateId) {
    let outcome = session.apply(root, "constructor").await.unwrap();
    assert!(matches!(outcome, TacticOutcome::Progress { .. }));
}

/// User + system CPU time of this process so far.
fn cpu_time() -> Duration {
    // SAFETY: getrusage fills the struct it is given.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// Fastest block seen so far, per round: (wall, CPU of this process).
#[derive(Clone, Copy)]
struct Best {
    wall: Duration,
    cpu: Duration,
}

impl Best {
    const NONE: Best = Best {
        wall: Duration::MAX,
        cpu: Duration::MAX,
    };

    fn record(&mut self, wall_started: Instant, cpu_started: Duration) {
        self.wall = self.wall.min(wall_started.elapsed() / ROUNDS_PER_BLOCK);
        self.cpu = self.cpu.min((cpu_time() - cpu_started) / ROUNDS_PER_BLOCK);
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let world: World =
        serde_json::from_str(&std::fs::read_to_string(world_path()).unwrap()).unwrap();
    let t = world.theorem("and_intro_steps").unwrap();
    let theorem = Theorem {
        name: t.name.clone(),
        formal_statement: t.formal_statement.clone(),
        header: None,
        extra: Default::default(),
    };
    let stepwise = env!("CARGO_BIN_EXE_stepwise");
    let world_arg = world_path().display().to_string();
    let tactic = Request::tactic("constructor", 0).to_frame();

    let mut echo = RawPipe::spawn(&["cat"]);
    let mut raw = RawPipe::spawn(&[stepwise, "sim", "repl", "--world", &world_arg]);
    raw.round(&Request::command("import Mathlib", None).to_frame())
        .await;
    raw.round(
        &Request::command(format!("{} := by sorry", theorem.statement_head()), Some(0)).to_frame(),
    )
    .await;
    let pool: Arc<LeanPool> = LeanPool::new(LeanConfig {
        command: vec![
            stepwise.into(),
            "sim".into(),
            "repl".into(),
            "--world".into(),
            world_arg.clone(),
        ],
        workers: 1,
        header: "import Mathlib".into(),
        max_requests_per_worker: u64::MAX,
        ..LeanConfig::default()
    });
    let mut session = pool.start_theorem(&theorem).await.unwrap();
    let root = session.root().0;

    for _ in 0..WARMUP {
        echo.round(&tactic).await;
        raw.round(&tactic).await;
        apply(&mut session, root).await;
    }
    let (mut echo_best, mut raw_best, mut session_best) = (Best::NONE, Best::NONE, Best::NONE);
    for _ in 0..BLOCKS {
        let (wall, cpu) = (Instant::now(), cpu_time());
        for _ in 0..ROUNDS_PER_BLOCK {
            echo.round(&tactic).await;
        }
        echo_best.record(wall, cpu);
        let (wall, cpu) = (Instant::now(), cpu_time());
        for _ in 0..ROUNDS_PER_BLOCK {
            raw.round(&tactic).await;
        }
        raw_best.record(wall, cpu);
        let (wall, cpu) = (Instant::now(), cpu_time());
        for _ in 0..ROUNDS_PER_BLOCK {
            apply(&mut session, root).await;
        }
        session_best.record(wall, cpu);
    }

    println!(
        "tactic round trip, fastest of {BLOCKS} interleaved blocks of {ROUNDS_PER_BLOCK} (wall / this process's CPU):"
    );
    for (what, best) in [
        ("raw pipe echo (cat)", echo_best),
        ("raw frame to simulated REPL (no parsing)", raw_best),
        ("Session::apply over the simulated REPL", session_best),
    ] {
        println!("  {what:<37} {:>10.2?} / {:>10.2?}", best.wall, best.cpu);
    }
    println!(
        "  bridge overhead (apply - raw frame)   {:>10.2?} / {:>10.2?}",
        session_best.wall.saturating_sub(raw_best.wall),
        session_best.cpu.saturating_sub(raw_best.cpu)
    );
}
