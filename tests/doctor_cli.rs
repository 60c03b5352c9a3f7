//! `stepwise doctor` fails cleanly, naming each missing part and its fix.

use std::process::Command;

/// A loopback port nobody listens on: bind, read the port, drop the listener.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn doctor_names_missing_lean_and_down_policy() {
    let out = tempfile::tempdir().unwrap();
    let port = closed_port();
    let output = Command::new(env!("CARGO_BIN_EXE_stepwise"))
        .args([
            "doctor",
            "--config",
            "configs/default.toml",
            "--timeout",
            "5",
        ])
        .arg("--out")
        .arg(out.path())
        .args([
            "--set",
            "lean.command=[\"/nonexistent/lake\", \"env\", \"repl\"]",
        ])
        .args([
            "--set",
            &format!("policy.urls=[\"http://127.0.0.1:{port}\"]"),
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "doctor must fail: {stdout}");
    assert!(stdout.contains("[FAIL] lean"), "{stdout}");
    assert!(stdout.contains("/nonexistent/lake"), "{stdout}");
    assert!(
        stdout.contains(&format!("[FAIL] policy http://127.0.0.1:{port}")),
        "{stdout}"
    );
    assert!(stdout.contains("fix:"), "{stdout}");
    assert!(stdout.contains("[ok]   output folder"), "{stdout}");
}

#[test]
fn doctor_rejects_a_misspelt_key_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("bad.toml");
    std::fs::write(&config, "[search]\nnum_candidate = 8\n").unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_stepwise"))
        .args(["doctor", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(text.contains("num_candidate"), "{text}");
    assert!(text.contains("bad.toml"), "{text}");
}

/// `stepwise doctor` with the default config against a simulated SGLang started with
/// `options` (no Lean: that check fails), `extra` more arguments; the output and the server.
async fn doctor_against_sim(
    options: sim::sglang::SglangOptions,
    extra: &[&str],
) -> (std::process::Output, sim::sglang::SglangHandle) {
    let world: sim::world::World = serde_json::from_str(r#"{"theorems": []}"#).unwrap();
    let server = sim::sglang::spawn(world, options).await.unwrap();
    let out = tempfile::tempdir().unwrap();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_stepwise"))
        .args([
            "doctor",
            "--config",
            "configs/default.toml",
            "--timeout",
            "5",
        ])
        .arg("--out")
        .arg(out.path())
        .args(["--set", "lean.command=[\"/nonexistent/lake\"]"])
        .args(["--set", &format!("policy.urls=[\"{}\"]", server.url())])
        .args(extra)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .await
        .unwrap();
    (output, server)
}

/// A served model of another family than the template's is named: its prompt format is not
/// the one the model was trained on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_warns_when_the_served_model_does_not_fit_the_template() {
    let options = sim::sglang::SglangOptions {
        model: "internlm/internlm2_5-step-prover".into(),
        ..Default::default()
    };
    let (output, server) = doctor_against_sim(options, &[]).await;
    let url = server.url();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let policy = format!("policy {url}");
    assert!(stdout.contains(&format!("[ok]   {policy}")), "{stdout}");
    assert!(
        stdout.contains(&format!(
            "[warn] {policy}: template `deepseek-tactic-state` is the prompt of DeepSeek-Prover-V1.5"
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("internlm/internlm2_5-step-prover"),
        "{stdout}"
    );
    // Under expansion = "proof" the sweep sends the proof template: that is the one judged.
    let options = sim::sglang::SglangOptions {
        model: "deepseek-ai/DeepSeek-Prover-V1.5-RL".into(),
        ..Default::default()
    };
    let (output, server) = doctor_against_sim(options, &["--set", "search.expansion=proof"]).await;
    let url = server.url();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(&format!(
            "[warn] policy {url}: template `deepseek-v2-proof` is the prompt of DeepSeek-Prover-V2"
        )),
        "{stdout}"
    );
}

/// A stop regex the server refuses (SGLang answers 400 for a pattern `re` cannot compile, and
/// versions without `stop_regex` refuse the field) is named, with how to do without it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_names_a_stop_regex_the_server_refuses() {
    let (output, server) = doctor_against_sim(
        sim::sglang::SglangOptions::default(),
        &["--set", "policy.stop_regex=[\"(\"]"],
    )
    .await;
    let url = server.url();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!output.status.success(), "{stdout}");
    assert!(stdout.contains(&format!("[FAIL] policy {url}")), "{stdout}");
    assert!(stdout.contains("rejected the request (400)"), "{stdout}");
    assert!(stdout.contains("set policy.stop_regex = []"), "{stdout}");
}

