//! Exact non-negative rational numbers on `u128` ([`Ratio`]), and rounding them once,
//! half-even, to a two-place [`Amount`].
//!
//! Every operation is checked: a result that does not fit is `None`, never a wrong number.
//! Fractions are kept reduced (gcd), which keeps the numbers small for the factors a config
//! uses (`60`, `60000`, `61440`, `0.5`, ...).
//!
//! ```
//! use waldur_usage::convert::ratio::Ratio;
//! use waldur_usage::decimal::Amount;
//!
//! // 5 544 003 CPU-seconds in k-Hours: 5544003 / 60 / 60000 = 1.5400008333... -> "1.54"
//! let amount = Ratio::new(5_544_003, 60 * 60_000).unwrap();
//! assert_eq!(amount.round_to_amount().unwrap().to_string(), "1.54");
//! // A tie goes to the even neighbour: 0.125 -> 0.12, 0.135 -> 0.14.
//! let tie = |n| Ratio::new(n, 1000).unwrap().round_to_amount();
//! assert_eq!(tie(125), Some(Amount::from_hundredths(12)));
//! assert_eq!(tie(135), Some(Amount::from_hundredths(14)));
//! ```
//!
//! This file owns the fraction and its one rounding; it must not know the config, records or
//! how an amount is written (that is [`Amount`]'s, in [`crate::decimal`]).

use crate::decimal::Amount;

/// Greatest common divisor (Euclid); `gcd(0, n) == n`.
pub fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        if let (Ok(x), Ok(y)) = (u64::try_from(a), u64::try_from(b)) {
            // The same steps on 64-bit words, which divide several times faster.
            return u128::from(gcd64(x, y));
        }
        (a, b) = (b, a % b);
    }
    a
}

/// [`gcd`] on `u64`.
fn gcd64(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// An exact fraction `num / den` with `den > 0`, always reduced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ratio {
    num: u128,
    den: u128,
}

impl Ratio {
    /// Zero.
    pub const ZERO: Ratio = Ratio { num: 0, den: 1 };

    /// `num / den`, reduced; `None` when `den` is 0.
    pub fn new(num: u128, den: u128) -> Option<Ratio> {
        if den == 0 {
            return None;
        }
        let g = gcd(num, den);
        Some(Ratio {
            num: num / g,
            den: den / g,
        })
    }

    /// The whole number `n`.
    pub fn from_int(n: u128) -> Ratio {
        Ratio { num: n, den: 1 }
    }

    /// Numerator (of the reduced fraction).
    pub fn numer(self) -> u128 {
        self.num
    }

    /// Denominator (of the reduced fraction), never 0.
    pub fn denom(self) -> u128 {
        self.den
    }

    /// `1 / self`; `None` for zero.
    pub fn recip(self) -> Option<Ratio> {
        Ratio::new(self.den, self.num)
    }

    /// `self + other`, or `None` on overflow.
    pub fn checked_add(self, other: Ratio) -> Option<Ratio> {
        if self.num == 0 {
            // 0 + c/d is c/d, already reduced: what the general case computes, without it.
            return Some(other);
        }
        // a/b + c/d over the least common denominator l = b/g * d.
        let g = gcd(self.den, other.den);
        let l = (self.den / g).checked_mul(other.den)?;
        let left = self.num.checked_mul(l / self.den)?;
        let right = other.num.checked_mul(l / other.den)?;
        Ratio::new(left.checked_add(right)?, l)
    }

    /// `self * other`, or `None` on overflow. Cross-reduces first, so a product whose reduced
    /// form fits never overflows.
    pub fn checked_mul(self, other: Ratio) -> Option<Ratio> {
        if self.num == 0 || other.num == 0 {
            return Some(Ratio::ZERO);
        }
        let g1 = gcd(self.num, other.den);
        let g2 = gcd(other.num, self.den);
        let num = (self.num / g1).checked_mul(other.num / g2)?;
        let den = (self.den / g2).checked_mul(other.den / g1)?;
        Some(Ratio { num, den })
    }

    /// Round to hundredths, half to even, exactly once. `None` only when the result does not
    /// fit an [`Amount`] (more than `i128::MAX` hundredths, about 1.7 x 10^36 whole units):
    /// usage-convert must not write an amount waldur-push cannot read.
    pub fn round_to_amount(self) -> Option<Amount> {
        let hundredths = self.round_hundredths()?;
        i128::try_from(hundredths).ok().map(Amount::from_hundredths)
    }

