//! Who is asking: the server's identities (from `--iam FILE`) and the SigV4 verification of every API request.
//!
//! The canonical request is built as the AWS SDKs build it for this REST-JSON service: the path's segments
//! percent-encoded once more (a session ARN, `%3A` on the wire, is `%253A` in the canonical URI), the query
//! sorted and strictly encoded, the signed headers lowercased with their values trimmed and inner spaces
//! collapsed, the body's SHA-256. The scope must be `<date>/<server region>/bedrock/aws4_request`, `X-Amz-Date`
//! within 15 minutes of the server's clock, and a temporary key's session token must come with it. The
//! signing key comes from `aws-sigv4` (the SDK's own crate); signatures are compared in constant time.
//! Failures answer as AWS does: 403 with `MissingAuthenticationTokenException`, `UnrecognizedClientException`,
//! `InvalidSignatureException` or `IncompleteSignatureException`.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::policy::Policy;

/// The signing name of the Bedrock Agent Runtime API.
pub const SERVICE: &str = "bedrock";
/// How far `X-Amz-Date` may be from the server's clock.
pub const MAX_SKEW: Duration = Duration::from_secs(15 * 60);

/// RFC 3986 unreserved characters stay; everything else is percent-encoded.
const STRICT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// The identities file (`--iam FILE`): accounts, their groups and principals (IAM users), access keys,
/// tags and identity policies.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IamFile {
    pub accounts: HashMap<String, AccountSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountSpec {
    #[serde(default)]
    pub principals: HashMap<String, PrincipalSpec>,
    /// Groups: their policies apply to every principal that names the group.
    #[serde(default)]
    pub groups: HashMap<String, GroupSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupSpec {
    #[serde(default)]
    pub policies: Vec<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrincipalSpec {
    /// Access key id → its secret, or `{"secret": ..., "session_token": ...}` for a temporary key.
    #[serde(default)]
    pub access_keys: HashMap<String, KeySpec>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Identity policies (IAM JSON policy documents). None: every action is denied, as IAM does.
    #[serde(default)]
    pub policies: Vec<serde_json::Value>,
    #[serde(default)]
    pub groups: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum KeySpec {
    Secret(String),
    Temporary {
        secret: String,
        session_token: String,
    },
}

/// An IAM user of an account, as the identities file describes it.
#[derive(Debug)]
pub struct Principal {
    pub account: String,
    pub name: String,
    /// `arn:aws:iam::<account>:user/<name>`.
    pub arn: String,
    pub tags: BTreeMap<String, String>,
    /// Its own policies and its groups'.
    pub policies: Vec<Policy>,
    /// Whether a policy reads the session's tags (`aws:ResourceTag/...`): they are looked up only then.
    pub reads_resource_tags: bool,
}

/// A request's verified signer: the principal and the access key it signed with.
#[derive(Debug, Clone)]
pub struct Signer {
    pub principal: Arc<Principal>,
    pub access_key: String,
}

#[derive(Debug)]
struct Key {
    secret: String,
    session_token: Option<String>,
    principal: Arc<Principal>,
}

/// The server's identities, by access key id.
#[derive(Debug)]
pub struct Identities {
    keys: HashMap<String, Key>,
    accounts: Vec<String>,
    region: String,
}

impl Identities {
    /// Reads an identities file; `region`: the region requests must be signed for (the server's).
    pub fn load(path: &std::path::Path, region: &str) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the identities file {}: {e}", path.display()))?;
        Self::parse(&text, region).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn parse(text: &str, region: &str) -> Result<Self, String> {
        let file: IamFile =
            serde_json::from_str(text).map_err(|e| format!("not an identities file: {e}"))?;
        let mut keys = HashMap::new();
        let mut accounts = Vec::new();
        for (account, spec) in file.accounts {
            if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("account {account:?} must be 12 digits"));
            }
            let parse_all = |docs: &[serde_json::Value], whose: &str| {
                docs.iter()
                    .enumerate()
                    .map(|(i, d)| {
                        Policy::parse(d).map_err(|e| format!("{whose}, policy {}: {e}", i + 1))
                    })
                    .collect::<Result<Vec<_>, String>>()
            };
            let mut groups = HashMap::new();
            for (name, g) in &spec.groups {
                let whose = format!("group {name:?} of account {account}");
                groups.insert(name.clone(), (parse_all(&g.policies, &whose)?, &g.policies));
            }
            for (name, p) in spec.principals {
                let whose = format!("principal {name:?} of account {account}");
                let mut policies = parse_all(&p.policies, &whose)?;
                let mut documents: Vec<&serde_json::Value> = p.policies.iter().collect();
                for g in &p.groups {
                    let Some((group_policies, group_docs)) = groups.get(g) else {
                        return Err(format!(
                            "{whose} names group {g:?}, which account {account} does not have"
                        ));
                    };
                    policies.extend(group_policies.iter().cloned());
                    documents.extend(group_docs.iter());
                }
                let reads_resource_tags = documents.iter().any(|d| {
                    d.to_string()
                        .to_ascii_lowercase()
                        .contains("aws:resourcetag/")
                });
                let principal = Arc::new(Principal {
                    arn: format!("arn:aws:iam::{account}:user/{name}"),
                    account: account.clone(),
                    name: name.clone(),
                    tags: p.tags,
                    policies,
                    reads_resource_tags,
                });
                for (access_key, k) in p.access_keys {
                    let (secret, session_token) = match k {
                        KeySpec::Secret(s) => (s, None),
                        KeySpec::Temporary {
                            secret,
                            session_token,
                        } => (secret, Some(session_token)),
                    };
                    if secret.is_empty() {
                        return Err(format!("access key {access_key} has an empty secret"));
                    }
                    let key = Key {
                        secret,
                        session_token,
                        principal: principal.clone(),
                    };
                    if keys.insert(access_key.clone(), key).is_some() {
                        return Err(format!("access key {access_key} is given twice"));
                    }
                }
            }
            accounts.push(account);
        }
        accounts.sort();
        Ok(Identities {
            keys,
            accounts,
            region: region.to_string(),
        })
    }

    /// The accounts of the file.
    pub fn accounts(&self) -> &[String] {
        &self.accounts
    }

    /// The region requests are signed for (the server's, and its sessions' ARNs').
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The principal that signed the request, or the AWS error to answer (code, message).
    pub fn verify(
        &self,
        method: &str,
        path: &str,
        query: Option<&str>,
        headers: &[(String, String)],
        body: &[u8],
        now: SystemTime,
    ) -> Result<Signer, (&'static str, String)> {
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        let Some(auth) = header("authorization") else {
            return Err((
                "MissingAuthenticationTokenException",
                "Missing Authentication Token".into(),
            ));
        };
        let parts = parse_authorization(auth).ok_or_else(|| {
            (
                "IncompleteSignatureException",
                format!("Authorization header requires 'Credential', 'Signature' and 'SignedHeaders' parameters of AWS4-HMAC-SHA256 (got {:?})", truncate(auth)),
            )
        })?;
        let scope: Vec<&str> = parts.credential.split('/').collect();
        let [access_key, date, region, service, terminal] = scope[..] else {
            return Err((
                "IncompleteSignatureException",
                format!("Credential should have 5 parts: {:?}", parts.credential),
            ));
        };
        let Some(key) = self.keys.get(access_key) else {
            return Err((
                "UnrecognizedClientException",
                "The security token included in the request is invalid.".into(),
            ));
        };
        match (&key.session_token, header("x-amz-security-token")) {
            (Some(want), Some(got)) if bool::from(want.as_bytes().ct_eq(got.as_bytes())) => {}
            (None, None) => {}
            _ => {
                return Err((
                    "UnrecognizedClientException",
                    "The security token included in the request is invalid.".into(),
                ));
            }
        }
        if terminal != "aws4_request" {
            return Err((
                "InvalidSignatureException",
                format!(
                    "Credential should be scoped with a valid terminator: 'aws4_request', not '{terminal}'."
                ),
            ));
        }
        if service != SERVICE {
            return Err((
                "InvalidSignatureException",
                format!("Credential should be scoped to correct service: '{SERVICE}'. "),
            ));
        }
        if region != self.region {
            return Err((
                "InvalidSignatureException",
                format!(
                    "Credential should be scoped to a valid region. Expected '{}', got '{region}'.",
                    self.region
                ),
            ));
        }
        let Some(amz_date) = header("x-amz-date") else {
            return Err((
                "IncompleteSignatureException",
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header."
                    .into(),
            ));
        };
        let signed_at = parse_amz_date(amz_date).ok_or_else(|| {
            (
                "IncompleteSignatureException",
                format!("X-Amz-Date {amz_date:?} is not of the form 20261205T101500Z"),
            )
        })?;
        if !amz_date.starts_with(date) || date.len() != 8 {
            return Err((
                "InvalidSignatureException",
                format!(
                    "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{date}' != '{}'",
                    &amz_date[..8.min(amz_date.len())]
                ),
            ));
        }
        let skew = match now.duration_since(signed_at) {
            Ok(d) => d,
            Err(e) => e.duration(),
        };
        if skew > MAX_SKEW {
            return Err((
                "InvalidSignatureException",
                format!(
                    "Signature expired: {amz_date} is now earlier or later than {} (15 minutes either way).",
                    format_amz_date(now)
                ),
            ));
        }
        if !parts.signed_headers.iter().any(|h| h == "host") {
            return Err((
                "InvalidSignatureException",
                "'Host' must be a signed header.".into(),
            ));
        }
        let payload_hash = match header("x-amz-content-sha256") {
            Some(h) => h.to_string(),
            None => hex(&Sha256::digest(body)),
        };
        let creq = canonical_request(
            method,
            path,
            query,
            headers,
            &parts.signed_headers,
            &payload_hash,
        );
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256\n{amz_date}\n{date}/{region}/{service}/aws4_request\n{}",
            hex(&Sha256::digest(creq.as_bytes()))
        );
        let signing_key =
            aws_sigv4::sign::v4::generate_signing_key(&key.secret, signed_at, region, service);
        let expected =
            aws_sigv4::sign::v4::calculate_signature(signing_key, string_to_sign.as_bytes());
        if !bool::from(expected.as_bytes().ct_eq(parts.signature.as_bytes())) {
            return Err((
                "InvalidSignatureException",
                "The request signature we calculated does not match the signature you provided. Check your \
                 AWS Secret Access Key and signing method. Consult the service documentation for details."
                    .into(),
            ));
        }
        Ok(Signer {
            principal: key.principal.clone(),
            access_key: access_key.to_string(),
        })
    }
}

