//! The generate-server utilisation counters over real loopback HTTP: each request is booked
//! to the server that answered it, with its prompt count. No timing is asserted, only the
//! invariants of the integrals.

use search::config::{Config, PolicyBackend, PolicyConfig, Sampling};
use search::policy::build_policy;
use search::request_setup::RequestSetup;
use serde_json::json;
use sim::sglang::{spawn, SglangOptions};
use sim::world::World;

#[tokio::test]
async fn requests_and_prompts_are_booked_per_url() {
    let world: World = serde_json::from_value(json!({"theorems": []})).unwrap();
    let a = spawn(world.clone(), SglangOptions::default())
        .await
        .unwrap();
    let b = spawn(world, SglangOptions::default()).await.unwrap();
    for (backend, sampling) in [
        (PolicyBackend::Sglang, Sampling::Repeat),
        (PolicyBackend::Openai, Sampling::N),
    ] {
        let config = Config {
            policy: PolicyConfig {
                backend,
                sampling,
                urls: vec![a.url(), b.url()],
                ..PolicyConfig::default()
            },
            ..Config::default()
        };
        let setup = RequestSetup::from_config(&config).unwrap();
        let policy = build_policy(&config.policy, &setup).unwrap();
        assert_eq!(
            policy.utilisation().iter().map(|u| u.requests).sum::<u64>(),
            0
        );
        assert!(policy.drain_in_flight_steps(true).is_empty());
        let prompts = vec!["p1".to_owned(), "p2".to_owned()];
        for _ in 0..3 {
            policy.generate(&prompts, 4).await.unwrap();
        }
        // The levels when the record started, then each request's start and end.
        let steps: Vec<(String, u64, u64)> = policy
            .drain_in_flight_steps(false)
            .into_iter()
            .map(|s| (s.url, s.requests, s.prompts))
            .collect();
        let (a_url, b_url) = (a.url(), b.url());
        let level = |url: &String, requests, prompts| (url.clone(), requests, prompts);
        assert_eq!(
            steps,
            [
                level(&a_url, 0, 0),
                level(&b_url, 0, 0),
                level(&a_url, 1, 8),
                level(&a_url, 0, 0),
                level(&b_url, 1, 8),
                level(&b_url, 0, 0),
                level(&a_url, 1, 8),
                level(&a_url, 0, 0),
            ]
        );
        let used = policy.utilisation();
        let urls: Vec<&str> = used.iter().map(|u| u.url.as_str()).collect();
        assert_eq!(urls, [a.url(), b.url()]);
        // Round-robin: 2 requests to the first server, 1 to the second; 2 prompts x 4 samples.
        assert_eq!(
            used.iter()
                .map(|u| (u.requests, u.prompts))
                .collect::<Vec<_>>(),
            [(2, 16), (1, 8)]
        );
        for u in &used {
            // Every request in flight carries 8 prompts, and one request at a time was sent.
            assert!(u.busy_ms > 0.0);
            assert!((u.prompt_ms - 8.0 * u.busy_ms).abs() < 1e-6 * u.prompt_ms);
        }
        let later = policy.utilisation();
        assert_eq!(later[0].since(&used[0]).requests, 0);
    }
}
