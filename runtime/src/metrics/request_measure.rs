//! One request measured by the serve layer: its duration, and for a GenAI
//! request its time to first token, into the request families.

use std::borrow::Cow;
use std::time::Instant;

use opentelemetry::trace::{SpanContext, SpanId, TraceId};
use traced_core::__layers::RequestSlot;

use crate::metrics::request_metrics::{
    GEN_AI_DURATION, GEN_AI_TIME_TO_FIRST_TOKEN, HTTP_DURATION, SeriesKey, is_recording,
};

/// One request being measured: what names its series, and when it arrived.
#[derive(Debug)]
pub(crate) struct RequestMeasure {
    pub(crate) method: Cow<'static, str>,
    pub(crate) route: Option<Cow<'static, str>>,
    pub(crate) arrived: Instant,
}

impl RequestMeasure {
    /// Records the request as answered with `status` now; `failed` when it
    /// failed without a status of its own to say so (the service's error,
    /// a body that broke off, a failed item). The request's span, when
    /// sampled, is the exemplar; its slot says whether it was a GenAI one.
    pub(crate) fn record(self, status: u16, failed: bool, slot: &RequestSlot) {
        if !is_recording() {
            return;
        }
        let (failed_on_span, span, ai) = slot.outcome();
        let failed = failed || failed_on_span;
        let error_type = if status >= 500 {
            Some(Cow::Owned(status.to_string()))
        } else if failed {
            Some(Cow::Borrowed("_OTHER"))
        } else {
            None
        };
        let exemplar = exemplar(span.as_ref());
        let seconds = self.arrived.elapsed().as_secs_f64();
        if let Some(operation) = ai.operation_name() {
            if error_type.is_none()
                && let Some(first) = ai.first_chunk
            {
                let key = SeriesKey::GenAi { operation, model: ai.model.clone(), error_type: None };
                GEN_AI_TIME_TO_FIRST_TOKEN.record(key, first.as_secs_f64(), exemplar);
            }
            let key = SeriesKey::GenAi { operation, model: ai.model, error_type: error_type.clone() };
            GEN_AI_DURATION.record(key, seconds, exemplar);
        }
        let key = SeriesKey::Request { method: self.method, route: self.route, status, error_type };
        HTTP_DURATION.record(key, seconds, exemplar);
    }
}

/// The span as an exemplar, when its trace was sampled.
fn exemplar(span: Option<&SpanContext>) -> Option<(TraceId, SpanId)> {
    span.filter(|span| span.is_sampled()).map(|span| (span.trace_id(), span.span_id()))
}

#[cfg(test)]
mod tests {
    use opentelemetry::trace::{TraceFlags, TraceState};

    use super::*;
    use crate::metrics::histogram::DURATION_BOUNDS;
    use crate::metrics::request_metrics::Family;

    #[test]
    fn only_sampled_requests_leave_an_exemplar() {
        let sampled = SpanContext::new(TraceId::from(7), SpanId::from(7), TraceFlags::SAMPLED, false, TraceState::NONE);
        let dropped =
            SpanContext::new(TraceId::from(8), SpanId::from(8), TraceFlags::default(), false, TraceState::NONE);
        assert_eq!(exemplar(Some(&dropped)), None, "an unsampled trace is never an exemplar");
        assert_eq!(exemplar(Some(&sampled)), Some((TraceId::from(7), SpanId::from(7))));
        let family = Family::new("test", "test_seconds", "A test family.", DURATION_BOUNDS);
        let key =
            || SeriesKey::Request { method: "GET".into(), route: Some("/a".into()), status: 200, error_type: None };
        family.record(key(), 0.003, exemplar(Some(&dropped)));
        family.record(key(), 0.003, exemplar(Some(&sampled)));
        let read = family.snapshot();
        assert_eq!(read[0].1.exemplars[0].unwrap().trace_id, TraceId::from(7));
        assert_eq!(read[0].1.count(), 2);
    }
}
