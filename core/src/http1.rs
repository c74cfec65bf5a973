//! A minimal HTTP/1.1 message codec for the proxy: buffered connections, request and response heads
//! parsed by `httparse` into owned byte ranges, body framing (RFC 9112 §6), and byte-exact body
//! forwarding (chunked bodies pass through as they are, their end found by a scanner).
//!
//! The proxy forwards messages instead of interpreting them, so this codec keeps the raw head bytes
//! and the ranges of each header: no per-header allocation, one read and one write per side for a
//! small message.

use std::io;
use std::ops::Range;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest request or response head accepted.
pub(crate) const MAX_HEAD: usize = 64 * 1024;
/// Most header lines accepted in a head.
const MAX_HEADERS: usize = 100;
const READ_CHUNK: usize = 8 * 1024;

/// A TCP connection with a read buffer.
pub(crate) struct Conn {
    pub stream: TcpStream,
    pub buf: BytesMut,
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "timed out")
}

impl Conn {
    pub fn new(stream: TcpStream) -> Self {
        Conn { stream, buf: BytesMut::new() }
    }

    /// Reads more bytes into the buffer; `Ok(0)` at end of stream.
    pub async fn fill(&mut self, limit: Duration) -> io::Result<usize> {
        if self.buf.capacity() - self.buf.len() < 1024 {
            self.buf.reserve(READ_CHUNK);
        }
        match tokio::time::timeout(limit, self.stream.read_buf(&mut self.buf)).await {
            Ok(r) => r,
            Err(_) => Err(timed_out()),
        }
    }

    /// Whether a pooled, idle connection is still usable: not closed by the peer, nothing unread.
    pub fn is_reusable(&self) -> bool {
        if !self.buf.is_empty() {
            return false;
        }
        let mut probe = [0u8; 1];
        matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == io::ErrorKind::WouldBlock)
    }
}

/// How a message body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body.
    Empty,
    /// `Content-Length` bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the connection closes (responses only).
    Close,
}

/// A parsed head: the raw bytes and where each part is.
pub(crate) struct Head {
    pub raw: Bytes,
    /// Method (requests) or reason phrase (responses).
    pub first: Range<usize>,
    /// Request target (requests).
    pub target: Range<usize>,
    /// Status code (responses).
    pub status: u16,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor: u8,
    pub headers: Vec<(Range<usize>, Range<usize>)>,
}

impl Head {
    pub fn bytes(&self, r: &Range<usize>) -> &[u8] {
        &self.raw[r.clone()]
    }

    pub fn method(&self) -> &[u8] {
        self.bytes(&self.first)
    }

    pub fn target(&self) -> &[u8] {
        self.bytes(&self.target)
    }