/// The BOS check: one BOS before the prompt passes; none (a tokenizer that adds none) and two
/// (`policy.bos = "template"` and a tokenizer that adds one) fail with the fix. Without the BOS
/// id (`--model-dir`) one cannot be told from none when the first two tokens differ:
/// `unchecked`, with a warning saying so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_passes_one_bos_and_fails_none_and_two_with_the_fix() {
    let model = crate::support::deepseek_model_dir();
    let model_dir = model.path().to_str().unwrap();
    let adds = |add_bos| sim::sglang::SglangOptions {
        add_bos,
        ..Default::default()
    };
    let doctor = |add_bos, extra: &'static [&'static str]| async move {
        let with_dir = [&["--model-dir", model_dir][..], extra].concat();
        let (output, server) = doctor_against_sim(adds(add_bos), &with_dir).await;
        (
            String::from_utf8_lossy(&output.stdout).into_owned(),
            server.url(),
        )
    };
    let (stdout, url) = doctor(true, &[]).await;
    assert!(
        stdout.contains(&format!("[ok]   BOS {url}: one")),
        "{stdout}"
    );

    let (stdout, url) = doctor(false, &[]).await;
    assert!(stdout.contains(&format!("[FAIL] BOS {url}: ")), "{stdout}");
    assert!(
        stdout.contains("fix: set policy.bos = \"template\""),
        "{stdout}"
    );

    let (stdout, url) = doctor(true, &["--set", "policy.bos=template"]).await;
    assert!(stdout.contains(&format!("[FAIL] BOS {url}: ")), "{stdout}");
    assert!(
        stdout.contains("fix: set policy.bos = \"server\""),
        "{stdout}"
    );

    let (output, server) = doctor_against_sim(adds(true), &[]).await;
    let (stdout, url) = (String::from_utf8_lossy(&output.stdout), server.url());
    assert!(
        stdout.contains(&format!("[ok]   BOS {url}: unchecked")),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("[warn] BOS {url}: no BOS id is known")),
        "{stdout}"
    );
}

/// With `--theorems`, the BOS check sends that file's first root prompt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_checks_the_first_theorems_prompt() {
    let dir = tempfile::tempdir().unwrap();
    let theorems = dir.path().join("theorems.jsonl");
    let statement = "theorem doctor_bos : 2 + 2 = 4";
    let line = serde_json::json!({"name": "doctor_bos", "formal_statement": format!("{statement} := by\n")});
    std::fs::write(&theorems, format!("{line}\n")).unwrap();
    let (_, server) = doctor_against_sim(
        sim::sglang::SglangOptions::default(),
        &["--theorems", theorems.to_str().unwrap()],
    )
    .await;
    let check = server
        .log
        .entries()
        .into_iter()
        .find(|e| e.path == "/generate" && e.body.get("logprob_start_len").is_some())
        .expect("a BOS check request");
    assert!(
        check.body["text"].as_str().unwrap().contains(statement),
        "{}",
        check.body
    );
}

/// An SGLang older than 0.5.3 answers a request carrying `stop_regex` with a plain-text 500
/// (no JSON, no word of `stop_regex`): the start-up check sends it again without, and names
/// the fix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_names_an_sglang_that_500s_on_stop_regex() {
    let options = sim::sglang::SglangOptions {
        no_stop_regex: true,
        ..Default::default()
    };
    let (output, server) = doctor_against_sim(options, &[]).await;
    let (stdout, url) = (String::from_utf8_lossy(&output.stdout), server.url());
    assert!(!output.status.success(), "{stdout}");
    assert!(stdout.contains(&format!("[FAIL] policy {url}")), "{stdout}");
    assert!(
        stdout.contains("HTTP 500: Internal Server Error"),
        "{stdout}"
    );
    assert!(stdout.contains("set policy.stop_regex = []"), "{stdout}");
}

/// The planner is checked like the policy: its server, its wire and its template.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_checks_the_planner_s_server_wire_and_template() {
    let server = sim::sglang::spawn(
        serde_json::from_str(r#"{"theorems": []}"#).unwrap(),
        Default::default(),
    )
    .await
    .unwrap();
    let url = server.url();
    let planner = |template: &str| {
        vec![
            "--set".to_owned(),
            "search.decompose=true".to_owned(),
            "--set".to_owned(),
            format!("planner.urls=[\"{url}\"]"),
            "--set".to_owned(),
            "planner.backend=\"openai-chat\"".to_owned(),
            "--set".to_owned(),
            format!("planner.template=\"{template}\""),
        ]
    };
    let chat = planner("chat-sketch");
    let chat: Vec<&str> = chat.iter().map(String::as_str).collect();
    let (output, _policy) = doctor_against_sim(Default::default(), &chat).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(&format!("[ok]   planner {url}")),
        "{stdout}"
    );
    assert!(
        server
            .log
            .entries()
            .iter()
            .any(|e| e.path == "/v1/chat/completions"),
        "the check asked over the chat wire"
    );
    let markers = planner("deepseek-v2-sketch");
    let markers: Vec<&str> = markers.iter().map(String::as_str).collect();
    let (output, _policy) = doctor_against_sim(Default::default(), &markers).await;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(&format!("[FAIL] planner {url}")),
        "{stdout}"
    );
    assert!(stdout.contains("chat-sketch"), "{stdout}");
}
