//! `sms2fa hash-token`: the `token_sha256` value for a token, so the config file need
//! not hold the token itself.

use std::io::Read;

use anyhow::{bail, Context};
use sha2::{Digest, Sha256};

/// The token from `--token`, or else all of standard input without the final line
/// break (`echo` and most editors add one that is not part of the token).
pub fn run(token: Option<String>) -> anyhow::Result<()> {
    let token = match token {
        Some(token) => token,
        None => {
            let mut input = String::new();
            std::io::stdin()
                .read_to_string(&mut input)
                .context("cannot read the token from standard input")?;
            strip_line_break(&input).to_owned()
        }
    };
    if token.is_empty() {
        bail!("the token is empty; pass it with --token or on standard input");
    }
    println!("{}", token_sha256(&token));
    Ok(())
}

pub fn token_sha256(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn strip_line_break(input: &str) -> &str {
    input
        .strip_suffix("\r\n")
        .or_else(|| input.strip_suffix('\n'))
        .unwrap_or(input)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_like_sha256sum() {
        // printf '%s' secret | sha256sum
        assert_eq!(
            token_sha256("secret"),
            "2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b"
        );
        assert_eq!(strip_line_break("a b\n"), "a b");
        assert_eq!(strip_line_break("a\r\n"), "a");
        assert_eq!(strip_line_break("a\n\n"), "a\n");
    }
}
