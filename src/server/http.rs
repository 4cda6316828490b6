//! HTTP/1.1 for the local server: requests are read and checked here, so that every rejection, even of a
//! request no handler could see (a malformed request line or header, a bad `Content-Length` or
//! `Transfer-Encoding`, an oversized URI, head or body), is answered in the AWS shape: a status, an
//! `x-amzn-ErrorType` header, a JSON `{"message", "__type"}` body and an `x-amzn-RequestId`.
//!
//! Request heads are parsed by `httparse`; bodies come by `Content-Length` or chunked. Connections are kept
//! alive as HTTP/1.1 says, and closed after a rejection (the stream's framing can no longer be trusted).

use std::sync::Arc;
use std::time::Duration;

use httparse::Status;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::{AppState, Arrival, Exchange, MAX_BODY, new_request_id};
use crate::error::ErrorCode;

/// Longest request target (path and query) accepted: 414 past it.
pub const MAX_URI: usize = 8 * 1024;
/// Largest request head (request line and headers) accepted: 431 past it.
pub const MAX_HEAD: usize = 64 * 1024;
/// Most header fields in one request: 431 past it.
pub const MAX_HEADERS: usize = 100;

/// A request as the handlers see it: its body read whole.
#[derive(Debug)]
pub struct Request {
    pub method: String,
    /// The raw (still percent-encoded) path.
    pub path: String,
    pub query: Option<String>,
    /// The header fields as sent (names lowercased, values trimmed), in order: what SigV4 signs.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// A response: a status, headers and a body, or a connection dropped after the head (a fault).
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
    /// Send the head, then drop the connection before the body: the client cannot know the outcome.
    pub drop: bool,
    /// An error's message, as its body says it (for the audit log).
    pub error_message: Option<String>,
}

impl Response {
    pub fn json(status: u16, body: Vec<u8>, request_id: &str) -> Self {
        Response {
            status,
            headers: vec![
                ("content-type", "application/json".into()),
                ("x-amzn-RequestId", request_id.into()),
            ],
            body,
            drop: false,
            error_message: None,
        }
    }

    /// A body of another type (the metrics' text).
    pub fn text(status: u16, body: Vec<u8>, content_type: &str, request_id: &str) -> Self {
        Response {
            status,
            headers: vec![
                ("content-type", content_type.into()),
                ("x-amzn-RequestId", request_id.into()),
            ],
            body,
            drop: false,
            error_message: None,
        }
    }

    /// The value of a header (its name as the response was built with).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// An AWS error: `x-amzn-ErrorType`, `{"message", "__type"}`.
    pub fn error(code: &str, status: u16, message: &str, request_id: &str) -> Self {
        let body = serde_json::json!({"message": message, "__type": code});
        let mut r = Response::json(status, body.to_string().into_bytes(), request_id);
        r.headers.push(("x-amzn-ErrorType", code.into()));
        r.error_message = Some(message.to_string());
        r
    }
}

/// Why a request was refused before any handler ran.
#[derive(Debug)]
struct Rejection {
    status: u16,
    code: &'static str,
    message: String,
}

impl Rejection {
    fn bad(message: impl Into<String>) -> Self {
        Rejection {
            status: 400,
            code: ErrorCode::Validation.as_str(),
            message: message.into(),
        }
    }
    fn status(status: u16, message: impl Into<String>) -> Self {
        Rejection {
            status,
            code: ErrorCode::Validation.as_str(),
            message: message.into(),
        }
    }
}

/// How the body of a request is framed.
enum Framing {
    Length(usize),
    Chunked,
}

/// A parsed request head: the request, how its body comes, and connection handling.
struct Head {
    request: Request,
    framing: Framing,
    keep_alive: bool,
    expect_continue: bool,
}

