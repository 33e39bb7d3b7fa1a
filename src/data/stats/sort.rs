//! Sorting floats through order-preserving `u64` keys. Large inputs: one distribution pass
//! into buckets small enough for the core's cache (bucket bounds from a histogram of the
//! keys' range, so buckets stay small however the values are distributed), each bucket then
//! sorted where it lies. A bucket (and a small input) is sorted most significant digit first
//! on only the bits its keys differ in, with digits sized so that a digit's bin holds a few
//! keys, which an insertion sort then orders; a bin that is still large is split again.
//! The input is read three times (range, histogram, distribution) and the keys written once
//! into the result: the only buffer as large as the input.

/// Fine histogram bins over the keys' range; adjacent bins are merged into buckets.
const FINE_BITS: u32 = 16;
/// Keys per bucket aimed at: 16 Ki keys and their scratch fit in L2 with room to spare.
const BUCKET_TARGET: usize = 16 * 1024;
/// Buckets at most (the distribution pass writes to this many places at once).
const MAX_BUCKETS: usize = 4096;
/// From this many keys up, the histogram pass pays for itself.
const LARGE: usize = 1 << 18;
/// Digits at most this wide inside a bucket (a bin count each, on the stack).
const DIGIT_BITS: u32 = 13;
/// Runs of at most this many keys are insertion-sorted.
const RUN: usize = 32;

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

/// The key of a value a test sees: none for NaN, and −0.0 keyed as +0.0 (they are equal
/// values, so a test must see them tie). x + 0.0 turns −0.0 into +0.0 and leaves every other
/// value as it is.
#[inline]
pub(super) fn value_key(x: f64) -> Option<u64> {
    (!x.is_nan()).then(|| order_key(x + 0.0))
}

/// The value keys ([`value_key`]) of `v`, sorted ascending.
pub(crate) fn sorted_value_keys(v: &[f64]) -> Vec<u64> {
    sorted_keys(v, value_key)
}

/// Sorts floats in `f64::total_cmp` order (−0.0 before +0.0; NaN with the sign bit first,
/// other NaN last).
pub fn sort_f64(v: &mut [f64]) {
    if v.len() <= RUN {
        v.sort_unstable_by(f64::total_cmp);
        return;
    }
    let keys = sorted_keys(v, |x| Some(order_key(x)));
    for (x, k) in v.iter_mut().zip(keys) {
        *x = from_order_key(k);
    }
}

/// The keys `key` gives the items of `src` (those it gives one), sorted ascending.
#[inline]
fn sorted_keys<T: Copy>(src: &[T], key: impl Fn(T) -> Option<u64> + Copy) -> Vec<u64> {
    let kept = || src.iter().filter_map(move |&x| key(x));
    if src.len() < LARGE {
        let mut keys: Vec<u64> = kept().collect();
        let mut tmp = vec![0u64; keys.len()];
        sort_run(&mut keys, &mut tmp);
        return keys;
    }
    let (lo, hi, n) = key_range(kept());
    if n == 0 || lo == hi {
        return vec![lo; n];
    }
    let buckets = Buckets::new(lo, hi, &[&Buckets::histogram(lo, hi, kept())]);
    let mut out = buckets.distribute(0, kept());
    let starts = &buckets.starts[0];
    let largest = starts.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
    let mut tmp = vec![0u64; largest];
    for w in starts.windows(2) {
        sort_run(&mut out[w[0]..w[1]], &mut tmp[..w[1] - w[0]]);
    }
    out
}

/// The smallest and largest of `keys`, and how many there are.
pub(super) fn key_range(keys: impl Iterator<Item = u64>) -> (u64, u64, usize) {
    keys.fold((u64::MAX, 0, 0), |(lo, hi, n), k| {
        (lo.min(k), hi.max(k), n + 1)
    })
}

/// Cache-sized buckets of a key range that one or more samples share: adjacent fine bins of
/// the range merged until a bucket holds about `BUCKET_TARGET` keys of all of them together.
/// A bin is never split, so every key of a bucket is below every key of the next one.
pub(super) struct Buckets {
    lo: u64,
    shift: u32,
    bucket_of: Vec<u16>,
    /// Per sample: where each bucket starts among its distributed keys, and their count last.
    pub(super) starts: Vec<Vec<usize>>,
}

impl Buckets {
    fn shift(lo: u64, hi: u64) -> u32 {
        (64 - (hi - lo).leading_zeros()).saturating_sub(FINE_BITS)
    }

