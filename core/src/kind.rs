//! A span's kind: as `#[span(kind = ...)]` names it, as OpenTelemetry types
//! it, and as the console prints it. The one mapping between them.

use opentelemetry::trace::SpanKind;

/// A span's kind, as `#[span(kind = ...)]` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The default.
    Internal,
    /// Handles a request from another service.
    Server,
    /// Calls another service.
    Client,
    /// Hands work to a queue.
    Producer,
    /// Takes work from a queue.
    Consumer,
}

impl Kind {
    /// The kind of an OpenTelemetry span.
    pub fn of(kind: &SpanKind) -> Kind {
        match kind {
            SpanKind::Internal => Kind::Internal,
            SpanKind::Server => Kind::Server,
            SpanKind::Client => Kind::Client,
            SpanKind::Producer => Kind::Producer,
            SpanKind::Consumer => Kind::Consumer,
        }
    }

    /// The name `#[span(kind = ...)]` and the console use.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Internal => "internal",
            Kind::Server => "server",
            Kind::Client => "client",
            Kind::Producer => "producer",
            Kind::Consumer => "consumer",
        }
    }
}

impl From<Kind> for SpanKind {
    fn from(kind: Kind) -> Self {
        match kind {
            Kind::Internal => SpanKind::Internal,
            Kind::Server => SpanKind::Server,
            Kind::Client => SpanKind::Client,
            Kind::Producer => SpanKind::Producer,
            Kind::Consumer => SpanKind::Consumer,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_maps_to_its_opentelemetry_kind_and_back() {
        for kind in [Kind::Internal, Kind::Server, Kind::Client, Kind::Producer, Kind::Consumer] {
            assert_eq!(Kind::of(&SpanKind::from(kind)), kind);
            assert_eq!(format!("{:?}", SpanKind::from(kind)).to_ascii_lowercase(), kind.name());
        }
    }
}
