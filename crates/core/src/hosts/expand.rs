//! pdsh/clush range expansion ([`expand`]): `web[01-12,20].dc[1-2]` into host strings, with
//! the number of hosts computed before any is built.

use std::fmt::Write as _;

use super::target::{HostTarget, spec_error};
use crate::Error;

/// One `N` or `A-B` element of a bracket; numbers are printed zero-padded to `width`.
#[derive(Debug, Clone, Copy)]
struct Span {
    lo: u64,
    hi: u64,
    width: usize,
}

/// A piece of one item of a spec: literal text, or a numeric bracket.
#[derive(Debug)]
enum Segment<'a> {
    Text(&'a str),
    Range(Vec<Span>),
}

/// Expands a pdsh/clush host spec into host strings, keeping order, without de-duplication.
///
/// 1. Top-level `,` separates items; surrounding whitespace of an item is trimmed, empty items
///    (`a,,b`) and whitespace inside an item are errors.
/// 2. A bracket holds comma-separated numbers and `A-B` ranges: `web[01-12,20]` gives
///    `web01`..`web12`, `web20`. A lower bound with a leading zero sets the padding width
///    (`[08-10]` gives `08`, `09`, `10`); `[1-3]` gives `1`, `2`, `3`.
/// 3. Several brackets give the cartesian product, leftmost slowest:
///    `web[01-02].dc[1-2]` gives `web01.dc1`, `web01.dc2`, `web02.dc1`, `web02.dc2`.
/// 4. A bracket whose content contains `:` is an IPv6 literal and is kept as is, so
///    `root@[::1]:22` and `root@web[1-3]:2222` both work.
///
/// The result is not validated as [`HostTarget`]s; [`HostList`](super::HostList) and the
/// hosts-file functions do that.
///
/// ```
/// let hosts = fleetsh_core::hosts::expand("root@web[08-10]:2222,[::1]:22", 100)?;
/// assert_eq!(
///     hosts,
///     ["root@web08:2222", "root@web09:2222", "root@web10:2222", "[::1]:22"]
/// );
/// # Ok::<(), fleetsh_core::Error>(())
/// ```
///
/// # Errors
///
/// - [`Error::HostSpec`] (with the column) for unbalanced or nested brackets, empty items or
///   elements, non-numeric or reversed ranges;
/// - [`Error::TooManyHosts`] when the spec would give more than `limit` hosts. The count is
///   computed before any host string is built.
pub fn expand(spec: &str, limit: usize) -> Result<Vec<String>, Error> {
    let mut items = Vec::new();
    let mut total: usize = 0;
    for (start, end) in split_items(spec)? {
        let (segments, count) = parse_item(spec, start, end)?;
        total = count
            .and_then(|count| total.checked_add(count))
            .filter(|&t| t <= limit)
            .ok_or_else(|| too_many(spec, limit))?;
        items.push(segments);
    }

    let mut out = Vec::with_capacity(total);
    for segments in &items {
        materialize(segments, &mut out);
    }
    Ok(out)
}

pub(super) fn too_many(spec: &str, limit: usize) -> Error {
    Error::TooManyHosts {
        what: spec.to_owned(),
        limit,
    }
}

/// Splits `spec` at top-level commas into byte ranges, checking that brackets balance and do not
/// nest.
fn split_items(spec: &str) -> Result<Vec<(usize, usize)>, Error> {
    let mut items = Vec::new();
    let mut open: Option<usize> = None;
    let mut start = 0;
    for (i, c) in spec.char_indices() {
        match c {
            '[' if open.is_some() => return Err(spec_error(spec, i, "nested '['")),
            '[' => open = Some(i),
            ']' if open.is_none() => {
                return Err(spec_error(spec, i, "']' without a matching '['"));
            }
            ']' => open = None,
            ',' if open.is_none() => {
                items.push((start, i));
                start = i + 1;
            }
            _ => {}
        }
    }
    if let Some(i) = open {
        return Err(spec_error(spec, i, "unclosed '['"));
    }
    items.push((start, spec.len()));
    Ok(items)
}

