//! `application/x-www-form-urlencoded` pairs (a query string or a form body) with the
//! values as bytes: Kannel's `charset` says how to read them, so they are decoded
//! only once it is known. `form_urlencoded` decodes values as UTF-8, replacing what is
//! not, which would silently change a Latin-1 or UTF-16 text.

use percent_encoding::percent_decode;

/// The pairs of `input`, in order; a key without `=` has an empty value. Keys are
/// read as UTF-8 (invalid bytes replaced: no known key has any).
pub fn pairs(input: &[u8]) -> Vec<(String, Vec<u8>)> {
    input
        .split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = match pair.iter().position(|&b| b == b'=') {
                Some(at) => (&pair[..at], &pair[at + 1..]),
                None => (pair, &[][..]),
            };
            let key = String::from_utf8_lossy(&decode(key)).into_owned();
            (key, decode(value))
        })
        .collect()
}

/// `+` is a space, `%XX` a byte.
fn decode(raw: &[u8]) -> Vec<u8> {
    let spaced: Vec<u8> = raw
        .iter()
        .map(|&b| if b == b'+' { b' ' } else { b })
        .collect();
    percent_decode(&spaced).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_stay_bytes_and_plus_is_a_space() {
        let parsed = pairs(b"to=%2B4915112345678&text=caf%E9+ok&flag&&empty=");
        assert_eq!(
            parsed,
            vec![
                ("to".to_owned(), b"+4915112345678".to_vec()),
                ("text".to_owned(), b"caf\xe9 ok".to_vec()),
                ("flag".to_owned(), Vec::new()),
                ("empty".to_owned(), Vec::new()),
            ]
        );
    }
}
