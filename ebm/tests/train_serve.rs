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
use ebm::train::{train, TrainConfig};
use ebm::trajectories::Trajectories;
use ebm::{EbmServer, EnergyHead, LlamaEncoder, ServerOptions};
use formats::ebm_api::{EncodeRequest, EncodeResponse, ScoreRequest, ScoreResponse};

fn encoder() -> Arc<LlamaEncoder> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/tiny-llama");
    Arc::new(LlamaEncoder::load(&dir, &Device::Cpu).unwrap())
}

async fn serve(head: Option<Arc<EnergyHead>>) -> SocketAddr {
    let server = EbmServer::new(encoder(), head, ServerOptions::default()).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(server.serve(listener, std::future::pending()));
    addr
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

    let scoring = serve(Some(Arc::new(
        EnergyHead::load(&head_path, &Device::Cpu).unwrap(),
    )))
    .await;
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
}
