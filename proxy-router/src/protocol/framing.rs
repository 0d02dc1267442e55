//! MOR-RPC framing on a TCP stream: concatenated JSON objects.
//!
//! The reference writes each message with `json.Marshal` and **no delimiter** (no newline, no length
//! prefix) and reads with Go's streaming `json.Decoder`, which finds the end of each value itself and
//! skips whitespace between values. One connection carries one request and 0..N responses.
//!
//! [`MorRpcCodec`] does the same for `tokio_util::codec`: the decoder scans bytes incrementally (each byte
//! once, across reads), tracking strings, escapes and bracket nesting, and yields the bytes of each
//! complete top-level object. It is bounded: a frame longer than `max_frame_len` is
//! [`ProtocolError::FrameTooLarge`] as soon as that many bytes have arrived (nothing more is buffered
//! for it), nesting deeper than [`MAX_DEPTH`] is refused, and so is a frame that does not start with
//! `{` or closes a bracket it did not open. Whitespace between frames is discarded. Parsing the frame
//! (and so the validity of everything that is not a bracket or a string) is the message types' job.
//!
//! The encoder writes a frame's bytes as they are, without delimiter, exactly like a Go peer.

use bytes::{Buf as _, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use super::error::ProtocolError;

/// Default maximum frame length: 16 MiB (a full non-streamed completion travels hex-encoded, i.e.
/// doubled, in one frame).
pub const DEFAULT_MAX_FRAME_LEN: usize = 16 * 1024 * 1024;

/// Deepest accepted nesting of objects and arrays (serde_json's own recursion limit).
pub const MAX_DEPTH: usize = 128;

/// Decoder and encoder of MOR-RPC frames; see the module docs.
#[derive(Debug, Clone)]
pub struct MorRpcCodec {
    max_frame_len: usize,
    scan: Scan,
}

/// Scanner state of the frame being received. `pos` is the number of bytes of the frame already
/// scanned; the frame always starts at the beginning of the buffer.
#[derive(Debug, Clone, Default)]
struct Scan {
    in_frame: bool,
    pos: usize,
    stack: Vec<u8>,
    in_string: bool,
    escaped: bool,
}

impl Default for MorRpcCodec {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_FRAME_LEN)
    }
}

impl MorRpcCodec {
    /// A codec refusing frames longer than `max_frame_len` bytes.
    pub fn new(max_frame_len: usize) -> Self {
        Self { max_frame_len, scan: Scan::default() }
    }

    /// The configured maximum frame length.
    pub fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }
}

fn malformed(offset: usize, reason: &'static str) -> ProtocolError {
    ProtocolError::MalformedFrame { offset, reason }
}

