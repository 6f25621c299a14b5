//! The x87 80-bit `long double` that Redis's HINCRBYFLOAT computes with on x86-64.
//!
//! Three pieces, each matching what glibc does for Redis:
//! * [`LongDouble::parse`] is Redis's `string2ld` (a strict wrapper around `strtold`):
//!   correctly rounded to a 64-bit mantissa, decimal or hex (`0x1p3`), `inf`/`infinity`
//!   accepted (callers reject them), NaN, overflow and underflow-to-zero rejected.
//! * `+` rounds to nearest-even at 64 mantissa bits, as the FPU does.
//! * [`LongDouble::to_human`] is `ld2string(.., LD_STR_HUMAN)`: `%.17Lf` (exact value,
//!   rounded half-to-even at 17 decimals), trailing zeros and a trailing '.' trimmed,
//!   `-0` written `0`, never an exponent.
//!
//! The arithmetic itself is rustc_apfloat's software `X87DoubleExtended`, so results do
//! not depend on the host FPU.

use num_bigint::BigUint;
use rustc_apfloat::ieee::X87DoubleExtended;
use rustc_apfloat::{Float, Round};

/// `MAX_LONG_DOUBLE_CHARS`: inputs this long or longer are rejected.
pub const MAX_LONG_DOUBLE_CHARS: usize = 5 * 1024;

/// Digits after the point in `%.17Lf`.
const HUMAN_DECIMALS: u32 = 17;

/// Exponents beyond this cannot change the outcome: the longest accepted input moves the
/// point by at most ~20500 bits (5119 hex digits), and the format's range is about ±16445
/// bits, so a clamped exponent still overflows or underflows exactly when the real one does.
const EXPONENT_CLAMP: i64 = 1_000_000;

/// Significand bits below the integer bit (the x87 format stores the integer bit).
const FRACTION_BITS: i64 = 63;
const EXPONENT_BIAS: i64 = 16383;

/// An x87 extended-precision value.
#[derive(Clone, Copy, Debug)]
pub struct LongDouble(X87DoubleExtended);

impl LongDouble {
    pub const ZERO: LongDouble = LongDouble(X87DoubleExtended::ZERO);

    /// Parses like Redis's `string2ld`; None where it fails (the reply is then
    /// `value is not a valid float` or `hash value is not a float`). Infinity parses.
    pub fn parse(s: &[u8]) -> Option<LongDouble> {
        if s.is_empty() || s.len() >= MAX_LONG_DOUBLE_CHARS {
            return None;
        }
        let (negative, body) = match s[0] {
            b'-' => (true, &s[1..]),
            b'+' => (false, &s[1..]),
            _ => (false, s),
        };
        let value = if body.eq_ignore_ascii_case(b"inf") || body.eq_ignore_ascii_case(b"infinity") {
            X87DoubleExtended::INFINITY
        } else {
            let literal = Literal::scan(body)?;
            if literal.is_zero {
                X87DoubleExtended::ZERO
            } else {
                let parsed = X87DoubleExtended::from_str_r(&literal.text, Round::NearestTiesToEven)
                    .ok()?
                    .value;
                // strtold reports ERANGE for overflow (±HUGE_VAL) and for a non-zero input
                // that rounds to zero; string2ld rejects both. A denormal result is kept.
                if !parsed.is_finite() || parsed.is_zero() {
                    return None;
                }
                parsed
            }
        };
        Some(LongDouble(if negative { -value } else { value }))
    }

    /// An integer, exactly (every i64 fits in 64 mantissa bits).
    pub fn from_i64(v: i64) -> LongDouble {
        LongDouble(X87DoubleExtended::from_i128(i128::from(v)).value)
    }

    /// Neither infinite nor NaN.
    pub fn is_finite(self) -> bool {
        self.0.is_finite()
    }