    /// Every header as (name, value).
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.headers.iter().map(|(n, v)| (&self.raw[n.clone()], &self.raw[v.clone()]))
    }

    /// The first value of a header.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.iter().find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes())).map(|(_, v)| v)
    }

    /// Whether a comma-separated header (any of its lines) lists `token`.
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .flat_map(|(_, v)| v.split(|b| *b == b','))
            .any(|t| t.trim_ascii().eq_ignore_ascii_case(token.as_bytes()))
    }

    /// Whether the connection stays open after this message, by version and `Connection`.
    pub fn keep_alive(&self) -> bool {
        if self.minor == 0 {
            self.has_token("connection", "keep-alive")
        } else {
            !self.has_token("connection", "close")
        }
    }

    /// The body framing of a request (RFC 9112 §6.3); an error names what is wrong.
    pub fn request_framing(&self) -> Result<Framing, &'static str> {
        match self.length_framing()? {
            Some(f) => Ok(f),
            None => Ok(Framing::Empty),
        }
    }

    /// The body framing of a response to a request with `method`.
    pub fn response_framing(&self, method: &[u8]) -> Result<Framing, &'static str> {
        if method == b"HEAD" || (100..200).contains(&self.status) || self.status == 204 || self.status == 304 {
            return Ok(Framing::Empty);
        }
        Ok(self.length_framing()?.unwrap_or(Framing::Close))
    }

    fn length_framing(&self) -> Result<Option<Framing>, &'static str> {
        let mut te = None;
        let mut cl: Option<u64> = None;
        for (n, v) in self.iter() {
            if n.eq_ignore_ascii_case(b"transfer-encoding") {
                let last = v.split(|b| *b == b',').next_back().map(<[u8]>::trim_ascii).unwrap_or_default();
                te = Some(last.eq_ignore_ascii_case(b"chunked"));
            } else if n.eq_ignore_ascii_case(b"content-length") {
                let parsed = std::str::from_utf8(v.trim_ascii())
                    .ok()
                    .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                    .and_then(|s| s.parse::<u64>().ok())
                    .ok_or("invalid Content-Length")?;
                if cl.is_some_and(|c| c != parsed) {
                    return Err("conflicting Content-Length headers");
                }
                cl = Some(parsed);
            }
        }
        match (te, cl) {
            (Some(_), Some(_)) => Err("both Transfer-Encoding and Content-Length"),
            (Some(true), None) => Ok(Some(Framing::Chunked)),
            (Some(false), None) => Err("unsupported Transfer-Encoding"),
            (None, Some(0)) => Ok(Some(Framing::Empty)),
            (None, Some(n)) => Ok(Some(Framing::Length(n))),
            (None, None) => Ok(None),
        }
    }
}

/// What went wrong reading a head.
pub(crate) enum HeadError {
    /// The peer closed before sending anything.
    Closed,
    /// Malformed or too large; the message says how.
    Bad(&'static str),
    Io(io::Error),
}

fn offset(base: &[u8], part: &[u8]) -> Range<usize> {
    if part.is_empty() {
        return 0..0;
    }
    let start = part.as_ptr() as usize - base.as_ptr() as usize;
    start..start + part.len()
}

/// Reads and parses a request (`request`) or response head from `conn`.
pub(crate) async fn read_head(conn: &mut Conn, request: bool, limit: Duration) -> Result<Head, HeadError> {
    loop {
        if !conn.buf.is_empty() {
            let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
            let parsed = if request {
                let mut req = httparse::Request::new(&mut headers);
                match req.parse(&conn.buf) {
                    Ok(httparse::Status::Complete(n)) => {
                        let base = &conn.buf[..];
                        let first = offset(base, req.method.unwrap_or_default().as_bytes());
                        let target = offset(base, req.path.unwrap_or_default().as_bytes());
                        let hs = req
                            .headers
                            .iter()
                            .map(|h| (offset(base, h.name.as_bytes()), offset(base, h.value)))
                            .collect();
                        Some((n, first, target, 0, req.version.unwrap_or(1), hs))
                    }
                    Ok(httparse::Status::Partial) => None,
                    Err(_) => return Err(HeadError::Bad("malformed request head")),
                }
            } else {
                let mut resp = httparse::Response::new(&mut headers);
                match resp.parse(&conn.buf) {
                    Ok(httparse::Status::Complete(n)) => {
                        let base = &conn.buf[..];
                        let first = offset(base, resp.reason.unwrap_or_default().as_bytes());
                        let hs = resp
                            .headers
                            .iter()
                            .map(|h| (offset(base, h.name.as_bytes()), offset(base, h.value)))
                            .collect();
                        Some((n, first, 0..0, resp.code.unwrap_or(0), resp.version.unwrap_or(1), hs))
                    }
                    Ok(httparse::Status::Partial) => None,
                    Err(_) => return Err(HeadError::Bad("malformed response head")),
                }
            };
            if let Some((n, first, target, status, minor, headers)) = parsed {
                let raw = conn.buf.split_to(n).freeze();
                return Ok(Head { raw, first, target, status, minor, headers });
            }
            if conn.buf.len() > MAX_HEAD {
                return Err(HeadError::Bad("head too large"));
            }
        }
        match conn.fill(limit).await {
            Ok(0) if conn.buf.is_empty() => return Err(HeadError::Closed),
            Ok(0) => return Err(HeadError::Io(io::Error::new(io::ErrorKind::UnexpectedEof, "closed mid-head"))),
            Ok(_) => {}
            Err(e) => return Err(HeadError::Io(e)),
        }
    }
}

/// Finds where a chunked body ends while its bytes pass through unchanged.
#[derive(Debug, Default)]
pub(crate) struct ChunkedScanner {
    state: ChunkState,
    remaining: u64,
    digits: u32,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    #[default]
    Size,
    Ext,
    SizeLf,
    Data,
    DataCr,
    DataLf,
    TrailerStart,
    Trailer,
    TrailerLf,
    EndLf,
    Done,
}

impl ChunkedScanner {
    pub fn done(&self) -> bool {
        self.state == ChunkState::Done
    }