/// Serves one connection until the client closes it, a request asks to close, a rejection, or shutdown.
pub async fn serve_connection(
    mut stream: TcpStream,
    app: Arc<AppState>,
    mut shutdown: watch::Receiver<bool>,
) {
    let _ = stream.set_nodelay(true);
    let peer = stream.peer_addr().ok();
    let mut buf: Vec<u8> = Vec::with_capacity(4096);
    loop {
        // When the request's first byte arrived (it may already be in the buffer).
        let mut arrival = None;
        // Wait for a whole head; a connection idle between requests closes at shutdown.
        let head_len = loop {
            if !buf.is_empty() {
                let arrived = arrival.get_or_insert_with(Arrival::now);
                match head_end(&buf) {
                    Ok(Some(n)) => break n,
                    Ok(None) => {}
                    Err(r) => return reject(&mut stream, &app, arrived, None, r).await,
                }
            }
            if *shutdown.borrow() && buf.is_empty() {
                return;
            }
            // An idle connection, or a head that does not come whole, is not kept: the read timeout runs from
            // the last request (idle) or from the head's first byte (a head sent slowly, byte by byte).
            let waited = arrival.as_ref().map_or(Duration::ZERO, |a| a.at.elapsed());
            let Some(left) = app.options.read_timeout.checked_sub(waited) else {
                let arrived = arrival.as_ref().expect("a head under way");
                return reject(&mut stream, &app, arrived, None, request_timeout()).await;
            };
            let mut chunk = [0u8; 8192];
            let read = tokio::select! {
                r = tokio::time::timeout(left, stream.read(&mut chunk)) => r,
                _ = shutdown.changed(), if buf.is_empty() => return,
            };
            match read {
                Err(_) if buf.is_empty() => return, // idle for the read timeout: closed
                Err(_) => {
                    let arrived = arrival.as_ref().expect("a head under way");
                    return reject(&mut stream, &app, arrived, None, request_timeout()).await;
                }
                Ok(Ok(0)) | Ok(Err(_)) => return, // the client closed (mid-head or between requests)
                Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let arrival = arrival.unwrap_or_else(Arrival::now);
        let head = match parse_head(&buf[..head_len]) {
            Ok(h) => h,
            Err(r) => return reject(&mut stream, &app, &arrival, None, r).await,
        };
        buf.drain(..head_len);
        let Head {
            mut request,
            framing,
            keep_alive,
            expect_continue,
        } = head;
        // An API request is in flight from its head to its answer (the server's own routes are not counted).
        let in_flight = super::internal_route(&request.method, &request.path)
            .is_none()
            .then(|| app.metrics.begin());
        // A large body waits for room in the server's budget before it is read (see BODY_BUDGET_KIB): unread, it
        // stays in the socket, and the client waits on TCP's flow control.
        let kib = match framing {
            Framing::Length(n) if n < 1024 * 1024 => 0,
            Framing::Length(n) => n.div_ceil(1024),
            Framing::Chunked => MAX_BODY / 1024,
        };
        let _room = match kib {
            0 => None,
            k => match app.bodies.clone().acquire_many_owned(k as u32).await {
                Ok(permit) => Some(permit),
                Err(_) => return,
            },
        };
        if expect_continue
            && !matches!(framing, Framing::Length(0))
            && stream
                .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                .await
                .is_err()
        {
            return;
        }
        request.body =
            match read_body(&mut stream, &mut buf, framing, app.options.read_timeout).await {
                Ok(Some(b)) => b,
                Ok(None) => return, // the client closed mid-body
                Err(r) => {
                    let target = Some((request.method.as_str(), request.path.as_str()));
                    drop(in_flight);
                    return reject(&mut stream, &app, &arrival, target, r).await;
                }
            };
        let bytes_in = request.body.len();
        let (response, exchange) = super::handle(app.clone(), request, peer).await;
        if let Some(x) = &exchange {
            super::record(&app, &arrival, bytes_in, &response, x);
        }
        drop(in_flight);
        let close = !keep_alive || *shutdown.borrow();
        if write_response(&mut stream, &response, close).await.is_err() || close || response.drop {
            return;
        }
    }
}

/// Answers a request refused before its handler (logged and counted with its method and path when its
/// head was read), then closes the connection.
async fn reject(
    stream: &mut TcpStream,
    app: &AppState,
    arrival: &Arrival,
    target: Option<(&str, &str)>,
    r: Rejection,
) {
    let response = Response::error(r.code, r.status, &r.message, &new_request_id());
    let x = Exchange {
        target: target.map(|(m, p)| (m.to_string(), p.to_string())),
        ..Exchange::default()
    };
    super::record(app, arrival, 0, &response, &x);
    let _ = write_response(stream, &response, true).await;
    let _ = stream.shutdown().await;
}

fn request_timeout() -> Rejection {
    Rejection::status(
        408,
        "the request did not arrive within the server's read timeout",
    )
}

/// The length of the head at the start of `buf` once it is whole; an error once it cannot become valid.
fn head_end(buf: &[u8]) -> Result<Option<usize>, Rejection> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(Status::Complete(n)) if n > MAX_HEAD => Err(head_too_large()),
        Ok(Status::Complete(n)) => Ok(Some(n)),
        Ok(Status::Partial) => {
            let line_end = buf.iter().position(|&b| b == b'\n');
            if line_end.unwrap_or(buf.len()) > MAX_URI + 64 {
                return Err(Rejection::status(
                    414,
                    format!("the request URI is longer than {MAX_URI} bytes"),
                ));
            }
            if buf.len() > MAX_HEAD {
                return Err(head_too_large());
            }
            Ok(None)
        }
        Err(httparse::Error::TooManyHeaders) => Err(Rejection::status(
            431,
            format!("the request has more than {MAX_HEADERS} header fields"),
        )),
        Err(e) => Err(Rejection::bad(format!("malformed HTTP request: {e}"))),
    }
}

