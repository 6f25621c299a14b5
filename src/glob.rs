//! Redis's glob matcher (`stringmatchlen`), used by KEYS, SCAN/HSCAN MATCH and CONFIG GET.
//!
//! `*` any run of bytes, `?` any one byte, `[abc]` a class, `[^abc]` a negated class (only
//! `^` negates), `[a-z]` a range (reversed ranges are normalised), `\x` escapes x inside
//! and outside classes. An unterminated class runs to the end of the pattern.

/// True if `string` matches `pattern` (byte-wise; `nocase` folds ASCII case).
pub fn matches(pattern: &[u8], string: &[u8], nocase: bool) -> bool {
    // Redis's stringmatchlen never enters its loop for an empty string: "" matches only
    // the empty pattern — not "*" (callers that treat "*" as "everything", as KEYS, SCAN
    // and HSCAN do, check for it first), "**" or "?*".
    if string.is_empty() {
        return pattern.is_empty();
    }
    // Bound the work on hostile patterns such as "*a*a*a*a*…" (Redis caps recursion too).
    let mut budget: u32 = 1_000_000;
    match_at(pattern, string, nocase, &mut budget)
}

fn fold(b: u8, nocase: bool) -> u8 {
    if nocase {
        b.to_ascii_lowercase()
    } else {
        b
    }
}

fn match_at(mut p: &[u8], mut s: &[u8], nocase: bool, budget: &mut u32) -> bool {
    if *budget == 0 {
        return false;
    }
    *budget -= 1;
    while let Some(&pc) = p.first() {
        match pc {
            b'*' => {
                while p.len() > 1 && p[1] == b'*' {
                    p = &p[1..];
                }
                if p.len() == 1 {
                    return true;
                }
                for i in 0..=s.len() {
                    if match_at(&p[1..], &s[i..], nocase, budget) {
                        return true;
                    }
                    if *budget == 0 {
                        return false;
                    }
                }
                return false;
            }
            b'?' => {
                if s.is_empty() {
                    return false;
                }
                s = &s[1..];
            }
            b'[' => {
                let Some(&c) = s.first() else { return false };
                p = &p[1..];
                let negate = p.first() == Some(&b'^');
                if negate {
                    p = &p[1..];
                }
                let mut matched = false;
                loop {
                    // A class costs its length at every position a `*` tries.
                    if *budget == 0 {
                        return false;
                    }
                    *budget -= 1;
                    match p {
                        [] => break,
                        [b'\\', esc, ..] => {
                            if fold(*esc, nocase) == fold(c, nocase) {
                                matched = true;
                            }
                            p = &p[2..];
                        }
                        [b']', ..] => break,
                        [lo, b'-', hi, ..] => {
                            let (mut a, mut b) = (fold(*lo, nocase), fold(*hi, nocase));
                            if a > b {
                                std::mem::swap(&mut a, &mut b);
                            }
                            let x = fold(c, nocase);
                            if x >= a && x <= b {
                                matched = true;
                            }
                            p = &p[3..];
                        }
                        [one, ..] => {
                            if fold(*one, nocase) == fold(c, nocase) {
                                matched = true;
                            }
                            p = &p[1..];
                        }
                    }
                }
                if negate {
                    matched = !matched;
                }
                if !matched {
                    return false;
                }
                s = &s[1..];
                if p.is_empty() {
                    // Unterminated class: it consumed the rest of the pattern.
                    return s.is_empty();
                }
            }
            b'\\' if p.len() >= 2 => {
                p = &p[1..];
                if s.first().map(|&c| fold(c, nocase)) != Some(fold(p[0], nocase)) {
                    return false;
                }
                s = &s[1..];
            }
            _ => {
                if s.first().map(|&c| fold(c, nocase)) != Some(fold(pc, nocase)) {
                    return false;
                }
                s = &s[1..];
            }
        }
        p = &p[1..];
        if s.is_empty() {
            while p.first() == Some(&b'*') {
                p = &p[1..];
            }
            return p.is_empty();
        }
    }
    s.is_empty()
}

#[cfg(test)]
mod tests {
    use super::matches;

    fn m(p: &str, s: &str) -> bool {
        matches(p.as_bytes(), s.as_bytes(), false)
    }

    #[test]
    fn basics() {
        // An empty string matches only the empty pattern, as Redis's stringmatchlen.
        assert!(!m("*", ""));
        assert!(!m("**", ""));
        assert!(m("", ""));
        assert!(!m("", "a"));
        assert!(m("*", "anything"));
        assert!(m("h?llo", "hello"));
        assert!(!m("h?llo", "hllo"));
        assert!(m("h*llo", "heeeello"));
        assert!(m("h[ae]llo", "hallo"));
        assert!(!m("h[ae]llo", "hillo"));
        assert!(m("h[^e]llo", "hallo"));
        assert!(!m("h[^e]llo", "hello"));
        assert!(m("h[!e]llo", "h!llo"), "only ^ negates");
        assert!(m("h[a-b]llo", "hbllo"));
        assert!(m("h[b-a]llo", "hallo"), "reversed range");
        assert!(m("h\\*llo", "h*llo"));
        assert!(!m("h\\*llo", "hello"));
        assert!(m("user:*", "user:1000"));
        assert!(!m("user:*", "use"));
        assert!(m("a*b*c", "aXXbYYc"));
        assert!(!m("a*b*c", "aXXbYY"));
        assert!(m("[abc", "a"), "unterminated class");
        assert!(matches(b"HELLO", b"hello", true));
    }

    #[test]
    fn hostile_patterns_terminate() {
        let p = "*a".repeat(30) + "b";
        let s = "a".repeat(100);
        assert!(!m(&p, &s));
        // An unterminated class after a star used to cost its length per position, uncounted.
        let p = "*[".to_string() + &"x".repeat(300_000);
        let started = std::time::Instant::now();
        assert!(!m(&p, &"y".repeat(64)));
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }
}
