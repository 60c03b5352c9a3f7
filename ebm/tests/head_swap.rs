//! `POST /head` over real loopback HTTP on the tiny committed Llama: the served head changes
//! (its scores, `/health`'s hash, path and energy scale) without reloading the encoder, a head
//! made for another model is refused with both identities, and requests in flight during
//! swaps score every state with one head.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use ebm::identity::file_sha256;
use ebm::server::Stats;
use ebm::{save_head, EbmServer, EnergyHead, HeadConfig, LlamaEncoder, ServedHead, ServerOptions};
use formats::identity::{HeadHealth, HealthResponse, ModelIdentity};
use serde_json::{json, Value};

fn encoder() -> Arc<LlamaEncoder> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/tiny-llama");
    Arc::new(LlamaEncoder::load(&dir, &Device::Cpu).unwrap())
}

/// A head with fresh random weights (64 -> 16 -> 1) written to `dir/head.safetensors`.
fn write_head(dir: &Path) -> PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let cfg = HeadConfig {
        widths: vec![64, 16, 1],
        dropout: 0.0,
        ..HeadConfig::default()
    };
    let varmap = VarMap::new();
    EnergyHead::new(
        &cfg,
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
    )
    .unwrap();
    let path = dir.join("head.safetensors");
    save_head(&varmap, &cfg, &path).unwrap();
    path
}

/// A `train.json` beside `head` saying which model's embeddings trained it and, optionally,
/// the energy scale recorded for its weights.
fn write_train_json(head: &Path, trained_on: &ModelIdentity, scale: Option<(f64, f64)>) {
    let energy_scale = scale.map(|(mean, std)| {
        json!({
            "mean": mean,
            "std": std,
            "split": "val",
            "nodes": 10,
            "head_sha256": file_sha256(&[head]).unwrap(),
        })
    });
    let body = json!({"embedding_identity": trained_on, "energy_scale": energy_scale});
    std::fs::write(head.with_file_name("train.json"), body.to_string()).unwrap();
}

async fn start(encoder: Arc<LlamaEncoder>, head: ServedHead) -> SocketAddr {
    let server = EbmServer::new(encoder, Some(head), ServerOptions::default()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(server.serve(listener, std::future::pending()));
    addr
}

async fn post(addr: SocketAddr, path: &str, body: Value) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!("http://{addr}{path}"))
        .json(&body)
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

