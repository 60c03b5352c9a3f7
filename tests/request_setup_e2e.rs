//! One request setup per expansion mode, seen from three sides: the first `/generate` request
//! a sweep sends for a theorem (as the simulated SGLang received it), the template and stops
//! the sweep's manifest.json records, and what `stepwise prompt` prints for the same node. All
//! three come from `RequestSetup::from_config`, so they must agree byte for byte.

use crate::support;

use std::path::Path;

use search::policy::http_policy::PROBE_PROMPT;
use serde_json::{json, Value};
use sim::sglang::SglangOptions;
use support::sweep::{ok, SWEEP_WORLD};

/// What one side says a request carries. An empty regex list is absent on every side: the
/// client leaves `stop_regex` out of the body, the manifest skips it, `prompt` prints no line.
#[derive(Debug, PartialEq)]
struct Sent {
    prompt: Option<String>,
    template: Option<String>,
    stop: Value,
    stop_regex: Value,
}

/// The sweep's first `/generate` body: its first prompt (with `sampling = "repeat"` the list
/// holds it `num_candidates` times) and its stops.
fn from_request(body: &Value) -> Sent {
    let prompt = match &body["text"] {
        Value::Array(texts) => &texts[0],
        one => one,
    };
    let params = &body["sampling_params"];
    Sent {
        prompt: Some(prompt.as_str().unwrap().to_owned()),
        template: None,
        stop: params["stop"].clone(),
        stop_regex: params.get("stop_regex").cloned().unwrap_or(json!([])),
    }
}

fn from_manifest(manifest: &Value) -> Sent {
    Sent {
        prompt: None,
        template: Some(manifest["template"]["name"].as_str().unwrap().to_owned()),
        stop: manifest["stop"].clone(),
        stop_regex: manifest.get("stop_regex").cloned().unwrap_or(json!([])),
    }
}

/// `stepwise prompt`'s stdout (the prompt) and its stderr lines naming template and stops.
fn from_prompt(stdout: &[u8], stderr: &str) -> Sent {
    let line = |prefix: &str| {
        stderr
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .map(str::to_owned)
    };
    let json_line = |prefix: &str| line(prefix).map(|l| serde_json::from_str(&l).unwrap());
    Sent {
        prompt: Some(String::from_utf8(stdout.to_vec()).unwrap()),
        template: line("template: "),
        stop: json_line("stop strings: ").expect("a stop strings line"),
        stop_regex: json_line("stop regexes (SGLang): ").unwrap_or(json!([])),
    }
}

/// `stepwise prompt` for the root of the theorems file's first theorem, under the config the
/// sweep wrote to `dir/config.toml`.
fn prompt(dir: &Path, expansion: &str) -> Sent {
    let lean = json!([
        env!("CARGO_BIN_EXE_stepwise"),
        "sim",
        "repl",
        "--world",
        support::data(SWEEP_WORLD.world)
    ]);
    let out = ok(std::process::Command::new(env!("CARGO_BIN_EXE_stepwise"))
        .arg("prompt")
        .arg("--config")
        .arg(dir.join("config.toml"))
        .arg("--theorems")
        .arg(support::data(SWEEP_WORLD.theorems))
        .args(["--set", &format!("lean.command={lean}")])
        .args(["--set", &format!("search.expansion={expansion}")])
        .output()
        .unwrap());
    from_prompt(&out.stdout, &String::from_utf8_lossy(&out.stderr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sweep_requests_manifest_and_prompt_agree_in_each_expansion_mode() {
    let server = SWEEP_WORLD.sglang(SglangOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    // The defaults of each mode, so the check is not passed by two sides both wrong.
    for (expansion, template, stop, stop_regex) in [
        (
            "tactic",
            "deepseek-tactic-state",
            json!(["```", "\n\n", "/- tactic state:"]),
            json!([search::templates::DEEPSEEK_TACTIC_END]),
        ),
        ("proof", "deepseek-v2-proof", json!(["```"]), json!([])),
    ] {
        let logged = server.log.entries().len();
        // One theorem at a time: the first request is the first theorem's root.
        let set = format!("search.expansion={expansion}");
        let args = ["--concurrency", "1", "--set", &set];
        ok(SWEEP_WORLD
            .run(dir.path(), expansion, &server.url(), &[], &args)
            .await);
        // After the start-up check's probe, if the mode sends a stop regex.
        let first = server.log.entries()[logged..]
            .iter()
            // Past the start-up checks: the BOS check's request asks for the prompt's tokens,
            // the stop_regex probe sends the probe prompt.
            .find(|e| {
                e.path == "/generate"
                    && e.body.get("logprob_start_len").is_none()
                    && e.body["text"] != PROBE_PROMPT
            })
            .map(|e| e.body.clone())
            .expect("a generate request");
        let request = from_request(&first);
        let manifest = from_manifest(&support::read_json(
            &dir.path().join(expansion).join("manifest.json"),
        ));
        let printed = prompt(dir.path(), expansion);

        assert_eq!(printed.prompt, request.prompt, "{expansion}: prompt");
        assert_eq!(printed.template, manifest.template, "{expansion}: template");
        assert_eq!(printed.template.as_deref(), Some(template), "{expansion}");
        for side in [&request, &manifest] {
            assert_eq!(
                (&printed.stop, &printed.stop_regex),
                (&side.stop, &side.stop_regex),
                "{expansion}: stops"
            );
        }
        assert_eq!(
            (printed.stop, printed.stop_regex),
            (stop, stop_regex),
            "{expansion}"
        );
    }
}
