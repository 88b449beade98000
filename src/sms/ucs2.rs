//! UCS-2 user data (TP-DCS 0x08), written as UTF-16BE so that characters outside the
//! BMP travel as surrogate pairs, which is what current handsets expect.

use super::DecodeError;

/// UTF-16BE octets of UTF-16 code units.
pub fn units_to_bytes(units: &[u16]) -> Vec<u8> {
    units.iter().flat_map(|u| u.to_be_bytes()).collect()
}

/// Text from UTF-16BE user data. An odd octet count is an error; a lone surrogate (a
/// pair split across parts by some other sender) reads as U+FFFD, as a handset shows it.
pub fn decode(bytes: &[u8]) -> Result<String, DecodeError> {
    if bytes.len() % 2 != 0 {
        return Err(DecodeError::Invalid("odd length of UCS-2 user data"));
    }
    // chunks_exact(2) yields two-octet slices only, so both indexes are in range.
    let units = bytes
        .chunks_exact(2)
        .map(|pair| u16::from_be_bytes([pair[0], pair[1]]));
    Ok(char::decode_utf16(units)
        .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bmp_and_astral_characters() {
        // "世界您好！" from python-gsmmodem's UCS-2 SMS-SUBMIT vector.
        let units: Vec<u16> = "世界您好！".encode_utf16().collect();
        assert_eq!(
            hex::encode_upper(units_to_bytes(&units)),
            "4E16754C60A8597DFF01"
        );
        // U+1F510 LOCK WITH KEY is the surrogate pair D83D DD10.
        let units: Vec<u16> = "🔐".encode_utf16().collect();
        assert_eq!(units_to_bytes(&units), [0xD8, 0x3D, 0xDD, 0x10]);
        assert_eq!(decode(&[0xD8, 0x3D, 0xDD, 0x10]).unwrap(), "🔐");
    }

    #[test]
    fn odd_length_and_lone_surrogates() {
        assert!(decode(&[0x00]).is_err());
        assert_eq!(decode(&[0xD8, 0x3D, 0x00, 0x41]).unwrap(), "\u{FFFD}A");
    }
}
