//! The web inspector under `/ui/` of the server's own port. The inspector is Python (it decodes LangGraph's
//! values with LangGraph's serializer), served on a loopback port of its own; the server relays `GET /ui/...`
//! to it, so that one address serves the API and the pages. Only GET, only to 127.0.0.1, one request per
//! connection, and the inspector's answer (status, type, security headers, body) passed on as it is.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::http::Response;

/// The inspector's answer must come within this time.
const TIMEOUT: Duration = Duration::from_secs(60);
/// Largest answer relayed (a history of many thousands of checkpoints is a few MB).
const MAX_ANSWER: usize = 256 * 1024 * 1024;
/// The inspector's headers relayed to the browser.
const RELAYED: [&str; 4] = [
    "content-type",
    "cache-control",
    "content-security-policy",
    "x-content-type-options",
];

/// Whether a request is for the inspector's pages.
pub fn is_ui(method: &str, path: &str) -> bool {
    method == "GET" && (path == "/ui" || path.starts_with("/ui/"))
}

/// Relays `GET /ui/<rest>?<query>` to the inspector on `127.0.0.1:port` as `GET /<rest>?<query>`.
pub async fn relay(port: u16, path: &str, query: Option<&str>, request_id: &str) -> Response {
    if path == "/ui" {
        let mut r = Response::text(308, Vec::new(), "text/plain", request_id);
        r.headers.push(("location", "/ui/".into()));
        return r;
    }
    let target = match query {
        Some(q) => format!("{}?{q}", &path[3..]),
        None => path[3..].to_string(),
    };
    match tokio::time::timeout(TIMEOUT, fetch(port, &target)).await {
        Ok(Ok(r)) => {
            let (status, headers, body) = r;
            let mut out = Response::text(status, body, "application/octet-stream", request_id);
            out.headers.retain(|(k, _)| *k != "content-type");
            for name in RELAYED {
                if let Some((_, v)) = headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)) {
                    out.headers.push((name, v.clone()));
                }
            }
            out
        }
        Ok(Err(e)) => Response::error(
            "InternalServerException",
            502,
            &format!("the web inspector did not answer: {e}"),
            request_id,
        ),
        Err(_) => Response::error(
            "InternalServerException",
            504,
            "the web inspector did not answer in time",
            request_id,
        ),
    }
}

type Answer = (u16, Vec<(String, String)>, Vec<u8>);

async fn fetch(port: u16, target: &str) -> std::io::Result<Answer> {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).await?;
    let head =
        format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    conn.write_all(head.as_bytes()).await?;
    let mut raw = Vec::new();
    conn.take(MAX_ANSWER as u64 + 1)
        .read_to_end(&mut raw)
        .await?;
    if raw.len() > MAX_ANSWER {
        return Err(std::io::Error::other("the answer is too large"));
    }
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Response::new(&mut headers);
    let at = match parsed.parse(&raw) {
        Ok(httparse::Status::Complete(n)) => n,
        _ => return Err(std::io::Error::other("a malformed answer")),
    };
    let status = parsed.code.unwrap_or(502);
    let headers = parsed
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_string(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    Ok((status, headers, raw[at..].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn relays_an_answer_and_redirects_the_bare_prefix() {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 1024];
            let n = s.read(&mut buf).await.unwrap();
            let head = String::from_utf8_lossy(&buf[..n]).to_string();
            assert!(
                head.starts_with("GET /api/threads?x=1 HTTP/1.1\r\n"),
                "{head}"
            );
            s.write_all(
                b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\nX-Other: no\r\n\r\n[1]",
            )
            .await
            .unwrap();
        });
        let r = relay(port, "/ui/api/threads", Some("x=1"), "rid").await;
        assert_eq!((r.status, r.body.as_slice()), (200, b"[1]".as_slice()));
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert!(r.headers.iter().all(|(k, _)| *k != "x-other"));
        let r = relay(port, "/ui", None, "rid").await;
        assert_eq!((r.status, r.header("location")), (308, Some("/ui/")));
        assert!(
            is_ui("GET", "/ui/static/app.js") && !is_ui("POST", "/ui/") && !is_ui("GET", "/uix")
        );
    }
}
