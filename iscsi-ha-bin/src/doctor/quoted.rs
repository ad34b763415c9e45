//! The quoted strings of drbd.conf and lvm.conf, which both escape with a backslash.

/// Reads what follows an opening `"` up to its closing one, a backslash taking the next
/// character as it is. An unclosed string is an error rather than the rest of the file.
pub(super) fn rest_of_quoted(chars: &mut impl Iterator<Item = char>) -> Result<String, String> {
    let mut s = String::new();
    loop {
        match chars.next() {
            Some('"') => return Ok(s),
            Some('\\') => s.extend(chars.next()),
            Some(c) => s.push(c),
            None => return Err("a quoted string is not closed".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_to_the_closing_quote_and_keeps_escaped_characters() {
        let mut chars = r#"a \"b\\ c" tail"#.chars();
        assert_eq!(rest_of_quoted(&mut chars).unwrap(), r#"a "b\ c"#);
        assert_eq!(chars.collect::<String>(), " tail");
        assert!(rest_of_quoted(&mut "open".chars()).is_err());
    }
}
