//! States encoded per second through the real HTTP server on the tiny committed Llama (CPU),
//! at 1 and 32 concurrent clients, with dynamic batching on (linger 5 ms) and off (linger 0,
//! and max batch 1). Each request carries one distinct state; the cache is off.
//!
//!     cargo bench -p ebm --bench encode_throughput [-- SECONDS_PER_CASE]

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use candle_core::Device;
use ebm::batcher::BatchLimits;
use ebm::server::Stats;
use ebm::{EbmServer, LlamaEncoder, ServerOptions};

const GOALS: [&str; 4] = [
    "x : ℝ\nh₀ : 0 < x\n⊢ x ^ 2 > 0",
    "f : ℝ → ℝ\nhf : ∀ x, f x = 2 * x + 3\n⊢ f 2 = 7",
    "a b c : ℝ\nh₁ : a ≤ b\nh₂ : b ≤ c\n⊢ a ≤ c",
    "n : ℕ\n⊢ ∑ i ∈ Finset.range n, i = n * (n - 1) / 2",
];

struct Case {
    clients: usize,
    linger_ms: u64,
    max_batch: usize,
}

async fn run_case(encoder: Arc<LlamaEncoder>, case: &Case, budget: Duration) -> (f64, Stats) {
    let options = ServerOptions {
        batch: BatchLimits {
            linger: Duration::from_millis(case.linger_ms),
            max_batch: case.max_batch,
            max_batch_tokens: 1 << 20,
            max_batch_square_tokens: 1 << 30,
        },
        cache_size: 0,
        ..ServerOptions::default()
    };
    let server = EbmServer::new(encoder, None, options).expect("server");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.serve(listener, async {
        let _ = stop_rx.await;
    }));

    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let clients: Vec<_> = (0..case.clients)
        .map(|c| {
            let done = Arc::clone(&done);
            tokio::spawn(async move {
                let http = reqwest::Client::new();
                let mut i = 0usize;
                while start.elapsed() < budget {
                    let text = format!("{}\nh{c}_{i} : {i} < {}", GOALS[i % GOALS.len()], i + 1);
                    let resp = http
                        .post(format!("http://{addr}/encode"))
                        .json(&serde_json::json!({ "texts": [text] }))
                        .send()
                        .await
                        .expect("request");
                    assert!(resp.status().is_success());
                    resp.bytes().await.expect("body");
                    done.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            })
        })
        .collect();
    for c in clients {
        c.await.expect("client");
    }
    let rate = done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64();
    let stats: Stats = reqwest::get(format!("http://{addr}/stats"))
        .await
        .expect("stats")
        .json()
        .await
        .expect("stats json");
    let _ = stop_tx.send(());
    let _ = serving.await;
    (rate, stats)
}

fn main() {
    let seconds: f64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(3.0);
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/tiny-llama");
    let encoder = Arc::new(LlamaEncoder::load(&dir, &Device::Cpu).expect("tiny model"));
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    println!("tiny Llama (hidden 64, 2 layers), CPU, {seconds} s per case, one state per request");
    println!(
        "{:>8} {:>10} {:>10} {:>10} {:>8} {:>10} {:>10}",
        "clients", "linger_ms", "max_batch", "states/s", "batches", "mean_bs", "wait_p95"
    );
    for clients in [1, 32] {
        for (linger_ms, max_batch) in [(5, 64), (0, 64), (0, 1)] {
            let case = Case {
                clients,
                linger_ms,
                max_batch,
            };
            let (rate, s) = runtime.block_on(run_case(
                Arc::clone(&encoder),
                &case,
                Duration::from_secs_f64(seconds),
            ));
            println!(
                "{:>8} {:>10} {:>10} {:>10.0} {:>8} {:>10.1} {:>10.2}",
                clients,
                linger_ms,
                max_batch,
                rate,
                s.batches,
                s.mean_batch_size,
                s.queue_wait_p95_ms.unwrap_or(0.0)
            );
        }
    }
}
