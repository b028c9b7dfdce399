use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::transform::trace::tonic::group_spans_by_resource_and_scope;

use crate::export::span_data_conversion::SpanDataConversion;

use super::*;
use crate::export::test_finished::finished_spans;

fn library_request(spans: Vec<SpanData>, resource: &Resource, limit: Option<usize>) -> ExportTraceServiceRequest {
    let mut spans = spans;
    if let Some(limit) = limit {
        for span in &mut spans {
            crate::export::pipeline::span_edits::truncate_span(span, limit);
        }
    }
    let resource_spans = group_spans_by_resource_and_scope(spans, &ResourceAttributesWithSchema::from(resource));
    ExportTraceServiceRequest { resource_spans }
}

fn all_requests(encoding: &OtlpEncoding, finished: &[Arc<FinishedSpans>]) -> (Vec<EncodedRequest>, Vec<SpanData>) {
    let mut requests = encoding.requests(finished);
    let mut oversized = Vec::new();
    let mut all = Vec::new();
    while let Some(request) = requests.next_request(&mut oversized) {
        all.push(request);
    }
    (all, oversized)
}

#[test]
fn a_long_nested_message_gets_its_whole_length() {
    for len in [0, 127, 128, 300, 20_000] {
        let mut out = vec![7];
        message_field(&mut out, 1, |out| out.extend(std::iter::repeat_n(9, len)));
        let mut rest = &out[2..];
        assert_eq!(prost::encoding::decode_varint(&mut rest).unwrap(), len as u64);
        assert_eq!(rest.len(), len);
        assert!(rest.iter().all(|b| *b == 9));
    }
}

#[test]
fn decodes_to_what_the_library_makes_of_the_same_spans() {
    let resource = Resource::builder_empty()
        .with_service_name("encoded")
        .with_attributes([KeyValue::new("deployment.environment", "test"), KeyValue::new("replicas", 3_i64)])
        .build();
    for (limit, default_ai_kind) in [(None, true), (Some(4), false)] {
        let finished = Arc::new(finished_spans());
        let mut as_span_data = Vec::new();
        SpanDataConversion::new(Arc::clone(&finished), default_ai_kind).append(&mut as_span_data, usize::MAX);
        let expected = library_request(as_span_data, &resource, limit);
        let encoding = OtlpEncoding::new(&resource, limit, default_ai_kind, usize::MAX, usize::MAX);
        let (requests, oversized) = all_requests(&encoding, &[finished]);
        assert_eq!(requests.len(), 1);
        assert!(oversized.is_empty());
        let decoded = ExportTraceServiceRequest::decode(requests[0].body.clone()).unwrap();
        assert_eq!(decoded, expected, "limit {limit:?}");
        assert_eq!(requests[0].spans, expected.resource_spans[0].scope_spans[0].spans.len());
    }
}

#[test]
fn requests_stay_under_the_limit_and_a_span_too_large_for_one_is_set_aside() {
    let resource = Resource::builder_empty().with_service_name("split").build();
    let finished = Arc::new(finished_spans());
    let total = finished.len();
    let limit = 2048;
    let encoding = OtlpEncoding::new(&resource, None, true, limit, usize::MAX);
    let (requests, oversized) = all_requests(&encoding, &[finished]);
    let sent: usize = requests.iter().map(|r| r.spans).sum();
    assert!(requests.len() >= 3, "{} requests", requests.len());
    assert_eq!(sent + oversized.len(), total);
    for request in &requests {
        assert!(request.body.len() <= limit, "{} > {limit}", request.body.len());
        let decoded = ExportTraceServiceRequest::decode(request.body.clone()).unwrap();
        assert_eq!(decoded.resource_spans[0].scope_spans[0].spans.len(), request.spans);
    }
    assert_eq!(oversized.len(), 1, "the span with the long value");
    assert!(oversized[0].attributes.iter().any(|kv| kv.key.as_str() == "long"));
}

#[test]
fn requests_carry_at_most_the_export_batch_size() {
    let resource = Resource::builder_empty().with_service_name("split").build();
    let finished = Arc::new(finished_spans());
    let total = finished.len();
    let encoding = OtlpEncoding::new(&resource, None, true, usize::MAX, 8);
    let first = Arc::new(finished_spans());
    let (requests, _) = all_requests(&encoding, &[first, finished]);
    let total = 2 * total;
    let counts: Vec<usize> = requests.iter().map(|r| r.spans).collect();
    assert_eq!(counts.iter().sum::<usize>(), total);
    assert!(counts.iter().all(|&n| n <= 8), "{counts:?}");
    assert_eq!(counts.len(), total.div_ceil(8), "{counts:?}");
}
