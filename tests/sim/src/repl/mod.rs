//! A simulated Lean REPL — a test double, documented as such. It is a real process that
//! speaks the leanprover-community/repl protocol on stdin/stdout (requests up to a blank
//! line; pretty-printed multi-line responses ended by a blank line; exit on invalid JSON)
//! over a scripted [`World`](crate::world::World), with faults on demand so the bridge's
//! recovery can be tested without Lean:
//!
//! ```text
//! stepwise sim repl --world FILE.json [--log FILE] [--log-answers FILE] [--delay-ms N] [--header-delay-ms N]
//!           [--crash-after N] [--hang-on TACTIC] [--crash-on TACTIC] [--garbage-after N] [--no-proof-status]
//!           [--shadow-namespace NS]... [--no-tactic-blocks] [--crash-on-cmd TEXT]
//!           [--forget-after N] [--lean-version V]
//! ```
//! `--crash-after N` answers N requests and dies on the next (each process: a pool's fresh
//! worker starts counting again); `--crash-on TACTIC` dies whenever it is asked to run that
//! tactic; `--garbage-after N` answers every request after the N-th with non-JSON; `--log`
//! appends each request as a JSON line (`{pid}` in the path becomes the process id, so each
//! worker of a pool writes its own file) and `--log-answers` each answer the same way;
//! `--header-delay-ms N` adds N ms to every header import (a command of `import`s without an
//! env: Mathlib's import is the slow one); `--shadow-namespace NS` gives namespace NS a
//! constant of every theorem's name (see `#print axioms`); `--no-tactic-blocks` refuses a
//! parenthesised tactic sequence; `--crash-on-cmd TEXT` dies on any command containing TEXT;
//! `--forget-after N` drops every proof state after N requests, so later tactics on them get
//! `Unknown proof state.` (as when the process behind a pipe is not the one we think).
//! `--lean-version V` is what `#eval Lean.versionString` answers (default [`SIM_LEAN_VERSION`]).

mod elab;
mod pretty;

use std::fs::File;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::time::Duration;

use crate::world::World;
use elab::{Answer, Options, SimLean};
use lean_bridge::protocol::{FrameBuffer, Request};

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("{0}\nusage: stepwise sim repl --world FILE.json [--log FILE] [--log-answers FILE] [--delay-ms N] [--header-delay-ms N] [--crash-after N] [--hang-on TACTIC] [--crash-on TACTIC] [--garbage-after N] [--no-proof-status] [--shadow-namespace NS]... [--no-tactic-blocks] [--crash-on-cmd TEXT] [--forget-after N] [--lean-version V]")]
    Usage(String),
    #[error("cannot load world {path}: {message}")]
    World { path: PathBuf, message: String },
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The real REPL exits when a request is not valid JSON.
    #[error("could not parse request as JSON: {0}")]
    InvalidJson(String),
    #[error("simulated crash after {0} requests")]
    SimulatedCrash(u64),
    #[error("simulated crash running tactic {0:?}")]
    SimulatedTacticCrash(String),
    #[error("simulated crash elaborating a command containing {0:?}")]
    SimulatedCommandCrash(String),
}

/// The flags of the simulated REPL.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReplArgs {
    pub world: PathBuf,
    pub log: Option<PathBuf>,
    pub log_answers: Option<PathBuf>,
    pub delay_ms: u64,
    pub header_delay_ms: u64,
    pub crash_after: Option<u64>,
    pub hang_on: Option<String>,
    pub crash_on: Option<String>,
    pub garbage_after: Option<u64>,
    pub no_proof_status: bool,
    pub shadow_namespaces: Vec<String>,
    pub no_tactic_blocks: bool,
    pub crash_on_cmd: Option<String>,
    pub forget_after: Option<u64>,
    pub lean_version: Option<String>,
}

/// The Lean version the simulated REPL claims by default.
pub const SIM_LEAN_VERSION: &str = "4.24.0";

impl ReplArgs {
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Self, RunError> {
        let mut parsed = ReplArgs::default();
        let mut world = None;
        let mut args = args.into_iter();
        while let Some(flag) = args.next() {
            let mut value = || {
                args.next()
                    .ok_or_else(|| RunError::Usage(format!("{flag} needs a value")))
            };
            let number = |v: String| {
                v.parse::<u64>()
                    .map_err(|_| RunError::Usage(format!("{flag} takes a number, got {v:?}")))
            };
            match flag.as_str() {
                "--world" => world = Some(PathBuf::from(value()?)),
                "--log" => parsed.log = Some(PathBuf::from(value()?)),
                "--log-answers" => parsed.log_answers = Some(PathBuf::from(value()?)),
                "--delay-ms" => parsed.delay_ms = number(value()?)?,
                "--header-delay-ms" => parsed.header_delay_ms = number(value()?)?,
                "--crash-after" => parsed.crash_after = Some(number(value()?)?),
                "--hang-on" => parsed.hang_on = Some(value()?),
                "--crash-on" => parsed.crash_on = Some(value()?),
                "--garbage-after" => parsed.garbage_after = Some(number(value()?)?),
                "--no-proof-status" => parsed.no_proof_status = true,
                "--shadow-namespace" => parsed.shadow_namespaces.push(value()?),
                "--no-tactic-blocks" => parsed.no_tactic_blocks = true,
                "--crash-on-cmd" => parsed.crash_on_cmd = Some(value()?),
                "--forget-after" => parsed.forget_after = Some(number(value()?)?),
                "--lean-version" => parsed.lean_version = Some(value()?),
                other => return Err(RunError::Usage(format!("unknown flag {other:?}"))),
            }
        }
        parsed.world = world.ok_or_else(|| RunError::Usage("--world is required".into()))?;
        Ok(parsed)
    }
}