    /// The rounded hundredths, as far as a `u128` holds them.
    fn round_hundredths(self) -> Option<u128> {
        if let (Ok(num), Ok(den)) = (u64::try_from(self.num), u64::try_from(self.den))
            && den <= u64::MAX / 10
        {
            return Some(round_hundredths64(num, den));
        }
        self.round_hundredths_wide()
    }

    /// [`Ratio::round_hundredths`] for any fraction.
    fn round_hundredths_wide(self) -> Option<u128> {
        let (whole, mut rem) = (self.num / self.den, self.num % self.den);
        let mut cents = whole.checked_mul(100)?;
        // Two decimal digits by long division. `rem < den`, and `digit_step` never forms
        // 10 * rem, so no denominator is too large.
        let mut frac: u128 = 0;
        for _ in 0..2 {
            let (digit, next) = digit_step(rem, self.den);
            frac = frac * 10 + digit;
            rem = next;
        }
        cents = cents.checked_add(frac)?;
        // What is left is rem / den of one cent: compare with a half without forming 2 * rem.
        let rest = self.den - rem;
        let up = rem > rest || (rem == rest && cents % 2 == 1);
        if up {
            cents = cents.checked_add(1)?;
        }
        Some(cents)
    }
}

/// [`Ratio::round_hundredths`] for `num / den` when `10 * den` fits in 64 bits, so `10 * rem`
/// does too: the same digits and the same tie rule, on 64-bit words.
fn round_hundredths64(num: u64, den: u64) -> u128 {
    let (whole, mut rem) = (num / den, num % den);
    let mut frac = 0;
    for _ in 0..2 {
        frac = frac * 10 + rem * 10 / den;
        rem = rem * 10 % den;
    }
    // `whole < 2^64`, so the cents always fit in 128 bits.
    let mut cents = u128::from(whole) * 100 + u128::from(frac);
    let rest = den - rem;
    if rem > rest || (rem == rest && cents % 2 == 1) {
        cents += 1;
    }
    cents
}

