//! Decimal text to f64: the fast paths of the scan's number parsing, exactly as
//! `str::parse::<f64>` rounds.

/// `text.parse::<f64>()`, faster on plain decimals (`-12.345`): with at most 15 digits the
/// digits make an exact integer and 10^k is exact, so one division gives the correctly
/// rounded value, as the full parser does. Anything else goes to the full parser.
///
/// Numbers of at most 8 digits (the point and sign aside, most data) are read as one
/// little-endian word, without a loop or a branch on their length: the point squeezed out,
/// the digits checked and converted eight at a time. Longer ones take the byte loop of
/// [`parse_float_bytewise`].
#[inline]
pub(crate) fn parse_float(text: &str) -> Option<f64> {
    let b = text.as_bytes();
    // The sign without a branch (it is a coin toss in most data): its bit is or-ed in last.
    let negative = b.first() == Some(&b'-');
    let digits = &b[usize::from(negative)..];
    let sign = u64::from(negative) << 63;
    let len = digits.len();
    if len == 0 || len > 9 {
        return parse_float_bytewise(text);
    }
    let word = load8(digits);
    let int = leading_digits(word);
    if int == len {
        // An integer of at most 8 digits.
        let x = eight_digits(word, int) as i64 as f64;
        return Some(f64::from_bits(x.to_bits() | sign));
    }
    if int == 0 || int == 8 || digits[int] != b'.' {
        return parse_float_bytewise(text);
    }
    // The point squeezed out: the bytes after it move down one, a ninth byte joins at the top.
    let before = (1u64 << (8 * int)) - 1;
    let ninth = if len == 9 {
        u64::from(digits[8]) << 56
    } else {
        0
    };
    let squeezed = (word & before) | ((word >> 8) & !before) | ninth;
    let n = len - 1;
    if leading_digits(squeezed) != n {
        return parse_float_bytewise(text);
    }
    const POW10: [f64; 9] = [1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8];
    // At most 8 digits: an exact integer, and 10^scale is exact.
    let x = eight_digits(squeezed, n) as i64 as f64 / POW10[n - int];
    Some(f64::from_bits(x.to_bits() | sign))
}

/// The first 8 bytes of `b` (all of them when shorter) as a little-endian word, zero-filled,
/// without a loop: overlapping loads of the first and last bytes.
#[inline]
fn load8(b: &[u8]) -> u64 {
    let n = b.len();
    let half = |at: usize| {
        u64::from(u32::from_le_bytes(
            b[at..at + 4].try_into().unwrap_or_default(),
        ))
    };
    if n >= 8 {
        u64::from_le_bytes(b[..8].try_into().unwrap_or_default())
    } else if n >= 4 {
        half(0) | half(n - 4) << (8 * (n - 4))
    } else {
        // n is 1 to 3: the first, middle and last bytes cover them.
        let at = |i: usize| u64::from(b[i]) << (8 * i);
        at(0) | at(n / 2) | at(n - 1)
    }
}

/// How many of the word's bytes, from the first, are ASCII digits. Subtracting '0' from each
/// byte and adding 0x46 ('9' + 0x46 = 0x7f) sets a byte's top bit exactly when it is no
/// digit; borrows and carries only reach the bytes after the first such byte, which do not
/// count.
#[inline]
fn leading_digits(word: u64) -> usize {
    const ZEROS: u64 = 0x3030_3030_3030_3030;
    let not_digit = (word.wrapping_sub(ZEROS) | word.wrapping_add(0x4646_4646_4646_4646))
        & 0x8080_8080_8080_8080;
    (not_digit.trailing_zeros() / 8) as usize
}

/// The value of the first `n` (1 to 8) bytes of `word`, all digits: shifted to the top and
/// filled with '0' in front, then the eight digits summed in pairs, fours and eights with
/// three multiplications.
#[inline]
fn eight_digits(word: u64, n: usize) -> u64 {
    const ZEROS: u64 = 0x3030_3030_3030_3030;
    let pad = 8 * (8 - n as u32);
    let word = if pad == 0 {
        word
    } else {
        word << pad | ZEROS >> (64 - pad)
    };
    let d = word.wrapping_sub(ZEROS);
    let pairs = d.wrapping_mul(10).wrapping_add(d >> 8);
    let fours = (pairs & 0x0000_00FF_0000_00FF).wrapping_mul(100 + (1_000_000 << 32));
    let fours = fours
        .wrapping_add(((pairs >> 16) & 0x0000_00FF_0000_00FF).wrapping_mul(1 + (10_000 << 32)));
    fours >> 32
}

/// The byte-at-a-time form of [`parse_float`] (and what it falls back to): plain decimals of
/// at most 15 digits by one division, anything else by the full parser.
#[inline(never)]
fn parse_float_bytewise(text: &str) -> Option<f64> {
    const POW10: [f64; 16] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
    ];
    let b = text.as_bytes();
    let (negative, digits) = match b.first() {
        Some(b'-') => (true, &b[1..]),
        _ => (false, b),
    };
    let int = digits.iter().take_while(|c| c.is_ascii_digit()).count();
    let (point, frac) = match digits.get(int) {
        Some(b'.') => (true, &digits[int + 1..]),
        _ => (false, &digits[int..]),
    };
    let scale = frac.iter().take_while(|c| c.is_ascii_digit()).count();
    // Digits before a point (none: ".5" and "" go to the full parser), some after it if
    // there is one, nothing else, 15 digits at most.
    let plain = int > 0 && (!point || scale > 0) && scale == frac.len() && int + scale <= 15;
    if !plain {
        return text.parse().ok();
    }
    let mantissa = digits[..int]
        .iter()
        .chain(frac)
        .fold(0u64, |m, &c| m * 10 + u64::from(c - b'0'));
    let x = mantissa as f64 / POW10[scale];
    Some(if negative { -x } else { x })
}
