//! The resampling engine of the paired bootstrap: row draws, and roc_auc from the rows'
//! multiplicities without a sort per resample.
//!
//! Rows are drawn uniformly with replacement by eight xoshiro256++ streams stepped together
//! (one vector of states, so the generator costs a fraction of a draw) and Lemire's
//! multiply-shift, two 32-bit halves per output. Every metric of a resample sees the same
//! draws, whichever metrics are asked for.
//!
//! roc_auc: the rows are labelled by their place in the challenger's score order, once. A
//! resample is its rows' draw counts; eight resamples are counted at a time (one byte each, in
//! a row of eight), then one walk over the challenger's order and one over the champion's
//! (through a fixed permutation) give both models' Mann–Whitney sums for the eight at once,
//! in vector lanes. Within a run of tied scores the negatives come first, so a positive adds
//! its weight times (negatives below its run + negatives below or in its run): ties count
//! half, exactly as the pairwise definition says.

use multiversion::multiversion;

/// xoshiro256++ streams stepped together.
const STREAMS: usize = 8;
/// Draws produced per refill: two per stream output.
pub(super) const BLOCK: usize = 2 * STREAMS * 16;
/// Resamples counted together for roc_auc (lanes of the walks).
pub(super) const GROUP: usize = 8;

/// Eight xoshiro256++ states, seeded through splitmix64, as four vectors of lanes.
#[derive(Clone)]
pub(super) struct Draws {
    s: [[u64; STREAMS]; 4],
    block: [u32; BLOCK],
}

impl Draws {
    pub(super) fn new(seed: u64) -> Draws {
        let mut z = seed;
        let mut next = || {
            z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut x = z;
            x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            x ^ (x >> 31)
        };
        let mut s = [[0u64; STREAMS]; 4];
        for lane in 0..STREAMS {
            for word in &mut s {
                word[lane] = next();
            }
        }
        Draws {
            s,
            block: [0; BLOCK],
        }
    }

    /// One resample: `n` rows drawn uniformly from 0..n, handed to `f` a block at a time (the
    /// last block's unused draws are dropped, so every resample starts on a fresh block).
    #[inline]
    pub(super) fn resample(&mut self, n: usize, mut f: impl FnMut(&[u32])) {
        let mut left = n;
        while left > 0 {
            fill_block(&mut self.s, n as u32, &mut self.block);
            let take = left.min(BLOCK);
            f(&self.block[..take]);
            left -= take;
        }
    }
}

/// The next BLOCK draws below `n` (the bias of multiply-shift is below n/2³²).
#[multiversion(targets(
    "x86_64+avx512f+avx512vl+avx512dq+avx512bw+bmi2",
    "x86_64+avx2+fma+bmi2"
))]
fn fill_block(s: &mut [[u64; STREAMS]; 4], n: u32, out: &mut [u32; BLOCK]) {
    let n = u64::from(n);
    for step in out.chunks_exact_mut(2 * STREAMS) {
        let (hi, lo) = step.split_at_mut(STREAMS);
        for lane in 0..STREAMS {
            let x = s[0][lane]
                .wrapping_add(s[3][lane])
                .rotate_left(23)
                .wrapping_add(s[0][lane]);
            let t = s[1][lane] << 17;
            s[2][lane] ^= s[0][lane];
            s[3][lane] ^= s[1][lane];
            s[1][lane] ^= s[2][lane];
            s[0][lane] ^= s[3][lane];
            s[2][lane] ^= t;
            s[3][lane] = s[3][lane].rotate_left(45);
            hi[lane] = (((x >> 32) * n) >> 32) as u32;
            lo[lane] = (((x & 0xFFFF_FFFF) * n) >> 32) as u32;
        }
    }
}

/// Bit 0 of a row's flag: the row is a positive. Bit 1: it starts a run of tied scores.
pub(super) const POSITIVE: u8 = 1;
pub(super) const RUN_START: u8 = 2;

/// One model's order over the row labels (places in the challenger's order) and its flags.
pub(super) struct Ranking {
    /// `order[k]`: the label of the k-th row in this model's score order; None: the labels'
    /// own order (the challenger).
    pub(super) order: Option<Vec<u32>>,
    pub(super) flags: Vec<u8>,
}

