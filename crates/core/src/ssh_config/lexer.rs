//! Splitting an ssh_config line into words ([`words`]): quoting and trailing comments.

/// Splits a line into words: whitespace-separated, `"..."` or `'...'` quoting, `#` at the start
/// of an unquoted word ends the line. `None` for an unterminated quote.
pub(super) fn words(s: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let Some(&c) = chars.peek() else {
            return Some(out);
        };
        if c == '#' {
            return Some(out);
        }
        let mut word = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() {
                break;
            }
            chars.next();
            if c == '"' || c == '\'' {
                loop {
                    match chars.next() {
                        Some(q) if q == c => break,
                        Some('\\') if chars.peek() == Some(&c) || chars.peek() == Some(&'\\') => {
                            word.extend(chars.next());
                        }
                        Some(x) => word.push(x),
                        None => return None,
                    }
                }
            } else {
                word.push(c);
            }
        }
        out.push(word);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_split_on_whitespace_with_quotes_and_comments() {
        assert_eq!(
            words(r#"a "b c" 'd e'  f#g # rest"#),
            Some(vec![
                "a".to_string(),
                "b c".into(),
                "d e".into(),
                "f#g".into()
            ])
        );
        assert_eq!(words(r#""a \" b""#), Some(vec![r#"a " b"#.to_string()]));
        assert_eq!(words("  "), Some(Vec::new()));
        assert_eq!(words("\"open"), None);
    }
}
