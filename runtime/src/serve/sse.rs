//! Server-Sent Events, both ways: the frames a streamed answer is written
//! as (`data:` one JSON value per event; `event: error` for the failure that
//! ends a stream), and the parser `traced::Client` reads them with, which
//! follows the HTML standard's event-stream rules (any line ending, `data`
//! lines joined, comments and unknown fields ignored, a trailing event
//! without its blank line dropped).

use bytes::{BufMut as _, Bytes, BytesMut};

/// The media type of an event stream.
pub(crate) const CONTENT_TYPE: &str = "text/event-stream";

/// `data: {json}` and the blank line that ends the event. JSON written by
/// serde_json holds no line break, so one `data` line carries it whole.
pub(crate) fn data(json: &[u8]) -> Bytes {
    let mut frame = BytesMut::with_capacity(json.len() + 8);
    frame.put_slice(b"data: ");
    frame.put_slice(json);
    frame.put_slice(b"\n\n");
    frame.freeze()
}

/// The event that ends a failed stream: the message and the trace to look
/// it up in.
pub(crate) fn error(message: &str, trace_id: Option<String>) -> Bytes {
    let json = serde_json::to_vec(&serde_json::json!({ "error": message, "trace_id": trace_id }))
        .unwrap_or_else(|_| b"{}".to_vec());
    let mut frame = BytesMut::with_capacity(json.len() + 22);
    frame.put_slice(b"event: error\n");
    frame.put_slice(&data(&json));
    frame.freeze()
}

/// One event as a client reads it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Event {
    /// The `event` field; `message` when none was given.
    pub(crate) name: String,
    /// The `data` lines, joined with line feeds.
    pub(crate) data: String,
}

/// An event-stream parser fed bytes as they arrive.
#[derive(Debug, Default)]
pub(crate) struct Parser {
    /// Bytes of a line not yet ended.
    line: Vec<u8>,
    /// A `\r` ended the last line: a `\n` right after it is the same ending.
    after_cr: bool,
    name: String,
    data: String,
    has_data: bool,
}

impl Parser {
    /// Feeds `chunk`, pushing each completed event onto `events`.
    pub(crate) fn feed(&mut self, chunk: &[u8], events: &mut Vec<Event>) {
        for &byte in chunk {
            match byte {
                b'\n' if self.after_cr => self.after_cr = false,
                b'\n' | b'\r' => {
                    self.after_cr = byte == b'\r';
                    let line = std::mem::take(&mut self.line);
                    self.line_ended(&line, events);
                }
                _ => {
                    self.after_cr = false;
                    self.line.push(byte);
                }
            }
        }
    }

    fn line_ended(&mut self, line: &[u8], events: &mut Vec<Event>) {
        if line.is_empty() {
            if self.has_data {
                let name = std::mem::take(&mut self.name);
                let name = if name.is_empty() { "message".to_string() } else { name };
                events.push(Event { name, data: std::mem::take(&mut self.data) });
            }
            self.name.clear();
            self.data.clear();
            self.has_data = false;
            return;
        }
        let line = String::from_utf8_lossy(line);
        let (field, value) = match line.split_once(':') {
            Some((field, value)) => (field, value.strip_prefix(' ').unwrap_or(value)),
            None => (line.as_ref(), ""),
        };
        match field {
            "" => {} // a comment
            "event" => self.name = value.to_string(),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            _ => {} // id, retry and unknown fields mean nothing to a call
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(chunks: &[&[u8]]) -> Vec<Event> {
        let mut parser = Parser::default();
        let mut events = Vec::new();
        for chunk in chunks {
            parser.feed(chunk, &mut events);
        }
        events
    }

    fn event(name: &str, data: &str) -> Event {
        Event { name: name.to_string(), data: data.to_string() }
    }

    #[test]
    fn written_frames_read_back() {
        let mut written = data(br#"{"step":1}"#).to_vec();
        written.extend_from_slice(&error("out of memory", Some("abc".to_string())));
        assert_eq!(
            parse(&[&written]),
            [event("message", r#"{"step":1}"#), event("error", r#"{"error":"out of memory","trace_id":"abc"}"#)]
        );
    }

    #[test]
    fn events_split_anywhere_across_chunks() {
        let stream = b"data: {\"a\":1}\n\nevent: error\ndata: x\n\n";
        for cut in 0..stream.len() {
            let (head, tail) = stream.split_at(cut);
            assert_eq!(parse(&[head, tail]), [event("message", "{\"a\":1}"), event("error", "x")], "cut at {cut}");
        }
    }

    #[test]
    fn any_line_ending_comments_and_joined_data() {
        let stream = b": keep-alive\r\ndata: one\r\ndata:two\rid: 7\r\n\r\ndata\n\nretry: 10\nbogus\n\n";
        assert_eq!(parse(&[stream]), [event("message", "one\ntwo"), event("message", "")]);
    }

    #[test]
    fn an_event_without_its_blank_line_is_not_dispatched() {
        assert_eq!(parse(&[b"data: cut off\n"]), []);
        assert_eq!(parse(&[b"event: error\n\n"]), [], "no data, no event");
    }
}
