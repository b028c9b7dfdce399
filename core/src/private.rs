//! The door generated code goes through: what the macros' expansions name,
//! and nothing else. Not a stable API: anything here may change in any
//! release.

pub use crate::ai_kind::AiKind;
pub use crate::attributes::{AttrValue, Attributes, SpanAttributes};
pub use crate::carrier::Carrier;
pub use crate::in_span::InSpan;
pub use crate::kind::Kind;
pub use crate::links::{IntoLink, links};
pub use crate::meta::Meta;
pub use crate::span_handle::SpanHandle;
pub use crate::spanned::Spanned;
pub use crate::stage_timer::StageTimer;

#[path = "input.rs"]
pub mod input;
#[path = "outcome.rs"]
pub mod outcome;
