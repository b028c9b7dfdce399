//! The serve layer: an app's lifecycle over HTTP, its routes, W3C context
//! from request headers, and the client that calls the next app. It builds
//! on the export layer (init, flush, shutdown) and the core (spans).

pub(crate) mod app;
pub(crate) mod client;
pub(crate) mod client_error;
pub(crate) mod client_stream;
pub(crate) mod event_sink;
pub(crate) mod options;
pub(crate) mod reply;
pub(crate) mod response_body;
pub(crate) mod route_names;
pub(crate) mod router;
pub(crate) mod routes;
pub(crate) mod server;
pub(crate) mod sse;
pub(crate) mod stream_response;
pub(crate) mod trace_layer;
pub(crate) mod w3c;