    /// Redis's human-readable form (`ld2string` with `LD_STR_HUMAN`). `self` must be
    /// finite; callers reject infinities and NaN first.
    pub fn to_human(self) -> String {
        let bits = self.0.to_bits();
        let negative = bits >> 79 & 1 == 1;
        let biased = (bits >> 64 & 0x7fff) as i64;
        let significand = bits as u64;
        // A denormal (biased exponent 0) has the same scale as the smallest normal.
        let exp2 = biased.max(1) - EXPONENT_BIAS - FRACTION_BITS;
        let digits = scaled_decimal(significand, exp2);

        // `digits` is round(|value| * 10^17); split off the 17 decimals.
        let padded = format!("{digits:0>width$}", width = HUMAN_DECIMALS as usize + 1);
        let (int_part, frac_part) = padded.split_at(padded.len() - HUMAN_DECIMALS as usize);
        let frac_part = frac_part.trim_end_matches('0');
        let mut out = String::with_capacity(padded.len() + 2);
        if negative {
            out.push('-');
        }
        out.push_str(int_part);
        if !frac_part.is_empty() {
            out.push('.');
            out.push_str(frac_part);
        }
        if out == "-0" {
            out.remove(0);
        }
        out
    }
}

impl std::ops::Add for LongDouble {
    type Output = LongDouble;

    /// Rounded to nearest-even; overflow gives ±infinity.
    fn add(self, rhs: LongDouble) -> LongDouble {
        LongDouble(self.0.add_r(rhs.0, Round::NearestTiesToEven).value)
    }
}

/// round(significand * 2^exp2 * 10^17) in decimal, ties to even (glibc's printf rounding).
fn scaled_decimal(significand: u64, exp2: i64) -> String {
    let scale = 10u128.pow(HUMAN_DECIMALS);
    if exp2 >= 0 {
        let n = (BigUint::from(significand) * BigUint::from(scale)) << (exp2 as u64);
        return n.to_string();
    }
    // significand * 10^17 < 2^64 * 2^57 = 2^121: fits, and any shift of 122 or more
    // leaves less than half, which rounds to 0.
    let num = u128::from(significand) * scale;
    let shift = (-exp2) as u32;
    if shift >= 122 {
        return "0".to_string();
    }
    let mut q = num >> shift;
    let rem = num & ((1u128 << shift) - 1);
    let half = 1u128 << (shift - 1);
    if rem > half || (rem == half && q & 1 == 1) {
        q += 1;
    }
    q.to_string()
}

/// A numeric literal in `strtold`'s grammar, rewritten in the one form rustc_apfloat
/// parses the same way.
struct Literal {
    text: String,
    is_zero: bool,
}

