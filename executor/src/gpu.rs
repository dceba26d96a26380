//! Device acquisition: picks a wgpu adapter (a real GPU when there is one, else software
//! Vulkan such as lavapipe) and opens a device with that adapter's real limits.
//!
//! Kept apart from the kernels (as in wgpu's hello_compute): [`Gpu`] is acquired once per
//! process and shared by every job.

use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Environment variable that forces the adapter kind: `auto` (default), `gpu` or `cpu`.
pub const ADAPTER_ENV: &str = "CAPACLOUD_ADAPTER";

/// Which adapter to use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AdapterPreference {
    /// A hardware GPU if there is one, else a software adapter.
    #[default]
    Auto,
    /// A hardware GPU (discrete, integrated or virtual) or nothing.
    Gpu,
    /// A software adapter (lavapipe) or nothing.
    Cpu,
}

impl FromStr for AdapterPreference {
    type Err = GpuError;
    fn from_str(s: &str) -> Result<Self, GpuError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "auto" => Ok(Self::Auto),
            "gpu" | "hardware" => Ok(Self::Gpu),
            "cpu" | "software" => Ok(Self::Cpu),
            other => Err(GpuError::BadPreference(other.to_string())),
        }
    }
}

impl AdapterPreference {
    /// Reads [`ADAPTER_ENV`]; unset means [`AdapterPreference::Auto`].
    ///
    /// # Errors
    /// [`GpuError::BadPreference`] for a value other than auto/gpu/cpu.
    pub fn from_env() -> Result<Self, GpuError> {
        std::env::var(ADAPTER_ENV).unwrap_or_default().parse()
    }
}

/// Why no device could be opened.
#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    #[error("{ADAPTER_ENV} must be auto, gpu or cpu, not `{0}`")]
    BadPreference(String),
    #[error("no Vulkan adapter of the requested kind ({0:?}); adapters seen: {1}")]
    NoAdapter(AdapterPreference, String),
    #[error("opening the device failed: {0}")]
    RequestDevice(String),
}

/// An open device and its queue, with the adapter's identity and limits.
pub struct Gpu {
    pub info: wgpu::AdapterInfo,
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
    pub limits: wgpu::Limits,
    lost: Arc<AtomicBool>,
}

fn rank(t: wgpu::DeviceType) -> u8 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 4,
        wgpu::DeviceType::IntegratedGpu => 3,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 1,
        wgpu::DeviceType::Cpu => 0,
    }
}

impl Gpu {
    /// Opens the best Vulkan adapter matching `pref`, requesting its full limits.
    ///
    /// # Errors
    /// [`GpuError::NoAdapter`] when none matches, [`GpuError::RequestDevice`] when the
    /// driver refuses the device.
    pub fn acquire(pref: AdapterPreference) -> Result<Self, GpuError> {
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle_from_env();
        desc.backends = wgpu::Backends::VULKAN;
        let instance = wgpu::Instance::new(desc);
        let adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::VULKAN));
        let seen = adapters
            .iter()
            .map(|a| format!("{} ({:?})", a.get_info().name, a.get_info().device_type))
            .collect::<Vec<_>>()
            .join(", ");
        let adapter = adapters
            .into_iter()
            .filter(|a| match pref {
                AdapterPreference::Auto => true,
                AdapterPreference::Gpu => rank(a.get_info().device_type) >= 2,
                AdapterPreference::Cpu => a.get_info().device_type == wgpu::DeviceType::Cpu,
            })
            .max_by_key(|a| rank(a.get_info().device_type))
            .ok_or_else(|| GpuError::NoAdapter(pref, if seen.is_empty() { "none".into() } else { seen }))?;
        let info = adapter.get_info();
        let limits = adapter.limits();
        let (device, queue) = pollster::block_on(adapter.request_device(&wgpu::DeviceDescriptor {
            label: Some("capacloud-executor"),
            required_features: wgpu::Features::empty(),
            required_limits: limits.clone(),
            ..Default::default()
        }))
        .map_err(|e| GpuError::RequestDevice(e.to_string()))?;
        let lost = Arc::new(AtomicBool::new(false));
        let flag = lost.clone();
        device.set_device_lost_callback(move |reason, message| {
            tracing::error!(?reason, %message, "GPU device lost");
            flag.store(true, Ordering::SeqCst);
        });
        tracing::info!(adapter = %info.name, kind = ?info.device_type, driver = %info.driver, "GPU device open");
        Ok(Self { info, device, queue, limits, lost })
    }

    /// Opens the adapter [`ADAPTER_ENV`] asks for.
    ///
    /// # Errors
    /// As [`Gpu::acquire`], plus a bad [`ADAPTER_ENV`] value.
    pub fn from_env() -> Result<Self, GpuError> {
        Self::acquire(AdapterPreference::from_env()?)
    }

    /// Whether the device was lost (the executor then refuses further jobs on it).
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    pub(crate) fn mark_lost(&self) {
        self.lost.store(true, Ordering::SeqCst);
    }

    /// Whether this is a software adapter (lavapipe).
    pub fn is_software(&self) -> bool {
        self.info.device_type == wgpu::DeviceType::Cpu
    }

    /// "name (kind, driver)" for logs and offers.
    pub fn describe(&self) -> String {
        format!("{} ({:?}, {} {})", self.info.name, self.info.device_type, self.info.driver, self.info.driver_info)
    }
}

impl Drop for Gpu {
    /// A device abandoned after a timeout may still be running the runaway kernel; destroying
    /// it would wait for that kernel. Its handles are leaked instead, so dropping never hangs.
    fn drop(&mut self) {
        if self.is_lost() {
            std::mem::forget(self.device.clone());
            std::mem::forget(self.queue.clone());
        }
    }
}
