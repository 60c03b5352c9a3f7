//! `ebm embed`: each distinct state once, the empty (terminal) state never, and a failed run
//! resumed without re-sending work.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use ebm::embed::{embed_states, EmbedError, EmbedOptions, Encoder};
use ebm::embedding_cache::EmbeddingCache;

#[derive(Debug, thiserror::Error)]
#[error("encoder down")]
struct Down;

/// Embeds a text as [length, first byte]; fails every call after `fail_after` calls.
struct Recording {
    sent: Mutex<Vec<String>>,
    calls: AtomicUsize,
    fail_after: usize,
}

impl Recording {
    fn new(fail_after: usize) -> Arc<Self> {
        Arc::new(Self {
            sent: Mutex::new(Vec::new()),
            calls: AtomicUsize::new(0),
            fail_after,
        })
    }
}

impl Encoder for Recording {
    type Error = Down;
    async fn encode(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, Down> {
        if self.calls.fetch_add(1, Ordering::SeqCst) >= self.fail_after {
            return Err(Down);
        }
        self.sent.lock().unwrap().extend(texts.iter().cloned());
        Ok(texts
            .iter()
            .map(|t| vec![t.len() as f32, f32::from(t.bytes().next().unwrap_or(0))])
            .collect())
    }
}

fn states() -> Vec<String> {
    let mut s: Vec<String> = (0..10).map(|i| format!("⊢ goal {i}")).collect();
    s.extend(s.clone()); // every state twice
    s.push(String::new());
    s
}

#[tokio::test]
async fn distinct_states_are_embedded_once_and_a_failed_run_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("emb.parquet");
    let opts = EmbedOptions {
        batch: 3,
        concurrency: 1,
        resume: false,
    };

    // Two batches succeed, the third call fails: six states are persisted as parts.
    let flaky = Recording::new(2);
    let err = embed_states(flaky.clone(), states(), &out, opts)
        .await
        .unwrap_err();
    assert!(matches!(err, EmbedError::Encoder(_)), "{err}");
    assert_eq!(flaky.sent.lock().unwrap().len(), 6);

    // Without --resume the partial cache is not overwritten.
    let err = embed_states(Recording::new(99), states(), &out, opts)
        .await
        .unwrap_err();
    assert!(matches!(err, EmbedError::Exists(_)), "{err}");

    let good = Recording::new(99);
    let report = embed_states(
        good.clone(),
        states(),
        &out,
        EmbedOptions {
            resume: true,
            ..opts
        },
    )
    .await
    .unwrap();
    assert_eq!(
        (
            report.distinct_states,
            report.already_cached,
            report.embedded,
            report.skipped_empty_state
        ),
        (10, 6, 4, true)
    );
    let resent = good.sent.lock().unwrap().clone();
    assert_eq!(resent.len(), 4);
    // The empty (terminal) state is never sent to an encoder.
    assert!(!resent.contains(&String::new()));
    assert!(!flaky.sent.lock().unwrap().contains(&String::new()));
    assert!(resent
        .iter()
        .all(|s| !flaky.sent.lock().unwrap().contains(s)));

    let cache = EmbeddingCache::load(&out).unwrap();
    assert_eq!((cache.len(), cache.dim()), (10, 2));
    assert!(cache.get("").is_none());
    assert_eq!(cache.get("⊢ goal 7").unwrap()[0], "⊢ goal 7".len() as f32);

    // A finished cache resumed with nothing new sends nothing.
    let idle = Recording::new(99);
    let report = embed_states(
        idle.clone(),
        states(),
        &out,
        EmbedOptions {
            resume: true,
            concurrency: 4,
            ..opts
        },
    )
    .await
    .unwrap();
    assert_eq!(report.embedded, 0);
    assert!(idle.sent.lock().unwrap().is_empty());
}

/// An encoder that says which model it is.
struct Named(&'static str);

impl Encoder for Named {
    type Error = Down;
    async fn encode(&self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, Down> {
        Ok(texts.iter().map(|t| vec![t.len() as f32, 0.0]).collect())
    }
    async fn identity(&self) -> Option<formats::identity::ModelIdentity> {
        Some(formats::identity::ModelIdentity {
            config_sha256: self.0.into(),
            tokenizer_sha256: "t".into(),
            dtype: "bf16".into(),
            pooling: "mean".into(),
            head_sha256: Some("a head plays no part".into()),
        })
    }
}

#[tokio::test]
async fn the_cache_records_its_model_and_resume_refuses_another() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("emb.parquet");
    let opts = EmbedOptions {
        batch: 4,
        concurrency: 1,
        resume: false,
    };
    embed_states(Arc::new(Named("a")), states(), &out, opts)
        .await
        .unwrap();
    let cache = EmbeddingCache::load(&out).unwrap();
    let id = cache.identity().unwrap();
    assert_eq!(
        (id.config_sha256.as_str(), id.head_sha256.as_ref()),
        ("a", None)
    );
    let resume = EmbedOptions {
        resume: true,
        ..opts
    };
    embed_states(Arc::new(Named("a")), states(), &out, resume)
        .await
        .unwrap();
    let err = embed_states(Arc::new(Named("b")), states(), &out, resume)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("two different models"), "{err}");
}
