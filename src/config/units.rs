//! Durations (`90s`, `30m`, `2h`, `1h30m`) and sizes (`512m`, `4g`, `1.5GiB`) as written in
//! mlops.yaml, with the same meaning Docker gives them (binary multiples).

use std::time::Duration;

/// Ten years: longer than any timeout or window means anything, and far from overflowing.
const MAX_DURATION_SECS: f64 = 3650.0 * 86400.0;
/// 2^63 bytes (8 EiB): sizes must fit the engine's signed 64-bit fields.
const MAX_SIZE_BYTES: f64 = 9_223_372_036_854_775_808.0;

pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || {
        format!("invalid duration {text:?}: use a number with a unit s, m, h or d, such as 90s, 30m or 1h30m")
    };
    let s = text.trim();
    if s.is_empty() {
        return Err(bad());
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        if digits == 0 {
            return Err(bad());
        }
        let value: f64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            _ => return Err(bad()),
        };
        rest = &rest[unit_len..];
        total += value * factor;
    }
    if total.is_nan() || total <= 0.0 {
        return Err(format!(
            "invalid duration {text:?}: must be greater than zero"
        ));
    }
    if total > MAX_DURATION_SECS {
        return Err(format!(
            "invalid duration {text:?}: too long (at most {}d)",
            MAX_DURATION_SECS / 86400.0
        ));
    }
    // In range: from_secs_f64 cannot panic.
    Ok(Duration::from_secs_f64(total))
}

pub(crate) fn parse_size(text: &str) -> Result<u64, String> {
    let bad = || {
        format!("invalid size {text:?}: use a number with an optional unit b, k, m or g, such as 512m or 4g")
    };
    let s = text.trim().to_ascii_lowercase();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    if split == 0 {
        return Err(bad());
    }
    let value: f64 = s[..split].parse().map_err(|_| bad())?;
    let factor: u64 = match &s[split..] {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => return Err(bad()),
    };
    let bytes = value * factor as f64;
    if bytes.is_nan() || bytes < 1.0 {
        return Err(format!("invalid size {text:?}: must be at least 1 byte"));
    }
    // The engine takes sizes as signed 64-bit numbers.
    if bytes >= MAX_SIZE_BYTES {
        return Err(format!("invalid size {text:?}: too large (at most 8 EiB)"));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30m").unwrap(), Duration::from_secs(1800));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1.5h").unwrap(), Duration::from_secs(5400));
        for bad in ["", "30", "m", "30x", "-1m", "0s", "1h 30m"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should fail");
        }
        for huge in [
            "99999999999999999999d".to_string(),
            "3651d".into(),
            format!("1{}s", "0".repeat(400)),
        ] {
            let e = parse_duration(&huge).unwrap_err();
            assert!(e.contains("too long"), "{huge}: {e}");
        }
        assert_eq!(
            parse_duration("3650d").unwrap(),
            Duration::from_secs(3650 * 86400)
        );
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4g").unwrap(), 4 << 30);
        assert_eq!(parse_size("512m").unwrap(), 512 << 20);
        assert_eq!(parse_size("1.5GiB").unwrap(), 3 << 29);
        assert_eq!(parse_size("100").unwrap(), 100);
        for bad in ["", "g", "4x", "-4g", "0"] {
            assert!(parse_size(bad).is_err(), "{bad:?} should fail");
        }
        for huge in ["9999999999999999g", "8388608t", "99999999999999999999"] {
            let e = parse_size(huge).unwrap_err();
            assert!(e.contains("too large"), "{huge}: {e}");
        }
        assert_eq!(parse_size("8388607t").unwrap(), 8388607 << 40);
    }
}
