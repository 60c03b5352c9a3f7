//! The /encode + /score server over real loopback HTTP, on the tiny committed Llama.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use candle_core::{DType, Device};
use candle_nn::{VarBuilder, VarMap};
use ebm::batcher::BatchLimits;
use ebm::server::{RequestLimits, Stats};
use ebm::{EbmServer, EnergyHead, HeadConfig, LlamaEncoder, ServedHead, ServerOptions};
use serde_json::{json, Value};

fn encoder() -> Arc<LlamaEncoder> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/tiny-llama");
    Arc::new(LlamaEncoder::load(&dir, &Device::Cpu).unwrap())
}

fn head() -> Arc<EnergyHead> {
    let cfg = HeadConfig {
        widths: vec![64, 32, 1],
        dropout: 0.0,
        ..HeadConfig::default()
    };
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    Arc::new(EnergyHead::new(&cfg, vb).unwrap())
}

async fn start(
    encoder: Arc<LlamaEncoder>,
    head: Option<Arc<EnergyHead>>,
    options: ServerOptions,
) -> SocketAddr {
    let server = EbmServer::new(encoder, head.map(ServedHead::in_memory), options).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(server.serve(listener, std::future::pending()));
    addr
}

fn states(n: usize) -> Vec<String> {
    let goals = [
        "⊢ 1 + 1 = 2",
        "x : ℝ\nh₀ : 0 < x\n⊢ x ^ 2 > 0",
        "f : ℝ → ℝ\n⊢ ∀ x, f x = f x",
    ];
    (0..n)
        .map(|i| format!("{}\nh{i} : {i} < {}", goals[i % 3], i + 1))
        .collect()
}

async fn post(addr: SocketAddr, path: &str, body: String) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(format!("http://{addr}{path}"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap())
}