/// Sorts rows by (score, negatives first), -0.0 counted as 0.0; returns the rows in that
/// order and their flags.
pub(super) fn rank_rows(scores: &[f64], positive: &[bool]) -> (Vec<u32>, Vec<u8>) {
    let mut order: Vec<u32> = (0..scores.len() as u32).collect();
    let score = |r: u32| scores[r as usize] + 0.0;
    order.sort_by(|&a, &b| {
        score(a)
            .total_cmp(&score(b))
            .then(positive[a as usize].cmp(&positive[b as usize]))
    });
    let flags = order
        .iter()
        .enumerate()
        .map(|(k, &r)| {
            let start = k == 0 || score(order[k - 1]) != score(r);
            u8::from(positive[r as usize]) * POSITIVE + u8::from(start) * RUN_START
        })
        .collect();
    (order, flags)
}

/// Per lane: negatives' weight, and twice the Mann–Whitney sum. Integers: exact, and their
/// additions are one cycle, so the walk's running sums do not wait on each other.
#[derive(Default, Clone, Copy)]
pub(super) struct Sums {
    negatives: [u32; GROUP],
    twice_wins: [u64; GROUP],
}

impl Sums {
    /// The lane's AUC, `draws` rows in all (NaN without both classes).
    pub(super) fn auc(&self, lane: usize, draws: f64) -> f64 {
        let negatives = f64::from(self.negatives[lane]);
        let positives = draws - negatives;
        if positives == 0.0 || negatives == 0.0 {
            f64::NAN
        } else {
            self.twice_wins[lane] as f64 * 0.5 / (positives * negatives)
        }
    }
}

/// Rows at most for the byte-count walks: twice a running count must fit in u32.
pub(super) const MAX_LANE_ROWS: usize = (u32::MAX / 2) as usize;

#[inline(always)]
fn walk_step(w: &[u8; GROUP], flag: u8, below: &mut [u32; GROUP], sums: &mut Sums) {
    let negative = 0u32.wrapping_sub(u32::from(1 - (flag & POSITIVE)));
    let start = flag & RUN_START != 0;
    for lane in 0..GROUP {
        let w = u32::from(w[lane]);
        let neg = &mut sums.negatives[lane];
        below[lane] = if start { *neg } else { below[lane] };
        let wn = w & negative;
        *neg += wn;
        sums.twice_wins[lane] += u64::from(w - wn) * u64::from(below[lane] + *neg);
    }
}

/// out[j] byte l = in[l] byte j: an 8×8 byte transpose (three rounds of block swaps).
#[inline(always)]
fn transpose8(mut x: [u64; 8]) -> [u64; 8] {
    for (distance, mask) in [
        (4, 0x0000_0000_FFFF_FFFFu64),
        (2, 0x0000_FFFF_0000_FFFF),
        (1, 0x00FF_00FF_00FF_00FF),
    ] {
        for l in 0..8 {
            if l & distance == 0 {
                let shift = 8 * distance as u32;
                let t = ((x[l] >> shift) ^ x[l + distance]) & mask;
                x[l] ^= t << shift;
                x[l + distance] ^= t;
            }
        }
    }
    x
}

