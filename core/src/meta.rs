//! What generated code knows about a span at compile time.

use crate::ai_kind::AiKind;
use crate::kind::Kind;

/// A span's name, kind and end-of-span behaviour, fixed where the fn is
/// written.
#[derive(Clone, Copy, Debug)]
pub struct Meta {
    pub(crate) name: &'static str,
    pub(crate) kind: Kind,
    pub(crate) ai_kind: AiKind,
    pub(crate) device_sync: bool,
    pub(crate) flush_on_failure: bool,
}

impl Meta {
    /// An internal span with this name.
    pub const fn new(name: &'static str) -> Self {
        Meta { name, kind: Kind::Internal, ai_kind: AiKind::Chain, device_sync: false, flush_on_failure: false }
    }

    /// Sets the kind.
    #[must_use]
    pub const fn kind(mut self, kind: Kind) -> Self {
        self.kind = kind;
        self
    }

    /// Sets the OpenInference kind (`CHAIN` unless set).
    #[must_use]
    pub const fn ai_kind(mut self, kind: AiKind) -> Self {
        self.ai_kind = kind;
        self
    }

    /// Waits for the device before the span ends.
    #[must_use]
    pub const fn device_sync(mut self) -> Self {
        self.device_sync = true;
        self
    }

    /// Flushes the exporters when the span ends in failure (a failed setup is
    /// followed by the process exiting).
    #[must_use]
    pub const fn flush_on_failure(mut self) -> Self {
        self.flush_on_failure = true;
        self
    }
}
