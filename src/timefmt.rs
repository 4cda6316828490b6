//! Timestamps as the wire and the stores keep them: microseconds since the epoch, within the range every
//! SDK can read back (years 1 to 9999, RFC 3339's range; Python's `datetime` and the AWS SDKs stop there).
//!
//! Parsing and calendar rules are the `time` crate's (the AWS SDK for Rust uses it too): February 30th,
//! hour 24 or a year 0000 are refused, not shifted.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::clock::{MICROS_PER_SEC, Micros};

/// `0001-01-01T00:00:00Z`, the first instant accepted.
pub const MIN_MICROS: Micros = -62_135_596_800 * MICROS_PER_SEC;
/// `9999-12-31T23:59:59.999999Z`, the last instant accepted.
pub const MAX_MICROS: Micros = 253_402_300_800 * MICROS_PER_SEC - 1;

/// Why a timestamp was refused (the caller names the field).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TimeError {
    /// Not an RFC 3339 / ISO-8601 date-time (or not a real calendar date).
    Syntax(String),
    /// A real instant, but outside years 1 to 9999.
    OutOfRange,
}

impl std::fmt::Display for TimeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TimeError::Syntax(why) => write!(f, "not an ISO-8601 date-time ({why})"),
            TimeError::OutOfRange => f.write_str(
                "out of range: timestamps must lie between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z",
            ),
        }
    }
}

/// Whether `us` lies in the accepted range.
pub fn check_range(us: Micros) -> Result<Micros, TimeError> {
    if (MIN_MICROS..=MAX_MICROS).contains(&us) {
        Ok(us)
    } else {
        Err(TimeError::OutOfRange)
    }
}

/// Seconds since the epoch (as JSON numbers and epoch strings carry them) → microseconds, rounded to the
/// nearest microsecond, within range.
pub fn from_epoch_seconds(secs: f64) -> Result<Micros, TimeError> {
    if !secs.is_finite() {
        return Err(TimeError::OutOfRange);
    }
    // `as` saturates, and the range check is done on integers (MAX_MICROS is not exact as an f64).
    check_range((secs * MICROS_PER_SEC as f64).round() as i64)
}

/// Parses an RFC 3339 timestamp (`Z` or an offset, 0–9 fraction digits; digits past the microsecond
/// are truncated) into microseconds.
pub fn parse_iso8601(s: &str) -> Result<Micros, TimeError> {
    let dt = OffsetDateTime::parse(s, &Rfc3339).map_err(|e| TimeError::Syntax(e.to_string()))?;
    let us = dt.unix_timestamp_nanos().div_euclid(1_000);
    check_range(i64::try_from(us).map_err(|_| TimeError::OutOfRange)?)
}

/// `2025-01-02T03:04:05.123456Z`: UTC, always six fraction digits (botocore and the AWS SDK for Rust read
/// them). Values out of range are clamped to it (stores hold only checked values; this keeps a
/// formatter total).
pub fn format_rfc3339(us: Micros) -> String {
    let us = us.clamp(MIN_MICROS, MAX_MICROS);
    let dt = OffsetDateTime::from_unix_timestamp_nanos(us as i128 * 1_000)
        .expect("clamped to the supported range");
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second(),
        dt.microsecond()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_microseconds() {
        let us = parse_iso8601("2025-01-02T03:04:05.123456Z").unwrap();
        assert_eq!(us, 1_735_787_045_123_456);
        assert_eq!(format_rfc3339(us), "2025-01-02T03:04:05.123456Z");
        assert_eq!(
            parse_iso8601("2025-01-02T03:04:05Z").unwrap(),
            1_735_787_045_000_000
        );
        assert_eq!(parse_iso8601("2025-01-02T03:04:05.123456789Z").unwrap(), us);
        assert_eq!(
            parse_iso8601("2025-01-02T05:04:05.123456+02:00").unwrap(),
            us
        );
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(format_rfc3339(-1), "1969-12-31T23:59:59.999999Z");
    }

    #[test]
    fn impossible_dates_are_refused() {
        for bad in [
            "2025-02-30T00:00:00Z",
            "2025-13-02T03:04:05Z",
            "2025-01-02T24:00:00Z",
            "2025-01-02T03:04:05",
            "2025-01-02T03:04:05.Z",
            "yesterday",
            "",
        ] {
            assert!(
                matches!(parse_iso8601(bad), Err(TimeError::Syntax(_))),
                "{bad}"
            );
        }
        assert_eq!(
            parse_iso8601("0000-12-31T00:00:00Z"),
            Err(TimeError::OutOfRange)
        );
        assert_eq!(
            parse_iso8601("0001-01-01T00:00:00Z"),
            Ok(MIN_MICROS),
            "year 1 is the first accepted"
        );
        assert_eq!(parse_iso8601("9999-12-31T23:59:59.999999Z"), Ok(MAX_MICROS));
        assert_eq!(format_rfc3339(MIN_MICROS), "0001-01-01T00:00:00.000000Z");
        assert_eq!(format_rfc3339(MAX_MICROS), "9999-12-31T23:59:59.999999Z");
    }

    #[test]
    fn epoch_seconds_within_range() {
        assert_eq!(from_epoch_seconds(1.000_1), Ok(1_000_100));
        assert_eq!(
            from_epoch_seconds(253_402_300_800.0),
            Err(TimeError::OutOfRange)
        );
        // Milliseconds passed as seconds: year 56,000 and more.
        assert_eq!(
            from_epoch_seconds(1_733_390_000_000.0),
            Err(TimeError::OutOfRange)
        );
        assert_eq!(from_epoch_seconds(f64::NAN), Err(TimeError::OutOfRange));
        assert!(from_epoch_seconds(-62_135_596_800.0).is_ok());
        assert_eq!(
            from_epoch_seconds(-62_135_596_801.0),
            Err(TimeError::OutOfRange)
        );
    }
}