    /// How many bytes of `input` belong to the body (all of them unless it ends inside).
    pub fn scan(&mut self, input: &[u8]) -> Result<usize, &'static str> {
        use ChunkState::*;
        let mut i = 0;
        while i < input.len() && self.state != Done {
            if self.state == Data {
                let take = (input.len() - i).min(self.remaining.min(usize::MAX as u64) as usize);
                self.remaining -= take as u64;
                i += take;
                if self.remaining == 0 {
                    self.state = DataCr;
                }
                continue;
            }
            let b = input[i];
            i += 1;
            self.state = match (self.state, b) {
                (Size, b) if b.is_ascii_hexdigit() => {
                    self.digits += 1;
                    if self.digits > 15 {
                        return Err("chunk size too large");
                    }
                    self.remaining = self.remaining * 16 + u64::from((b as char).to_digit(16).unwrap_or(0));
                    Size
                }
                (Size, b';' | b' ' | b'\t') if self.digits > 0 => Ext,
                (Size, b'\r') if self.digits > 0 => SizeLf,
                (Ext, b'\r') => SizeLf,
                (Ext, b'\n') => return Err("bare LF in chunk extension"),
                (Ext, _) => Ext,
                (SizeLf, b'\n') => {
                    self.digits = 0;
                    if self.remaining == 0 {
                        TrailerStart
                    } else {
                        Data
                    }
                }
                (DataCr, b'\r') => DataLf,
                (DataLf, b'\n') => Size,
                (TrailerStart, b'\r') => EndLf,
                (TrailerStart | Trailer, b'\n') => return Err("bare LF in trailer"),
                (Trailer, b'\r') => TrailerLf,
                (TrailerStart | Trailer, _) => Trailer,
                (TrailerLf, b'\n') => TrailerStart,
                (EndLf, b'\n') => Done,
                _ => return Err("malformed chunked body"),
            };
        }
        Ok(i)
    }
}

/// Writes `head` followed by a body read from `from` with `framing`, byte for byte. Bytes already in
/// `from`'s buffer go out with the head in one write. `limit` bounds each read.
pub(crate) async fn forward_body(
    mut head: Vec<u8>,
    from: &mut Conn,
    to: &mut TcpStream,
    framing: Framing,
    limit: Duration,
) -> Result<(), ForwardError> {
    let mut scanner = ChunkedScanner::default();
    let mut left = match framing {
        Framing::Length(n) => n,
        _ => 0,
    };
    loop {
        let (take, done) = match framing {
            Framing::Empty => (0, true),
            Framing::Length(_) => {
                let take = (from.buf.len() as u64).min(left) as usize;
                left -= take as u64;
                (take, left == 0)
            }
            Framing::Chunked => {
                let take = scanner.scan(&from.buf).map_err(ForwardError::Bad)?;
                (take, scanner.done())
            }
            Framing::Close => (from.buf.len(), false),
        };
        if !head.is_empty() {
            head.extend_from_slice(&from.buf[..take]);
            to.write_all(&head).await.map_err(ForwardError::Write)?;
            head.clear();
        } else if take > 0 {
            to.write_all(&from.buf[..take]).await.map_err(ForwardError::Write)?;
        }
        from.buf.advance(take);
        if done {
            return Ok(());
        }
        match from.fill(limit).await {
            Ok(0) if framing == Framing::Close => return Ok(()),
            Ok(0) => return Err(ForwardError::Read(io::Error::new(io::ErrorKind::UnexpectedEof, "body cut short"))),
            Ok(_) => {}
            Err(e) => return Err(ForwardError::Read(e)),
        }
    }
}

