//! The KS statistic of two large samples without sorting them. Both samples go into the
//! same buckets of key ranges (the distribution pass of [`super::sort`], with bounds from
//! both samples' histograms), so the ranks at every bucket bound are known from counts alone,
//! and so are the differences n1·n2·(F1 − F2) there: the largest and smallest of them bound
//! the extremes from inside. Within a bucket, a digit of the keys splits it into bins of a
//! few keys; a bin's counts bound how far the difference can move inside it, and only a bin
//! that could reach an extreme (or tie one) has its keys sorted and walked one by one. In a
//! sample of millions, a few hundred bins are; the rest is counting.

use super::sort::{key_range, value_key, Buckets};
use super::Walk;

/// Digits at most this wide inside a bucket (two bin counts each, on the stack).
const DIGIT_BITS: u32 = 12;
/// Buckets of at most this many keys (both samples) are sorted and walked whole.
const WALK_WHOLE: usize = 64;

/// The keys of a sample's values that are not NaN (see [`value_key`]).
fn keys(v: &[f64]) -> impl Iterator<Item = u64> + '_ {
    v.iter().filter_map(|&x| value_key(x))
}

/// The non-NaN counts of `a` and `b` and, when both are non-empty, the walk's extremes over
/// all of the pooled values (as [`Walk::run`] on both samples sorted would find them).
pub(super) fn extremes(a: &[f64], b: &[f64]) -> (usize, usize, Option<Walk>) {
    let ((lo_a, hi_a, n1), (lo_b, hi_b, n2)) = both(|| key_range(keys(a)), || key_range(keys(b)));
    if n1 == 0 || n2 == 0 {
        return (n1, n2, None);
    }
    let (lo, hi) = (lo_a.min(lo_b), hi_a.max(hi_b));
    if lo == hi {
        // One value in both samples: the only point is the end, where F1 = F2 = 1.
        return (n1, n2, Some(Walk::new(n1, n2, 0, 0)));
    }
    let histogram = |v| Buckets::histogram(lo, hi, keys(v));
    let (fine_a, fine_b) = both(|| histogram(a), || histogram(b));
    let buckets = Buckets::new(lo, hi, &[&fine_a, &fine_b]);
    let (keys_a, keys_b) = both(
        || buckets.distribute(0, keys(a)),
        || buckets.distribute(1, keys(b)),
    );
    let (starts_a, starts_b) = (&buckets.starts[0], &buckets.starts[1]);
    // The differences at the bucket bounds: the extremes are at least these.
    let (n1i, n2i) = (n1 as i128, n2 as i128);
    let bound_d = |t: usize| starts_a[t] as i128 * n2i - starts_b[t] as i128 * n1i;
    let count = starts_a.len() - 1;
    let floor = (0..=count).map(bound_d).max().unwrap_or(0);
    let ceiling = (0..=count).map(bound_d).min().unwrap_or(0);
    let walk_buckets = |from: usize, to: usize| {
        let mut w = Walk::new(n1, n2, starts_a[from], starts_b[from]);
        let mut tmp = Vec::new();
        for t in from..to {
            let (sa, ea, sb, eb) = (starts_a[t], starts_a[t + 1], starts_b[t], starts_b[t + 1]);
            let part = Part {
                a: &keys_a[sa..ea],
                b: &keys_b[sb..eb],
                i: sa,
                j: sb,
            };
            part.walk(&mut w, (floor, ceiling), &mut tmp);
        }
        w
    };
    let half = count / 2;
    let (first, second) = both(|| walk_buckets(0, half), || walk_buckets(half, count));
    (n1, n2, Some(first.merge(second)))
}

/// `f()` and `g()`, the first on another thread.
fn both<A: Send, B: Send>(f: impl FnOnce() -> A + Send, g: impl FnOnce() -> B) -> (A, B) {
    std::thread::scope(|s| {
        let f = s.spawn(f);
        let b = g();
        // A panic on the other thread is a bug in this file: the same one here.
        (f.join().unwrap_or_else(|p| std::panic::resume_unwind(p)), b)
    })
}

/// The keys of both samples in one key range, unsorted, and the ranks where it starts.
struct Part<'a> {
    a: &'a [u64],
    b: &'a [u64],
    i: usize,
    j: usize,
}

