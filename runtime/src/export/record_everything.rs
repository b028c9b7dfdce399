//! The sampler while a keep rule is on: every span is recorded, and the
//! head sampler's decision lives on in the sampled flag, so downstream
//! services still see it and the export thread knows which traces to hold
//! for their root's end.

use opentelemetry::trace::{Link, SpanKind, TraceId};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{Sampler, SamplingDecision, SamplingResult, ShouldSample};

#[derive(Clone, Debug)]
pub(crate) struct RecordEverything {
    head: Sampler,
}

impl RecordEverything {
    pub(crate) fn new(head: Sampler) -> Self {
        RecordEverything { head }
    }
}

impl ShouldSample for RecordEverything {
    fn should_sample(
        &self,
        parent_context: Option<&Context>,
        trace_id: TraceId,
        name: &str,
        span_kind: &SpanKind,
        attributes: &[KeyValue],
        links: &[Link],
    ) -> SamplingResult {
        let mut result = self.head.should_sample(parent_context, trace_id, name, span_kind, attributes, links);
        if result.decision == SamplingDecision::Drop {
            result.decision = SamplingDecision::RecordOnly;
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt as _, TraceFlags, TraceState};

    use super::*;

    fn decide(sampler: &RecordEverything, parent: &Context) -> SamplingDecision {
        sampler.should_sample(Some(parent), TraceId::from(7), "stage", &SpanKind::Internal, &[], &[]).decision
    }

    #[test]
    fn what_the_head_sampler_drops_is_recorded_unsampled_and_the_rest_sampled() {
        let sampler = RecordEverything::new(Sampler::ParentBased(Box::new(Sampler::AlwaysOff)));
        assert_eq!(decide(&sampler, &Context::new()), SamplingDecision::RecordOnly);
        let sampled_parent =
            SpanContext::new(TraceId::from(7), SpanId::from(1), TraceFlags::SAMPLED, true, TraceState::NONE);
        let parent = Context::new().with_remote_span_context(sampled_parent);
        assert_eq!(decide(&sampler, &parent), SamplingDecision::RecordAndSample);
    }
}
