//! The leanprover-community/repl wire protocol: request and response types and the framing
//! (a request is one JSON object plus one blank line; a response is pretty-printed JSON over
//! several lines, ended by a blank line).

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::one_tactic::tactic_block;

/// One request to the REPL. Serialises to the exact object the REPL expects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Request {
    Command(CommandRequest),
    Tactic(TacticRequest),
}

/// `{"cmd": "...", "env": n}`: elaborate Lean source, optionally on top of environment `env`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandRequest {
    pub cmd: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<u32>,
}

/// `{"tactic": "...", "proofState": n}`: run one tactic on a proof state. Built only by
/// [`Request::tactic`], so that `tactic` is always ONE tactic as the repl parses it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TacticRequest {
    tactic: String,
    #[serde(rename = "proofState")]
    proof_state: u32,
}

impl TacticRequest {
    pub fn tactic(&self) -> &str {
        &self.tactic
    }

    pub fn proof_state(&self) -> u32 {
        self.proof_state
    }
}

impl Request {
    pub fn command(cmd: impl Into<String>, env: Option<u32>) -> Self {
        Request::Command(CommandRequest {
            cmd: cmd.into(),
            env,
        })
    }

    /// The request for `tactic` as written (by the model, a probe, a path): text that holds
    /// several top-level tactics goes as one `( … )` block, since the repl parses one tactic
    /// per request (see [`crate::one_tactic`]). Every tactic request is built here.
    pub fn tactic(tactic: &str, proof_state: u32) -> Self {
        Request::Tactic(TacticRequest {
            tactic: tactic_block(&[tactic]),
            proof_state,
        })
    }

    /// The bytes to write: compact JSON and exactly one blank line. The REPL reads a request
    /// up to the blank line, so the JSON itself must not contain one (serde escapes newlines).
    pub fn to_frame(&self) -> String {
        let mut text = serde_json::to_string(self).expect("requests always serialise");
        text.push_str("\n\n");
        text
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pos {
    pub line: u32,
    pub column: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    Info,
}

/// A Lean message (`logInfo`, warnings, errors) as the REPL reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub severity: Severity,
    pub pos: Pos,
    #[serde(rename = "endPos", default)]
    pub end_pos: Option<Pos>,
    pub data: String,
}

/// A `sorry` in an elaborated command (its `proofState` is where tactic mode starts), or a
/// goal a tactic left admitted. Tactic-mode sorries have no source position, and the repl
/// then omits `pos` and `endPos` altogether (repl `REPL/JSON.lean`, `instance : ToJson Sorry`:
/// `if r.pos.line ≠ 0 then [("pos", ...)] else []`; `test/sorry_hypotheses.expected.out`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sorry {
    #[serde(rename = "proofState", default)]
    pub proof_state: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pos: Option<Pos>,
    #[serde(rename = "endPos", default, skip_serializing_if = "Option::is_none")]
    pub end_pos: Option<Pos>,
    pub goal: String,
}

/// Answer to a `cmd` request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandResponse {
    pub env: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<Message>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sorries: Vec<Sorry>,
}

/// Answer to a `tactic` request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TacticResponse {
    #[serde(rename = "proofState")]
    pub proof_state: u32,
    pub goals: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<Message>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sorries: Vec<Sorry>,
    /// `"Completed"`, `"Incomplete: ..."`, ...; absent on REPLs older than v4.19.
    #[serde(
        rename = "proofStatus",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub proof_status: Option<String>,
}

/// The REPL's other error form: `{"message": "Lean error:\n..."}`, `{"message": "Unknown proof state."}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplError {
    pub message: String,
}

/// The repl's answers to a `proofState` / `env` it does not hold (repl `REPL/Main.lean`
/// @v4.24.0: `return .inr ⟨"Unknown proof state."⟩`, `⟨"Unknown environment."⟩`). We only
/// send numbers the process gave us, so these mean our bookkeeping and the process disagree
/// (a bug, or a replaced process): never Lean's verdict on a tactic.
pub const LOST_STATE_MESSAGES: [&str; 2] = ["Unknown proof state.", "Unknown environment."];

impl ReplError {
    /// Whether this is the repl saying it does not hold the state or environment we named.
    pub fn is_lost_state(&self) -> bool {
        LOST_STATE_MESSAGES.contains(&self.message.trim())
    }
}

/// What a request can come back as: its own response type, or the `{"message"}` error form.
pub type Reply<T> = Result<T, ReplError>;

/// Response text that is not a valid REPL answer.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{reason}: {snippet}")]
pub struct MalformedResponse {
    pub reason: String,
    /// The start of the offending text, for the log.
    pub snippet: String,
}

