//! `EbmClient` over real loopback HTTP against a stub speaking the `stepwise ebm serve`
//! protocol (`/score`, `/encode`, `/health`), with a 503 first to exercise the retry.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use formats::identity::EnergyScale;
use search::config::{EbmConfig, SearchConfig};
use search::http_retry::HttpError;
use search::value::{EbmClient, ValueError, ValueScorer};
use serde_json::{json, Value};

/// Energies are the states' lengths; the first `/score` answers 503; an empty state is a 400.
async fn stub() -> String {
    let calls = Arc::new(AtomicU32::new(0));
    let app = Router::new()
        .route(
            "/score",
            post(
                |State(calls): State<Arc<AtomicU32>>, Json(body): Json<Value>| async move {
                    if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                        return (StatusCode::SERVICE_UNAVAILABLE, "warming up").into_response();
                    }
                    let states = body["states"].as_array().unwrap();
                    if states.iter().any(|s| s.as_str() == Some("")) {
                        let e = json!({"error": {"message": "empty state"}});
                        return (StatusCode::BAD_REQUEST, Json(e)).into_response();
                    }
                    let energies: Vec<f64> = states
                        .iter()
                        .map(|s| s.as_str().unwrap().len() as f64)
                        .collect();
                    Json(json!({"energies": energies})).into_response()
                },
            ),
        )
        .route(
            "/encode",
            post(|Json(body): Json<Value>| async move {
                let texts = body["texts"].as_array().unwrap();
                let e: Vec<Vec<f32>> = texts
                    .iter()
                    .map(|t| vec![t.as_str().unwrap().len() as f32, 1.0])
                    .collect();
                Json(json!({"embeddings": e}))
            }),
        )
        .route("/health", get(|| async { StatusCode::OK }))
        .with_state(calls);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/")
}

fn client(url: String) -> EbmClient {
    EbmClient::from_config(&EbmConfig {
        url,
        request_timeout: 10.0,
        max_retries: 2,
    })
    .unwrap()
    .expect("a url is set")
}