/// The challenger's walk over eight resamples' per-label counts (`lanes[l][label]`): gathers
/// them into rows of eight (`rows`, for the champion's walk), tallies the confusion cells of
/// each resample, and sums the challenger's lanes.
#[multiversion(targets(
    "x86_64+avx512f+avx512vl+avx512dq+avx512bw+bmi2",
    "x86_64+avx2+fma+bmi2"
))]
pub(super) fn challenger_walk(
    lanes: &[Vec<u8>; GROUP],
    rows: &mut [[u8; GROUP]],
    flags: &[u8],
    cells: &[u8],
    tally: &mut [[u32; GROUP]; 8],
) -> Sums {
    let n = rows.len();
    let lanes: [&[u8]; GROUP] = std::array::from_fn(|l| &lanes[l][..n]);
    let (flags, cells) = (&flags[..n], &cells[..n]);
    let mut sums = Sums::default();
    let mut below = [0u32; GROUP];
    // Four copies of the tally, so that rows of the same cell in a row do not wait on each
    // other's store.
    let mut tallies = [[[0u32; GROUP]; 8]; 4];
    let whole = n - n % 8;
    for start in (0..whole).step_by(8) {
        let words = std::array::from_fn(|l| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&lanes[l][start..start + 8]);
            u64::from_le_bytes(b)
        });
        for (j, word) in transpose8(words).into_iter().enumerate() {
            let (label, row) = (start + j, word.to_le_bytes());
            rows[label] = row;
            let cell = &mut tallies[j & 3][usize::from(cells[label] & 7)];
            add_row(cell, &row);
            walk_step(&row, flags[label], &mut below, &mut sums);
        }
    }
    for label in whole..n {
        let row = std::array::from_fn(|l| lanes[l][label]);
        rows[label] = row;
        add_row(&mut tallies[label & 3][usize::from(cells[label] & 7)], &row);
        walk_step(&row, flags[label], &mut below, &mut sums);
    }
    for t in &tallies {
        for (cell, add) in tally.iter_mut().zip(t) {
            for lane in 0..GROUP {
                cell[lane] += add[lane];
            }
        }
    }
    sums
}

#[inline(always)]
fn add_row(cell: &mut [u32; GROUP], row: &[u8; GROUP]) {
    for lane in 0..GROUP {
        cell[lane] += u32::from(row[lane]);
    }
}

/// The champion's walk: the same rows of counts, in the champion's order.
#[multiversion(targets(
    "x86_64+avx512f+avx512vl+avx512dq+avx512bw+bmi2",
    "x86_64+avx2+fma+bmi2"
))]
pub(super) fn champion_walk(rows: &[[u8; GROUP]], order: &[u32], flags: &[u8]) -> Sums {
    let mut sums = Sums::default();
    let mut below = [0u32; GROUP];
    for (&label, &flag) in order.iter().zip(flags) {
        walk_step(&rows[label as usize], flag, &mut below, &mut sums);
    }
    sums
}

/// Counts one resample's draws per label into `counts` (zeroed first); false when a count
/// would pass 255 (then the resample is recounted with [`count_wide`]).
#[multiversion(targets(
    "x86_64+avx512f+avx512vl+avx512dq+avx512bw+bmi2",
    "x86_64+avx2+fma+bmi2"
))]
pub(super) fn count_narrow(draws: &mut Draws, counts: &mut [u8]) -> bool {
    counts.fill(0);
    let mut fits = true;
    let n = counts.len();
    draws.resample(n, |block| {
        for &i in block {
            let c = &mut counts[i as usize];
            fits &= *c != u8::MAX;
            *c = c.wrapping_add(1);
        }
    });
    fits
}

/// [`count_narrow`] without a limit.
pub(super) fn count_wide(draws: &mut Draws, counts: &mut [u32]) {
    counts.fill(0);
    let n = counts.len();
    draws.resample(n, |block| {
        for &i in block {
            counts[i as usize] += 1;
        }
    });
}

/// Twice the Mann–Whitney sum and the negatives' weight of one model with per-label weights
/// `w`, walking `ranking` (the slow path: one resample at a time, any weights).
pub(super) fn walk_wide(w: &[u32], ranking: &Ranking) -> (f64, f64) {
    let (mut below, mut negatives, mut twice) = (0u64, 0u64, 0u128);
    let n = ranking.flags.len();
    for k in 0..n {
        let label = ranking.order.as_ref().map_or(k, |o| o[k] as usize);
        let flag = ranking.flags[k];
        let w = u64::from(w[label]);
        if flag & RUN_START != 0 {
            below = negatives;
        }
        if flag & POSITIVE == 0 {
            negatives += w;
        } else {
            twice += u128::from(w) * u128::from(below + negatives);
        }
    }
    (twice as f64, negatives as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transpose8_swaps_lanes_and_rows() {
        let x: [u64; 8] =
            std::array::from_fn(|l| u64::from_le_bytes(std::array::from_fn(|j| (l * 8 + j) as u8)));
        let y = transpose8(x);
        for (j, word) in y.iter().enumerate() {
            for (l, byte) in word.to_le_bytes().iter().enumerate() {
                assert_eq!(usize::from(*byte), l * 8 + j, "row {j} lane {l}");
            }
        }
    }
}
