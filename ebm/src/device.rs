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

/// The encoder's compute dtype on `device`, and why (for the load log line).
pub fn compute_dtype(device: &Device) -> (DType, &'static str) {
    dtype_for(compute_capability(device))
}

/// The dtype for a CUDA compute capability `(major, minor)`, or for the CPU (`None`): bf16
/// needs Ampere (8.0) or newer for its tensor-core matmuls; Volta/Turing (7.x) have f16
/// tensor cores but no bf16, so f16 there; older GPUs get f32. candle's CPU matmul has no
/// bf16 kernels, so the CPU computes in f32.
pub fn dtype_for(capability: Option<(u32, u32)>) -> (DType, &'static str) {
    match capability {
        None => (DType::F32, "f32 on the CPU"),
        Some((major, _)) if major >= 8 => (DType::BF16, "bf16 on compute capability >= 8.0"),
        Some((7, _)) => (DType::F16, "f16 on compute capability 7.x (no bf16)"),
        Some(_) => (DType::F32, "f32 on compute capability < 7.0"),
    }
}

/// The GPU's compute capability; None on the CPU.
#[cfg(feature = "cuda")]
fn compute_capability(device: &Device) -> Option<(u32, u32)> {
    use candle_core::cuda::cudarc::driver::{result, sys};
    let Device::Cuda(dev) = device else {
        return None;
    };
    let cu_device = dev.cuda_stream().context().cu_device();
    let attribute = |a| unsafe { result::device::get_attribute(cu_device, a) };
    // As candle's own kernels do when the driver cannot say: assume a current GPU.
    let major = attribute(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR)
        .unwrap_or(8);
    let minor = attribute(sys::CUdevice_attribute::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR)
        .unwrap_or(0);
    Some((major as u32, minor as u32))
}

#[cfg(not(feature = "cuda"))]
fn compute_capability(_device: &Device) -> Option<(u32, u32)> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dtype_follows_compute_capability() {
        assert_eq!(dtype_for(None).0, DType::F32);
        assert_eq!(dtype_for(Some((9, 0))).0, DType::BF16); // H100/H200
        assert_eq!(dtype_for(Some((8, 0))).0, DType::BF16); // A100
        assert_eq!(dtype_for(Some((8, 6))).0, DType::BF16);
        assert_eq!(dtype_for(Some((7, 5))).0, DType::F16); // T4
        assert_eq!(dtype_for(Some((7, 0))).0, DType::F16); // V100
        assert_eq!(dtype_for(Some((6, 1))).0, DType::F32); // P40
    }
}
