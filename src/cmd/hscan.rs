//! HSCAN key cursor [MATCH pattern] [COUNT count] [NOVALUES]

use super::{flags, parse, Args, Command, Ctx};
use crate::error::CmdError;
use crate::glob;
use crate::protocol::Reply;

pub const COMMANDS: &[Command] = &[Command::new("hscan", -3, hscan)
    .flags(flags::READONLY)
    .keys(1, 1, 1)
    .doc(
        "hash",
        "2.8.0",
        "Iterates over fields and values of a hash.",
        "O(1) for every call. O(N) for a complete iteration, including enough command calls for the cursor to return back to 0. N is the number of elements inside the collection.",
        "key cursor [MATCH pattern] [COUNT count] [NOVALUES]",
    )];

/// Fields (slots, in a table) visited per call unless COUNT says otherwise.
const DEFAULT_COUNT: usize = 10;

struct Options<'a> {
    count: usize,
    pattern: Option<&'a [u8]>,
    no_values: bool,
}

/// Options are read left to right, any case, repeats allowed (the last one wins).
fn parse_options<'a>(args: Args<'a>) -> Result<Options<'a>, CmdError> {
    let mut opts = Options {
        count: DEFAULT_COUNT,
        pattern: None,
        no_values: false,
    };
    let mut i = 3;
    while i < args.len() {
        let opt = args.get(i);
        let has_value = i + 1 < args.len();
        if parse::is(opt, "count") && has_value {
            let n = parse::int(args.get(i + 1))?;
            if n < 1 {
                return Err(CmdError::Syntax);
            }
            opts.count = usize::try_from(n).unwrap_or(usize::MAX);
            i += 2;
        } else if parse::is(opt, "match") && has_value {
            opts.pattern = Some(args.get(i + 1));
            i += 2;
        } else if parse::is(opt, "novalues") {
            opts.no_values = true;
            i += 1;
        } else {
            return Err(CmdError::Syntax);
        }
    }
    Ok(opts)
}

