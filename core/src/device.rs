//! Waiting for the accelerator before a `sync` span ends, so its duration is
//! device time rather than kernel-launch time.

use std::sync::OnceLock;

static DEVICE_SYNC: OnceLock<fn()> = OnceLock::new();

/// Sets the function `#[span(sync)]` spans call before they end, such as
/// `|| tch::Cuda::synchronize(0)`. Only the first call takes effect; without
/// one, `sync` costs nothing.
///
/// ```
/// # extern crate traced_core as traced;
/// traced::set_device_sync(|| { /* e.g. tch::Cuda::synchronize(0) */ });
/// ```
pub fn set_device_sync(sync: fn()) {
    let _ = DEVICE_SYNC.set(sync);
}

pub(crate) fn synchronize() {
    if let Some(sync) = DEVICE_SYNC.get() {
        sync();
    }
}
