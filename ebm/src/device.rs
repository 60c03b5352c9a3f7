//! Device and compute dtype from a `--device` string.

use candle_core::{DType, Device};

use crate::error::{EbmError, Result};

/// `"cpu"` or `"cuda:N"` (`"cuda"` = `"cuda:0"`). CUDA needs the `cuda` cargo feature.
pub fn parse_device(spec: &str) -> Result<Device> {
    let bad = |message: String| EbmError::Device {
        device: spec.to_string(),
        message,
    };
    match spec {
        "cpu" => Ok(Device::Cpu),
        s if s == "cuda" || s.starts_with("cuda:") => {
            let ordinal = match s.strip_prefix("cuda:") {
                None => 0,
                Some(n) => n
                    .parse::<usize>()
                    .map_err(|_| bad(format!("{n:?} is not a GPU index")))?,
            };
            cuda_device(ordinal).map_err(bad)
        }
        _ => Err(bad("expected \"cpu\" or \"cuda:N\"".into())),
    }
}

#[cfg(feature = "cuda")]
fn cuda_device(ordinal: usize) -> std::result::Result<Device, String> {
    Device::new_cuda(ordinal).map_err(|e| e.to_string())
}

#[cfg(not(feature = "cuda"))]
fn cuda_device(_ordinal: usize) -> std::result::Result<Device, String> {
    Err("this binary was built without CUDA; rebuild with `--features cuda`".into())
}

/// The encoder's compute dtype: candle's CPU matmul has no bf16, so f32 there; bf16 on GPU.
pub fn compute_dtype(device: &Device) -> DType {
    if device.is_cpu() {
        DType::F32
    } else {
        DType::BF16
    }
}
