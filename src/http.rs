//! What every HTTP client of the toolkit shares. For now: reading `Retry-After`, which RFC 9110
//! (section 10.2.3) allows as a number of seconds or as an HTTP date. Both the registry client
//! and the GitHub client wait by it.

use std::time::{Duration, SystemTime};

use chrono::NaiveDateTime;

/// How long a `Retry-After` value asks us to wait, counted from `now`: `120`, or an HTTP date
/// (`Sun, 06 Nov 1994 08:49:37 GMT`; the obsolete RFC 850 and asctime forms too). A date in the
/// past means now (zero). None when the value is neither.
pub(crate) fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // More digits than a u64 holds is still "a very long time".
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = http_date(value)?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// An HTTP date (RFC 9110 section 5.6.7): IMF-fixdate, or one of the two obsolete forms a
/// recipient must still accept.
pub(crate) fn http_date(text: &str) -> Option<SystemTime> {
    let text = text.trim();
    let utc = if let Some(rest) = text.strip_suffix(" GMT") {
        // IMF-fixdate `Sun, 06 Nov 1994 08:49:37`, then RFC 850 `Sunday, 06-Nov-94 08:49:37`.
        NaiveDateTime::parse_from_str(rest, "%a, %d %b %Y %H:%M:%S")
            .or_else(|_| NaiveDateTime::parse_from_str(rest, "%A, %d-%b-%y %H:%M:%S"))
            .ok()?
            .and_utc()
    } else {
        // asctime `Sun Nov  6 08:49:37 1994` (day padded with a space); the padding collapses.
        let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
        NaiveDateTime::parse_from_str(&collapsed, "%a %b %e %H:%M:%S %Y")
            .ok()?
            .and_utc()
    };
    Some(SystemTime::from(utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 1994-11-06T08:49:37Z, RFC 9110's example date.
    fn example() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777)
    }

    #[test]
    fn seconds() {
        let now = SystemTime::now();
        assert_eq!(retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            retry_after("99999999999999999999999", now),
            Some(Duration::from_secs(u64::MAX))
        );
    }

    #[test]
    fn the_three_date_forms_name_the_same_instant() {
        for form in [
            "Sun, 06 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-94 08:49:37 GMT",
            "Sun Nov  6 08:49:37 1994",
        ] {
            assert_eq!(http_date(form), Some(example()), "{form}");
        }
    }

    #[test]
    fn a_date_counts_from_now_and_the_past_is_zero() {
        let now = example() - Duration::from_secs(90);
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now),
            Some(Duration::from_secs(90))
        );
        let later = example() + Duration::from_secs(5);
        assert_eq!(
            retry_after("Sun, 06 Nov 1994 08:49:37 GMT", later),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn anything_else_is_not_a_wait() {
        let now = SystemTime::now();
        for bad in [
            "",
            "-5",
            "1.5",
            "soon",
            "Sun, 06 Nov 1994 08:49:37",
            "Sun, 32 Nov 1994 08:49:37 GMT",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 25:49:37 GMT",
        ] {
            assert_eq!(retry_after(bad, now), None, "{bad:?}");
        }
    }
}
