//! One REPL process: spawn, one request at a time with a deadline, stderr tail, memory.
//!
//! A worker that faults (timeout, EOF, garbage, broken pipe) is killed on the spot and must
//! be replaced; the session layer above decides how to recover.

use std::collections::VecDeque;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::de::DeserializeOwned;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::task::JoinHandle;

use crate::config::LeanConfig;
use crate::error::LeanError;
use crate::protocol::{parse_reply, FrameBuffer, Reply, Request};

/// Lines of the REPL's stderr kept for error reports.
const STDERR_TAIL_LINES: usize = 50;

/// Why a worker became unusable.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Fault {
    #[error("no answer within {0:?} (worker killed)")]
    Timeout(Duration),
    #[error("the REPL closed its output ({0})")]
    Eof(String),
    #[error("unreadable REPL output: {0}")]
    Garbage(String),
    #[error("pipe to the REPL failed: {0}")]
    Io(String),
    /// `Unknown proof state.` / `Unknown environment.`: the process does not hold what we
    /// asked for, so nothing it says about our states can be trusted any more.
    #[error("the REPL answered {0:?} (worker killed)")]
    LostState(String),
}

impl Fault {
    pub fn is_lost_state(&self) -> bool {
        matches!(self, Fault::LostState(_))
    }
}

pub struct Worker {
    child: Child,
    /// The child leads its own process group, so `lake env repl`'s grandchild dies with it.
    pgid: Option<i32>,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
    stderr_task: JoinHandle<()>,
    requests: u64,
    dead: bool,
}

impl Worker {
    /// Starts `sandbox ++ command` in `cwd` (argv, never a shell).
    pub fn spawn(config: &LeanConfig) -> Result<Self, LeanError> {
        let argv: Vec<&String> = config.sandbox.iter().chain(&config.command).collect();
        let spawn_error = |message: String| LeanError::Spawn {
            command: argv
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            message,
        };
        let (program, args) = argv
            .split_first()
            .ok_or_else(|| spawn_error("empty command".into()))?;
        let mut child = Command::new(program)
            .args(args)
            .current_dir(&config.cwd)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| spawn_error(format!("{e} (cwd {})", config.cwd)))?;
        let pgid = child.id().map(|pid| pid as i32);
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
        let stderr = child.stderr.take().expect("stderr is piped");
        let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
        let tail = Arc::clone(&stderr_tail);
        // Drains stderr for the process's whole life (a full pipe would block the REPL),
        // tolerating non-UTF-8 output.
        let stderr_task = tokio::spawn(async move {
            let mut stderr = BufReader::new(stderr);
            let mut line = Vec::new();
            while matches!(stderr.read_until(b'\n', &mut line).await, Ok(n) if n > 0) {
                let text = String::from_utf8_lossy(&line).trim_end().to_owned();
                line.clear();
                let mut tail = tail.lock().expect("stderr tail lock");
                if tail.len() == STDERR_TAIL_LINES {
                    tail.pop_front();
                }
                tail.push_back(text);
            }
        });
        tracing::debug!(pid = ?pgid, "started Lean REPL worker");
        Ok(Self {
            child,
            pgid,
            stdin,
            stdout,
            stderr_tail,
            stderr_task,
            requests: 0,
            dead: false,
        })
    }

    /// Sends one request and reads its response within `timeout`. On any fault the worker
    /// is killed and every later call fails.
    pub async fn send<T: DeserializeOwned>(
        &mut self,
        request: &Request,
        timeout: Duration,
    ) -> Result<Reply<T>, Fault> {
        if self.dead {
            return Err(Fault::Eof("worker already faulted".into()));
        }
        self.requests += 1;
        let result = match tokio::time::timeout(timeout, self.round_trip(request)).await {
            Ok(Ok(text)) => match parse_reply(&text) {
                Ok(Err(e)) if e.is_lost_state() => Err(Fault::LostState(e.message)),
                reply => reply.map_err(|e| Fault::Garbage(e.to_string())),
            },
            Ok(Err(fault)) => Err(fault),
            Err(_) => Err(Fault::Timeout(timeout)),
        };
        match result {
            Ok(reply) => Ok(reply),
            Err(fault) => Err(self.fail(fault).await),
        }
    }

    async fn round_trip(&mut self, request: &Request) -> Result<String, Fault> {
        let io = |e: std::io::Error| Fault::Io(e.to_string());
        self.stdin
            .write_all(request.to_frame().as_bytes())
            .await
            .map_err(io)?;
        self.stdin.flush().await.map_err(io)?;
        let mut frame = FrameBuffer::default();
        let mut line = String::new();
        loop {
            line.clear();
            if self.stdout.read_line(&mut line).await.map_err(io)? == 0 {
                let partial = frame.partial();
                return Err(Fault::Eof(if partial.is_empty() {
                    "no response".into()
                } else {
                    format!("after partial response {partial:?}")
                }));
            }
            if let Some(text) = frame.push_line(&line) {
                return Ok(text);
            }
        }
    }

    /// Kills the process and, for an EOF, adds how it exited (after letting stderr drain).
    async fn fail(&mut self, fault: Fault) -> Fault {
        self.dead = true;
        let fault = match fault {
            Fault::Eof(what) => {
                let grace = Duration::from_millis(200);
                match tokio::time::timeout(grace, self.child.wait()).await {
                    Ok(Ok(status)) => Fault::Eof(format!("{what}; {status}")),
                    _ => Fault::Eof(what),
                }
            }
            fault => fault,
        };
        self.kill();
        // The drain task ends when every writer of the pipe is gone.
        let _ = tokio::time::timeout(Duration::from_millis(200), &mut self.stderr_task).await;
        tracing::debug!(%fault, "Lean REPL worker faulted");
        fault
    }

    fn kill(&mut self) {
        if let Some(pgid) = self.pgid.take() {
            // SAFETY: plain syscall on the process group this worker created.
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
        }
        let _ = self.child.start_kill();
    }

    /// Requests sent to this process so far.
    pub fn requests(&self) -> u64 {
        self.requests
    }

    pub fn is_dead(&self) -> bool {
        self.dead
    }

    /// The last lines the REPL wrote to stderr.
    pub fn stderr_tail(&self) -> String {
        let tail = self.stderr_tail.lock().expect("stderr tail lock");
        tail.iter().cloned().collect::<Vec<_>>().join("\n")
    }

    /// Resident memory of every process in the worker's process group, in MiB, from /proc.
    /// `lake env repl` runs the REPL as a child, and a process whose parent exited is no
    /// longer anyone's descendant, but all stay in the group the worker leads (and that
    /// [`Worker::kill`] kills). None where /proc is unavailable.
    pub fn rss_mb(&self) -> Option<u64> {
        let pgid = self.pgid?;
        let total_kb: u64 = std::fs::read_dir("/proc")
            .ok()?
            .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|&pid| process_group(pid) == Some(pgid))
            .filter_map(vm_rss_kb)
            .sum();
        (total_kb > 0).then_some(total_kb / 1024)
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.kill();
        self.stderr_task.abort();
    }
}

fn vm_rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The process group of `pid`: field 5 of `/proc/PID/stat`, counted after the `)` that
/// ends the command name (which may itself hold spaces and parentheses).
fn process_group(pid: u32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(2)?.parse().ok()
}
