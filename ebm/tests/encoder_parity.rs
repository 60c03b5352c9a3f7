//! Our candle Llama encoder against Hugging Face transformers: the reference embeddings in
//! tests/data were computed by `tests/data/make_tiny_llama.py` (transformers' LlamaModel,
//! mean of `hidden_states[-1]` over real tokens of a right-padded batch).

use std::path::{Path, PathBuf};

use candle_core::Device;
use ebm::llama_config::LlamaConfig;
use ebm::LlamaEncoder;
use serde_json::Value;

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn matrix(v: &Value) -> Vec<Vec<f32>> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect()
        })
        .collect()
}

/// Largest |a - b| over the row, relative to the row's largest |b|.
fn assert_close(ours: &[Vec<f32>], reference: &[Vec<f32>], tol: f32, what: &str) {
    assert_eq!(ours.len(), reference.len(), "{what}: row count");
    for (i, (a, b)) in ours.iter().zip(reference).enumerate() {
        assert_eq!(a.len(), b.len(), "{what}: row {i} width");
        let scale = b.iter().fold(0f32, |m, x| m.max(x.abs()));
        let err = a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()));
        assert!(
            err <= tol * scale,
            "{what}: row {i} relative error {} > {tol}",
            err / scale
        );
    }
}

fn texts(reference: &Value) -> Vec<String> {
    reference["texts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect()
}

fn encode(encoder: &LlamaEncoder, texts: &[String]) -> Vec<Vec<f32>> {
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    encoder.encode(&refs).unwrap().to_vec2().unwrap()
}

#[test]
fn tokenizer_matches_python_tokenizers() {
    let reference = read_json(&data("tiny-llama/reference_embeddings.json"));
    let encoder = LlamaEncoder::load(&data("tiny-llama"), &Device::Cpu).unwrap();
    for (text, ids) in texts(&reference)
        .iter()
        .zip(reference["token_ids"].as_array().unwrap())
    {
        let expected: Vec<u32> = ids
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u32)
            .collect();
        assert_eq!(encoder.tokenize(text).unwrap(), expected, "{text:?}");
    }
}

#[test]
fn embeddings_match_transformers() {
    let reference = read_json(&data("tiny-llama/reference_embeddings.json"));
    let encoder = LlamaEncoder::load(&data("tiny-llama"), &Device::Cpu).unwrap();
    assert_eq!(encoder.hidden_size(), 64);
    let ours = encode(&encoder, &texts(&reference));
    assert_close(
        &ours,
        &matrix(&reference["embeddings"]),
        1e-4,
        "batch of 12",
    );
}

#[test]
fn padding_does_not_change_an_embedding() {
    let reference = read_json(&data("tiny-llama/reference_embeddings.json"));
    let encoder = LlamaEncoder::load(&data("tiny-llama"), &Device::Cpu).unwrap();
    let all = texts(&reference);
    let expected = matrix(&reference["embeddings"]);
    for i in [0, 4, 11] {
        let alone = encode(&encoder, &all[i..=i]);
        assert_close(&alone, &expected[i..=i], 1e-4, &format!("text {i} alone"));
    }
}

#[test]
fn sharded_checkpoint_equals_single_file() {
    let reference = read_json(&data("tiny-llama/reference_embeddings.json"));
    let single = LlamaEncoder::load(&data("tiny-llama"), &Device::Cpu).unwrap();
    let sharded = LlamaEncoder::load(&data("tiny-llama-sharded"), &Device::Cpu).unwrap();
    let all = texts(&reference);
    assert_eq!(encode(&single, &all), encode(&sharded, &all));
}

/// Same weights, each rope_scaling variant HF supports for Llama (both config forms, and a
/// YaRN factor that disagrees with the position ratio), references from transformers 5.
#[test]
fn rope_scaling_variants_match_transformers() {
    let reference = read_json(&data("tiny-llama/reference_embeddings.json"));
    let variants = read_json(&data("tiny-llama/rope_variants.json"));
    let base_config = read_json(&data("tiny-llama/config.json"));
    for variant in variants.as_array().unwrap() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["model.safetensors", "tokenizer.json"] {
            std::fs::copy(data("tiny-llama").join(f), dir.path().join(f)).unwrap();
        }
        let mut config = base_config.clone();
        for (key, value) in variant["config"].as_object().unwrap() {
            match value {
                Value::Null => config.as_object_mut().unwrap().remove(key),
                v => config
                    .as_object_mut()
                    .unwrap()
                    .insert(key.clone(), v.clone()),
            };
        }
        std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
        let encoder = LlamaEncoder::load(dir.path(), &Device::Cpu).unwrap();
        let ours = encode(&encoder, &texts(&reference));
        let what = variant["config"].to_string();
        assert_close(&ours, &matrix(&variant["embeddings"]), 1e-4, &what);
    }
}

