//! The lexical rules drbd.conf and lvm.conf share: `#` comments to the end of the line,
//! double-quoted strings escaped with a backslash, words ended by whitespace or punctuation.

/// One lexeme of either file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Lexeme {
    /// An unquoted word.
    Word(String),
    /// A quoted string, without its quotes.
    Text(String),
    /// One of the punctuation characters the caller named.
    Sym(char),
}

/// Splits `text` into lexemes; each character of `symbols` is a lexeme of its own and ends a
/// word. An unclosed quoted string is an error rather than the rest of the file.
pub(super) fn lex(text: &str, symbols: &str) -> Result<Vec<Lexeme>, String> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '#' => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '"' => out.push(Lexeme::Text(rest_of_quoted(&mut chars)?)),
            c if symbols.contains(c) => out.push(Lexeme::Sym(c)),
            c if c.is_whitespace() => {}
            c => {
                let mut s = String::from(c);
                while let Some(&n) = chars.peek() {
                    if n.is_whitespace() || n == '"' || n == '#' || symbols.contains(n) {
                        break;
                    }
                    s.push(n);
                    chars.next();
                }
                out.push(Lexeme::Word(s));
            }
        }
    }
    Ok(out)
}

/// Reads what follows an opening `"` up to its closing one, a backslash taking the next
/// character as it is. An unclosed string is an error rather than the rest of the file.
fn rest_of_quoted(chars: &mut impl Iterator<Item = char>) -> Result<String, String> {
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

    #[test]
    fn comments_quotes_words_and_symbols() {
        use Lexeme::*;
        let text = "a{b \"c d\" # gone \"\n e=f;";
        assert_eq!(
            lex(text, "{=;").unwrap(),
            vec![
                Word("a".into()),
                Sym('{'),
                Word("b".into()),
                Text("c d".into()),
                Word("e".into()),
                Sym('='),
                Word("f".into()),
                Sym(';')
            ]
        );
        assert!(lex("x \"open", "").is_err());
    }
}