/// Parses the item `spec[start..end]` (balanced, un-nested brackets) into segments and counts
/// the hosts it gives (`None` if the count overflows `usize`).
fn parse_item(
    spec: &str,
    start: usize,
    end: usize,
) -> Result<(Vec<Segment<'_>>, Option<usize>), Error> {
    let raw = &spec[start..end];
    let trimmed = raw.trim_start();
    let start = start + (raw.len() - trimmed.len());
    let end = start + trimmed.trim_end().len();
    if start == end {
        return Err(spec_error(spec, start, "empty item"));
    }

    let mut segments = Vec::new();
    let mut count = Some(1_usize);
    let mut text_start = start;
    let mut pos = start;
    while pos < end {
        let rest = &spec[pos..end];
        let Some(c) = rest.chars().next() else { break };
        if c.is_whitespace() {
            return Err(spec_error(spec, pos, "whitespace inside a host spec"));
        }
        if c != '[' {
            pos += c.len_utf8();
            continue;
        }
        // split_items guarantees a matching ']' in this item.
        let close = pos + rest.find(']').unwrap_or(rest.len());
        let content = &spec[pos + 1..close];
        if content.contains(':') {
            // An IPv6 literal such as `[::1]`: kept as text.
            if let Some(comma) = content.find(',') {
                return Err(spec_error(
                    spec,
                    pos + 1 + comma,
                    "a bracketed ipv6 address cannot hold a list",
                ));
            }
            pos = close + 1;
            continue;
        }
        if text_start < pos {
            segments.push(Segment::Text(&spec[text_start..pos]));
        }
        let (spans, n) = parse_bracket(spec, pos, content)?;
        count = count.zip(n).and_then(|(c, n)| c.checked_mul(n));
        segments.push(Segment::Range(spans));
        pos = close + 1;
        text_start = pos;
    }
    if text_start < end {
        segments.push(Segment::Text(&spec[text_start..end]));
    }
    Ok((segments, count))
}

/// Parses the content of the bracket opened at byte `open` of `spec`, and counts its numbers
/// (`None` if the count overflows `usize`).
fn parse_bracket(
    spec: &str,
    open: usize,
    content: &str,
) -> Result<(Vec<Span>, Option<usize>), Error> {
    if content.is_empty() {
        return Err(spec_error(spec, open, "empty brackets"));
    }
    let mut spans = Vec::new();
    let mut count = Some(0_usize);
    let mut at = open + 1;
    for elem in content.split(',') {
        let span = parse_element(spec, at, elem)?;
        let n = span
            .hi
            .checked_sub(span.lo)
            .and_then(|d| d.checked_add(1))
            .and_then(|d| usize::try_from(d).ok());
        count = count.zip(n).and_then(|(c, n)| c.checked_add(n));
        spans.push(span);
        at += elem.len() + 1;
    }
    Ok((spans, count))
}

/// Parses one bracket element (`N` or `A-B`) that starts at byte `at` of `spec`.
fn parse_element(spec: &str, at: usize, elem: &str) -> Result<Span, Error> {
    if elem.is_empty() {
        return Err(spec_error(spec, at, "empty range element"));
    }
    let number = |text: &str, text_at: usize| -> Result<u64, Error> {
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(spec_error(
                spec,
                text_at,
                format!("range element {elem:?} is not a number or a range like 1-10"),
            ));
        }
        text.parse::<u64>()
            .map_err(|_| spec_error(spec, text_at, format!("number {text} is too large")))
    };
    match elem.split_once('-') {
        None => {
            let n = number(elem, at)?;
            Ok(Span {
                lo: n,
                hi: n,
                width: elem.len(),
            })
        }
        Some((a, b)) => {
            let lo = number(a, at)?;
            let hi = number(b, at + a.len() + 1)?;
            if lo > hi {
                return Err(spec_error(
                    spec,
                    at,
                    format!("reversed range {elem} (write {b}-{a})"),
                ));
            }
            let width = if a.starts_with('0') { a.len() } else { 0 };
            Ok(Span { lo, hi, width })
        }
    }
}