fn parse_head(raw: &[u8]) -> Result<Head, Rejection> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    req.parse(raw)
        .map_err(|e| Rejection::bad(format!("malformed HTTP request: {e}")))?;
    let method = req.method.unwrap_or_default().to_string();
    let target = req.path.unwrap_or_default();
    if target.len() > MAX_URI {
        return Err(Rejection::status(
            414,
            format!("the request URI is longer than {MAX_URI} bytes"),
        ));
    }
    if !target.starts_with('/') {
        return Err(Rejection::bad(format!(
            "the request target must be a path starting with '/' (got {:?})",
            truncate(target)
        )));
    }
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), Some(q.to_string())),
        None => (target.to_string(), None),
    };
    let http11 = req.version == Some(1);
    let mut content_length: Option<usize> = None;
    let mut chunked = false;
    let mut has_host = false;
    let mut connection_close = !http11;
    let mut expect_continue = false;
    let mut fields = Vec::with_capacity(req.headers.len());
    for h in req.headers.iter() {
        let value = std::str::from_utf8(h.value)
            .map_err(|_| Rejection::bad(format!("header {} is not valid text", h.name)))?
            .trim();
        fields.push((h.name.to_ascii_lowercase(), value.to_string()));
        match h.name.to_ascii_lowercase().as_str() {
            "content-length" => {
                // Digits only (no sign, no list): a differing repeat is request smuggling.
                let n = (!value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()))
                    .then(|| value.parse::<usize>().ok())
                    .flatten()
                    .ok_or_else(|| {
                        Rejection::bad(format!("invalid Content-Length {:?}", truncate(value)))
                    })?;
                if content_length.is_some_and(|m| m != n) {
                    return Err(Rejection::bad("conflicting Content-Length headers"));
                }
                content_length = Some(n);
            }
            "transfer-encoding" => {
                if !value.eq_ignore_ascii_case("chunked") || chunked {
                    return Err(Rejection::status(
                        501,
                        format!(
                            "Transfer-Encoding {:?} is not supported (only chunked)",
                            truncate(value)
                        ),
                    ));
                }
                chunked = true;
            }
            "host" => has_host = true,
            "connection" => {
                for token in value.split(',').map(str::trim) {
                    if token.eq_ignore_ascii_case("close") {
                        connection_close = true;
                    } else if token.eq_ignore_ascii_case("keep-alive") {
                        connection_close = false;
                    }
                }
            }
            "expect" => {
                if !value.eq_ignore_ascii_case("100-continue") {
                    return Err(Rejection::status(
                        417,
                        format!("Expect {:?} is not supported", truncate(value)),
                    ));
                }
                expect_continue = true;
            }
            _ => {}
        }
    }
    if http11 && !has_host {
        return Err(Rejection::bad(
            "an HTTP/1.1 request must have a Host header",
        ));
    }
    let framing = match (chunked, content_length) {
        (true, Some(_)) => {
            return Err(Rejection::bad(
                "a request must not have both Transfer-Encoding and Content-Length",
            ));
        }
        (true, None) => Framing::Chunked,
        (false, n) => {
            let n = n.unwrap_or(0);
            if n > MAX_BODY {
                return Err(too_large());
            }
            Framing::Length(n)
        }
    };
    Ok(Head {
        request: Request {
            method,
            path,
            query,
            headers: fields,
            body: Vec::new(),
        },
        framing,
        keep_alive: !connection_close,
        expect_continue,
    })
}