async fn stats(addr: SocketAddr) -> Stats {
    reqwest::get(format!("http://{addr}/stats"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn error_message(v: &Value) -> String {
    v["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_single_scores_are_batched_and_equal_one_direct_batch() {
    let encoder = encoder();
    let head = head();
    // A long linger so all 64 requests meet in few batches; the batch closes at 64 anyway.
    let options = ServerOptions {
        batch: BatchLimits {
            linger: Duration::from_secs(2),
            max_batch: 64,
            max_batch_tokens: 1 << 20,
            max_batch_square_tokens: 1 << 30,
        },
        ..ServerOptions::default()
    };
    let addr = start(Arc::clone(&encoder), Some(Arc::clone(&head)), options).await;
    let all = states(64);

    let tasks: Vec<_> = all
        .iter()
        .map(|s| {
            let body = json!({ "states": [s] }).to_string();
            tokio::spawn(async move { post(addr, "/score", body).await })
        })
        .collect();
    let mut served = Vec::new();
    for t in tasks {
        let (status, v) = t.await.unwrap();
        assert_eq!(status, 200, "{v}");
        let e = v["energies"].as_array().unwrap();
        assert_eq!(e.len(), 1);
        served.push(e[0].as_f64().unwrap() as f32);
    }

    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    let direct: Vec<f32> = head
        .forward(&encoder.encode(&refs).unwrap(), false)
        .unwrap()
        .to_vec1()
        .unwrap();
    for (i, (a, b)) in served.iter().zip(&direct).enumerate() {
        assert!(a.is_finite(), "state {i}: {a}");
        assert!(
            (a - b).abs() <= 1e-5 * b.abs().max(1.0),
            "state {i}: served {a} vs direct {b}"
        );
    }

    let s = stats(addr).await;
    assert_eq!(s.requests, 64);
    assert_eq!(s.texts, 64);
    assert!(s.batches < 64, "{s:?}");
    assert!(s.mean_batch_size > 1.0, "{s:?}");
    assert!(s.queue_wait_p50_ms.is_some() && s.queue_wait_p95_ms.is_some());
}

#[tokio::test]
async fn encode_returns_embeddings_and_repeats_hit_the_cache() {
    let encoder = encoder();
    let addr = start(Arc::clone(&encoder), None, ServerOptions::default()).await;
    let texts = states(3);
    let body = json!({ "texts": texts }).to_string();
    let (status, first) = post(addr, "/encode", body.clone()).await;
    assert_eq!(status, 200, "{first}");
    let (_, second) = post(addr, "/encode", body).await;
    assert_eq!(first, second);

    let rows = first["embeddings"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let direct: Vec<Vec<f32>> = encoder.encode(&refs).unwrap().to_vec2().unwrap();
    for (row, d) in rows.iter().zip(&direct) {
        let row: Vec<f32> = row
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect();
        assert_eq!(row.len(), 64);
        for (a, b) in row.iter().zip(d) {
            assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0));
        }
    }
    let s = stats(addr).await;
    assert_eq!(
        (s.cache_hits, s.cache_misses, s.cache_entries),
        (3, 3, 3),
        "{s:?}"
    );

    let (status, empty) = post(addr, "/encode", json!({"texts": []}).to_string()).await;
    assert_eq!(status, 200);
    assert_eq!(empty["embeddings"], json!([]));
}

#[tokio::test]
async fn score_without_head_is_400_and_encode_still_works() {
    let addr = start(encoder(), None, ServerOptions::default()).await;
    let (status, v) = post(addr, "/score", json!({"states": ["⊢ True"]}).to_string()).await;
    assert_eq!(status, 400);
    assert!(error_message(&v).contains("--head"), "{v}");
    let (status, _) = post(addr, "/encode", json!({"texts": ["⊢ True"]}).to_string()).await;
    assert_eq!(status, 200);
    let health: Value = reqwest::get(format!("http://{addr}/health"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["head"], json!(false));
    let parsed: formats::identity::HealthResponse = serde_json::from_value(health).unwrap();
    assert_eq!(parsed.identity, *encoder().identity());
}

/// The identity names the files that decide an embedding: tokenizer_config.json (BOS) changes
/// the tokenizer hash, not the config's.
#[test]
fn identity_follows_the_files_that_decide_an_embedding() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let id = |variant: Option<&str>| {
        let dir = tempfile::tempdir().unwrap();
        for f in ["config.json", "model.safetensors", "tokenizer.json"] {
            std::fs::copy(data.join("tiny-llama").join(f), dir.path().join(f)).unwrap();
        }
        if let Some(v) = variant {
            std::fs::copy(
                data.join(format!("config-bos/tokenizer_config.{v}.json")),
                dir.path().join("tokenizer_config.json"),
            )
            .unwrap();
        }
        LlamaEncoder::load(dir.path(), &Device::Cpu)
            .unwrap()
            .identity()
            .clone()
    };
    let (plain, bos, eos) = (id(None), id(Some("bos")), id(Some("bos_eos")));
    assert_eq!(plain, id(None));
    assert_eq!(plain.config_sha256, bos.config_sha256);
    assert_ne!(plain.tokenizer_sha256, bos.tokenizer_sha256);
    assert_ne!(bos.tokenizer_sha256, eos.tokenizer_sha256);
    assert_eq!(
        (plain.dtype.as_str(), plain.pooling.as_str()),
        ("f32", "mean")
    );
    assert_eq!(plain.config_sha256.len(), 64);
}

#[tokio::test]
async fn malformed_json_is_400_saying_what_is_wrong() {
    let addr = start(encoder(), Some(head()), ServerOptions::default()).await;
    for (path, body, says) in [
        ("/score", "{\"states\": [\"a\"", "EOF"),
        ("/score", "{\"texts\": [\"a\"]}", "texts"),
        ("/score", "{\"states\": \"a\"}", "sequence"),
        ("/encode", "not json", "expected"),
        ("/encode", "{\"texts\": [1, 2]}", "string"),
    ] {
        let (status, v) = post(addr, path, body.to_string()).await;
        assert_eq!(status, 400, "{path} {body}: {v}");
        let m = error_message(&v);
        assert!(
            m.contains("invalid JSON") && m.contains(says),
            "{path} {body}: {m}"
        );
    }
}

/// The embedding the server must give a text it truncates: its last `bytes` bytes, then BOS
/// and the last tokens.
fn truncated_embedding(
    encoder: &LlamaEncoder,
    text: &str,
    bytes: usize,
    tokens: usize,
) -> Vec<f32> {
    let tail = &text[text.len() - bytes..];
    let ids = encoder.tokenize_truncated(tail, tokens).unwrap().ids;
    assert!(ids.len() <= tokens);
    encoder
        .encode_ids(&[ids])
        .unwrap()
        .to_vec2()
        .unwrap()
        .remove(0)
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

#[tokio::test]
async fn oversize_requests_are_413_and_long_texts_are_truncated_not_refused() {
    let options = ServerOptions {
        limits: RequestLimits {
            max_body_bytes: 4096,
            max_texts: 8,
            max_text_bytes: 512,
            max_text_tokens: 64,
        },
        ..ServerOptions::default()
    };
    let encoder = encoder();
    let addr = start(Arc::clone(&encoder), Some(head()), options).await;

    let (status, v) = post(addr, "/score", json!({ "states": states(9) }).to_string()).await;
    assert_eq!(status, 413, "{v}");
    assert!(error_message(&v).contains("limit is 8"), "{v}");

    let (status, _) = post(
        addr,
        "/encode",
        json!({ "texts": ["x".repeat(5000)] }).to_string(),
    )
    .await;
    assert_eq!(status, 413);

    // Over the byte limit (600 > 512), and over the token limit under it (the tiny BPE splits
    // "∀ ∃ " finely): both answered, as BOS + the last tokens.
    let over_bytes = format!("{}⊢ y = y", "y ".repeat(300));
    let over_tokens = format!("{}⊢ x = x", "∀ ∃ ".repeat(30));
    assert!(over_bytes.len() > 512 && over_tokens.len() < 512);
    assert!(encoder.tokenize(&over_tokens).unwrap().len() > 64);
    let (status, v) = post(
        addr,
        "/encode",
        json!({ "texts": ["⊢ a", over_bytes, over_tokens] }).to_string(),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let rows = v["embeddings"].as_array().unwrap();
    for (row, want) in [
        (
            &rows[1],
            truncated_embedding(&encoder, &over_bytes, 512, 64),
        ),
        (
            &rows[2],
            truncated_embedding(&encoder, &over_tokens, over_tokens.len(), 64),
        ),
    ] {
        for (a, b) in floats(row).iter().zip(&want) {
            assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0));
        }
    }
    assert_eq!(stats(addr).await.truncated, 2);

    // A long state never fails a search either.
    let (status, v) = post(
        addr,
        "/score",
        json!({ "states": ["⊢ a", over_tokens] }).to_string(),
    )
    .await;
    assert_eq!(status, 200, "{v}");
}

#[tokio::test]
async fn an_empty_state_is_a_400_that_says_it_is_a_completed_proof() {
    let addr = start(encoder(), Some(head()), ServerOptions::default()).await;
    for (path, field) in [("/score", "states"), ("/encode", "texts")] {
        let body = json!({ field: ["⊢ a", ""] }).to_string();
        let (status, v) = post(addr, path, body).await;
        assert_eq!(status, 400, "{v}");
        let m = error_message(&v);
        assert!(
            m.contains(&format!("{field}[1] is empty")) && m.contains("completed proof"),
            "{m}"
        );
    }
}

/// tiny-llama with one token's embedding row set to NaN: any text holding that token gets a
/// NaN embedding, so it fails even alone while its batch-mates succeed after halving.
fn poisoned_encoder(
    poison_text: &str,
    others: &[String],
) -> (tempfile::TempDir, Arc<LlamaEncoder>) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/tiny-llama");
    let clean = LlamaEncoder::load(&src, &Device::Cpu).unwrap();
    let used: std::collections::HashSet<u32> = others
        .iter()
        .flat_map(|t| clean.tokenize(t).unwrap())
        .collect();
    let token = clean
        .tokenize(poison_text)
        .unwrap()
        .into_iter()
        .find(|id| !used.contains(id))
        .expect("a token only the poisoned text has");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(src.join(f), dir.join(f)).unwrap();
    }
    let mut weights =
        candle_core::safetensors::load(src.join("model.safetensors"), &Device::Cpu).unwrap();
    let name = "model.embed_tokens.weight";
    let table = weights[name].to_dtype(DType::F32).unwrap();
    let mut rows: Vec<Vec<f32>> = table.to_vec2().unwrap();
    rows[token as usize].fill(f32::NAN);
    let (n, h) = table.dims2().unwrap();
    let flat: Vec<f32> = rows.concat();
    weights.insert(
        name.to_string(),
        candle_core::Tensor::from_vec(flat, (n, h), &Device::Cpu).unwrap(),
    );
    candle_core::safetensors::save(&weights, dir.join("model.safetensors")).unwrap();
    let encoder = Arc::new(LlamaEncoder::load(dir, &Device::Cpu).unwrap());
    (tmp, encoder)
}

#[tokio::test]
async fn a_failing_text_is_isolated_by_halving_and_nan_is_an_error_not_null() {
    let good = states(5);
    let poison = "zzzz qqqq jjjj".to_string();
    let (_dir, encoder) = poisoned_encoder(&poison, &good);
    let options = ServerOptions {
        batch: BatchLimits {
            linger: Duration::ZERO,
            max_batch: 64,
            max_batch_tokens: 1 << 20,
            max_batch_square_tokens: 1 << 30,
        },
        ..ServerOptions::default()
    };
    let addr = start(encoder, Some(head()), options).await;
    let mut texts = good.clone();
    texts.insert(2, poison.clone());
    let (status, v) = post(addr, "/encode", json!({ "texts": texts }).to_string()).await;
    assert_eq!(status, 500, "{v}");
    assert!(error_message(&v).contains("not finite"), "{v}");
    let s = stats(addr).await;
    assert_eq!(s.failed_texts, 1, "{s:?}");
    assert!(s.failed_batches >= 2, "the whole batch, then halves: {s:?}");
    // Its batch-mates were embedded (and cached) on the way.
    let (status, v) = post(addr, "/encode", json!({ "texts": good }).to_string()).await;
    assert_eq!(status, 200, "{v}");
    let s = stats(addr).await;
    assert_eq!((s.cache_hits, s.failed_texts), (5, 1), "{s:?}");
    // /score of the poisoned state: an error, never `null`.
    let (status, v) = post(addr, "/score", json!({ "states": [poison] }).to_string()).await;
    assert_eq!(status, 500, "{v}");
}

#[test]
fn head_width_must_match_encoder() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let _guard = rt.enter();
    let cfg = HeadConfig {
        widths: vec![32, 1],
        ..HeadConfig::default()
    };
    let head = EnergyHead::new(
        &cfg,
        VarBuilder::from_varmap(&VarMap::new(), DType::F32, &Device::Cpu),
    )
    .unwrap();
    let err = EbmServer::new(
        encoder(),
        Some(ServedHead::in_memory(Arc::new(head))),
        ServerOptions::default(),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("32") && err.contains("64"), "{err}");
}