/// Parses one response (the text of a frame, without its blank line).
pub fn parse_reply<T: DeserializeOwned>(text: &str) -> Result<Reply<T>, MalformedResponse> {
    let malformed = |reason: String| MalformedResponse {
        reason,
        snippet: text.chars().take(200).collect(),
    };
    let value: serde_json::Value =
        serde_json::from_str(text).map_err(|e| malformed(format!("not JSON ({e})")))?;
    let object = value
        .as_object()
        .ok_or_else(|| malformed("not a JSON object".into()))?;
    // The error form carries `message` (singular) and none of the success fields.
    if let Some(serde_json::Value::String(message)) = object.get("message") {
        if !object.contains_key("env") && !object.contains_key("proofState") {
            return Ok(Err(ReplError {
                message: message.clone(),
            }));
        }
    }
    T::deserialize(value)
        .map(Ok)
        .map_err(|e| malformed(format!("unexpected response shape ({e})")))
}

/// Accumulates lines of the REPL's output into frames: a frame ends at a blank line.
/// Blank lines before a frame starts are skipped (they carry nothing).
#[derive(Debug, Default)]
pub struct FrameBuffer {
    text: String,
}

impl FrameBuffer {
    /// Feeds one line (with or without its newline); returns the frame it completes, if any.
    pub fn push_line(&mut self, line: &str) -> Option<String> {
        let line = line.trim_end_matches(['\n', '\r']);
        if line.trim().is_empty() {
            if self.text.is_empty() {
                return None;
            }
            return Some(std::mem::take(&mut self.text));
        }
        if !self.text.is_empty() {
            self.text.push('\n');
        }
        self.text.push_str(line);
        None
    }

    /// Text received since the last complete frame (what a dying process left half-written).
    pub fn partial(&self) -> &str {
        &self.text
    }
}

/// Messages of error severity, as Lean wrote them.
pub fn error_messages(messages: &[Message]) -> Vec<String> {
    messages
        .iter()
        .filter(|m| m.severity == Severity::Error)
        .map(|m| m.data.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(output: &str) -> Vec<String> {
        let mut buffer = FrameBuffer::default();
        output
            .split_inclusive('\n')
            .filter_map(|line| buffer.push_line(line))
            .collect()
    }

    #[test]
    fn requests_are_compact_json_and_one_blank_line() {
        let frame = Request::command("import Mathlib\nopen Nat", None).to_frame();
        assert_eq!(frame, "{\"cmd\":\"import Mathlib\\nopen Nat\"}\n\n");
        let frame = Request::tactic("simp", 3).to_frame();
        assert_eq!(frame, "{\"tactic\":\"simp\",\"proofState\":3}\n\n");
        // Two tactics would be "expected end of input" (repl issue #43): one block instead.
        let frame = Request::tactic("rw [h]; norm_num", 3).to_frame();
        assert_eq!(
            frame,
            "{\"tactic\":\"(rw [h]; norm_num\\n)\",\"proofState\":3}\n\n"
        );
        assert_eq!(
            Request::command("example : True := trivial", Some(0)).to_frame(),
            "{\"cmd\":\"example : True := trivial\",\"env\":0}\n\n"
        );
    }

    /// The shapes below are those of the REPL's own test expectations (test/*.expected.out).
    #[test]
    fn multi_line_command_response_with_sorry_and_warning() {
        let output = "{\"sorries\":\n [{\"proofState\": 0,\n   \"pos\": {\"line\": 1, \"column\": 18},\n   \"goal\": \"⊢ Nat\",\n   \"endPos\": {\"line\": 1, \"column\": 23}}],\n \"messages\":\n [{\"severity\": \"warning\",\n   \"pos\": {\"line\": 1, \"column\": 4},\n   \"endPos\": {\"line\": 1, \"column\": 5},\n   \"data\": \"declaration uses 'sorry'\"}],\n \"env\": 0}\n\n{\"proofStatus\": \"Completed\", \"proofState\": 3, \"goals\": []}\n\n";
        let frames = frames(output);
        assert_eq!(frames.len(), 2);
        let cmd: CommandResponse = parse_reply(&frames[0]).unwrap().unwrap();
        assert_eq!(cmd.env, 0);
        assert_eq!(cmd.sorries[0].proof_state, Some(0));
        assert_eq!(cmd.sorries[0].goal, "⊢ Nat");
        assert_eq!(cmd.messages[0].severity, Severity::Warning);
        let tac: TacticResponse = parse_reply(&frames[1]).unwrap().unwrap();
        assert_eq!(tac.proof_status.as_deref(), Some("Completed"));
        assert!(tac.goals.is_empty());
    }

    #[test]
    fn error_form_and_garbage() {
        let e = parse_reply::<TacticResponse>("{\"message\": \"Unknown proof state.\"}").unwrap();
        assert_eq!(e.unwrap_err().message, "Unknown proof state.");
        assert!(parse_reply::<TacticResponse>("segfault!").is_err());
        assert!(parse_reply::<CommandResponse>("{\"goals\": []}").is_err());
        let m = parse_reply::<TacticResponse>(
            "{\"proofState\": 1, \"goals\": [], \"messages\": [{\"severity\": \"error\", \"pos\": {\"line\": 0, \"column\": 0}, \"endPos\": null, \"data\": \"boom\"}]}",
        )
        .unwrap()
        .unwrap();
        assert_eq!(error_messages(&m.messages), vec!["boom"]);
    }
}