/// A missing key answers an empty, finished scan before the options are even read.
/// Expired fields are skipped, never deleted (spec §5.4).
fn hscan(ctx: &mut Ctx<'_, '_>, args: Args<'_>, reply: &mut Reply<'_>) -> Result<(), CmdError> {
    let cursor = parse::cursor(args.get(2))?;
    let now = ctx.now_ms;
    let mut db = ctx.db();
    let Some(hash) = db.get(args.get(1), now) else {
        reply.array(2);
        reply.bulk_u64(0);
        reply.array(0);
        return Ok(());
    };
    let opts = parse_options(args)?;
    // Redis skips matching for the pattern "*", and its stringmatchlen never enters its
    // loop for an empty string: "" matches only "" (and "*"), not "**", "?*" or "*[".
    let keep = |field: &[u8], expired: bool| {
        !expired
            && opts.pattern.is_none_or(|p| {
                p == b"*"
                    || (field.is_empty() && p.is_empty())
                    || (!field.is_empty() && glob::matches(p, field, false))
            })
    };

    // The header (the next cursor and the number of matches) is known only after the
    // step, so it is written then, in front of the elements: one pass, nothing kept.
    let mark = reply.defer();
    let mut matched = 0;
    let next = hash.scan(cursor, opts.count, |f| {
        if keep(f.field, f.is_expired(now)) {
            matched += 1;
            reply.bulk(f.field);
            if !opts.no_values {
                reply.bulk(f.value);
            }
        }
    });
    reply.prepend(mark, |reply| {
        reply.array(2);
        reply.bulk_u64(next);
        reply.array(if opts.no_values { matched } else { matched * 2 });
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use crate::cmd::hset::fixtures::{force_table, set_with_deadline, stored_len};
    use crate::cmd::testing::TestEnv;

    const EMPTY_SCAN: &str = "*2\r\n$1\r\n0\r\n*0\r\n";

    /// Splits a scan reply into (cursor, elements).
    fn parse_scan(reply: &str) -> (u64, Vec<String>) {
        let lines: Vec<&str> = reply.split("\r\n").collect();
        assert_eq!(lines[0], "*2", "{reply:?}");
        let cursor = lines[2].parse().unwrap_or(u64::MAX);
        let n: usize = lines[3][1..].parse().unwrap_or(0);
        let items = (0..n).map(|i| lines[5 + 2 * i].to_string()).collect();
        (cursor, items)
    }

    #[test]
    fn appendix_b_examples() {
        let mut env = TestEnv::new();
        env.run("HSET h f1 v1 f2 v2");
        assert_eq!(
            env.run("HSCAN h 0"),
            "*2\r\n$1\r\n0\r\n*4\r\n$2\r\nf1\r\n$2\r\nv1\r\n$2\r\nf2\r\n$2\r\nv2\r\n"
        );
        assert_eq!(
            env.run("HSCAN h 0 NOVALUES"),
            "*2\r\n$1\r\n0\r\n*2\r\n$2\r\nf1\r\n$2\r\nf2\r\n"
        );
        env.resp3();
        assert_eq!(
            env.run("HSCAN h 0 novalues"),
            "*2\r\n$1\r\n0\r\n*2\r\n$2\r\nf1\r\n$2\r\nf2\r\n"
        );
    }

    #[test]
    fn empty_field_matches_only_the_empty_pattern_and_star() {
        // Redis's stringmatchlen never enters its loop for an empty string, so "" matches
        // only the pattern "" (and "*", which HSCAN does not match at all).
        let mut env = TestEnv::new();
        env.run(r#"HSET h "" v x y"#);
        for pattern in ["**", "*[", "\\\\*", "?", "***"] {
            let (_, items) =
                parse_scan(&env.run(&format!(r#"HSCAN h 0 MATCH "{pattern}" NOVALUES"#)));
            assert!(
                !items.contains(&String::new()),
                "MATCH {pattern:?}: {items:?}"
            );
        }
        for pattern in ["*", ""] {
            let (_, items) =
                parse_scan(&env.run(&format!(r#"HSCAN h 0 MATCH "{pattern}" NOVALUES"#)));
            assert!(
                items.contains(&String::new()),
                "MATCH {pattern:?}: {items:?}"
            );
        }
    }

    #[test]
    fn order_of_checks() {
        // Spec §15 #15.
        let mut env = TestEnv::new();
        env.run("HSET k a 1");
        assert_eq!(env.run("HSCAN nokey 0 COUNT 0"), EMPTY_SCAN);
        assert_eq!(env.run("HSCAN nokey 0 BOGUS"), EMPTY_SCAN);
        assert_eq!(env.run("HSCAN nokey 0 COUNT x"), EMPTY_SCAN);
        assert_eq!(env.run("HSCAN k 0 COUNT 0"), "-ERR syntax error\r\n");
        assert_eq!(env.run("HSCAN k x"), "-ERR invalid cursor\r\n");
        assert_eq!(env.run("HSCAN nokey x COUNT 0"), "-ERR invalid cursor\r\n");
        assert_eq!(env.run("HSCAN k -1"), "-ERR invalid cursor\r\n");
        assert_eq!(
            env.run("HSCAN k 18446744073709551616"),
            "-ERR invalid cursor\r\n"
        );
        assert_eq!(
            env.run("HSCAN k 0 COUNT x"),
            "-ERR value is not an integer or out of range\r\n"
        );
        assert_eq!(env.run("HSCAN k 0 COUNT -1"), "-ERR syntax error\r\n");
        assert_eq!(env.run("HSCAN k 0 COUNT"), "-ERR syntax error\r\n");
        assert_eq!(env.run("HSCAN k 0 MATCH"), "-ERR syntax error\r\n");
        assert_eq!(env.run("HSCAN k 0 TYPE hash"), "-ERR syntax error\r\n");
        assert_eq!(env.run("HSCAN k 0 NOVALUES x"), "-ERR syntax error\r\n");
        // A bad option after good ones still fails the whole command.
        assert_eq!(env.run("HSCAN k 0 COUNT 5 BOGUS"), "-ERR syntax error\r\n");
        assert_eq!(
            env.run("HSCAN k"),
            "-ERR wrong number of arguments for 'hscan' command\r\n"
        );
    }

    #[test]
    fn options_any_case_and_repeated() {
        let mut env = TestEnv::new();
        env.run("HSET k a 1 b 2");
        assert_eq!(
            env.run("HSCAN k 0 count 1 CoUnT 100 match a* MATCH b* NoValues novalues"),
            "*2\r\n$1\r\n0\r\n*1\r\n$1\r\nb\r\n"
        );
        assert_eq!(
            env.run("HSCAN k 18446744073709551615 COUNT 9223372036854775807"),
            "*2\r\n$1\r\n0\r\n*4\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2\r\n"
        );
    }

    #[test]
    fn match_filters_fields_not_values() {
        let mut env = TestEnv::new();
        env.run("HSET k foo 1 bar foo fob 3");
        assert_eq!(
            env.run("HSCAN k 0 MATCH fo*"),
            "*2\r\n$1\r\n0\r\n*4\r\n$3\r\nfoo\r\n$1\r\n1\r\n$3\r\nfob\r\n$1\r\n3\r\n"
        );
        assert_eq!(
            env.run("HSCAN k 0 MATCH f?[ob] NOVALUES"),
            "*2\r\n$1\r\n0\r\n*2\r\n$3\r\nfoo\r\n$3\r\nfob\r\n"
        );
        assert_eq!(env.run("HSCAN k 0 MATCH FOO"), "*2\r\n$1\r\n0\r\n*0\r\n");
        assert_eq!(
            env.run("HSCAN k 0 MATCH nothing"),
            "*2\r\n$1\r\n0\r\n*0\r\n"
        );
    }

    #[test]
    fn compact_hash_returns_everything_at_once() {
        let mut env = TestEnv::new();
        for i in 0..50 {
            env.run(&format!("HSET k f{i} v{i}"));
        }
        let (cursor, items) = parse_scan(&env.run("HSCAN k 0 COUNT 1"));
        assert_eq!(cursor, 0);
        assert_eq!(items.len(), 100);
        // Whatever the cursor, a compact hash is one step.
        let (cursor, items) = parse_scan(&env.run("HSCAN k 77 NOVALUES"));
        assert_eq!((cursor, items.len()), (0, 50));
    }

    #[test]
    fn table_hash_full_iteration() {
        let mut env = TestEnv::new();
        force_table(&env);
        for i in 0..500 {
            env.run(&format!("HSET k f{i} v{i}"));
        }
        let mut seen = HashSet::new();
        let mut cursor = 0;
        let mut calls = 0;
        loop {
            let (next, items) = parse_scan(&env.run(&format!("HSCAN k {cursor} COUNT 7")));
            for pair in items.chunks(2) {
                assert_eq!(pair[0][1..], pair[1][1..]);
                seen.insert(pair[0].clone());
            }
            calls += 1;
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        assert_eq!(seen.len(), 500);
        assert!(calls > 10, "COUNT bounds the work per call");
        // MATCH applies after the step: fewer items, same coverage.
        let mut matched = HashSet::new();
        let mut cursor = 0;
        loop {
            let (next, items) =
                parse_scan(&env.run(&format!("HSCAN k {cursor} MATCH f1* NOVALUES")));
            matched.extend(items);
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        assert_eq!(matched.len(), 111);
    }

    #[test]
    fn expired_fields_are_skipped_not_deleted() {
        let mut env = TestEnv::new();
        env.run("HSET k live 1");
        set_with_deadline(&env, "k", "dead", "x", env.now_ms() + 1);
        assert_eq!(parse_scan(&env.run("HSCAN k 0 NOVALUES")).1.len(), 2);
        env.advance_ms(2);
        assert_eq!(
            env.run("HSCAN k 0"),
            "*2\r\n$1\r\n0\r\n*2\r\n$4\r\nlive\r\n$1\r\n1\r\n"
        );
        assert_eq!(stored_len(&env, "k"), Some(2));

        force_table(&env);
        env.run("HSET t live 1");
        set_with_deadline(&env, "t", "dead", "x", env.now_ms() + 1);
        env.advance_ms(2);
        assert_eq!(
            env.run("HSCAN t 0 COUNT 100"),
            "*2\r\n$1\r\n0\r\n*2\r\n$4\r\nlive\r\n$1\r\n1\r\n"
        );
        assert_eq!(stored_len(&env, "t"), Some(2));
    }

    #[test]
    fn all_expired_hash_scans_empty() {
        let mut env = TestEnv::new();
        set_with_deadline(&env, "k", "f", "v", env.now_ms() + 1);
        env.advance_ms(2);
        assert_eq!(env.run("HSCAN k 0"), EMPTY_SCAN);
        // The hash had no live field, so it is gone and its options are not checked.
        assert_eq!(env.run("HSCAN k 0 COUNT 0"), EMPTY_SCAN);
    }
}
