//! Energy head: save/load round trip, PyTorch-style names, dropout only in training.

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use ebm::{save_head, EnergyHead, HeadConfig};

fn small_config(spectral_norm: bool) -> HeadConfig {
    HeadConfig {
        widths: vec![16, 8, 4, 1],
        dropout: 0.5,
        spectral_norm,
        power_iterations: 1,
    }
}

fn input() -> Tensor {
    let data: Vec<f32> = (0..5 * 16)
        .map(|i| ((i * 37 % 23) as f32 - 11.0) / 7.0)
        .collect();
    Tensor::from_vec(data, (5, 16), &Device::Cpu).unwrap()
}

fn round_trip(spectral_norm: bool) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("head.safetensors");
    let cfg = small_config(spectral_norm);
    let varmap = VarMap::new();
    let head = EnergyHead::new(
        &cfg,
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
    )
    .unwrap();
    let before: Vec<f32> = head.forward(&input(), false).unwrap().to_vec1().unwrap();
    assert_eq!(before.len(), 5);
    save_head(&varmap, &cfg, &path).unwrap();
    assert!(dir.path().join("head.json").exists());

    let names: Vec<String> = candle_core::safetensors::load(&path, &Device::Cpu)
        .unwrap()
        .into_keys()
        .collect();
    for i in 0..3 {
        assert!(names.contains(&format!("layers.{i}.weight")), "{names:?}");
        assert!(names.contains(&format!("layers.{i}.bias")), "{names:?}");
    }

    let loaded = EnergyHead::load(&path, &Device::Cpu).unwrap();
    assert_eq!(loaded.config(), &cfg);
    let after: Vec<f32> = loaded.forward(&input(), false).unwrap().to_vec1().unwrap();
    for (a, b) in before.iter().zip(&after) {
        assert!(
            (a - b).abs() <= 1e-5 * a.abs().max(1.0),
            "{before:?} vs {after:?}"
        );
    }
}

#[test]
fn save_load_round_trip() {
    round_trip(false);
}

#[test]
fn save_load_round_trip_with_spectral_norm() {
    round_trip(true);
}

#[test]
fn spectral_norm_bounds_each_layer() {
    // With every layer normalised to spectral norm 1 and SiLU 1-Lipschitz-ish (< 1.1), the
    // head's output can move at most ~1.1^2 times the input distance, whatever the weights.
    let cfg = HeadConfig {
        dropout: 0.0,
        ..small_config(true)
    };
    let varmap = VarMap::new();
    let head = EnergyHead::new(
        &cfg,
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
    )
    .unwrap();
    for var in varmap.all_vars() {
        var.set(&(var.as_tensor() * 50.0).unwrap()).unwrap();
    }
    let x = input();
    let y = (&x + 0.01).unwrap();
    let ex: Vec<f32> = head.forward(&x, false).unwrap().to_vec1().unwrap();
    let ey: Vec<f32> = head.forward(&y, false).unwrap().to_vec1().unwrap();
    let dist = (0.01f32 * 0.01 * 16.0).sqrt();
    for (a, b) in ex.iter().zip(&ey) {
        assert!((a - b).abs() <= 1.3 * dist, "{a} {b}");
    }
}

#[test]
fn dropout_only_in_training() {
    let cfg = small_config(false);
    let varmap = VarMap::new();
    let head = EnergyHead::new(
        &cfg,
        VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu),
    )
    .unwrap();
    let a: Vec<f32> = head.forward(&input(), false).unwrap().to_vec1().unwrap();
    let b: Vec<f32> = head.forward(&input(), false).unwrap().to_vec1().unwrap();
    assert_eq!(a, b);
    let trained: Vec<Vec<f32>> = (0..4)
        .map(|_| head.forward(&input(), true).unwrap().to_vec1().unwrap())
        .collect();
    assert!(
        trained.iter().any(|t| t != &a),
        "dropout never changed the output"
    );
}

#[test]
fn bad_configs_are_rejected_with_reason() {
    let err = serde_json::from_str::<HeadConfig>(r#"{"widths":[4,1],"drop":0.1}"#).unwrap_err();
    assert!(err.to_string().contains("drop"), "{err}");
    let cfg = HeadConfig {
        widths: vec![4, 2],
        ..HeadConfig::default()
    };
    let err = EnergyHead::new(
        &cfg,
        VarBuilder::from_varmap(&VarMap::new(), DType::F32, &Device::Cpu),
    )
    .unwrap_err();
    assert!(err.to_string().contains("last width must be 1"), "{err}");
}