impl Decoder for MorRpcCodec {
    type Item = Bytes;
    type Error = ProtocolError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, ProtocolError> {
        let scan = &mut self.scan;
        if !scan.in_frame {
            let whitespace = src.iter().take_while(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r')).count();
            src.advance(whitespace);
            match src.first() {
                None => return Ok(None),
                Some(b'{') => {
                    *scan = Scan { in_frame: true, pos: 0, ..Scan::default() };
                }
                Some(_) => return Err(malformed(0, "a frame must be a JSON object")),
            }
        }

        let end = src.len().min(self.max_frame_len);
        while scan.pos < end {
            let byte = src[scan.pos];
            let offset = scan.pos;
            scan.pos += 1;
            if scan.in_string {
                if scan.escaped {
                    scan.escaped = false;
                } else if byte == b'\\' {
                    scan.escaped = true;
                } else if byte == b'"' {
                    scan.in_string = false;
                }
                continue;
            }
            match byte {
                b'"' => scan.in_string = true,
                b'{' | b'[' => {
                    if scan.stack.len() >= MAX_DEPTH {
                        return Err(malformed(offset, "nested too deeply"));
                    }
                    scan.stack.push(byte);
                }
                b'}' | b']' => {
                    let open = if byte == b'}' { b'{' } else { b'[' };
                    if scan.stack.pop() != Some(open) {
                        return Err(malformed(offset, "closing bracket does not match"));
                    }
                    if scan.stack.is_empty() {
                        let frame = src.split_to(scan.pos).freeze();
                        *scan = Scan::default();
                        return Ok(Some(frame));
                    }
                }
                _ => {}
            }
        }
        if scan.pos >= self.max_frame_len {
            return Err(ProtocolError::FrameTooLarge { limit: self.max_frame_len });
        }
        Ok(None)
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Bytes>, ProtocolError> {
        match self.decode(src)? {
            Some(frame) => Ok(Some(frame)),
            None if self.scan.in_frame => Err(ProtocolError::TruncatedFrame { buffered: src.len() }),
            None => Ok(None),
        }
    }
}

impl Encoder<Bytes> for MorRpcCodec {
    type Error = ProtocolError;

    fn encode(&mut self, frame: Bytes, dst: &mut BytesMut) -> Result<(), ProtocolError> {
        dst.extend_from_slice(&frame);
        Ok(())
    }
}

impl Encoder<Vec<u8>> for MorRpcCodec {
    type Error = ProtocolError;

    fn encode(&mut self, frame: Vec<u8>, dst: &mut BytesMut) -> Result<(), ProtocolError> {
        dst.extend_from_slice(&frame);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::{SinkExt as _, StreamExt as _};
    use tokio::io::AsyncWriteExt as _;
    use tokio_util::codec::{FramedRead, FramedWrite};

    fn decode_all(codec: &mut MorRpcCodec, input: &[u8]) -> Result<Vec<Bytes>, ProtocolError> {
        let mut buf = BytesMut::from(input);
        let mut frames = Vec::new();
        while let Some(frame) = codec.decode_eof(&mut buf)? {
            frames.push(frame);
        }
        Ok(frames)
    }

    #[test]
    fn back_to_back_objects_with_tricky_strings_split_exactly() {
        let a = br#"{"id":"1","result":{"message":"a}b{c\"}]","x":[1,{"y":"\\"}]}}"#;
        let b = br#"{"id":"1","result":null,"error":{"message":"\\\"}","code":400}}"#;
        let mut input = Vec::new();
        input.extend_from_slice(a);
        input.extend_from_slice(b);
        input.extend_from_slice(b" \n\r\t");
        input.extend_from_slice(a);
        let frames = decode_all(&mut MorRpcCodec::default(), &input).unwrap();
        assert_eq!(frames, vec![Bytes::from_static(a), Bytes::from_static(b), Bytes::from_static(a)]);
    }

    #[test]
    fn frames_split_across_reads_at_every_byte() {
        let frame = br#"{"a":"}\"{","b":[{"c":"\\"}]}"#;
        for split in 0..frame.len() {
            let mut codec = MorRpcCodec::default();
            let mut buf = BytesMut::from(&frame[..split]);
            assert_eq!(codec.decode(&mut buf).unwrap(), None, "split {split}");
            buf.extend_from_slice(&frame[split..]);
            assert_eq!(codec.decode(&mut buf).unwrap().as_deref(), Some(&frame[..]), "split {split}");
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn oversized_frame_is_an_error_at_the_limit() {
        // Exactly 16 bytes is fine.
        let frames = decode_all(&mut MorRpcCodec::new(16), br#"{"a":"01234567"}"#).unwrap();
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].len(), 16);

        let mut codec = MorRpcCodec::new(16);
        let mut buf = BytesMut::from(&br#"{"a":"01234"#[..]);
        assert_eq!(codec.decode(&mut buf).unwrap(), None);
        buf.extend_from_slice(b"56789abcdef");
        assert!(matches!(codec.decode(&mut buf), Err(ProtocolError::FrameTooLarge { limit: 16 })));

        // A huge frame arriving at once fails without scanning past the limit.
        let mut huge = b"{\"a\":\"".to_vec();
        huge.resize(1 << 20, b'x');
        let mut codec = MorRpcCodec::new(1024);
        assert!(matches!(decode_all(&mut codec, &huge), Err(ProtocolError::FrameTooLarge { limit: 1024 })));
    }

    #[test]
    fn malformed_streams_are_errors() {
        for (input, what) in [
            (&b"[1]"[..], "array at top level"),
            (b"\"x\"", "string at top level"),
            (b"42", "number at top level"),
            (b"{\"a\":[}", "mismatched bracket"),
            (b"{]", "mismatched bracket"),
        ] {
            let result = decode_all(&mut MorRpcCodec::default(), input);
            assert!(matches!(result, Err(ProtocolError::MalformedFrame { .. })), "{what}: {result:?}");
        }
        let deep = format!("{{\"a\":{}", "[".repeat(MAX_DEPTH));
        assert!(matches!(
            decode_all(&mut MorRpcCodec::default(), deep.as_bytes()),
            Err(ProtocolError::MalformedFrame { reason: "nested too deeply", .. })
        ));
    }

    #[test]
    fn eof_inside_a_frame_is_truncation_and_trailing_whitespace_is_fine() {
        let result = decode_all(&mut MorRpcCodec::default(), br#"{"id":"1"}{"id":"#);
        assert!(matches!(result, Err(ProtocolError::TruncatedFrame { buffered: 6 })));
        let frames = decode_all(&mut MorRpcCodec::default(), b"{}\n \n").unwrap();
        assert_eq!(frames, vec![Bytes::from_static(b"{}")]);
    }

    #[tokio::test]
    async fn framed_read_and_write_over_a_duplex_stream() {
        let (client, server) = tokio::io::duplex(64);
        let writer = tokio::spawn(async move {
            let mut sink = FramedWrite::new(client, MorRpcCodec::default());
            sink.send(Bytes::from_static(br#"{"id":"1","method":"network.ping","params":{}}"#))
                .await
                .unwrap();
            sink.send(br#"{"id":"2"}"#.to_vec()).await.unwrap();
            let mut client = sink.into_inner();
            client.write_all(br#"{"id":"#).await.unwrap();
            client.shutdown().await.unwrap();
        });
        let mut frames = FramedRead::new(server, MorRpcCodec::default());
        assert_eq!(
            frames.next().await.unwrap().unwrap(),
            Bytes::from_static(br#"{"id":"1","method":"network.ping","params":{}}"#)
        );
        assert_eq!(frames.next().await.unwrap().unwrap(), Bytes::from_static(br#"{"id":"2"}"#));
        assert!(matches!(frames.next().await, Some(Err(ProtocolError::TruncatedFrame { .. }))));
        writer.await.unwrap();
    }
}