/// Which side failed while forwarding a body.
#[derive(Debug)]
pub(crate) enum ForwardError {
    Read(io::Error),
    Write(io::Error),
    Bad(&'static str),
}

/// Whether a header is hop-by-hop (RFC 9110 §7.6.1) and never forwarded as is.
pub(crate) fn is_hop_by_hop(name: &[u8]) -> bool {
    const HOP: &[&[u8]] = &[
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"proxy-authorization",
    ];
    HOP.iter().any(|h| name.eq_ignore_ascii_case(h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunked_scanner_finds_the_end_in_any_split() {
        let body = b"5\r\nhello\r\n1a;ext=1\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-T: 1\r\n\r\nNEXT";
        for split in 0..body.len() {
            let mut s = ChunkedScanner::default();
            let a = s.scan(&body[..split]).unwrap();
            assert_eq!(a, split.min(body.len() - 4));
            let b = s.scan(&body[split..]).unwrap();
            assert!(s.done());
            assert_eq!(a + b, body.len() - 4, "split {split}");
        }
        for bad in [&b"zz\r\n"[..], b"5\r\nhelloXX", b"\r\n", b"5\nhello"] {
            assert!(ChunkedScanner::default().scan(bad).is_err(), "{bad:?}");
        }
    }

    fn head(text: &str) -> Head {
        let raw = Bytes::copy_from_slice(text.as_bytes());
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut req = httparse::Request::new(&mut headers);
        let n = match req.parse(&raw).unwrap() {
            httparse::Status::Complete(n) => n,
            httparse::Status::Partial => panic!("partial"),
        };
        assert_eq!(n, raw.len());
        let hs = req.headers.iter().map(|h| (offset(&raw, h.name.as_bytes()), offset(&raw, h.value))).collect();
        let first = offset(&raw, req.method.unwrap().as_bytes());
        let target = offset(&raw, req.path.unwrap().as_bytes());
        Head { raw: raw.clone(), first, target, status: 0, minor: req.version.unwrap(), headers: hs }
    }

    #[test]
    fn framing_follows_rfc_9112_and_refuses_smuggling() {
        assert_eq!(head("GET / HTTP/1.1\r\n\r\n").request_framing(), Ok(Framing::Empty));
        assert_eq!(head("POST / HTTP/1.1\r\nContent-Length: 12\r\n\r\n").request_framing(), Ok(Framing::Length(12)));
        assert_eq!(
            head("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n").request_framing(),
            Ok(Framing::Chunked)
        );
        for bad in [
            "POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: -3\r\n\r\n",
            "POST / HTTP/1.1\r\nContent-Length: 3, 3\r\n\r\n",
            "POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
        ] {
            assert!(head(bad).request_framing().is_err(), "{bad}");
        }
        let h = head("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
        assert!(h.keep_alive());
        assert!(!head("GET / HTTP/1.0\r\n\r\n").keep_alive());
        assert!(!head("GET / HTTP/1.1\r\nConnection: foo, close\r\n\r\n").keep_alive());
        assert!(head("GET / HTTP/1.1\r\n\r\n").keep_alive());
    }
}
