use std::fmt;

/// The placeholder that a send request's `body` must contain.
pub const CODE_PLACEHOLDER: &str = "{code}";
const MAX_SERVICE_CHARS: usize = 64;

/// An SMS template holding `{code}` at least once. Its length is not limited here: the
/// one rule on a text's size is the number of SMS parts it renders to
/// (`[sms] max_parts`), judged once the code is in it.
#[derive(Clone, PartialEq, Eq)]
pub struct Template(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("must contain the placeholder {{code}}")]
    NoPlaceholder,
}

impl Template {
    pub fn parse(body: &str) -> Result<Self, TemplateError> {
        if !body.contains(CODE_PLACEHOLDER) {
            return Err(TemplateError::NoPlaceholder);
        }
        Ok(Self(body.to_owned()))
    }

    /// The SMS text with every `{code}` replaced.
    pub fn render(&self, code: &super::OtpCode) -> String {
        self.0.replace(CODE_PLACEHOLDER, code.expose())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Template({} chars)", self.0.chars().count())
    }
}

/// The application's service name that scopes a code (`"service"` in requests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceName(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServiceNameError {
    #[error("must not be empty")]
    Empty,
    #[error("must be at most {MAX_SERVICE_CHARS} characters")]
    TooLong,
    #[error("must not contain control characters")]
    ControlCharacter,
}

impl ServiceName {
    pub fn parse(name: &str) -> Result<Self, ServiceNameError> {
        if name.trim().is_empty() {
            return Err(ServiceNameError::Empty);
        }
        if name.chars().count() > MAX_SERVICE_CHARS {
            return Err(ServiceNameError::TooLong);
        }
        if name.chars().any(char::is_control) {
            return Err(ServiceNameError::ControlCharacter);
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otp::OtpCode;

    #[test]
    fn template_needs_the_placeholder() {
        assert_eq!(
            Template::parse("Your code"),
            Err(TemplateError::NoPlaceholder)
        );
        let long = "x".repeat(5000).replace("xxxxxx", "{code}");
        assert_eq!(Template::parse(&long).unwrap().as_str(), long);
        let template = Template::parse("{code} is your code, {code}").unwrap();
        let code = OtpCode::generate(6);
        let text = template.render(&code);
        assert_eq!(text, format!("{0} is your code, {0}", code.expose()));
    }

    #[test]
    fn service_name_rules() {
        assert_eq!(ServiceName::parse(" "), Err(ServiceNameError::Empty));
        assert_eq!(
            ServiceName::parse("a\nb"),
            Err(ServiceNameError::ControlCharacter)
        );
        assert_eq!(
            ServiceName::parse(&"s".repeat(65)),
            Err(ServiceNameError::TooLong)
        );
        assert_eq!(ServiceName::parse("Restcomm").unwrap().as_str(), "Restcomm");
    }
}
