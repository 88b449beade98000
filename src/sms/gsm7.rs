//! The GSM 03.38 default alphabet and its extension table (3GPP TS 23.038 §6.2.1,
//! §6.2.1.1), and the packing of septets into octets (§6.1.2.1.1) with the fill bits a
//! user data header needs (TS 23.040 §9.2.3.24).

/// The escape septet that announces a character from the extension table.
pub const ESC: u8 = 0x1B;

/// The default alphabet, indexed by septet. Slot 0x1B is the escape, not a character:
/// it holds `None` so that no input character ever maps to it.
const BASIC: [Option<char>; 128] = {
    let chars: [char; 128] = [
        '@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å', //
        'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', '\u{1B}', 'Æ', 'æ', 'ß',
        'É', //
        ' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/', //
        '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?', //
        '¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O', //
        'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§', //
        '¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', //
        'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à', //
    ];
    let mut table = [None; 128];
    let mut i = 0;
    while i < 128 {
        if i != ESC as usize {
            table[i] = Some(chars[i]);
        }
        i += 1;
    }
    table
};

/// The extension table: (septet after ESC, character). Form feed doubles as the page
/// break of 23.038; the others are the only ones every handset knows.
pub const EXTENSION: [(u8, char); 10] = [
    (0x0A, '\u{0C}'),
    (0x14, '^'),
    (0x28, '{'),
    (0x29, '}'),
    (0x2F, '\\'),
    (0x3C, '['),
    (0x3D, '~'),
    (0x3E, ']'),
    (0x40, '|'),
    (0x65, '€'),
];

/// Every character of the alphabet and its extension table, for property tests.
#[cfg(test)]
pub fn all_chars() -> Vec<char> {
    BASIC
        .iter()
        .flatten()
        .copied()
        .chain(EXTENSION.iter().map(|&(_, c)| c))
        .collect()
}

/// The septets one character is written with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Septets {
    /// A character of the default alphabet.
    One(u8),
    /// ESC followed by this septet of the extension table.
    Escaped(u8),
}

impl Septets {
    pub fn len(self) -> usize {
        match self {
            Self::One(_) => 1,
            Self::Escaped(_) => 2,
        }
    }

    pub fn push_to(self, out: &mut Vec<u8>) {
        match self {
            Self::One(s) => out.push(s),
            Self::Escaped(s) => out.extend_from_slice(&[ESC, s]),
        }
    }
}

/// How `c` is written in GSM 7-bit, or `None` when it is not in the alphabet (the text
/// then goes out as UCS-2; nothing is ever approximated).
pub fn char_septets(c: char) -> Option<Septets> {
    if let Some(pos) = BASIC.iter().position(|&b| b == Some(c)) {
        // The table has 128 entries, so the position fits a septet.
        return u8::try_from(pos).ok().map(Septets::One);
    }
    EXTENSION
        .iter()
        .find(|&&(_, e)| e == c)
        .map(|&(s, _)| Septets::Escaped(s))
}

/// The unpacked septets of `text`, or `None` when a character is not in the alphabet.
pub fn to_septets(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len());
    for c in text.chars() {
        char_septets(c)?.push_to(&mut out);
    }
    Some(out)
}

/// The number of septets `text` needs in GSM 7-bit (characters of the extension table
/// count two), or `None` when a character is not in the alphabet and the text goes
/// out as UCS-2.
pub fn septet_len(text: &str) -> Option<usize> {
    text.chars()
        .try_fold(0, |n, c| char_septets(c).map(|s| n + s.len()))
}

/// `c` is sent unchanged in text mode with `AT+CSCS="GSM"`: a printable ASCII character
/// whose GSM code is its ASCII code. Anything else (`@` is 0x00, `$` is 0x02, the
/// extension table needs 0x1B, which aborts text input) would reach the modem as a
/// control byte.
pub fn is_text_mode_safe(c: char) -> bool {
    matches!(c, ' '..='~') && char_septets(c) == Some(Septets::One(c as u8))
}

/// Text from unpacked septets. Reading is lenient, as 23.038 asks of a receiver: an ESC
/// before a septet that has no extension character shows the default character, and an
/// ESC at the very end shows a space.
pub fn from_septets(septets: &[u8]) -> String {
    let mut out = String::with_capacity(septets.len());
    let mut iter = septets.iter().map(|&s| s & 0x7F);
    while let Some(s) = iter.next() {
        if s == ESC {
            match iter.next() {
                Some(next) => out.push(extension_char(next).unwrap_or_else(|| basic_char(next))),
                None => out.push(' '),
            }
        } else {
            out.push(basic_char(s));
        }
    }
    out
}

fn extension_char(septet: u8) -> Option<char> {
    EXTENSION
        .iter()
        .find(|&&(s, _)| s == septet)
        .map(|&(_, c)| c)
}

fn basic_char(septet: u8) -> char {
    // ESC ESC is reserved for a further table; 23.038 asks for a space meanwhile.
    BASIC
        .get(usize::from(septet))
        .copied()
        .flatten()
        .unwrap_or(' ')
}

