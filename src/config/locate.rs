//! Finding the line of a key in the TOML source, for error messages.

/// The 1-based line where `key` is set in `[section]` (or the `index`th `[[section]]`):
/// the key's own line if present, else the section header's line.
pub(super) fn locate_key(
    source: &str,
    section: &str,
    index: Option<usize>,
    key: &str,
) -> Option<usize> {
    let header = match index {
        Some(_) => format!("[[{section}]]"),
        None => format!("[{section}]"),
    };
    let mut seen = 0usize;
    let mut header_line = None;
    for (n, raw) in source.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.starts_with('[') {
            if header_line.is_some() {
                break;
            }
            if line == header {
                if seen == index.unwrap_or(0) {
                    header_line = Some(n + 1);
                }
                seen += 1;
            }
            continue;
        }
        if header_line.is_some() {
            if let Some((name, _)) = line.split_once('=') {
                if name.trim() == key {
                    return Some(n + 1);
                }
            }
        }
    }
    header_line
}