/// A model directory with tiny-llama's config and weights, config-bos/'s tokenizer.json (no
/// post-processor) and one of its tokenizer_config variants.
fn config_bos_model(variant: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in ["model.safetensors", "config.json"] {
        std::fs::copy(data("tiny-llama").join(f), dir.path().join(f)).unwrap();
    }
    std::fs::copy(
        data("config-bos/tokenizer.json"),
        dir.path().join("tokenizer.json"),
    )
    .unwrap();
    std::fs::copy(
        data(&format!("config-bos/tokenizer_config.{variant}.json")),
        dir.path().join("tokenizer_config.json"),
    )
    .unwrap();
    dir
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

/// BOS (and EOS) only from tokenizer_config.json, as transformers 4's LlamaTokenizerFast adds
/// them (DeepSeek's case); another tokenizer class keeps tokenizer.json's (absent) template.
/// Token ids, left-truncated ids and embeddings all from transformers (config-bos/).
#[test]
fn bos_from_tokenizer_config_matches_transformers() {
    let reference = read_json(&data("config-bos/reference.json"));
    let all = texts(&reference);
    let long = reference["long_text"].as_str().unwrap();
    let max = reference["truncate_to"].as_u64().unwrap() as usize;
    for (name, expected) in reference["variants"].as_object().unwrap() {
        let dir = config_bos_model(name);
        let encoder = LlamaEncoder::load(dir.path(), &Device::Cpu).unwrap();
        for (text, want) in all.iter().zip(expected["token_ids"].as_array().unwrap()) {
            assert_eq!(
                encoder.tokenize(text).unwrap(),
                ids(want),
                "{name}: {text:?}"
            );
        }
        assert_eq!(
            encoder.tokenize(long).unwrap(),
            ids(&expected["long_token_ids"]),
            "{name}: long text"
        );
        let cut = encoder.tokenize_truncated(long, max).unwrap();
        assert!(cut.truncated);
        assert_eq!(
            cut.ids,
            ids(&expected["long_truncated_ids"]),
            "{name}: truncated"
        );
        let ours = encode(&encoder, &all);
        assert_close(&ours, &matrix(&expected["embeddings"]), 1e-4, name);
    }
    // The case the fixture exists for: without tokenizer_config.json, no BOS at all.
    let bare = config_bos_model("bos");
    std::fs::remove_file(bare.path().join("tokenizer_config.json")).unwrap();
    let encoder = LlamaEncoder::load(bare.path(), &Device::Cpu).unwrap();
    assert_ne!(encoder.tokenize(&all[0]).unwrap()[0], 0);
}

#[test]
fn short_text_is_not_truncated_and_bos_survives_truncation() {
    let encoder = LlamaEncoder::load(&data("tiny-llama"), &Device::Cpu).unwrap();
    let text = "x : ℝ\nh₀ : 0 < x\n⊢ x ^ 2 > 0";
    let full = encoder.tokenize(text).unwrap();
    let same = encoder.tokenize_truncated(text, full.len()).unwrap();
    assert_eq!(
        (same.ids.as_slice(), same.truncated),
        (full.as_slice(), false)
    );
    let cut = encoder.tokenize_truncated(text, 5).unwrap();
    assert_eq!(cut.ids.len(), 5);
    assert_eq!(cut.ids[0], 0, "BOS kept");
    assert_eq!(cut.ids[1..], full[full.len() - 4..], "the last tokens kept");
}

#[test]
fn bad_tokenizer_config_is_named() {
    let dir = config_bos_model("bos");
    std::fs::write(
        dir.path().join("tokenizer_config.json"),
        r#"{"tokenizer_class": "LlamaTokenizerFast", "add_bos_token": true, "bos_token": "<nope>"}"#,
    )
    .unwrap();
    let err = LlamaEncoder::load(dir.path(), &Device::Cpu)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("tokenizer_config.json") && err.contains("<nope>"),
        "{err}"
    );
}

#[test]
fn transformers_v5_rope_parameters_form_is_read() {
    let text = r#"{"vocab_size": 10, "hidden_size": 8, "intermediate_size": 16,
        "num_hidden_layers": 1, "num_attention_heads": 2, "max_position_embeddings": 64,
        "rope_parameters": {"rope_type": "linear", "factor": 4.0, "rope_theta": 500.0}}"#;
    let c = LlamaConfig::from_json(text, Path::new("config.json")).unwrap();
    assert_eq!(c.rope.theta, 500.0);
    assert_eq!(
        c.rope.scaling,
        ebm::llama_config::RopeScaling::Linear { factor: 4.0 }
    );
    assert_eq!(c.num_key_value_heads, 2);
}

#[test]
fn yarn_without_factor_is_an_error_as_in_transformers() {
    let text = r#"{"vocab_size": 10, "hidden_size": 8, "intermediate_size": 16,
        "num_hidden_layers": 1, "num_attention_heads": 2, "max_position_embeddings": 64,
        "rope_scaling": {"type": "yarn", "original_max_position_embeddings": 16}}"#;
    let err = LlamaConfig::from_json(text, Path::new("x/config.json"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("\"factor\""), "{err}");
}

#[test]
fn unsupported_rope_type_is_named() {
    let text = r#"{"vocab_size": 10, "hidden_size": 8, "intermediate_size": 16,
        "num_hidden_layers": 1, "num_attention_heads": 2,
        "rope_scaling": {"type": "longrope", "factor": 2.0}}"#;
    let err = LlamaConfig::from_json(text, Path::new("x/config.json"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("\"longrope\"") && err.contains("x/config.json"),
        "{err}"
    );
}

#[test]
fn cuda_without_feature_is_a_clear_error() {
    if cfg!(feature = "cuda") {
        return;
    }
    let err = ebm::parse_device("cuda:1").unwrap_err().to_string();
    assert!(err.contains("--features cuda"), "{err}");
    assert!(ebm::parse_device("gpu").is_err());
    assert!(ebm::parse_device("cpu").unwrap().is_cpu());
}
