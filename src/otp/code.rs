use std::fmt;

use rand::rngs::OsRng;
use rand::Rng;

/// A one-time code: `length` decimal digits. `Debug`/`Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct OtpCode(String);

impl OtpCode {
    /// A fresh code, each digit drawn uniformly from the operating system's CSPRNG.
    /// `gen_range` samples by rejection, so no digit is favoured (no modulo bias).
    pub fn generate(length: u8) -> Self {
        let mut rng = OsRng;
        let digits = (0..length)
            .map(|_| char::from(b'0' + rng.gen_range(0..10u8)))
            .collect();
        Self(digits)
    }

    /// The digits, for rendering into the SMS text and nowhere else.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for OtpCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OtpCode(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn has_the_requested_number_of_digits() {
        for length in 6..=10 {
            let code = OtpCode::generate(length);
            assert_eq!(code.expose().len(), usize::from(length));
            assert!(code.expose().bytes().all(|b| b.is_ascii_digit()));
        }
    }

    #[test]
    fn debug_hides_the_digits() {
        let code = OtpCode::generate(6);
        assert!(!format!("{code:?}").contains(code.expose()));
    }

    /// Chi-square of each digit position over 200,000 codes, 9 degrees of freedom:
    /// 27.88 is the critical value at p = 0.001.
    #[test]
    fn every_digit_position_is_uniform() {
        const DRAWS: usize = 200_000;
        let mut counts = [[0u32; 10]; 6];
        for _ in 0..DRAWS {
            let code = OtpCode::generate(6);
            for (position, digit) in code.expose().bytes().enumerate() {
                counts[position][usize::from(digit - b'0')] += 1;
            }
        }
        let expected = DRAWS as f64 / 10.0;
        for (position, row) in counts.iter().enumerate() {
            let chi2: f64 = row
                .iter()
                .map(|&observed| (f64::from(observed) - expected).powi(2) / expected)
                .sum();
            assert!(
                chi2 < 27.88,
                "position {position}: chi-square {chi2:.2}, counts {row:?}"
            );
        }
    }
}
