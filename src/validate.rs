//! Patterns and limits of the service model (botocore `bedrock-agent-runtime` 2023-07-26), hand-written
//! so that each check is cheap and each failure can name its field.

use crate::error::{Error, Result};

/// Lower-case UUID, as the service generates and requires (`^[a-f0-9]{8}-...-[a-f0-9]{12}$`).
pub fn is_uuid(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            _ => c.is_ascii_digit() || (b'a'..=b'f').contains(&c),
        })
}

/// The parts of a session ARN `arn:<partition>:bedrock:<region>:<account>:session/<uuid>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionArn {
    pub partition: String,
    pub region: String,
    pub account: String,
    pub session_id: String,
}

impl SessionArn {
    pub fn format(partition: &str, region: &str, account: &str, id: &str) -> String {
        format!("arn:{partition}:bedrock:{region}:{account}:session/{id}")
    }
}

/// Parses a session ARN. `region_upper` admits upper-case regions (the tagging ARN pattern does).
pub fn parse_session_arn(s: &str, region_upper: bool) -> Option<SessionArn> {
    let rest = s.strip_prefix("arn:")?;
    let mut parts = rest.splitn(5, ':');
    let partition = parts.next()?;
    let service = parts.next()?;
    let region = parts.next()?;
    let account = parts.next()?;
    let resource = parts.next()?;
    // partition: aws or aws-<anything without ':'>
    let partition_ok = partition == "aws"
        || partition
            .strip_prefix("aws-")
            .is_some_and(|p| !p.is_empty());
    let region_ok = !region.is_empty()
        && region.bytes().all(|c| {
            c.is_ascii_lowercase()
                || c.is_ascii_digit()
                || c == b'-'
                || (region_upper && c.is_ascii_uppercase())
        });
    let account_ok = account.len() == 12 && account.bytes().all(|c| c.is_ascii_digit());
    let id = resource.strip_prefix("session/")?;
    if partition_ok && service == "bedrock" && region_ok && account_ok && is_uuid(id) {
        Some(SessionArn {
            partition: partition.to_string(),
            region: region.to_string(),
            account: account.to_string(),
            session_id: id.to_string(),
        })
    } else {
        None
    }
}

/// `^arn:aws(|-cn|-us-gov):kms:[a-zA-Z0-9-]*:[0-9]{12}:key/[a-zA-Z0-9-]{36}$`, 1–2048 chars.
pub fn is_kms_key_arn(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("arn:") else {
        return false;
    };
    let parts: Vec<&str> = rest.splitn(5, ':').collect();
    if parts.len() != 5 {
        return false;
    }
    let alnum_dash = |x: &str| x.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-');
    matches!(parts[0], "aws" | "aws-cn" | "aws-us-gov")
        && parts[1] == "kms"
        && alnum_dash(parts[2])
        && parts[3].len() == 12
        && parts[3].bytes().all(|c| c.is_ascii_digit())
        && parts[4]
            .strip_prefix("key/")
            .is_some_and(|k| k.len() == 36 && alnum_dash(k))
}

/// Java's `\s`: space, tab, newline, vertical tab, form feed, carriage return.
fn is_java_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\x0B' | '\x0C' | '\r')
}

/// Characters allowed in tag keys and values: `^[a-zA-Z0-9\s._:/=+@-]*$`.
pub fn is_tag_text(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_ascii_alphanumeric() || is_java_space(c) || "._:/=+@-".contains(c))
}

/// `^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]/.{1,1024}$`, 1–1024 chars.
pub fn is_s3_uri(s: &str) -> bool {
    if s.chars().count() > 1024 {
        return false;
    }
    let Some(rest) = s.strip_prefix("s3://") else {
        return false;
    };
    let Some((bucket, key)) = rest.split_once('/') else {
        return false;
    };
    let b = bucket.as_bytes();
    let edge = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let bucket_ok = (3..=63).contains(&b.len())
        && edge(b[0])
        && edge(b[b.len() - 1])
        && b.iter().all(|&c| edge(c) || c == b'.' || c == b'-');
    let key_len = key.chars().count();
    // `.` in the pattern matches anything but line terminators.
    bucket_ok && (1..=1024).contains(&key_len) && !key.contains(['\n', '\r'])
}

