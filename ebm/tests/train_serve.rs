//! The whole loop on the tiny committed Llama: `ebm embed` through a running `ebm serve`
//! (real loopback HTTP) and in-process, `ebm train` on that cache, then the trained head
//! served by `ebm serve --head` scores states exactly as the evaluator does.

use crate::traj_fixture;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use candle_core::Device;
use ebm::embed::Encoder;
use ebm::embed::{embed_states, EmbedOptions, LocalEncoder};
use ebm::embedding_cache::EmbeddingCache;
use ebm::eval::state_energies;
use ebm::train::recorded_energy_scale;
use ebm::train::{train, TrainConfig};
use ebm::trajectories::Trajectories;
use ebm::{EbmServer, EnergyHead, LlamaEncoder, ServedHead, ServerOptions};
use formats::ebm_api::{EncodeRequest, EncodeResponse, ScoreRequest, ScoreResponse};
use formats::identity::HeadHealth;

fn encoder() -> Arc<LlamaEncoder> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/tiny-llama");
    Arc::new(LlamaEncoder::load(&dir, &Device::Cpu).unwrap())
}

async fn serve(head: Option<ServedHead>) -> SocketAddr {
    let server = EbmServer::new(encoder(), head, ServerOptions::default()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(server.serve(listener, std::future::pending()));
    addr
}

/// `ebm serve --head FILE`: the head file checked against the encoder, with its scale.
async fn serve_file(head: &Path) -> SocketAddr {
    serve(Some(ServedHead::load(head, &encoder()).unwrap())).await
}

/// A bare HTTP client of the server's API: the search's and the CLI's clients live in other
/// crates, and this test checks the server, not them.
struct Client(SocketAddr);

impl Client {
    async fn post<Req: serde::Serialize, Resp: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &Req,
    ) -> Result<Resp, reqwest::Error> {
        reqwest::Client::new()
            .post(format!("http://{}{path}", self.0))
            .json(body)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await
    }
}

impl Encoder for Client {
    type Error = reqwest::Error;
    async fn encode(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, reqwest::Error> {
        let response: EncodeResponse = self.post("/encode", &EncodeRequest { texts }).await?;
        Ok(response.embeddings)
    }
}

fn client(addr: SocketAddr) -> Arc<Client> {
    Arc::new(Client(addr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn served_trained_head_matches_the_evaluator() {
    let trees = traj_fixture::theorems("t", 12, 9);
    let traj = Trajectories::from_rows(trees.concat()).unwrap();
    let states: Vec<String> = traj.nodes.iter().map(|n| n.state.clone()).collect();
    let dir = tempfile::tempdir().unwrap();
    let opts = EmbedOptions {
        batch: 16,
        concurrency: 3,
        resume: false,
    };

    let plain = serve(None).await;
    let served_path = dir.path().join("served.parquet");
    let report = embed_states(client(plain), states.clone(), &served_path, opts)
        .await
        .unwrap();
    assert_eq!((report.dim, report.embedded), (64, report.distinct_states));
    let local_path = dir.path().join("local.parquet");
    embed_states(
        Arc::new(LocalEncoder(encoder())),
        states.clone(),
        &local_path,
        opts,
    )
    .await
    .unwrap();
    let cache = EmbeddingCache::load(&served_path).unwrap();
    let local = EmbeddingCache::load(&local_path).unwrap();
    assert_eq!(cache.len(), local.len());
    // Terminal (empty) states are left out by `embed`.
    assert!(states.iter().any(String::is_empty) && cache.get("").is_none());
    for s in states.iter().filter(|s| !s.is_empty()) {
        let (a, b) = (cache.get(s).unwrap(), local.get(s).unwrap());
        assert!(a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-4), "{s}");
    }

    let out = dir.path().join("run");
    let cfg = TrainConfig {
        epochs: 3,
        hidden: vec![16],
        batch_size: 8,
        ..TrainConfig::default()
    };
    let trained = train(&traj, &cache, &cfg, &Device::Cpu, &out).unwrap();
    assert_eq!(trained.embedding_dim, 64);

    let head_path = out.join("head.safetensors");
    let head = EnergyHead::load(&head_path, &Device::Cpu).unwrap();
    let refs: Vec<&str> = states.iter().map(String::as_str).collect();
    let evaluator = state_energies(&head, &cache, &refs, &Device::Cpu).unwrap();

    let scoring = serve_file(&head_path).await;
    let mut distinct: Vec<String> = evaluator.keys().cloned().collect();
    distinct.sort();
    let energies = client(scoring)
        .post::<_, ScoreResponse>(
            "/score",
            &ScoreRequest {
                states: distinct.clone(),
            },
        )
        .await
        .unwrap()
        .energies;
    assert_eq!(energies.len(), distinct.len());
    for (state, served) in distinct.iter().zip(energies) {
        let expected = f64::from(evaluator[state]);
        assert!(
            (served - expected).abs() < 1e-5,
            "{state:?}: served {served}, evaluator {expected}"
        );
    }

    // train.json's energy scale: the served head's energies over the validation theorems'
    // embedded non-terminal nodes, for these weights only; /health reports it.
    let recorded = trained
        .energy_scale
        .clone()
        .expect("energies did not collapse");
    assert_eq!(recorded.split, "val");
    let val: Vec<f64> = traj
        .nodes
        .iter()
        .filter(|n| trained.val_theorems.contains(&traj.runs[n.run].theorem))
        .filter(|n| !n.status.is_terminal() && cache.contains(&n.state))
        .map(|n| f64::from(evaluator[&n.state]))
        .collect();
    assert_eq!(recorded.nodes, val.len());
    let mean = val.iter().sum::<f64>() / val.len() as f64;
    let std = (val.iter().map(|e| (e - mean).powi(2)).sum::<f64>() / val.len() as f64).sqrt();
    assert!(
        (recorded.scale.mean - mean).abs() < 1e-9,
        "{recorded:?} vs {mean}"
    );
    assert!(
        (recorded.scale.std - std).abs() < 1e-9,
        "{recorded:?} vs {std}"
    );
    let health: HeadHealth = reqwest::get(format!("http://{scoring}/health"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health.energy_scale, Some(recorded.scale));
    let sha = head.weights_sha256().unwrap();
    assert_eq!(recorded.head_sha256, sha);
    assert_eq!(
        recorded_energy_scale(&head_path, sha).unwrap(),
        Some(recorded.scale)
    );
    // Another epoch's checkpoint beside the same train.json is another head: no scale.
    let other_epoch = if trained.best_epoch == 1 { 2 } else { 1 };
    let checkpoint = out.join(format!("checkpoints/epoch-{other_epoch:03}.safetensors"));
    let checkpoint_sha = EnergyHead::load(&checkpoint, &Device::Cpu).unwrap();
    assert_eq!(
        recorded_energy_scale(&checkpoint, checkpoint_sha.weights_sha256().unwrap()).unwrap(),
        None
    );
}
