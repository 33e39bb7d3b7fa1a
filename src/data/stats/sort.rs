//! Sorting floats through order-preserving `u64` keys: one distribution pass into buckets
//! small enough for the core's cache (bucket bounds from a histogram of the keys' range, so
//! buckets stay small however the values are distributed), then an LSD radix sort of each
//! bucket on only the bits its keys differ in. Two passes over memory instead of the six of
//! a plain 11-bit LSD radix sort on 64-bit keys.

/// Fine histogram bins over the keys' range; adjacent bins are merged into buckets.
const FINE_BITS: u32 = 16;
/// Keys per bucket aimed at: 16 Ki keys and their scratch fit in L2 with room to spare.
const BUCKET_TARGET: usize = 16 * 1024;
/// Buckets at most (the distribution pass writes to this many places at once).
const MAX_BUCKETS: usize = 4096;
/// Below this, a comparison sort is faster than building histograms.
const SMALL: usize = 4096;

/// The key of `x` whose unsigned order is `f64::total_cmp`'s order.
#[inline]
pub(crate) fn order_key(x: f64) -> u64 {
    let b = x.to_bits();
    if b >> 63 == 1 {
        !b
    } else {
        b | (1 << 63)
    }
}

/// The inverse of [`order_key`].
#[inline]
pub(crate) fn from_order_key(k: u64) -> f64 {
    if k >> 63 == 1 {
        f64::from_bits(k & !(1 << 63))
    } else {
        f64::from_bits(!k)
    }
}

/// The keys of the values of `v` that are not NaN, with −0.0 keyed as +0.0 (they are equal
/// values, so a test must see them tie), sorted ascending.
pub(crate) fn sorted_value_keys(v: &[f64]) -> Vec<u64> {
    // x + 0.0 turns −0.0 into +0.0 and leaves every other value as it is.
    let mut keys: Vec<u64> = v
        .iter()
        .filter(|x| !x.is_nan())
        .map(|&x| order_key(x + 0.0))
        .collect();
    sort_keys(&mut keys);
    keys
}

/// Sorts `keys` ascending.
pub(crate) fn sort_keys(keys: &mut Vec<u64>) {
    let n = keys.len();
    if n < SMALL {
        keys.sort_unstable();
        return;
    }
    let (lo, hi) = keys
        .iter()
        .fold((u64::MAX, 0), |(lo, hi), &k| (lo.min(k), hi.max(k)));
    if lo == hi {
        return;
    }
    let shift = (64 - (hi - lo).leading_zeros()).saturating_sub(FINE_BITS);
    let mut fine = vec![0u32; 1 << FINE_BITS];
    for &k in keys.iter() {
        fine[((k - lo) >> shift) as usize] += 1;
    }
    // Adjacent fine bins merged into buckets of about `target` keys; a bin is never split, so
    // every key of a bucket is below every key of the next one.
    let target = BUCKET_TARGET.max(n.div_ceil(MAX_BUCKETS));
    let mut bucket_of = vec![0u16; 1 << FINE_BITS];
    let mut starts: Vec<usize> = Vec::with_capacity(MAX_BUCKETS + 2);
    starts.push(0);
    let (mut filled, mut current) = (0usize, 0usize);
    for (bin, &count) in fine.iter().enumerate() {
        if current > 0 && current + count as usize > target {
            filled += current;
            starts.push(filled);
            current = 0;
        }
        current += count as usize;
        // A bucket and the next one together hold more than `target` keys, so there are at
        // most 2·n/target + 1 <= 2·MAX_BUCKETS + 1 buckets: the id fits in u16.
        bucket_of[bin] = (starts.len() - 1) as u16;
    }
    starts.push(n);
    let buckets = starts.len() - 1;
    let mut scratch = vec![0u64; n];
    let mut next: Vec<usize> = starts[..buckets].to_vec();
    for &k in keys.iter() {
        let b = usize::from(bucket_of[((k - lo) >> shift) as usize]);
        scratch[next[b]] = k;
        next[b] += 1;
    }
    for b in 0..buckets {
        let (s, e) = (starts[b], starts[b + 1]);
        radix_sort_bucket(&mut scratch[s..e], &mut keys[s..e]);
    }
    std::mem::swap(keys, &mut scratch);
}

/// LSD radix sort of `v` (11-bit digits) on the bits in which its keys differ, using `tmp`
/// (same length) as the other buffer.
fn radix_sort_bucket(v: &mut [u64], tmp: &mut [u64]) {
    const BITS: u32 = 11;
    const MASK: u64 = (1 << BITS) - 1;
    if v.len() <= 64 {
        v.sort_unstable();
        return;
    }
    let (lo, hi) = v
        .iter()
        .fold((u64::MAX, 0), |(lo, hi), &k| (lo.min(k), hi.max(k)));
    if lo == hi {
        return;
    }
    let passes = (64 - (hi - lo).leading_zeros()).div_ceil(BITS) as usize;
    let mut counts = vec![[0u32; 1 << BITS]; passes];
    for &k in v.iter() {
        let r = k - lo;
        for (p, c) in counts.iter_mut().enumerate() {
            c[((r >> (p as u32 * BITS)) & MASK) as usize] += 1;
        }
    }
    let n = v.len() as u32;
    let mut in_v = true;
    for (p, c) in counts.iter_mut().enumerate() {
        if c.contains(&n) {
            continue; // every key has the same digit here
        }
        let mut offset = 0;
        for x in c.iter_mut() {
            let count = *x;
            *x = offset;
            offset += count;
        }
        let (src, dst): (&[u64], &mut [u64]) = if in_v {
            (&*v, &mut *tmp)
        } else {
            (&*tmp, &mut *v)
        };
        for &k in src {
            let d = (((k - lo) >> (p as u32 * BITS)) & MASK) as usize;
            dst[c[d] as usize] = k;
            c[d] += 1;
        }
        in_v = !in_v;
    }
    if !in_v {
        v.copy_from_slice(tmp);
    }
}

/// Sorts floats in `f64::total_cmp` order (−0.0 before +0.0; NaN with the sign bit first,
/// other NaN last).
pub fn sort_f64(v: &mut [f64]) {
    if v.len() < SMALL {
        v.sort_unstable_by(f64::total_cmp);
        return;
    }
    let mut keys: Vec<u64> = v.iter().map(|&x| order_key(x)).collect();
    sort_keys(&mut keys);
    for (x, k) in v.iter_mut().zip(keys) {
        *x = from_order_key(k);
    }
}