/// Length in characters (the service model counts characters, not bytes).
pub fn char_len(s: &str) -> usize {
    s.chars().count()
}

pub fn check_len(field: &str, s: &str, min: usize, max: usize) -> Result<()> {
    let n = char_len(s);
    if n < min || n > max {
        let bound = if max == usize::MAX {
            format!("at least {min}")
        } else {
            format!("between {min} and {max}")
        };
        return Err(Error::validation(format!(
            "Invalid length for parameter {field}: {n} characters, must be {bound}"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids() {
        assert!(is_uuid("0a1b2c3d-0000-4000-8000-00000000abcd"));
        assert!(!is_uuid("0A1B2C3D-0000-4000-8000-00000000ABCD"));
        assert!(!is_uuid("0a1b2c3d00000-4000-8000-00000000abcd"));
        assert!(!is_uuid("0a1b2c3d-0000-4000-8000-00000000abc"));
        assert!(!is_uuid("0a1b2c3d-0000-4000-8000-00000000abcg"));
    }

    #[test]
    fn session_arns() {
        let id = "0a1b2c3d-0000-4000-8000-00000000abcd";
        let arn = format!("arn:aws:bedrock:us-east-1:123456789012:session/{id}");
        let p = parse_session_arn(&arn, false).unwrap();
        assert_eq!(p.session_id, id);
        assert_eq!(p.region, "us-east-1");
        assert!(
            parse_session_arn(
                &format!("arn:aws-cn:bedrock:cn-north-1:123456789012:session/{id}"),
                false
            )
            .is_some()
        );
        assert!(
            parse_session_arn(
                &format!("arn:aws:bedrock:US-EAST-1:123456789012:session/{id}"),
                false
            )
            .is_none()
        );
        assert!(
            parse_session_arn(
                &format!("arn:aws:bedrock:US-EAST-1:123456789012:session/{id}"),
                true
            )
            .is_some()
        );
        assert!(
            parse_session_arn(
                &format!("arn:aws:bedrock:us-east-1:12345678901:session/{id}"),
                false
            )
            .is_none()
        );
        assert!(
            parse_session_arn(
                &format!("arn:aws:s3:us-east-1:123456789012:session/{id}"),
                false
            )
            .is_none()
        );
        assert!(
            parse_session_arn(
                &format!("arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Asession%2F{id}"),
                false
            )
            .is_none()
        );
        assert!(
            parse_session_arn(
                &format!("arn:aws:bedrock:us-east-1:123456789012:agent/{id}"),
                false
            )
            .is_none()
        );
    }

    #[test]
    fn kms_arns() {
        assert!(is_kms_key_arn(
            "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
        ));
        assert!(is_kms_key_arn(
            "arn:aws-us-gov:kms:us-gov-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
        ));
        assert!(!is_kms_key_arn(
            "arn:aws:kms:us-east-1:123456789012:alias/my-key"
        ));
        assert!(!is_kms_key_arn(
            "arn:aws-iso:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
        ));
        assert!(!is_kms_key_arn(
            "arn:aws:kms:us-east-1:123456789012:key/short"
        ));
    }

    #[test]
    fn tags_and_s3() {
        assert!(is_tag_text("env: prod/eu=1+a@b.c_d-e"));
        assert!(is_tag_text(""));
        assert!(!is_tag_text("semi;colon"));
        assert!(!is_tag_text("é"));
        assert!(is_s3_uri("s3://my-bucket/path/to/image.png"));
        assert!(!is_s3_uri("s3://My-Bucket/key"));
        assert!(!is_s3_uri("s3://ab/key"));
        assert!(!is_s3_uri("s3://bucket/"));
        assert!(!is_s3_uri("https://bucket/key"));
        assert!(!is_s3_uri("s3://bucket-/key"));
    }

    #[test]
    fn lengths() {
        assert!(check_len("f", "", 1, 10).is_err());
        assert!(check_len("f", "ééé", 1, 3).is_ok());
        let e = check_len("description", &"x".repeat(201), 1, 200).unwrap_err();
        assert!(e.message.contains("description"));
    }
}
