//! What a request must be to be answered, checked before any handler, in one place:
//! - on a loopback address, a `Host` naming the server (DNS rebinding);
//! - a body declared as JSON (a page on another site can send a `text/plain` POST without asking, no CORS
//!   preflight, but not an `application/json` one);
//! - with identities, a SigV4 signature of one of their keys ([`super::auth`]) for the API and the server's stats
//!   and metrics (`/health` stays open), and for the stats and metrics a policy that allows them (the API's
//!   requests are decided in [`super::authz`]); the web inspector's pages, which a browser cannot sign, are not
//!   served.

use super::auth::Signer;
use super::authz;
use super::{AppState, Internal, ui_proxy};

/// A refusal: the AWS error code, the HTTP status and the message.
pub type Refusal = (&'static str, u16, String);

/// Whether a request may be handled, and who signed it (with identities); `own`: the server's own route it
/// names, if any.
pub fn admit(
    app: &AppState,
    method: &str,
    path: &str,
    query: Option<&str>,
    headers: &[(String, String)],
    body: &[u8],
    own: Option<Internal>,
) -> Result<Option<Signer>, Refusal> {
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if let Some(hosts) = &app.hosts {
        let host = header("host").unwrap_or("");
        if !hosts.iter().any(|h| h.eq_ignore_ascii_case(host)) {
            return Err((
                "AccessDeniedException",
                403,
                format!(
                    "Host {host:?} is not an address of this server (it serves {}: a request naming another host \
                     comes through a name that is not this server's, as in DNS rebinding)",
                    hosts.join(", ")
                ),
            ));
        }
    }
    let ui = ui_proxy::is_ui(method, path);
    if !body.is_empty() && !ui {
        let json = header("content-type").is_some_and(|t| {
            let t = t.split(';').next().unwrap_or("").trim();
            t.eq_ignore_ascii_case("application/json")
                || t.eq_ignore_ascii_case("application/x-amz-json-1.1")
        });
        if !json {
            return Err((
                "UnsupportedMediaTypeException",
                415,
                format!(
                    "a request body must be JSON (Content-Type: application/json), not {:?}",
                    header("content-type").unwrap_or("(none)")
                ),
            ));
        }
    }
    let Some(ids) = &app.options.identities else {
        return Ok(None);
    };
    if matches!(own, Some(Internal::Health)) {
        return Ok(None);
    }
    if ui && app.options.ui_upstream.is_some() {
        return Err((
            "AccessDeniedException",
            403,
            "the web inspector is not served by a server that requires signed requests (a browser cannot \
             sign them): run `bedrock-sessions ui` on the store instead"
                .into(),
        ));
    }
    let signer = ids
        .verify(
            method,
            path,
            query,
            headers,
            body,
            std::time::SystemTime::now(),
        )
        .map_err(|(code, message)| (code, 403, message))?;
    // The server's stats and metrics are the operator's (see `authz::authorize_operator`).
    let action = match own {
        Some(Internal::Stats) if method == "DELETE" => Some("bedrock-sessions:ResetStats"),
        Some(Internal::Stats) => Some("bedrock-sessions:GetStats"),
        Some(Internal::Metrics) => Some("bedrock-sessions:GetMetrics"),
        _ => None,
    };
    if let Some(action) = action {
        authz::authorize_operator(&signer.principal, action)
            .map_err(|message| ("AccessDeniedException", 403, message))?;
    }
    Ok(Some(signer))
}