impl Part<'_> {
    /// Advances `w` over this part, from its start to its end. `(floor, ceiling)`: the
    /// largest and smallest differences at bucket bounds, which the extremes reach at least.
    fn walk(&self, w: &mut Walk, (floor, ceiling): (i128, i128), tmp: &mut Vec<u64>) {
        let (ca, cb) = (self.a.len(), self.b.len());
        w.i = self.i;
        w.j = self.j;
        w.d = self.i as i128 * w.up - self.j as i128 * w.down;
        if !reachable(w, ca, cb, floor.max(w.max.0), ceiling.min(w.min.0)) {
            return skip(w, ca, cb);
        }
        if ca + cb <= WALK_WHOLE {
            let (mut a, mut b) = (self.a.to_vec(), self.b.to_vec());
            a.sort_unstable();
            b.sort_unstable();
            return w.run(&a, &b);
        }
        let (lo, hi) = self
            .a
            .iter()
            .chain(self.b)
            .fold((u64::MAX, 0), |(lo, hi), &k| (lo.min(k), hi.max(k)));
        // A digit of about (ca + cb) / 4 bins.
        let digit = ((ca + cb).ilog2().saturating_sub(2)).clamp(3, DIGIT_BITS);
        let shift = (64 - (hi - lo).leading_zeros()).saturating_sub(digit);
        let bin = |k: u64| ((k - lo) >> shift) as usize;
        let bins = 1usize << digit;
        let mut counts_a = [0u32; 1 << DIGIT_BITS];
        let mut counts_b = [0u32; 1 << DIGIT_BITS];
        for &k in self.a {
            counts_a[bin(k)] += 1;
        }
        for &k in self.b {
            counts_b[bin(k)] += 1;
        }
        // The keys by bin, made only when a bin has to be walked key by key.
        let mut sorted_bins: Option<(Vec<usize>, Vec<usize>)> = None;
        for d in 0..bins {
            let (na, nb) = (counts_a[d] as usize, counts_b[d] as usize);
            if na + nb == 0 {
                continue;
            }
            if !reachable(w, na, nb, floor.max(w.max.0), ceiling.min(w.min.0)) {
                skip(w, na, nb);
                continue;
            }
            let (starts_a, starts_b) = sorted_bins.get_or_insert_with(|| {
                tmp.clear();
                let sa = by_bin(self.a, &counts_a[..bins], bin, tmp);
                let sb = by_bin(self.b, &counts_b[..bins], bin, tmp);
                (sa, sb)
            });
            let (grouped_a, grouped_b) = tmp.split_at_mut(ca);
            let a_bin = &mut grouped_a[starts_a[d]..starts_a[d] + na];
            let b_bin = &mut grouped_b[starts_b[d]..starts_b[d] + nb];
            a_bin.sort_unstable();
            b_bin.sort_unstable();
            w.run(a_bin, b_bin);
        }
    }
}

/// Whether a stretch of `na` keys of the first sample and `nb` of the second, starting at the
/// walk's point, can reach a difference of `floor` or more, or of `ceiling` or less, anywhere
/// in it (ties included: an extreme's equals decide the float reported).
#[inline]
fn reachable(w: &Walk, na: usize, nb: usize, floor: i128, ceiling: i128) -> bool {
    let (up, down) = (na as i128 * w.up, nb as i128 * w.down);
    let end = w.d + up - down;
    // From the start, the difference rises at most `up`; back from the end, at most `down`.
    let highest = (w.d + up).min(end + down);
    let lowest = (w.d - down).max(end - up);
    highest >= floor || lowest <= ceiling
}

/// Moves the walk to the end of a stretch of `na` and `nb` keys, recording the end.
#[inline]
fn skip(w: &mut Walk, na: usize, nb: usize) {
    w.i += na;
    w.j += nb;
    w.d += na as i128 * w.up - nb as i128 * w.down;
    w.point();
}

/// Appends `keys` grouped by bin to `out`, returning each bin's start within the group.
fn by_bin(
    keys: &[u64],
    counts: &[u32],
    bin: impl Fn(u64) -> usize,
    out: &mut Vec<u64>,
) -> Vec<usize> {
    let mut starts = Vec::with_capacity(counts.len());
    let mut at = 0;
    for &c in counts {
        starts.push(at);
        at += c as usize;
    }
    let base = out.len();
    out.resize(base + keys.len(), 0);
    let mut next = starts.clone();
    for &k in keys {
        let d = bin(k);
        out[base + next[d]] = k;
        next[d] += 1;
    }
    starts
}