/// Appends the hosts of one item to `out`, leftmost bracket slowest.
fn materialize(segments: &[Segment<'_>], out: &mut Vec<String>) {
    let mut acc = vec![String::new()];
    for segment in segments {
        match segment {
            Segment::Text(text) => acc.iter_mut().for_each(|s| s.push_str(text)),
            Segment::Range(spans) => {
                let mut next = Vec::new();
                for prefix in &acc {
                    for span in spans {
                        for n in span.lo..=span.hi {
                            let mut s = prefix.clone();
                            // Writing to a String cannot fail.
                            let _ = write!(s, "{n:0width$}", width = span.width);
                            next.push(s);
                        }
                    }
                }
                acc = next;
            }
        }
    }
    out.append(&mut acc);
}

/// Expands `spec` and parses each host as a [`HostTarget`].
///
/// A parse error of an expanded host names that host and the spec it came from.
pub(crate) fn expand_targets(spec: &str, limit: usize) -> Result<Vec<HostTarget>, Error> {
    expand(spec, limit)?
        .into_iter()
        .map(|host| {
            HostTarget::parse(&host).map_err(|err| match err {
                Error::HostSpec {
                    spec: bad,
                    column,
                    reason,
                } if bad != spec => Error::HostSpec {
                    reason: format!("{reason} (expanded from {spec:?})"),
                    spec: bad,
                    column,
                },
                other => other,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::hosts::DEFAULT_MAX_HOSTS;
    use crate::hosts::assertions::{assert_too_many, spec_err};

    fn ex(spec: &str) -> Vec<String> {
        expand(spec, 1000).unwrap_or_else(|e| panic!("{spec:?}: {e}"))
    }

    #[test]
    fn expand_plain_and_lists() {
        assert_eq!(ex("web1"), ["web1"]);
        assert_eq!(ex("a, b ,c"), ["a", "b", "c"]);
        assert_eq!(ex("  web1  "), ["web1"]);
        // Order kept, no de-duplication.
        assert_eq!(ex("b,a,b"), ["b", "a", "b"]);
    }

    #[test]
    fn expand_padding() {
        assert_eq!(ex("[1-3]"), ["1", "2", "3"]);
        assert_eq!(ex("n[08-10]"), ["n08", "n09", "n10"]);
        assert_eq!(ex("n[8-10]"), ["n8", "n9", "n10"]);
        assert_eq!(ex("n[001-002]"), ["n001", "n002"]);
        assert_eq!(ex("n[0-2]"), ["n0", "n1", "n2"]);
        assert_eq!(ex("n[007]"), ["n007"]);
        let web = ex("web[01-12,20]");
        assert_eq!(web.len(), 13);
        assert_eq!(web[0], "web01");
        assert_eq!(web[8], "web09");
        assert_eq!(web[11], "web12");
        assert_eq!(web[12], "web20");
    }

    #[test]
    fn expand_mixed_elements_keep_order() {
        assert_eq!(ex("h[5,1-2,9]"), ["h5", "h1", "h2", "h9"]);
        assert_eq!(ex("h[3],x[1-2]y,z"), ["h3", "x1y", "x2y", "z"]);
    }

    #[test]
    fn expand_product_leftmost_slowest() {
        assert_eq!(
            ex("web[01-02].dc[1-2]"),
            ["web01.dc1", "web01.dc2", "web02.dc1", "web02.dc2"]
        );
        assert_eq!(
            ex("r[1-2]n[1-3]"),
            ["r1n1", "r1n2", "r1n3", "r2n1", "r2n2", "r2n3"]
        );
        // A later bracket with several elements still varies fastest as a whole.
        assert_eq!(
            ex("r[1-2]n[5,1-2]"),
            ["r1n5", "r1n1", "r1n2", "r2n5", "r2n1", "r2n2"]
        );
    }

    #[test]
    fn expand_user_port_around_ranges() {
        assert_eq!(
            ex("root@web[1-3]:2222"),
            ["root@web1:2222", "root@web2:2222", "root@web3:2222"]
        );
        assert_eq!(ex("u[1-2]@h"), ["u1@h", "u2@h"]);
        assert_eq!(ex("h:[22,2222]"), ["h:22", "h:2222"]);
    }

    #[test]
    fn expand_ipv6_items() {
        assert_eq!(ex("[::1]:22"), ["[::1]:22"]);
        assert_eq!(
            ex("root@[::1]:22,web[1-2]"),
            ["root@[::1]:22", "web1", "web2"]
        );
        assert_eq!(ex("[fe80::1]:[22-23]"), ["[fe80::1]:22", "[fe80::1]:23"]);
        assert_eq!(ex("fe80::[1-2]"), ["fe80::1", "fe80::2"]);
        let (column, reason) = spec_err(expand("[::1,::2]", 10));
        assert_eq!(column, 5);
        assert!(reason.contains("ipv6"), "{reason}");
    }

    #[test]
    fn expand_errors_have_column_and_reason() {
        let cases: &[(&str, usize, &str)] = &[
            ("", 1, "empty item"),
            ("   ", 4, "empty item"),
            ("a,,b", 3, "empty item"),
            ("a,", 3, "empty item"),
            (",a", 1, "empty item"),
            ("a, ,b", 4, "empty item"),
            ("web[5-1]", 5, "reversed range 5-1"),
            ("web[1-3,09-02]", 9, "reversed range 09-02"),
            ("web[1-3", 4, "unclosed '['"),
            ("web1-3]", 7, "']' without a matching '['"),
            ("a,web[1,[2]]", 9, "nested '['"),
            ("web[]", 4, "empty brackets"),
            ("web[1,,2]", 7, "empty range element"),
            ("web[1,]", 7, "empty range element"),
            ("web[a-c]", 5, "range element \"a-c\" is not a number"),
            ("web[1-c]", 7, "range element \"1-c\" is not a number"),
            ("web[-1]", 5, "is not a number"),
            ("web[1-2-3]", 7, "is not a number"),
            ("web[x]", 5, "range element \"x\""),
            ("web[ 1]", 5, "is not a number"),
            (
                "web[99999999999999999999]",
                5,
                "number 99999999999999999999 is too large",
            ),
            ("web 1", 4, "whitespace inside a host spec"),
        ];
        for &(input, column, reason) in cases {
            let (got_column, got_reason) = spec_err(expand(input, 1000));
            assert_eq!(got_column, column, "column for {input:?} ({got_reason})");
            assert!(
                got_reason.contains(reason),
                "reason for {input:?}: {got_reason:?} lacks {reason:?}"
            );
        }
    }

    #[test]
    fn limit_huge_product_fails_instantly() {
        let started = Instant::now();
        let spec = "h[1-99999999][1-99999999]";
        assert_too_many(expand(spec, DEFAULT_MAX_HOSTS), spec, DEFAULT_MAX_HOSTS);
        // A product overflowing usize, and a range spanning all of u64.
        let spec = "h[0-18446744073709551615]";
        assert_too_many(expand(spec, usize::MAX), spec, usize::MAX);
        let spec = "h[1-4294967295][1-4294967295][1-4294967295]";
        assert_too_many(expand(spec, usize::MAX), spec, usize::MAX);
        // Materializing any of these would take minutes and gigabytes; the bound is loose so a
        // busy CI machine cannot fail it.
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn limit_exactly_at_limit_is_ok() {
        assert_eq!(expand("h[1-10]", 10).map(|v| v.len()).ok(), Some(10));
        assert_too_many(expand("h[1-10]", 9), "h[1-10]", 9);
        // The limit counts all items together.
        assert_eq!(expand("h[1-5],g[1-5]", 10).map(|v| v.len()).ok(), Some(10));
        assert_too_many(expand("h[1-5],g[1-5],x", 10), "h[1-5],g[1-5],x", 10);
        assert_too_many(expand("h", 0), "h", 0);
    }
}