/// One step of long division: `(floor(10 r / d), 10 r mod d)` for `r < d`, by ten additions
/// that each stay below `d`, so it works for any `d` up to `u128::MAX`.
fn digit_step(r: u128, d: u128) -> (u128, u128) {
    debug_assert!(r < d);
    let (mut digit, mut acc) = (0u128, 0u128);
    for _ in 0..10 {
        // acc + r >= d  <=>  acc >= d - r (both sides stay in range).
        if acc >= d - r {
            acc -= d - r;
            digit += 1;
        } else {
            acc += r;
        }
    }
    (digit, acc)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(n: u128, d: u128) -> Ratio {
        Ratio::new(n, d).unwrap()
    }

    fn cents(n: u128, d: u128) -> String {
        r(n, d).round_to_amount().unwrap().to_string()
    }

    #[test]
    fn fractions_stay_reduced() {
        assert_eq!(r(6, 4), r(3, 2));
        assert_eq!((r(6, 4).numer(), r(6, 4).denom()), (3, 2));
        assert_eq!(Ratio::new(1, 0), None);
        // 1/6 + 1/10 = 5/30 + 3/30 = 8/30 = 4/15
        assert_eq!(r(1, 6).checked_add(r(1, 10)), Some(r(4, 15)));
        // 4/9 * 3/8 = 12/72 = 1/6
        assert_eq!(r(4, 9).checked_mul(r(3, 8)), Some(r(1, 6)));
        assert_eq!(r(2, 3).recip(), Some(r(3, 2)));
        assert_eq!(Ratio::ZERO.recip(), None);
    }

    #[test]
    fn rounds_half_to_even_on_exact_ties_only() {
        // x.xx5 exactly: 0.125 -> 0.12 (2 is even), 0.135 -> 0.14, 2.675 -> 2.68 (Python's float
        // round gives 2.67 because 2.675 is stored as 2.67499999...).
        assert_eq!(cents(125, 1000), "0.12");
        assert_eq!(cents(135, 1000), "0.14");
        assert_eq!(cents(2675, 1000), "2.68");
        assert_eq!(cents(2665, 1000), "2.66");
        // Just above / below a tie: 0.1250001 -> 0.13; 0.1249999 -> 0.12.
        assert_eq!(cents(1_250_001, 10_000_000), "0.13");
        assert_eq!(cents(1_249_999, 10_000_000), "0.12");
        // 1/3 = 0.333.. -> 0.33; 2/3 = 0.666.. -> 0.67; 0.005 -> 0.00 (0 is even); 0.015 -> 0.02.
        assert_eq!(cents(1, 3), "0.33");
        assert_eq!(cents(2, 3), "0.67");
        assert_eq!(cents(5, 1000), "0.00");
        assert_eq!(cents(15, 1000), "0.02");
        // 0.995 is a tie between 0.99 and 1.00: 100 is even, so it carries into the units.
        assert_eq!(cents(995, 1000), "1.00");
        assert_eq!(cents(0, 7), "0.00");
        assert_eq!(cents(1200, 1), "1200.00");
    }

    #[test]
    fn huge_denominators_round_without_overflow() {
        // (MAX - 1) / MAX = 0.99999... -> 1.00; 1 / MAX -> 0.00; (MAX / 2) / MAX is just below
        // one half (MAX is odd) -> 0.50.
        let max = u128::MAX;
        assert_eq!(cents(max - 1, max), "1.00");
        assert_eq!(cents(1, max), "0.00");
        assert_eq!(cents(max / 2, max), "0.50");
        // 10 * r overflows here, digit_step must not: (MAX - 1) / MAX * 10 = 9.99.. -> digit 9.
        assert_eq!(digit_step(max - 1, max), (9, max - 10));
    }

    #[test]
    fn overflow_is_none_never_a_wrong_number() {
        let big = Ratio::from_int(u128::MAX);
        assert_eq!(big.checked_add(Ratio::from_int(1)), None);
        assert_eq!(big.checked_mul(Ratio::from_int(2)), None);
        // MAX * (1/3): cross-reduction keeps it exact (MAX is divisible by 3).
        assert_eq!(
            big.checked_mul(r(1, 3)),
            Some(Ratio::from_int(u128::MAX / 3))
        );
        // More hundredths than an i128 holds are not an amount.
        assert_eq!(big.round_to_amount(), None);
        // 1/p + 1/q for two large coprime denominators overflows the common denominator.
        assert_eq!(r(1, 1 << 100).checked_add(r(1, (1 << 100) - 1)), None);
    }

    #[test]
    fn the_64_bit_rounding_agrees_with_the_wide_one() {
        let dens = [
            1,
            2,
            3,
            7,
            8,
            60,
            3_600_000,
            3_686_400,
            999_999_937,
            u64::MAX / 10,
        ];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for den in dens {
            for num in [
                0,
                1,
                den / 2,
                den / 2 + 1,
                den - 1,
                den,
                5 * den / 1000,
                u64::MAX,
            ] {
                x = x.rotate_left(7).wrapping_mul(0x2545_f491_4f6c_dd1d);
                for num in [num, x, x % (den.saturating_mul(3) | 1)] {
                    let r = Ratio::new(u128::from(num), u128::from(den)).unwrap();
                    assert_eq!(
                        r.round_hundredths(),
                        r.round_hundredths_wide(),
                        "{num}/{den}"
                    );
                }
            }
        }
    }

    #[test]
    fn amounts_print_two_places_as_cents_did() {
        // What the former `Cents` wrote for every non-negative value: `{whole}.{two digits}`.
        let cents = |h: u128| format!("{}.{:02}", h / 100, h % 100);
        for h in [
            0,
            7,
            99,
            100,
            600_800,
            u128::from(u64::MAX),
            i128::MAX as u128,
        ] {
            let a = Amount::from_hundredths(i128::try_from(h).unwrap());
            assert_eq!(a.to_string(), cents(h), "{h}");
            let mut pushed = Vec::new();
            a.push_text(&mut pushed);
            assert_eq!(pushed, cents(h).as_bytes(), "{h}");
        }
        assert_eq!(r(7, 100).round_to_amount().unwrap().to_string(), "0.07");
        assert_eq!(
            r(600_800, 1).round_to_amount().unwrap().to_string(),
            "600800.00"
        );
    }

    #[test]
    fn the_largest_amount_rounds_and_one_hundredth_more_is_none() {
        // i128::MAX hundredths is the largest amount; u128 still holds one more, which must
        // not be written, since waldur-push could not read it back.
        let max = i128::MAX as u128;
        assert_eq!(
            r(max, 100).round_to_amount(),
            Some(Amount::from_hundredths(i128::MAX))
        );
        assert_eq!(r(max + 1, 100).round_hundredths(), Some(max + 1));
        assert_eq!(r(max + 1, 100).round_to_amount(), None);
        // Rounding up across the boundary: (max + 0.5) hundredths is a tie to the even max + 1.
        assert_eq!(r(2 * max + 1, 200).round_to_amount(), None);
        // (max - 0.5) hundredths is a tie too, to the even max - 1.
        assert_eq!(
            r(2 * max - 1, 200).round_to_amount(),
            Some(Amount::from_hundredths(i128::MAX - 1))
        );
    }
}
