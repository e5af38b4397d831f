//! A small server-sent-events client for the tests: reads `GET /events` over a real
//! connection and splits it into frames (`event`, `id`, `data`), every wait bounded.
#![allow(dead_code, unreachable_pub)]

use std::pin::Pin;
use std::time::Duration;

use futures::{Stream, StreamExt};
use serde_json::Value;

/// Every wait for a frame gives up after this long, and fails with what it saw.
const PATIENCE: Duration = Duration::from_secs(60);

/// The most a test reads of one stream: a stream that never stops fails the test.
const MAX_BYTES: usize = 4 << 20;

/// One server-sent event.
#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    /// Its `event:` name (`message` when it has none).
    pub event: String,
    /// Its `id:`, if it has one.
    pub id: Option<String>,
    /// Its `data:` lines, joined.
    pub data: String,
}

impl Frame {
    /// The data as JSON (Null when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or(Value::Null)
    }

    /// `lifecycle:<kind>` for a lifecycle event, else the event name: what order tests
    /// compare.
    pub fn name(&self) -> String {
        match self.event.as_str() {
            "lifecycle" => format!(
                "lifecycle:{}",
                self.json()["event"]["kind"].as_str().unwrap_or("?")
            ),
            other => other.to_owned(),
        }
    }

    /// Whether it says it is replayed.
    pub fn replayed(&self) -> bool {
        self.json()["replayed"] == true
    }
}

/// An open event stream.
pub struct Events {
    body: Pin<Box<dyn Stream<Item = reqwest::Result<Vec<u8>>> + Send>>,
    buffer: String,
    read: usize,
    /// Every frame read so far, for failure messages.
    pub seen: Vec<Frame>,
}

impl Events {
    /// Connects to `url` (`…/events`), with `Last-Event-ID: last` when given; fails the
    /// test unless it is answered 200 as an event stream.
    pub async fn connect(client: &reqwest::Client, url: &str, last: Option<&str>) -> Events {
        let mut request = client.get(url).header("accept", "text/event-stream");
        if let Some(last) = last {
            request = request.header("last-event-id", last);
        }
        let response = tokio::time::timeout(PATIENCE, request.send())
            .await
            .expect("the event stream answers")
            .expect("the event stream answers");
        assert_eq!(response.status(), 200, "GET {url}");
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        Events {
            body: Box::pin(
                response
                    .bytes_stream()
                    .map(|chunk| chunk.map(|b| b.to_vec())),
            ),
            buffer: String::new(),
            read: 0,
            seen: Vec::new(),
        }
    }

    /// The next frame, or `None` once the stream has ended. Fails the test after
    /// PATIENCE without one.
    pub async fn next(&mut self) -> Option<Frame> {
        loop {
            if let Some(frame) = self.parse() {
                self.seen.push(frame.clone());
                return Some(frame);
            }
            let chunk = tokio::time::timeout(PATIENCE, self.body.next())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "no event within {PATIENCE:?}; seen: {:#?}\nbuffered: {:?}",
                        self.seen, self.buffer
                    )
                });
            match chunk {
                Some(Ok(chunk)) => {
                    self.read += chunk.len();
                    assert!(self.read <= MAX_BYTES, "the stream goes on and on");
                    self.buffer.push_str(&String::from_utf8_lossy(&chunk));
                }
                // Ended (cleanly, or cut): what is left is not a whole frame.
                Some(Err(_)) | None => return None,
            }
        }
    }

    /// Frames until one satisfies `wanted` (included); fails the test if the stream ends
    /// first.
    pub async fn until(&mut self, what: &str, wanted: impl Fn(&Frame) -> bool) -> Vec<Frame> {
        let mut frames = Vec::new();
        loop {
            match self.next().await {
                Some(frame) => {
                    let found = wanted(&frame);
                    frames.push(frame);
                    if found {
                        return frames;
                    }
                }
                None => panic!("the stream ended before {what}; seen: {:#?}", self.seen),
            }
        }
    }

    /// Every frame until the stream ends.
    pub async fn rest(&mut self) -> Vec<Frame> {
        let mut frames = Vec::new();
        while let Some(frame) = self.next().await {
            frames.push(frame);
        }
        frames
    }

    /// One whole frame off the front of the buffer, skipping comments (keep-alives).
    fn parse(&mut self) -> Option<Frame> {
        loop {
            let normalized = self.buffer.replace("\r\n", "\n");
            let (block, rest) = normalized.split_once("\n\n")?;
            let (block, rest) = (block.to_owned(), rest.to_owned());
            self.buffer = rest;
            let mut frame = Frame {
                event: "message".to_owned(),
                id: None,
                data: String::new(),
            };
            let mut fields = false;
            for line in block.lines() {
                let (field, value) = line.split_once(':').unwrap_or((line, ""));
                let value = value.strip_prefix(' ').unwrap_or(value);
                match field {
                    "" => continue,
                    "event" => frame.event = value.to_owned(),
                    "id" => frame.id = Some(value.to_owned()),
                    "data" => {
                        if !frame.data.is_empty() {
                            frame.data.push('\n');
                        }
                        frame.data.push_str(value);
                    }
                    _ => {}
                }
                fields = true;
            }
            if fields {
                return Some(frame);
            }
        }
    }
}