fn head_too_large() -> Rejection {
    Rejection::status(
        431,
        format!("the request head is larger than {MAX_HEAD} bytes"),
    )
}

fn too_large() -> Rejection {
    Rejection::status(
        413,
        format!("the request body is larger than {MAX_BODY} bytes"),
    )
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

/// Reads exactly `n` bytes, taking first what `buf` already holds. `None` if the client closed.
/// One read, or `None` when the client sent nothing for `timeout` (or closed, or failed).
async fn timed_read<S: AsyncRead + Unpin>(
    stream: &mut S,
    chunk: &mut [u8],
    timeout: Duration,
) -> Option<usize> {
    match tokio::time::timeout(timeout, stream.read(chunk)).await {
        Ok(Ok(0)) | Ok(Err(_)) | Err(_) => None,
        Ok(Ok(k)) => Some(k),
    }
}

async fn read_exact_buffered<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    n: usize,
    timeout: Duration,
) -> Option<Vec<u8>> {
    while buf.len() < n {
        let mut chunk = vec![0u8; (n - buf.len()).clamp(1, 64 * 1024)];
        let k = timed_read(stream, &mut chunk, timeout).await?;
        buf.extend_from_slice(&chunk[..k]);
    }
    let rest = buf.split_off(n);
    Some(std::mem::replace(buf, rest))
}

/// Reads one CRLF-terminated line (without its CRLF), at most `limit` bytes long.
async fn read_line<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    limit: usize,
    timeout: Duration,
) -> Result<Option<Vec<u8>>, Rejection> {
    loop {
        if let Some(i) = buf.windows(2).position(|w| w == b"\r\n") {
            let line = buf.drain(..i + 2).take(i).collect();
            return Ok(Some(line));
        }
        if buf.len() > limit {
            return Err(Rejection::bad("malformed chunked body: a line is too long"));
        }
        let mut chunk = [0u8; 4096];
        match timed_read(stream, &mut chunk, timeout).await {
            None => return Ok(None),
            Some(k) => buf.extend_from_slice(&chunk[..k]),
        }
    }
}

/// The body of a request. `Ok(None)`: the client closed before sending it all.
async fn read_body<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    framing: Framing,
    timeout: Duration,
) -> Result<Option<Vec<u8>>, Rejection> {
    match framing {
        Framing::Length(n) => Ok(read_exact_buffered(stream, buf, n, timeout).await),
        Framing::Chunked => {
            let mut body = Vec::new();
            loop {
                let Some(line) = read_line(stream, buf, 1024, timeout).await? else {
                    return Ok(None);
                };
                let size_text = std::str::from_utf8(&line)
                    .ok()
                    .map(|l| l.split(';').next().unwrap_or("").trim())
                    .filter(|s| !s.is_empty() && s.len() <= 16)
                    .ok_or_else(|| Rejection::bad("malformed chunked body: bad chunk size"))?;
                let size = usize::from_str_radix(size_text, 16)
                    .map_err(|_| Rejection::bad("malformed chunked body: bad chunk size"))?;
                if size == 0 {
                    // Trailers, up to the empty line.
                    loop {
                        match read_line(stream, buf, 8192, timeout).await? {
                            None => return Ok(None),
                            Some(l) if l.is_empty() => return Ok(Some(body)),
                            Some(_) => {}
                        }
                    }
                }
                if body.len() + size > MAX_BODY {
                    return Err(too_large());
                }
                let Some(mut data) = read_exact_buffered(stream, buf, size + 2, timeout).await
                else {
                    return Ok(None);
                };
                if !data.ends_with(b"\r\n") {
                    return Err(Rejection::bad(
                        "malformed chunked body: a chunk does not end with CRLF",
                    ));
                }
                data.truncate(size);
                body.extend_from_slice(&data);
            }
        }
    }
}