/// The access key a request names in its `Authorization` header, verified or not (for the audit log).
pub fn claimed_access_key(headers: &[(String, String)]) -> Option<String> {
    let auth = headers.iter().find(|(k, _)| k == "authorization")?;
    let parts = parse_authorization(&auth.1)?;
    let key = parts.credential.split('/').next()?;
    Some(truncate(key).to_string())
}

struct AuthParts {
    credential: String,
    signed_headers: Vec<String>,
    signature: String,
}

fn parse_authorization(value: &str) -> Option<AuthParts> {
    let rest = value.strip_prefix("AWS4-HMAC-SHA256")?.trim_start();
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for item in rest.split(',') {
        let (k, v) = item.trim().split_once('=')?;
        match k {
            "Credential" => credential = Some(v.to_string()),
            "SignedHeaders" => signed = Some(v.split(';').map(str::to_string).collect()),
            "Signature" => signature = Some(v.to_string()),
            _ => {}
        }
    }
    Some(AuthParts {
        credential: credential?,
        signed_headers: signed?,
        signature: signature?,
    })
}

/// The canonical request of SigV4 (see the module's documentation).
pub fn canonical_request(
    method: &str,
    path: &str,
    query: Option<&str>,
    headers: &[(String, String)],
    signed_headers: &[String],
    payload_hash: &str,
) -> String {
    // Each segment as sent (percent-encoded once) is encoded again: '%' becomes "%25".
    let uri: Vec<String> = path
        .split('/')
        .map(|seg| utf8_percent_encode(seg, STRICT).to_string())
        .collect();
    let mut pairs: Vec<(String, String)> = query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let dec = |s: &str| {
                percent_decode_str(&s.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (
                utf8_percent_encode(&dec(k), STRICT).to_string(),
                utf8_percent_encode(&dec(v), STRICT).to_string(),
            )
        })
        .collect();
    pairs.sort();
    let query: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut canonical_headers = String::new();
    for name in signed_headers {
        let values: Vec<String> = headers
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        canonical_headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    format!(
        "{method}\n{}\n{}\n{canonical_headers}\n{}\n{payload_hash}",
        uri.join("/"),
        query.join("&"),
        signed_headers.join(";")
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn truncate(s: &str) -> &str {
    match s.char_indices().nth(80) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

const AMZ_DATE: &str = "[year][month][day]T[hour][minute][second]Z";

/// `20261205T101500Z` as a time.
fn parse_amz_date(s: &str) -> Option<SystemTime> {
    let format = time::format_description::parse(AMZ_DATE).ok()?;
    let t = time::PrimitiveDateTime::parse(s, &format)
        .ok()?
        .assume_utc();
    let secs = u64::try_from(t.unix_timestamp()).ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

fn format_amz_date(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let dt = time::OffsetDateTime::from_unix_timestamp(secs as i64)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    time::format_description::parse(AMZ_DATE)
        .ok()
        .and_then(|f| dt.format(&f).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the SigV4 documentation ("Create a signed AWS API request", IAM user guide): a GET of
    /// IAM's ListUsers, its canonical request and signature.
    #[test]
    fn the_documentation_example_verifies() {
        let headers = vec![
            (
                "content-type".to_string(),
                "application/x-www-form-urlencoded; charset=utf-8".to_string(),
            ),
            ("host".to_string(), "iam.amazonaws.com".to_string()),
            ("x-amz-date".to_string(), "20150830T123600Z".to_string()),
        ];
        let signed: Vec<String> = ["content-type", "host", "x-amz-date"]
            .map(String::from)
            .to_vec();
        let creq = canonical_request(
            "GET",
            "/",
            Some("Action=ListUsers&Version=2010-05-08"),
            &headers,
            &signed,
            &hex(&Sha256::digest(b"")),
        );
        assert_eq!(
            hex(&Sha256::digest(creq.as_bytes())),
            "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59"
        );
        let at = parse_amz_date("20150830T123600Z").unwrap();
        let key = aws_sigv4::sign::v4::generate_signing_key(
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            at,
            "us-east-1",
            "iam",
        );
        let sts = format!(
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/iam/aws4_request\n{}",
            hex(&Sha256::digest(creq.as_bytes()))
        );
        assert_eq!(
            aws_sigv4::sign::v4::calculate_signature(key, sts.as_bytes()),
            "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
        );
    }

    #[test]
    fn session_arns_are_encoded_twice_in_the_canonical_uri() {
        let creq = canonical_request(
            "GET",
            "/sessions/arn%3Aaws%3Abedrock%3Aus-east-1%3A111111111111%3Asession%2Fabc/",
            None,
            &[("host".into(), "h".into())],
            &["host".into()],
            "x",
        );
        assert!(creq.starts_with(
            "GET\n/sessions/arn%253Aaws%253Abedrock%253Aus-east-1%253A111111111111%253Asession%252Fabc/\n"
        ));
    }

    #[test]
    fn identities_files_are_checked() {
        let bad = |text: &str, says: &str| {
            let e = Identities::parse(text, "us-east-1").unwrap_err();
            assert!(e.contains(says), "{e}");
        };
        bad(r#"{"accounts": {"1": {}}}"#, "12 digits");
        bad(
            r#"{"accounts": {"111111111111": {"principals": {"alice": {"policies": [{"Statement": {"Effect": "Allow", "Action": "bedrock:*", "Resource": "*", "Principal": "*"}}]}}}}}"#,
            "principal \"alice\" of account 111111111111, policy 1",
        );
        bad(
            r#"{"accounts": {"111111111111": {"principals": {"alice": {"groups": ["ops"]}}}}}"#,
            "names group \"ops\"",
        );
        let ok = Identities::parse(
            r#"{"accounts": {"111111111111": {"groups": {"readers": {"policies": [{"Version": "2012-10-17", "Statement": {"Effect": "Allow", "Action": "bedrock:Get*", "Resource": "*", "Condition": {"StringEquals": {"aws:ResourceTag/team": "red"}}}}]}},
                "principals": {"alice": {"access_keys": {"AKIA1": "s"}, "groups": ["readers"], "tags": {"team": "red"}}}}}}"#,
            "us-east-1",
        )
        .unwrap();
        let alice = &ok.keys["AKIA1"].principal;
        assert_eq!(alice.arn, "arn:aws:iam::111111111111:user/alice");
        assert_eq!(alice.policies.len(), 1);
        assert!(alice.reads_resource_tags);
        assert_eq!(ok.accounts(), ["111111111111"]);
    }
}