/// Pack septets into octets, least significant bit first, after `fill_bits` zero bits
/// (0..=6) that align the first septet with the end of a user data header.
pub fn pack(septets: &[u8], fill_bits: u8) -> Vec<u8> {
    let fill = usize::from(fill_bits);
    let mut out = vec![0u8; (fill + 7 * septets.len()).div_ceil(8)];
    for (i, &s) in septets.iter().enumerate() {
        let s = s & 0x7F;
        let bit = fill + 7 * i;
        let (byte, shift) = (bit / 8, bit % 8);
        if let Some(o) = out.get_mut(byte) {
            *o |= s << shift;
        }
        if shift > 1 {
            if let Some(o) = out.get_mut(byte + 1) {
                *o |= s >> (8 - shift);
            }
        }
    }
    out
}

/// Unpack `count` septets that start after `fill_bits` bits of `octets`; `None` when the
/// octets are too short to hold them.
pub fn unpack(octets: &[u8], fill_bits: u8, count: usize) -> Option<Vec<u8>> {
    let fill = usize::from(fill_bits);
    if fill + 7 * count > 8 * octets.len() {
        return None;
    }
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let bit = fill + 7 * i;
        let (byte, shift) = (bit / 8, bit % 8);
        let low = u16::from(*octets.get(byte)?);
        let high = u16::from(octets.get(byte + 1).copied().unwrap_or(0));
        let word = (high << 8) | low;
        // Masked to seven bits, so the narrowing is exact.
        out.push(((word >> shift) & 0x7F) as u8);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hellohello_packs_to_the_published_octets() {
        // The classic example of GSM 03.38 packing (dreamfabric's "SMS and the PDU
        // format", also in python-gsmmodem's test_pdu.py).
        let septets = to_septets("hellohello").unwrap();
        assert_eq!(hex::encode_upper(pack(&septets, 0)), "E8329BFD4697D9EC37");
        let back = unpack(&hex::decode("E8329BFD4697D9EC37").unwrap(), 0, 10).unwrap();
        assert_eq!(from_septets(&back), "hellohello");
    }

    #[test]
    fn hello_world_packs_like_python_gsmmodem() {
        // python-gsmmodem test_pdu.py: "Hello World!" in its SMS-SUBMIT vector.
        let septets = to_septets("Hello World!").unwrap();
        assert_eq!(
            hex::encode_upper(pack(&septets, 0)),
            "C8329BFD065DDF72363904"
        );
    }

    #[test]
    fn fill_bit_after_an_8_bit_concat_header() {
        // Six header octets are 48 bits; one fill bit puts the first septet at bit 49.
        // "He" after one fill bit: 'H' fills bits 1..8 (0x48 << 1 = 0x90), so 'e' starts
        // exactly on the second octet.
        assert_eq!(pack(&[0x48, 0x65], 1), vec![0x90, 0x65]);
        assert_eq!(unpack(&[0x90, 0x65], 1, 2), Some(vec![0x48, 0x65]));
        // Two fill bits push a septet across the octet boundary.
        assert_eq!(pack(&[0x7F], 2), vec![0xFC, 0x01]);
        assert_eq!(unpack(&[0xFC, 0x01], 2, 1), Some(vec![0x7F]));
    }

    #[test]
    fn extension_characters_cost_two_septets() {
        for (septet, c) in EXTENSION {
            assert_eq!(char_septets(c), Some(Septets::Escaped(septet)));
            assert_eq!(to_septets(&c.to_string()), Some(vec![ESC, septet]));
            assert_eq!(from_septets(&[ESC, septet]), c.to_string());
        }
        assert_eq!(septet_len("[Shop] € refund"), Some(18));
    }

    #[test]
    fn characters_outside_the_alphabet_are_refused() {
        for c in ['ç', 'Ж', '🔐', '\u{1B}', '`', '\t', 'ą'] {
            assert_eq!(char_septets(c), None, "{c:?}");
        }
        assert_eq!(to_septets("Código"), None);
        assert_eq!(septet_len("naïve"), None);
    }

    #[test]
    fn lenient_reading_of_odd_escapes() {
        // ESC before 'A' (no extension character) shows 'A'; a trailing ESC a space.
        assert_eq!(from_septets(&[ESC, 0x41, ESC]), "A ");
        assert_eq!(from_septets(&[ESC, ESC]), " ");
    }

    #[test]
    fn text_mode_safe_is_ascii_with_identical_codes() {
        assert!("Your code: 123456 (valid 10 min)"
            .chars()
            .all(is_text_mode_safe));
        for c in ['@', '$', '_', '{', '€', '\n', 'é', '`'] {
            assert!(!is_text_mode_safe(c), "{c:?}");
        }
    }

    #[test]
    fn unpack_refuses_short_input() {
        assert_eq!(unpack(&[0xE8, 0x32], 0, 3), None);
        assert_eq!(unpack(&[], 0, 0), Some(vec![]));
    }
}