async fn write_response<S: AsyncWrite + Unpin>(
    stream: &mut S,
    r: &Response,
    close: bool,
) -> std::io::Result<()> {
    let reason = http::StatusCode::from_u16(r.status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    let mut head = format!("HTTP/1.1 {} {reason}\r\n", r.status);
    for (k, v) in &r.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if r.drop {
        // The head promises a body that never comes.
        head.push_str("transfer-encoding: chunked\r\n\r\n");
        stream.write_all(head.as_bytes()).await?;
        stream.flush().await?;
        return stream.shutdown().await;
    }
    head.push_str(&format!("content-length: {}\r\n", r.body.len()));
    if close {
        head.push_str("connection: close\r\n");
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(&r.body);
    stream.write_all(&out).await?;
    stream.flush().await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(raw: &str) -> Result<Head, Rejection> {
        parse_head(raw.as_bytes())
    }

    #[test]
    fn heads_are_checked() {
        let h = head(
            "PUT /sessions/a%3Ab/?maxResults=2 HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n",
        )
        .unwrap();
        assert_eq!(h.request.method, "PUT");
        assert_eq!(h.request.path, "/sessions/a%3Ab/");
        assert_eq!(h.request.query.as_deref(), Some("maxResults=2"));
        assert!(matches!(h.framing, Framing::Length(2)) && h.keep_alive);
        let status = |raw: &str| head(raw).err().map(|r| r.status);
        assert_eq!(
            status("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n"),
            Some(400)
        );
        assert_eq!(
            status("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1, 2\r\n\r\n"),
            Some(400)
        );
        assert_eq!(
            status("GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            Some(400)
        );
        assert_eq!(
            status("GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n"),
            Some(501)
        );
        assert_eq!(
            status(
                "GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"
            ),
            Some(400)
        );
        assert_eq!(status("GET / HTTP/1.1\r\n\r\n"), Some(400), "no Host");
        assert_eq!(
            status(&format!(
                "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
                MAX_BODY + 1
            )),
            Some(413)
        );
        assert!(head("GET / HTTP/1.0\r\n\r\n").is_ok_and(|h| !h.keep_alive));
        assert!(
            head("GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .is_ok_and(|h| !h.keep_alive)
        );
        assert_eq!(head_end(b"GET / HTTP/1.1\r\nHo").ok(), Some(None));
        assert_eq!(
            head_end(b"GET /\x01 HTTP/1.1\r\n\r\n")
                .err()
                .map(|r| r.status),
            Some(400)
        );
        let long = format!("GET /{} HTTP/1.1\r\n", "a".repeat(MAX_URI + 100));
        assert_eq!(head_end(long.as_bytes()).err().map(|r| r.status), Some(414));
        let many: String = (0..MAX_HEADERS + 1)
            .map(|i| format!("X-{i}: y\r\n"))
            .collect();
        let raw = format!("GET / HTTP/1.1\r\n{many}\r\n");
        assert_eq!(head_end(raw.as_bytes()).err().map(|r| r.status), Some(431));
    }

    #[tokio::test]
    async fn chunked_bodies_are_decoded() {
        let mut rest: Vec<u8> = Vec::new();
        let mut input: &[u8] = b"4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nTrailer: x\r\n\r\nNEXT";
        let body = read_body(
            &mut input,
            &mut rest,
            Framing::Chunked,
            Duration::from_secs(5),
        )
        .await
        .unwrap();
        assert_eq!(body.as_deref(), Some(&b"Wikipedia"[..]));
        assert_eq!(input, b"", "read ahead lands in the buffer");
        assert_eq!(rest, b"NEXT");
        let mut rest: Vec<u8> = Vec::new();
        let mut bad: &[u8] = b"zz\r\n";
        assert!(
            read_body(
                &mut bad,
                &mut rest,
                Framing::Chunked,
                Duration::from_secs(5)
            )
            .await
            .is_err()
        );
        let mut rest: Vec<u8> = Vec::new();
        let mut cut: &[u8] = b"10\r\nabc";
        assert!(matches!(
            read_body(
                &mut cut,
                &mut rest,
                Framing::Chunked,
                Duration::from_secs(5)
            )
            .await,
            Ok(None)
        ));
    }
}