    /// How many of `keys` (all in `lo..=hi`, `lo < hi`) fall in each fine bin.
    pub(super) fn histogram(lo: u64, hi: u64, keys: impl Iterator<Item = u64>) -> Vec<u32> {
        let shift = Buckets::shift(lo, hi);
        let mut fine = vec![0u32; 1 << FINE_BITS];
        for k in keys {
            fine[((k - lo) >> shift) as usize] += 1;
        }
        fine
    }

    /// The buckets of the samples whose fine histograms over `lo..=hi` are `fines`.
    pub(super) fn new(lo: u64, hi: u64, fines: &[&[u32]]) -> Buckets {
        let total: usize = fines
            .iter()
            .flat_map(|f| f.iter())
            .map(|&c| c as usize)
            .sum();
        let target = BUCKET_TARGET.max(total.div_ceil(MAX_BUCKETS));
        let mut bucket_of = vec![0u16; 1 << FINE_BITS];
        let mut starts = vec![vec![0usize]; fines.len()];
        // Keys of each sample in the bins so far, and of all of them in the open bucket.
        let mut seen = vec![0usize; fines.len()];
        let mut current = 0usize;
        for (bin, id) in bucket_of.iter_mut().enumerate() {
            let count: usize = fines.iter().map(|f| f[bin] as usize).sum();
            if current > 0 && current + count > target {
                for (s, &n) in starts.iter_mut().zip(&seen) {
                    s.push(n);
                }
                current = 0;
            }
            current += count;
            for (n, f) in seen.iter_mut().zip(fines) {
                *n += f[bin] as usize;
            }
            // A bucket and the next one together hold more than `target` keys, so there are
            // at most 2·total/target + 1 <= 2·MAX_BUCKETS + 1 buckets: the id fits in u16.
            *id = (starts[0].len() - 1) as u16;
        }
        for (s, n) in starts.iter_mut().zip(seen) {
            s.push(n);
        }
        Buckets {
            lo,
            shift: Buckets::shift(lo, hi),
            bucket_of,
            starts,
        }
    }

    /// The keys of sample `sample`, each in its bucket's range of the result (unsorted).
    pub(super) fn distribute(&self, sample: usize, keys: impl Iterator<Item = u64>) -> Vec<u64> {
        let starts = &self.starts[sample];
        let mut out = vec![0u64; starts[starts.len() - 1]];
        let mut next = starts[..starts.len() - 1].to_vec();
        for k in keys {
            let b = usize::from(self.bucket_of[((k - self.lo) >> self.shift) as usize]);
            out[next[b]] = k;
            next[b] += 1;
        }
        out
    }
}

/// Sorts `v` in place, most significant digit first, using `tmp` (same length) as scratch.
fn sort_run(v: &mut [u64], tmp: &mut [u64]) {
    if v.len() <= RUN {
        insertion_sort(v);
        return;
    }
    let (lo, hi) = v
        .iter()
        .fold((u64::MAX, 0), |(lo, hi), &k| (lo.min(k), hi.max(k)));
    if lo == hi {
        return;
    }
    // A digit of about len/4 bins: a few keys a bin, and the bins' counts stay in L1.
    let digit = (v.len().ilog2().saturating_sub(2)).clamp(3, DIGIT_BITS);
    let shift = (64 - (hi - lo).leading_zeros()).saturating_sub(digit);
    let mut ends = [0u32; 1 << DIGIT_BITS];
    let ends = &mut ends[..1 << digit];
    for &k in v.iter() {
        ends[((k - lo) >> shift) as usize] += 1;
    }
    let mut offset = 0;
    for e in ends.iter_mut() {
        offset += *e;
        *e = offset - *e; // the bin's start for now; its end once the keys are placed
    }
    for &k in v.iter() {
        let d = ((k - lo) >> shift) as usize;
        tmp[ends[d] as usize] = k;
        ends[d] += 1;
    }
    // With no bits below the digit, each bin holds equal keys.
    if shift > 0 {
        let mut start = 0;
        for &end in ends.iter() {
            let (s, e) = (start, end as usize);
            sort_run(&mut tmp[s..e], &mut v[s..e]);
            start = e;
        }
    }
    v.copy_from_slice(tmp);
}

fn insertion_sort(v: &mut [u64]) {
    for i in 1..v.len() {
        let k = v[i];
        let mut j = i;
        while j > 0 && v[j - 1] > k {
            v[j] = v[j - 1];
            j -= 1;
        }
        v[j] = k;
    }
}