#[tokio::test]
async fn scores_encodes_and_reports_health() {
    let ebm = client(stub().await);
    ebm.health().await.unwrap();
    let states = vec!["⊢ a".to_owned(), "x : ℕ\n⊢ x = x".to_owned()];
    let energies = ebm.score(&states).await.unwrap();
    assert_eq!(
        energies,
        vec![Some(states[0].len() as f64), Some(states[1].len() as f64)]
    );
    let e = ebm.encode(&states).await.unwrap();
    assert_eq!(e.len(), 2);
    assert_eq!(e[1], vec![states[1].len() as f32, 1.0]);
    match ebm.score(&[String::new()]).await {
        Err(ValueError(HttpError::Rejected {
            status, message, ..
        })) => {
            assert_eq!((status, message.as_str()), (400, "empty state"));
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
}

#[tokio::test]
async fn no_url_means_no_client_and_a_dead_server_is_named() {
    assert!(EbmClient::from_config(&EbmConfig::default())
        .unwrap()
        .is_none());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let ebm = client(url.clone());
    let err = ebm.health().await.unwrap_err();
    assert!(err.to_string().contains(&url), "{err}");
}

/// A `/health` stub answering `body`.
async fn health_stub(body: Value) -> String {
    let app = Router::new().route(
        "/health",
        get(move || {
            let body = body.clone();
            async move { Json(body) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// The served head's energy scale, read once at start from `/health`, is the priority's when
/// `search.ebm_normalize` is on and the figures can standardise; otherwise raw energies.
#[tokio::test]
async fn the_energy_scale_comes_from_health_when_the_key_is_on() {
    let identity = json!({"config_sha256": "c", "tokenizer_sha256": "t", "dtype": "f32",
        "pooling": "mean", "head_sha256": "h"});
    let body = |scale: Value| {
        json!({"status": "ok", "hidden_size": 64, "head": true, "identity": identity,
            "head_path": "/heads/round-1/head.safetensors", "energy_scale": scale})
    };
    let search = SearchConfig {
        ebm_weight: 0.5,
        ..SearchConfig::default()
    };
    assert!(search.ebm_normalize, "on by default");

    let start = client(health_stub(body(json!({"mean": 0.5, "std": 2.0}))).await)
        .at_start()
        .await;
    let served = start.served.as_ref().unwrap();
    assert_eq!(served.identity.head_sha256.as_deref(), Some("h"));
    assert_eq!(
        served.head.head_path.as_deref(),
        Some("/heads/round-1/head.safetensors")
    );
    let scale = EnergyScale {
        mean: 0.5,
        std: 2.0,
    };
    assert_eq!(start.energy_scale(&search), Some(scale));
    let off = SearchConfig {
        ebm_normalize: false,
        ..search.clone()
    };
    assert_eq!(start.energy_scale(&off), None);

    // A head without figures, a collapsed one, an older server without the fields, and one
    // without an identity at all: raw energies.
    for answer in [
        body(Value::Null),
        body(json!({"mean": 0.5, "std": 0.0})),
        json!({"identity": identity}),
        json!({}),
    ] {
        let start = client(health_stub(answer.clone()).await).at_start().await;
        assert_eq!(start.energy_scale(&search), None, "{answer}");
    }
}

/// The same client against the simulated EBM the demo and the latency benchmarks use.
#[tokio::test]
async fn scores_through_the_simulated_ebm() {
    let server = sim::ebm::spawn(sim::ebm::EbmOptions::default())
        .await
        .unwrap();
    let ebm = client(server.url());
    ebm.health().await.unwrap();
    let states = vec!["⊢ True".to_owned(), "x : ℕ\n⊢ x + 0 = x".repeat(20)];
    let energies = ebm.score(&states).await.unwrap();
    assert_eq!(
        energies,
        vec![
            Some(sim::ebm::energy(&states[0])),
            Some(sim::ebm::energy(&states[1]))
        ]
    );
    assert!(energies[0] < energies[1]);
    assert!(energies.iter().flatten().all(|e| (0.0..1.0).contains(e)));
}

/// `ebm serve` answers 500 for a whole request when one state fails even alone; the client
/// finds that state by halves and scores every other one.
#[tokio::test]
async fn a_state_the_server_cannot_score_costs_only_itself() {
    let server = sim::ebm::spawn(sim::ebm::EbmOptions {
        unscorable: vec!["poison".into()],
        ..sim::ebm::EbmOptions::default()
    })
    .await
    .unwrap();
    let ebm = client(server.url());
    let states: Vec<String> = ["⊢ a", "⊢ b", "⊢ poison", "⊢ c", "⊢ d"]
        .map(String::from)
        .to_vec();
    let energies = ebm.score(&states).await.unwrap();
    assert_eq!(energies.len(), states.len());
    for (state, energy) in states.iter().zip(&energies) {
        match energy {
            // JSON's decimal text may move the last bit.
            Some(e) => assert!((e - sim::ebm::energy(state)).abs() < 1e-12, "{state}"),
            None => assert!(state.contains("poison"), "{state} went unscored"),
        }
    }
    assert_eq!(energies.iter().filter(|e| e.is_none()).count(), 1);
    assert_eq!(ebm.score(&states[2..3]).await.unwrap(), vec![None]);
    // Every state of a batch bad, while the server still scores one it scored before.
    let all_bad = ["⊢ poison 1", "⊢ poison 2", "⊢ poison 3"].map(String::from);
    assert_eq!(ebm.score(&all_bad).await.unwrap(), vec![None, None, None]);

    // A server that fails every state is broken, not the states: the error stands.
    let broken = sim::ebm::spawn(sim::ebm::EbmOptions {
        unscorable: vec!["⊢".into()],
        ..sim::ebm::EbmOptions::default()
    })
    .await
    .unwrap();
    match client(broken.url()).score(&states).await {
        Err(ValueError(HttpError::Unavailable {
            last_status: Some(500),
            last_error,
            ..
        })) => assert!(last_error.contains("states["), "{last_error}"),
        other => panic!("expected the server's 500, got {other:?}"),
    }
}
