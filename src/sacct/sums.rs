//! Exact TRES x seconds sums for many (account, user) pairs, in little memory.
//!
//! Each pair has one row of 64-bit words: its "seen" bits, then the low 64 bits of the sum of
//! every TRES id known so far. The rare sum that passes 2^64 keeps its high bits in a side
//! map, so every sum is an exact `u128`, while a pair costs 8 bytes per TRES kind the site
//! uses, and adding a line or reading a pair touches one row. Rows widen (all at once) when
//! a line brings a TRES not seen before, which happens a handful of times per period.

use super::tres::TresId;
use crate::hash::FxMap;

/// The index of one (account, user) pair.
pub type PairId = u32;

/// A sum passed 2^128: impossible for real data, and never wrapped or clipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overflow;

/// Sums by (pair, TRES id).
///
/// ```
/// use waldur_usage::sacct::sums::Sums;
///
/// let mut sums = Sums::default();
/// sums.add(7, 2, u128::from(u64::MAX) * 3).unwrap();
/// sums.add(7, 2, 5).unwrap();
/// assert_eq!(sums.get(7, 2), Some(u128::from(u64::MAX) * 3 + 5));
/// assert_eq!(sums.get(7, 1), None);
/// assert_eq!(sums.get(6, 2), None);
/// ```
#[derive(Debug, Default)]
pub struct Sums {
    /// `rows` words per pair: `seen_words` words of seen bits (bit `id % 64` of word
    /// `id / 64`), then one low word per TRES id.
    words: Vec<u64>,
    /// TRES ids a row holds.
    width: usize,
    /// Pairs with a row.
    rows: usize,
    /// High 64 bits of the sums that passed 2^64.
    high: FxMap<(PairId, TresId), u64>,
}

fn seen_words(width: usize) -> usize {
    width.div_ceil(64).max(1)
}

impl Sums {
    fn stride(&self) -> usize {
        seen_words(self.width) + self.width
    }

    /// Make room for (`pair`, `id`): widen every row for a new id, add rows for a new pair.
    fn reserve(&mut self, pair: PairId, id: TresId) {
        let id = usize::from(id);
        if id >= self.width {
            self.widen(id + 1);
        }
        let pair = pair as usize;
        if pair >= self.rows {
            self.rows = pair + 1;
            self.words.resize(self.rows * self.stride(), 0);
        }
    }

    /// Re-lay every row out for `width` ids (at least double the old width, so a site
    /// adding TRES one at a time pays for few re-layouts).
    fn widen(&mut self, width: usize) {
        let width = width.max(self.width * 2).max(8);
        let (old_seen, old_stride) = (seen_words(self.width), self.stride());
        let new_seen = seen_words(width);
        let new_stride = new_seen + width;
        let mut words = vec![0; self.rows * new_stride];
        for (old, new) in self
            .words
            .chunks_exact(old_stride)
            .zip(words.chunks_exact_mut(new_stride))
        {
            new[..old_seen].copy_from_slice(&old[..old_seen]);
            new[new_seen..new_seen + self.width].copy_from_slice(&old[old_seen..]);
        }
        self.words = words;
        self.width = width;
    }

    /// The position of (`pair`, `id`)'s low word and of its seen word, and its seen bit.
    fn at(&self, pair: PairId, id: TresId) -> (usize, usize, u64) {
        let (row, id) = (pair as usize * self.stride(), usize::from(id));
        let seen = seen_words(self.width);
        (row + seen + id, row + id / 64, 1 << (id % 64))
    }

    /// Add `amount` to the sum of (`pair`, `id`) and mark it seen; on overflow nothing changes.
    pub fn add(&mut self, pair: PairId, id: TresId, amount: u128) -> Result<(), Overflow> {
        self.reserve(pair, id);
        self.add_in_row(pair, id, amount)
    }

    /// Add `seconds` x `value` for each (`id`, `value`) of one line's `tres` to `pair`: one
    /// row found once, all or nothing (an overflow takes back what the line added; the seen
    /// bits stay, as with [`Sums::sub`]).
    pub fn add_line(
        &mut self,
        pair: PairId,
        seconds: u64,
        tres: &[(TresId, u64)],
    ) -> Result<(), Overflow> {
        let Some(top) = tres.iter().map(|&(id, _)| id).max() else {
            return Ok(());
        };
        self.reserve(pair, top);
        let seconds = u128::from(seconds);
        for (done, &(id, value)) in tres.iter().enumerate() {
            if let Err(e) = self.add_in_row(pair, id, u128::from(value) * seconds) {
                for &(id, value) in &tres[..done] {
                    self.sub(pair, id, u128::from(value) * seconds);
                }
                return Err(e);
            }
        }
        Ok(())
    }

    /// [`Sums::add`] once the row is there.
    fn add_in_row(&mut self, pair: PairId, id: TresId, amount: u128) -> Result<(), Overflow> {
        let (low, high) = (amount as u64, (amount >> 64) as u64);
        let (at, seen_at, bit) = self.at(pair, id);
        let (sum, carried) = self.words[at].overflowing_add(low);
        // high <= 2^64 - 2 whenever amount is a product of two u64, but a caller may pass more.
        let carry = high.checked_add(u64::from(carried)).ok_or(Overflow)?;
        if carry != 0 {
            let old = self.high.get(&(pair, id)).copied().unwrap_or(0);
            let new = old.checked_add(carry).ok_or(Overflow)?;
            self.high.insert((pair, id), new);
        }
        self.words[at] = sum;
        self.words[seen_at] |= bit;
        Ok(())
    }

