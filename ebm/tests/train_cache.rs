//! The embedding cache: Parquet round trip, and parts that survive an interrupted run.

use ebm::embedding_cache::{EmbeddingCache, PartWriter};

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
    let mut parts = PartWriter::new(&path, 2).unwrap();
    parts.write(&["b".into()], &[vec![2.0, 2.0]]).unwrap();
    parts
        .write(&["c".into(), "d".into()], &[vec![3.0, 3.0], vec![4.0, 4.0]])
        .unwrap();
    assert!(PartWriter::new(&path, 2)
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
