//! The text of a relayed SMS, as the account wrote it.

/// A non-empty SMS text. Whether it fits in the allowed number of parts is decided
/// where the parts are planned; the text itself is never logged (its `Debug` hides it).
#[derive(Clone, PartialEq, Eq)]
pub struct SmsText(String);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SmsTextError {
    #[error("is empty")]
    Empty,
    #[error("holds a NUL character, which no SMS alphabet can carry")]
    Nul,
}

impl SmsText {
    pub fn parse(text: &str) -> Result<Self, SmsTextError> {
        if text.is_empty() {
            return Err(SmsTextError::Empty);
        }
        if text.contains('\0') {
            return Err(SmsTextError::Nul);
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SmsText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SmsText({} chars)", self.0.chars().count())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_nul_are_refused_and_debug_hides_the_text() {
        assert_eq!(SmsText::parse(""), Err(SmsTextError::Empty));
        assert_eq!(SmsText::parse("a\0b"), Err(SmsTextError::Nul));
        let text = SmsText::parse("Your code 123456").unwrap();
        assert_eq!(text.as_str(), "Your code 123456");
        assert_eq!(format!("{text:?}"), "SmsText(16 chars)");
    }
}