    /// Take back an `amount` that [`Sums::add`] added (the seen bit stays: the caller undoes
    /// only allocations whose TRES were seen before or are dropped with their pair).
    pub fn sub(&mut self, pair: PairId, id: TresId, amount: u128) {
        self.reserve(pair, id);
        let (low, high) = (amount as u64, (amount >> 64) as u64);
        let (at, _, _) = self.at(pair, id);
        let (difference, borrowed) = self.words[at].overflowing_sub(low);
        self.words[at] = difference;
        let borrow = high + u64::from(borrowed);
        if borrow != 0 {
            let entry = self.high.entry((pair, id)).or_default();
            *entry -= borrow;
            if *entry == 0 {
                self.high.remove(&(pair, id));
            }
        }
    }

    /// Clear the seen bit of (`pair`, `id`) (with [`Sums::sub`], to undo a first allocation).
    pub fn unsee(&mut self, pair: PairId, id: TresId) {
        if (pair as usize) < self.rows && usize::from(id) < self.width {
            let (_, seen_at, bit) = self.at(pair, id);
            self.words[seen_at] &= !bit;
        }
    }

    /// The sums of `pair`, for reading many of them.
    pub fn row(&self, pair: PairId) -> Row<'_> {
        let p = pair as usize;
        let words = if p < self.rows {
            &self.words[p * self.stride()..(p + 1) * self.stride()]
        } else {
            &[]
        };
        Row {
            sums: self,
            pair,
            words,
        }
    }

    /// The sum of (`pair`, `id`), if that TRES was seen.
    pub fn get(&self, pair: PairId, id: TresId) -> Option<u128> {
        self.row(pair).get(id)
    }
}

/// One pair's sums (see [`Sums::row`]).
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    sums: &'a Sums,
    pair: PairId,
    words: &'a [u64],
}

impl Row<'_> {
    /// The sum of TRES `id`, if it was seen.
    pub fn get(&self, id: TresId) -> Option<u128> {
        let id = usize::from(id);
        if id >= self.sums.width
            || self.words.is_empty()
            || self.words[id / 64] & (1 << (id % 64)) == 0
        {
            return None;
        }
        let low = self.words[seen_words(self.sums.width) + id];
        if self.sums.high.is_empty() {
            return Some(u128::from(low));
        }
        let high = self.sums.high.get(&(self.pair, id as TresId));
        Some(u128::from(high.copied().unwrap_or(0)) << 64 | u128::from(low))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_past_two_to_the_64_stay_exact_and_can_be_taken_back() {
        let mut sums = Sums::default();
        // 2^64 x 1000 and then twice that: the high words carry 999 and 1999.
        let big = u128::from(u64::MAX) * 1000;
        sums.add(0, 0, big).unwrap();
        sums.add(0, 0, big).unwrap();
        assert_eq!(sums.get(0, 0), Some(big * 2));
        sums.sub(0, 0, big);
        assert_eq!(sums.get(0, 0), Some(big));
        sums.sub(0, 0, big);
        assert_eq!(sums.get(0, 0), Some(0));
        assert!(sums.high.is_empty());
    }

    #[test]
    fn an_overflowing_add_changes_nothing() {
        let mut sums = Sums::default();
        sums.add(3, 1, u128::MAX - 1).unwrap();
        assert_eq!(sums.add(3, 1, 2), Err(Overflow));
        assert_eq!(sums.get(3, 1), Some(u128::MAX - 1));
        sums.add(3, 1, 1).unwrap();
        assert_eq!(sums.get(3, 1), Some(u128::MAX));
    }

    #[test]
    fn a_line_that_overflows_one_sum_adds_to_none() {
        let mut sums = Sums::default();
        sums.add(3, 1, u128::MAX - 1).unwrap();
        // 7 x 1 s to TRES 0, then 2 x 1 s to TRES 1, which overflows: TRES 0 is taken back.
        assert_eq!(sums.add_line(3, 1, &[(0, 7), (1, 2)]), Err(Overflow));
        assert_eq!(
            (sums.get(3, 0), sums.get(3, 1)),
            (Some(0), Some(u128::MAX - 1))
        );
        // 4 CPUs x 3600 s and 1 GPU x 3600 s on a new pair, one row found once.
        sums.add_line(9, 3600, &[(0, 4), (2, 1)]).unwrap();
        assert_eq!(
            (sums.get(9, 0), sums.get(9, 1), sums.get(9, 2)),
            (Some(14_400), None, Some(3600))
        );
        assert_eq!(sums.add_line(10, 60, &[]), Ok(()));
        assert_eq!(sums.get(10, 0), None);
    }

    #[test]
    fn a_zero_sum_is_seen_and_other_pairs_are_not() {
        let mut sums = Sums::default();
        sums.add(100, 4, 0).unwrap();
        assert_eq!(sums.get(100, 4), Some(0));
        assert_eq!(sums.get(99, 4), None);
        assert_eq!(sums.get(100, 3), None);
        sums.unsee(100, 4);
        assert_eq!(sums.get(100, 4), None);
    }

    #[test]
    fn widening_for_a_new_tres_keeps_every_sum() {
        let mut sums = Sums::default();
        for pair in 0..1000 {
            sums.add(pair, 1, u128::from(pair) * 3).unwrap();
        }
        sums.add(999, 70, 5).unwrap();
        sums.add(500, 300, 7).unwrap();
        for pair in 0..1000 {
            assert_eq!(sums.get(pair, 1), Some(u128::from(pair) * 3), "pair {pair}");
            assert_eq!(sums.get(pair, 70), (pair == 999).then_some(5));
            assert_eq!(sums.get(pair, 300), (pair == 500).then_some(7));
            assert_eq!(sums.row(pair).get(1), Some(u128::from(pair) * 3));
            assert_eq!(sums.row(pair).get(300), (pair == 500).then_some(7));
        }
        assert_eq!(sums.row(5000).get(1), None);
    }
}
