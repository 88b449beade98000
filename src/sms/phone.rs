use std::fmt;

/// A phone number in E.164 form: `+` followed by 7 to 15 digits, the first not `0`.
///
/// `Display` and `Debug` print it masked (`+1321****879`), so a number never ends up
/// in a log line by accident; `as_str` gives the full number for the PDU.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PhoneNumber(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneNumberError {
    #[error("a phone number must start with '+' (E.164, e.g. +13216549878)")]
    MissingPlus,
    #[error("a phone number may hold only digits after the '+'")]
    NotDigits,
    #[error("a phone number must have 7 to 15 digits after the '+'")]
    BadLength,
    #[error("a phone number's country code cannot start with 0")]
    LeadingZero,
}

impl PhoneNumber {
    pub fn parse(input: &str) -> Result<Self, PhoneNumberError> {
        let digits = input
            .strip_prefix('+')
            .ok_or(PhoneNumberError::MissingPlus)?;
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PhoneNumberError::NotDigits);
        }
        if !(7..=15).contains(&digits.len()) {
            return Err(PhoneNumberError::BadLength);
        }
        if digits.starts_with('0') {
            return Err(PhoneNumberError::LeadingZero);
        }
        Ok(Self(input.to_owned()))
    }

    /// A number as gateway clients write it: E.164 with `+`, or its digits after the
    /// international prefix `00`, or its bare international digits (what Kannel clients
    /// and privacyIDEA send when a user's number was stored without `+`). A national
    /// number (one leading `0`) is refused: which country it belongs to is not known.
    pub fn parse_international(input: &str) -> Result<Self, PhoneNumberError> {
        let input = input.trim();
        if input.starts_with('+') {
            return Self::parse(input);
        }
        let digits = input.strip_prefix("00").unwrap_or(input);
        Self::parse(&format!("+{digits}"))
    }

    /// The full number, `+` included. Use only where the number must leave the process.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The digits without the `+`.
    pub fn digits(&self) -> &str {
        &self.0[1..]
    }

    /// `+1321****879`: at most the first four and the last three digits, and never
    /// fewer than three digits hidden.
    pub fn masked(&self) -> String {
        let digits = self.digits();
        // parse() guarantees at least 7 digits, so these slices are in range.
        let head = 4.min(digits.len() - 6);
        let tail = digits.len() - 3;
        format!(
            "+{}{}{}",
            &digits[..head],
            "*".repeat(tail - head),
            &digits[tail..]
        )
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhoneNumber({})", self.masked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_e164() {
        let n = PhoneNumber::parse("+13216549878").unwrap();
        assert_eq!(n.as_str(), "+13216549878");
        assert_eq!(n.digits(), "13216549878");
    }

    #[test]
    fn rejects_non_e164() {
        assert_eq!(
            PhoneNumber::parse("13216549878"),
            Err(PhoneNumberError::MissingPlus)
        );
        assert_eq!(
            PhoneNumber::parse("+1321 654"),
            Err(PhoneNumberError::NotDigits)
        );
        assert_eq!(
            PhoneNumber::parse("+123456"),
            Err(PhoneNumberError::BadLength)
        );
        assert_eq!(
            PhoneNumber::parse("+1234567890123456"),
            Err(PhoneNumberError::BadLength)
        );
        assert_eq!(
            PhoneNumber::parse("+0123456789"),
            Err(PhoneNumberError::LeadingZero)
        );
        assert!(PhoneNumber::parse("+1234567").is_ok());
        assert!(PhoneNumber::parse("+123456789012345").is_ok());
    }

    #[test]
    fn masks_middle_digits() {
        let n = PhoneNumber::parse("+13216549878").unwrap();
        assert_eq!(n.masked(), "+1321****878");
        assert_eq!(format!("{n}"), "+1321****878");
        assert!(!format!("{n:?}").contains("13216549878"));
        let short = PhoneNumber::parse("+1234567").unwrap();
        assert_eq!(short.masked(), "+1***567");
    }

    #[test]
    fn international_forms_without_plus_read_as_e164() {
        for input in [
            "+4915112345678",
            "004915112345678",
            "4915112345678",
            " 4915112345678 ",
        ] {
            assert_eq!(
                PhoneNumber::parse_international(input).unwrap().as_str(),
                "+4915112345678",
                "{input:?}"
            );
        }
        assert_eq!(
            PhoneNumber::parse_international("015112345678"),
            Err(PhoneNumberError::LeadingZero)
        );
        assert!(PhoneNumber::parse_international("49-151").is_err());
        assert!(PhoneNumber::parse_international("").is_err());
    }
}
