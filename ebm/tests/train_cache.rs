//! The embedding cache: Parquet round trip, the model identity it records, and parts that
//! survive an interrupted run.

use ebm::embedding_cache::{CacheError, EmbeddingCache, PartWriter};
use formats::identity::ModelIdentity;

fn identity(config: &str) -> ModelIdentity {
    ModelIdentity {
        config_sha256: config.into(),
        tokenizer_sha256: "t".into(),
        dtype: "bf16".into(),
        pooling: "mean".into(),
        head_sha256: None,
    }
}

#[test]
fn the_model_identity_round_trips_and_another_model_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("emb.parquet");
    let mut cache = EmbeddingCache::new(2);
    cache.set_identity(Some(identity("a"))).unwrap();
    cache.insert("s".into(), &[1.0, 2.0]).unwrap();
    cache.save(&path).unwrap();
    let mut back = EmbeddingCache::load(&path).unwrap();
    assert_eq!(back.identity(), Some(&identity("a")));
    back.set_identity(Some(identity("a"))).unwrap();
    let err = back.set_identity(Some(identity("b"))).unwrap_err();
    assert!(matches!(err, CacheError::Identity { .. }), "{err}");
    // Parts written by another model do not merge into it.
    PartWriter::new(&path, 2, Some(identity("b")))
        .unwrap()
        .write(&["t".into()], &[vec![0.0, 0.0]])
        .unwrap();
    assert!(EmbeddingCache::load_resumable(&path).is_err());
}

#[test]
fn cache_round_trips_through_parquet() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("emb.parquet");
    let mut cache = EmbeddingCache::new(3);
    cache.insert("⊢ a".into(), &[1.0, 2.0, 3.0]).unwrap();
    cache.insert(String::new(), &[-1.0, 0.5, 0.25]).unwrap();
    cache.insert("⊢ a".into(), &[9.0, 9.0, 9.0]).unwrap(); // first embedding wins
    assert!(cache.insert("x".into(), &[1.0]).is_err());
    cache.save(&path).unwrap();
    let back = EmbeddingCache::load(&path).unwrap();
    assert_eq!((back.dim(), back.len()), (3, 2));
    assert_eq!(back.get("⊢ a").unwrap(), &[1.0, 2.0, 3.0]);
    assert_eq!(back.get("").unwrap(), &[-1.0, 0.5, 0.25]);

    let empty = dir.path().join("empty.parquet");
    EmbeddingCache::new(5).save(&empty).unwrap();
    assert_eq!(EmbeddingCache::load(&empty).unwrap().dim(), 5);
}

#[test]
fn parts_of_an_interrupted_run_are_resumed_and_merged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("emb.parquet");
    assert!(EmbeddingCache::load_resumable(&path).unwrap().is_none());
    let mut base = EmbeddingCache::new(2);
    base.insert("a".into(), &[1.0, 1.0]).unwrap();
    base.save(&path).unwrap();

    // A run writes two parts, then dies before merging.
    let mut parts = PartWriter::new(&path, 2, None).unwrap();
    parts.write(&["b".into()], &[vec![2.0, 2.0]]).unwrap();
    parts
        .write(&["c".into(), "d".into()], &[vec![3.0, 3.0], vec![4.0, 4.0]])
        .unwrap();
    assert!(PartWriter::new(&path, 2, None)
        .unwrap()
        .write(&["e".into()], &[vec![1.0]])
        .is_err());

    let resumed = EmbeddingCache::load_resumable(&path).unwrap().unwrap();
    assert_eq!(resumed.len(), 4);
    assert_eq!(resumed.get("d").unwrap(), &[4.0, 4.0]);
    // The finished file alone is still the old one until the merge.
    assert_eq!(EmbeddingCache::load(&path).unwrap().len(), 1);
    resumed.save(&path).unwrap();
    assert_eq!(EmbeddingCache::load(&path).unwrap().len(), 4);
    assert!(!dir.path().join("emb.parquet.parts").exists());
}