/// Serves stdin/stdout until stdin closes (Ok), or a simulated crash / invalid JSON (Err:
/// the caller exits non-zero, as the real REPL would die).
pub fn run(args: ReplArgs) -> Result<(), RunError> {
    let world_error = |message: String| RunError::World {
        path: args.world.clone(),
        message,
    };
    let text = std::fs::read_to_string(&args.world).map_err(|e| world_error(e.to_string()))?;
    let world: World = serde_json::from_str(&text).map_err(|e| world_error(e.to_string()))?;
    let mut lean = SimLean::new(
        world,
        Options {
            no_proof_status: args.no_proof_status,
            hang_on: args.hang_on.clone(),
            shadow_namespaces: args.shadow_namespaces.clone(),
            no_tactic_blocks: args.no_tactic_blocks,
            lean_version: args
                .lean_version
                .clone()
                .unwrap_or_else(|| SIM_LEAN_VERSION.into()),
        },
    );
    let mut log = args.log.as_deref().map(open_log).transpose()?;
    let mut answer_log = args.log_answers.as_deref().map(open_log).transpose()?;
    let stdin = std::io::stdin().lock();
    let mut stdout = std::io::stdout().lock();
    let mut frames = FrameBuffer::default();
    let mut served = 0u64;
    let mut lines = stdin.lines();
    loop {
        let frame = match lines.next() {
            Some(line) => match frames.push_line(&line?) {
                Some(frame) => frame,
                None => continue,
            },
            // At EOF the REPL still runs a last request that lacks its blank line.
            None if !frames.partial().trim().is_empty() => {
                std::mem::take(&mut frames).partial().to_owned()
            }
            None => return Ok(()),
        };
        let request: serde_json::Value =
            serde_json::from_str(&frame).map_err(|e| RunError::InvalidJson(e.to_string()))?;
        if let Some(log) = &mut log {
            log_line(log, &request)?;
        }
        if args.crash_after.is_some_and(|n| served >= n) {
            return Err(RunError::SimulatedCrash(served));
        }
        if let (Some(crash_on), Some(tactic)) = (&args.crash_on, request.get("tactic")) {
            if tactic == crash_on.as_str() {
                return Err(RunError::SimulatedTacticCrash(crash_on.clone()));
            }
        }
        if let (Some(text), Some(cmd)) = (&args.crash_on_cmd, request["cmd"].as_str()) {
            if cmd.contains(text.as_str()) {
                return Err(RunError::SimulatedCommandCrash(text.clone()));
            }
        }
        if args.delay_ms > 0 {
            std::thread::sleep(Duration::from_millis(args.delay_ms));
        }
        if args.header_delay_ms > 0 && is_header_import(&request) {
            std::thread::sleep(Duration::from_millis(args.header_delay_ms));
        }
        if args.forget_after == Some(served) {
            lean.forget_proof_states();
        }
        let output = if args.garbage_after.is_some_and(|n| served >= n) {
            "<<simulated garbage: not JSON>>\n\n".to_owned()
        } else {
            let request: Request = serde_json::from_value(request)
                .map_err(|e| RunError::InvalidJson(e.to_string()))?;
            match lean.handle(request) {
                Answer::Reply(value) => {
                    if let Some(log) = &mut answer_log {
                        log_line(log, &value)?;
                    }
                    format!("{}\n\n", pretty::pretty(&value))
                }
                Answer::Hang => hang(),
            }
        };
        served += 1;
        stdout.write_all(output.as_bytes())?;
        stdout.flush()?;
    }
}

/// Opens a log for appending; `{pid}` in its path becomes this process's id.
fn open_log(path: &std::path::Path) -> std::io::Result<File> {
    let path = path
        .display()
        .to_string()
        .replace("{pid}", &std::process::id().to_string());
    File::options().create(true).append(true).open(path)
}

/// One write per line: several workers append to the same log, and O_APPEND keeps a single
/// write whole where `writeln!`'s pieces could interleave.
fn log_line(log: &mut File, value: &serde_json::Value) -> std::io::Result<()> {
    log.write_all(format!("{value}\n").as_bytes())
}

/// A command that imports modules into a fresh environment: imports are only valid without an
/// `env`, at the start of a file.
fn is_header_import(request: &serde_json::Value) -> bool {
    request.get("env").is_none_or(serde_json::Value::is_null)
        && request["cmd"]
            .as_str()
            .is_some_and(|cmd| cmd.trim_start().starts_with("import "))
}

/// Never answers, like a runaway tactic; but exits once orphaned, so a test run that dies
/// without killing its workers leaves no hung process behind on a shared machine.
fn hang() -> ! {
    // SAFETY: getppid has no preconditions.
    let parent = unsafe { libc::getppid() };
    loop {
        std::thread::sleep(Duration::from_millis(200));
        if unsafe { libc::getppid() } != parent {
            std::process::exit(1);
        }
    }
}