impl Literal {
    /// Accepts exactly what `strtold` consumes in full (after an optional sign):
    /// decimal `digits[.digits][e[+-]digits]` (at least one mantissa digit on either side
    /// of the point) or hex `0x hexdigits[.hexdigits][p[+-]digits]`. Anything else either
    /// fails outright or leaves trailing characters, which string2ld rejects.
    fn scan(body: &[u8]) -> Option<Literal> {
        let hex = body.len() > 2 && body[0] == b'0' && (body[1] | 0x20) == b'x';
        let (mantissa, radix, exp_mark) = if hex {
            (&body[2..], 16, b'p')
        } else {
            (body, 10, b'e')
        };
        let mut digits = String::with_capacity(mantissa.len());
        let mut frac_digits: i64 = 0;
        let mut seen_point = false;
        let mut i = 0;
        while i < mantissa.len() {
            let c = mantissa[i];
            if c == b'.' && !seen_point {
                seen_point = true;
            } else if char::from(c).is_digit(radix) {
                digits.push(char::from(c.to_ascii_lowercase()));
                if seen_point {
                    frac_digits += 1;
                }
            } else {
                break;
            }
            i += 1;
        }
        if digits.is_empty() {
            return None;
        }
        let mut exponent: i64 = 0;
        if i < mantissa.len() {
            if (mantissa[i] | 0x20) != exp_mark {
                return None;
            }
            i += 1;
            let negative = match mantissa.get(i) {
                Some(b'-') => {
                    i += 1;
                    true
                }
                Some(b'+') => {
                    i += 1;
                    false
                }
                _ => false,
            };
            let exp_digits = &mantissa[i..];
            if exp_digits.is_empty() || !exp_digits.iter().all(u8::is_ascii_digit) {
                return None;
            }
            for &d in exp_digits {
                exponent = (exponent * 10 + i64::from(d - b'0')).min(EXPONENT_CLAMP);
            }
            if negative {
                exponent = -exponent;
            }
        }
        let is_zero = digits.bytes().all(|d| d == b'0');
        // Each fractional digit moves the point by one decimal digit or four bits.
        let per_digit = if hex { 4 } else { 1 };
        let exponent = exponent - frac_digits * per_digit;
        let text = if hex {
            format!("0x{digits}p{exponent}")
        } else {
            format!("{digits}e{exponent}")
        };
        Some(Literal { text, is_zero })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Option<String> {
        LongDouble::parse(s.as_bytes()).map(|v| {
            if v.is_finite() {
                v.to_human()
            } else if v.0.is_negative() {
                "-inf".into()
            } else {
                "inf".into()
            }
        })
    }

    fn incr(before: Option<&str>, by: &str) -> String {
        let base = before.map_or(LongDouble::ZERO, |b| {
            LongDouble::parse(b.as_bytes()).unwrap()
        });
        let sum = base + LongDouble::parse(by.as_bytes()).unwrap();
        assert!(sum.is_finite());
        let out = sum.to_human();
        // What is stored must parse back to the same text.
        assert_eq!(
            LongDouble::parse(out.as_bytes()).map(|v| v.to_human()),
            Some(out.clone())
        );
        out
    }

    #[test]
    fn spec_table() {
        assert_eq!(incr(None, "1.23"), "1.23");
        assert_eq!(incr(Some("1.23"), "0.77"), "2");
        assert_eq!(incr(Some("2"), "-0.1"), "1.9");
        assert_eq!(incr(Some("0.1"), "0.2"), "0.3");
        assert_eq!(incr(Some("10.5"), "0.1"), "10.6");
        assert_eq!(incr(None, "1e-20"), "0");
        assert_eq!(incr(None, "3.0e3"), "3000");
        assert_eq!(
            incr(Some("10000000000"), "0.1"),
            "10000000000.09999999962747097"
        );
        assert_eq!(incr(Some("17179869184"), "1"), "17179869185");
        assert_eq!(incr(Some("10.50"), "0.1"), "10.6");
        assert_eq!(incr(None, "2.5"), "2.5");
        assert_eq!(incr(Some("5.0e3"), "2.0e2"), "5200");
    }

    #[test]
    fn accepted_syntax() {
        assert_eq!(p("1e3").as_deref(), Some("1000"));
        assert_eq!(p("+5").as_deref(), Some("5"));
        assert_eq!(p("-5.5").as_deref(), Some("-5.5"));
        assert_eq!(p("0x1p3").as_deref(), Some("8"));
        assert_eq!(p("0X1P3").as_deref(), Some("8"));
        assert_eq!(p("0x10").as_deref(), Some("16"));
        assert_eq!(p("0x.8").as_deref(), Some("0.5"));
        assert_eq!(p("-0x1.8p-1").as_deref(), Some("-0.75"));
        assert_eq!(p(".5").as_deref(), Some("0.5"));
        assert_eq!(p("5.").as_deref(), Some("5"));
        assert_eq!(p("007").as_deref(), Some("7"));
        assert_eq!(p("1E+2").as_deref(), Some("100"));
        assert_eq!(p("-0").as_deref(), Some("0"));
        assert_eq!(p("0e999999999999999999999").as_deref(), Some("0"));
        assert_eq!(p("inf").as_deref(), Some("inf"));
        assert_eq!(p("+INF").as_deref(), Some("inf"));
        assert_eq!(p("-Infinity").as_deref(), Some("-inf"));
        // A denormal result is kept (strtold sets ERANGE, but the value is not zero).
        assert_eq!(p("1e-4940").as_deref(), Some("0"));
        assert_eq!(p("0x1p-16445").as_deref(), Some("0"));
        assert_eq!(p("2e-4951").as_deref(), Some("0"));
        assert!(p("1.18973149535723176502e+4932").is_some());
    }

    #[test]
    fn rejected_syntax() {
        for bad in [
            "",
            " 1",
            "1 ",
            "\t1",
            "1\0",
            "abc",
            "1.5x",
            "--1",
            "+-1",
            "- 1",
            "1e",
            "1e+",
            "e3",
            ".",
            "-.",
            "0x",
            "0x.",
            "0xp1",
            "0x1p",
            "0x1p+",
            "1.2.3",
            "nan",
            "NaN",
            "-nan",
            "nan(123)",
            "infinit",
            "infinityy",
            "1e5000",
            "-1e5000",
            "1e-5000",
            "0x1p-16446",
            "0x1p16384",
            "1,5",
            "١",
            "1.5e-4951",
            "1.18973149535723176508e+4932",
        ] {
            assert_eq!(p(bad), None, "{bad:?} should be rejected");
        }
        assert_eq!(p(&"1".repeat(MAX_LONG_DOUBLE_CHARS)), None);
        let longest = format!("0.{}", "1".repeat(MAX_LONG_DOUBLE_CHARS - 3));
        assert!(p(&longest).is_some());
    }

    #[test]
    fn printing_rounds_half_to_even_at_17_decimals() {
        // 2^-18 = 0.000003814697265625 and 3 * 2^-18 = 0.000011444091796875 are exact ties.
        assert_eq!(p("0x1p-18").as_deref(), Some("0.00000381469726562"));
        assert_eq!(p("0x3p-18").as_deref(), Some("0.00001144409179688"));
        // Expected values below come from glibc's strtold and printf("%.17Lf") on x86-64.
        assert_eq!(p("0.000000000000000005").as_deref(), Some("0"));
        assert_eq!(
            p("0.000000000000000015").as_deref(),
            Some("0.00000000000000002")
        );
        assert_eq!(p("0x1p-57").as_deref(), Some("0.00000000000000001"));
        assert_eq!(p("-0.000000000000000001").as_deref(), Some("0"));
        assert_eq!(
            p("-0.000000000000000006").as_deref(),
            Some("-0.00000000000000001")
        );
        assert_eq!(p("0x1p64").as_deref(), Some("18446744073709551616"));
        assert_eq!(
            p("1e30").as_deref(),
            Some("1000000000000000000024696061952")
        );
        assert_eq!(
            p("123456789.123456789123").as_deref(),
            Some("123456789.12345678912242875")
        );
        assert_eq!(p("0.1").as_deref(), Some("0.1"));
        assert_eq!(p("1.5").as_deref(), Some("1.5"));
    }

    #[test]
    fn largest_values_print_in_full() {
        let max = p("0x1.fffffffffffffffep16383").unwrap();
        assert_eq!(max.len(), 4933);
        assert!(max.starts_with("118973149535723176"));
        assert!(LongDouble::parse(max.as_bytes()).is_some());
        let max = LongDouble::parse(max.as_bytes()).unwrap();
        let sum = max + max;
        assert!(!sum.is_finite());
    }

    #[test]
    fn integers_are_exact() {
        assert_eq!(
            LongDouble::from_i64(i64::MIN).to_human(),
            "-9223372036854775808"
        );
        assert_eq!(
            LongDouble::from_i64(i64::MAX).to_human(),
            "9223372036854775807"
        );
        assert_eq!(LongDouble::from_i64(0).to_human(), "0");
    }
}