async fn get(addr: SocketAddr, path: &str) -> Value {
    reqwest::get(format!("http://{addr}{path}"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn score(addr: SocketAddr, states: &[String]) -> Vec<f64> {
    let (status, v) = post(addr, "/score", json!({ "states": states })).await;
    assert_eq!(status, 200, "{v}");
    serde_json::from_value(v["energies"].clone()).unwrap()
}

/// The energies `head` gives `states` computed directly, without the server.
fn direct(encoder: &LlamaEncoder, head: &Path, states: &[String]) -> Vec<f64> {
    let head = EnergyHead::load(head, &Device::Cpu).unwrap();
    let refs: Vec<&str> = states.iter().map(String::as_str).collect();
    let e: Vec<f32> = head
        .forward(&encoder.encode(&refs).unwrap(), false)
        .unwrap()
        .to_vec1()
        .unwrap();
    e.into_iter().map(f64::from).collect()
}

fn close(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-5)
}

fn states() -> Vec<String> {
    [
        "⊢ 1 + 1 = 2",
        "x : ℝ\nh₀ : 0 < x\n⊢ x ^ 2 > 0",
        "f : ℝ → ℝ\n⊢ ∀ x, f x = f x",
        "n : ℕ\n⊢ n + 0 = n",
    ]
    .map(String::from)
    .to_vec()
}

/// `/health` read as clients read it: the identity, and what it says about the head.
async fn health(addr: SocketAddr) -> (ModelIdentity, HeadHealth) {
    let v = get(addr, "/health").await;
    let response: HealthResponse = serde_json::from_value(v.clone()).unwrap();
    (response.identity, serde_json::from_value(v).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_posted_head_scores_from_then_on_and_one_for_another_model_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let encoder = encoder();
    let served = encoder.identity().clone();
    // A: no train.json (nothing recorded, nothing to check, no scale). B: trained on this
    // encoder, with its energy scale. C: trained on another model.
    let a = write_head(&dir.path().join("a"));
    let b = write_head(&dir.path().join("b"));
    write_train_json(&b, &served, Some((0.25, 2.0)));
    let c = write_head(&dir.path().join("c"));
    let other = ModelIdentity {
        config_sha256: "another-config".into(),
        ..served.clone()
    };
    write_train_json(&c, &other, None);

    let addr = start(
        Arc::clone(&encoder),
        ServedHead::load(&a, &encoder).unwrap(),
    )
    .await;
    let states = states();
    let by_a = score(addr, &states).await;
    assert!(close(&by_a, &direct(&encoder, &a, &states)), "{by_a:?}");
    let (identity, head) = health(addr).await;
    assert_eq!(
        identity.head_sha256,
        Some(file_sha256(&[a.as_path()]).unwrap())
    );
    assert_eq!(
        head.head_path.as_deref(),
        Some(a.display().to_string().as_str())
    );
    assert_eq!(head.energy_scale, None);

    // Swap to B: the answer is the /health body with B served.
    let (status, answer) = post(addr, "/head", json!({"path": b})).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["head"], json!(true));
    let b_sha = file_sha256(&[b.as_path()]).unwrap();
    assert_eq!(answer["identity"]["head_sha256"], json!(b_sha));
    let (identity, head) = health(addr).await;
    assert_eq!(identity.head_sha256.as_deref(), Some(b_sha.as_str()));
    assert_eq!(
        head.head_path.as_deref(),
        Some(b.display().to_string().as_str())
    );
    let scale = head.energy_scale.expect("B's train.json records its scale");
    assert_eq!((scale.mean, scale.std), (0.25, 2.0));
    // The encoder's identity is the same one: only the head changed.
    assert_eq!(
        ModelIdentity {
            head_sha256: None,
            ..identity
        },
        served
    );
    let by_b = score(addr, &states).await;
    assert!(close(&by_b, &direct(&encoder, &b, &states)), "{by_b:?}");
    assert!(!close(&by_a, &by_b), "two random heads score alike");
    // The second /score found every state in the embedding cache: it survives a swap.
    let stats: Stats = serde_json::from_value(get(addr, "/stats").await).unwrap();
    assert_eq!(stats.cache_hits, states.len() as u64, "{stats:?}");

    // C records another model: 409 naming both identities; B stays.
    let (status, refused) = post(addr, "/head", json!({"path": c})).await;
    assert_eq!(status, 409, "{refused}");
    let error = &refused["error"];
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("another-config")
            && message.contains(&served.config_sha256)
            && message.contains("train.json"),
        "{message}"
    );
    assert_eq!(error["head_identity"], json!(other));
    assert_eq!(error["served_identity"], json!(served));
    assert!(close(&score(addr, &states).await, &by_b));
    assert_eq!(
        health(addr).await.0.head_sha256.as_deref(),
        Some(b_sha.as_str())
    );

    // A file that is not there, and a misspelt field: 400, naming what is wrong.
    let missing = dir.path().join("nowhere/head.safetensors");
    let (status, v) = post(addr, "/head", json!({"path": missing})).await;
    assert_eq!(status, 400, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("nowhere"));
    let (status, v) = post(addr, "/head", json!({"head": b})).await;
    assert_eq!(status, 400, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("path"));

    // Back to A, without a restart.
    let (status, _) = post(addr, "/head", json!({"path": a})).await;
    assert_eq!(status, 200);
    assert!(close(&score(addr, &states).await, &by_a));
}

/// A request that took head A before a swap to B is answered with A's energies, one sent
/// after it with B's; and under requests sent between swaps back and forth, each answer is
/// wholly A's or wholly B's, never a mix within one request, and none fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_in_flight_during_swaps_score_with_one_head() {
    let dir = tempfile::tempdir().unwrap();
    let encoder = encoder();
    let a = write_head(&dir.path().join("a"));
    let b = write_head(&dir.path().join("b"));
    // No cache, so every request waits for a forward pass; a long linger keeps a request in
    // the batcher while the head is swapped (what is asserted does not depend on it).
    let mut options = ServerOptions {
        cache_size: 0,
        ..ServerOptions::default()
    };
    options.batch.linger = std::time::Duration::from_millis(500);
    let server = EbmServer::new(
        Arc::clone(&encoder),
        Some(ServedHead::load(&a, &encoder).unwrap()),
        options,
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(server.serve(listener, std::future::pending()));
    let states = states();
    let (by_a, by_b) = (direct(&encoder, &a, &states), direct(&encoder, &b, &states));

    let pending = tokio::spawn({
        let states = states.clone();
        async move { score(addr, &states).await }
    });
    // Its texts count as cache misses only once it has taken its head.
    loop {
        let stats: Stats = serde_json::from_value(get(addr, "/stats").await).unwrap();
        if stats.cache_misses >= states.len() as u64 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    let (status, v) = post(addr, "/head", json!({ "path": b })).await;
    assert_eq!(status, 200, "{v}");
    assert!(close(&score(addr, &states).await, &by_b));
    assert!(close(&pending.await.unwrap(), &by_a));

    let mut scoring = Vec::new();
    for i in 0..6 {
        for _ in 0..4 {
            let states = states.clone();
            scoring.push(tokio::spawn(async move { score(addr, &states).await }));
        }
        let head = if i % 2 == 0 { &a } else { &b };
        let (status, v) = post(addr, "/head", json!({ "path": head })).await;
        assert_eq!(status, 200, "{v}");
    }
    for task in scoring {
        let energies = task.await.unwrap();
        assert!(
            close(&energies, &by_a) || close(&energies, &by_b),
            "a request scored with neither head alone: {energies:?}, A {by_a:?}, B {by_b:?}"
        );
    }
}
