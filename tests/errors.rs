//! Byte-exact request → reply tables over a real socket: every error string of spec
//! Appendix A that hashd's commands can emit, the §15 edge cases (RESP2 and, where the shape
//! differs, RESP3), the bonus checks and the Appendix B examples.
//!
//! Each row runs on its own fresh server (manual clock at [`T0_MS`], active expiry off, as
//! with `DEBUG SET-ACTIVE-EXPIRE 0`), so rows are independent. A failing row is reported by
//! its id together with the step that failed; every table reports all of its failing rows
//! at once.
//!
//! Row notation: each step is `(command, expected)`. The command is redis-cli syntax (quotes
//! allowed) sent as a multibulk request. The expected reply is exact, written as in the spec
//! with its final `\r\n` left out. An expected reply ending in `…` is a prefix match.
//! Pseudo-commands: `@advance <ms>` moves the manual clock; `@resp3` sends `HELLO 3`;
//! `@c2 <command>` runs the command on a second connection; `@closed` expects the server
//! to close the connection.

mod common;

use std::time::Duration;

use common::{show, Client, TestServer, T0_MS};

struct Row {
    id: &'static str,
    steps: &'static [(&'static str, &'static str)],
}

macro_rules! rows {
    ($( $id:literal : [ $( $cmd:literal => $exp:literal ),+ $(,)? ] ),* $(,)?) => {
        &[ $( Row { id: $id, steps: &[ $( ($cmd, $exp) ),+ ] } ),* ]
    };
}

#[derive(Clone, Copy, Default)]
struct Setup {
    requirepass: Option<&'static str>,
}

fn run_rows(table: &str, rows: &[Row], setup: Setup) {
    let mut failures = Vec::new();
    for row in rows {
        if let Err(msg) = run_row(row, setup) {
            failures.push(format!("row {:?}: {msg}", row.id));
        }
    }
    assert!(
        failures.is_empty(),
        "{table}: {} of {} rows failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}

fn run_row(row: &Row, setup: Setup) -> Result<(), String> {
    let mut builder = TestServer::builder()
        .manual_clock(T0_MS)
        .active_expire(false);
    if let Some(pw) = setup.requirepass {
        builder = builder.requirepass(pw);
    }
    let srv = builder.start();
    let mut c1 = srv.client();
    let mut c2: Option<Client> = None;
    for (i, &(cmd, expected)) in row.steps.iter().enumerate() {
        let step = format!("step {} `{cmd}`", i + 1);
        if let Some(ms) = cmd.strip_prefix("@advance ") {
            let ms: u64 = ms.parse().map_err(|_| format!("{step}: bad @advance"))?;
            srv.advance_ms(ms);
            continue;
        }
        if cmd == "@closed" {
            let mut buf = [0u8; 64];
            use std::io::Read;
            let _ = c1.stream.set_read_timeout(Some(Duration::from_secs(5)));
            return match c1.stream.read(&mut buf) {
                Ok(0) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Ok(()),
                Ok(n) => Err(format!("{step}: expected a close, got {}", show(&buf[..n]))),
                Err(e) => Err(format!("{step}: expected a close, got {e}")),
            };
        }
        let (client, line) = match cmd.strip_prefix("@c2 ") {
            Some(rest) => (c2.get_or_insert_with(|| srv.client()), rest),
            None => (&mut c1, cmd),
        };
        let line = if line == "@resp3" { "HELLO 3" } else { line };
        let args = common::split_line(line).ok_or_else(|| format!("{step}: unbalanced quotes"))?;
        client
            .try_send(&common::encode_command(&args))
            .map_err(|e| format!("{step}: write failed: {e}"))?;
        let got = client.try_read_reply().map_err(|e| {
            format!(
                "{step}: expected {expected:?}, got {}",
                common::describe_read_error(&e)
            )
        })?;
        let ok = if line == "HELLO 3" && cmd == "@resp3" {
            got.starts_with(b"%7\r\n")
        } else if let Some(prefix) = expected.strip_suffix('…') {
            got.starts_with(prefix.as_bytes())
        } else {
            let mut want = expected.as_bytes().to_vec();
            want.extend_from_slice(b"\r\n");
            got == want
        };
        if !ok {
            let shown_expected = if cmd == "@resp3" {
                "%7\\r\\n…"
            } else {
                expected
            };
            return Err(format!(
                "{step}\n    expected: \"{}\"\n         got: {}",
                shown_expected.replace('\r', "\\r").replace('\n', "\\n"),
                show(&got)
            ));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Spec §3: dispatch errors.

#[test]
fn dispatch_errors() {
    run_rows(
        "dispatch",
        rows![
            "unknown command with args": [
                "FOO a b" => "-ERR unknown command 'FOO', with args beginning with: 'a' 'b' "],
            "unknown command without args": [
                "FOO" => "-ERR unknown command 'FOO', with args beginning with: "],
            "string command GET is unknown": [
                "GET k" => "-ERR unknown command 'GET', with args beginning with: 'k' "],
            "list command LPUSH is unknown": [
                "LPUSH l a" => "-ERR unknown command 'LPUSH', with args beginning with: 'l' 'a' "],
            "unknown subcommand CLIENT FOO": [
                "CLIENT FOO" => "-ERR unknown subcommand 'FOO'. Try CLIENT HELP."],
            "unknown subcommand keeps its case, container upper-cased": [
                "client foo" => "-ERR unknown subcommand 'foo'. Try CLIENT HELP."],
            "unknown subcommand CONFIG": [
                "config nosuch" => "-ERR unknown subcommand 'nosuch'. Try CONFIG HELP."],
            "unknown subcommand COMMAND": [
                "COMMAND nosuch" => "-ERR unknown subcommand 'nosuch'. Try COMMAND HELP."],
            "arity hset": ["HSET k" => "-ERR wrong number of arguments for 'hset' command"],
            "arity is reported lower-case": ["hGeT k" => "-ERR wrong number of arguments for 'hget' command"],
            "arity hgetall too many": ["HGETALL a b" => "-ERR wrong number of arguments for 'hgetall' command"],
            "arity container alone": ["CLIENT" => "-ERR wrong number of arguments for 'client' command"],
            "arity client|setname": ["CLIENT SETNAME" => "-ERR wrong number of arguments for 'client|setname' command"],
            "arity config|get": ["config get" => "-ERR wrong number of arguments for 'config|get' command"],
            "arity hexpire": ["HEXPIRE k 10 FIELDS 1" => "-ERR wrong number of arguments for 'hexpire' command"],
            "arity httl": ["HTTL k FIELDS 1" => "-ERR wrong number of arguments for 'httl' command"],
            "arity hgetex": ["HGETEX k FIELDS 1" => "-ERR wrong number of arguments for 'hgetex' command"],
            "arity hsetex": ["HSETEX k FIELDS 1 f" => "-ERR wrong number of arguments for 'hsetex' command"],
            "arity select": ["SELECT" => "-ERR wrong number of arguments for 'select' command"],
            "arity echo": ["ECHO" => "-ERR wrong number of arguments for 'echo' command"],
            "arity ping (checked inside the command)": ["PING a b" => "-ERR wrong number of arguments for 'ping' command"],
            // Redis rejects EXEC through execCommandAbort whether or not MULTI is active
            // (server.c rejectCommand*), so even outside MULTI the arity error is an EXECABORT.
            "arity exec outside MULTI": [
                "EXEC extra" => "-EXECABORT Transaction discarded because of: wrong number of arguments for 'exec' command"],
        ],
        Setup::default(),
    );
}

/// Error replies echo the client's bytes unchanged, UTF-8 or not, as Redis 7.4.1 does
/// (not as U+FFFD); a NUL ends a quoted name (C's `%s`). Same bytes in RESP3.
#[test]
fn error_replies_keep_their_bytes() {
    let srv = TestServer::start();
    let mut c = srv.client();
    for resp3 in [false, true] {
        if resp3 {
            c.hello3();
        }
        let cases: &[(&[&[u8]], &[u8])] = &[
            (
                &[b"n\xffo", b"a\xfe", b"b"],
                b"-ERR unknown command 'n\xffo', with args beginning with: 'a\xfe' 'b' \r\n",
            ),
            (
                &[b"CLIENT", b"s\xffub"],
                b"-ERR unknown subcommand 's\xffub'. Try CLIENT HELP.\r\n",
            ),
            (
                &[b"command", b"\xe9x"],
                b"-ERR unknown subcommand '\xe9x'. Try COMMAND HELP.\r\n",
            ),
            (
                &[b"config", b"a\r\nb"],
                b"-ERR unknown subcommand 'a  b'. Try CONFIG HELP.\r\n",
            ),
            (
                &[b"expire", b"k", b"10", b"\xff\xfe"],
                b"-ERR Unsupported option \xff\xfe\r\n",
            ),
            (
                &[b"obj\x00ect", b"x"],
                b"-ERR unknown command 'obj', with args beginning with: 'x' \r\n",
            ),
            (
                &[b"client", b"setinfo", b"l\xffb\x00x", b"v"],
                b"-ERR Unrecognized option 'l\xffb'\r\n",
            ),
            (
                &[b"client", b"list", b"type", b"n\xff"],
                b"-ERR Unknown client type 'n\xff'\r\n",
            ),
            (
                &[b"client", b"kill", b"user", b"u\xfe"],
                b"-ERR No such user 'u\xfe'\r\n",
            ),
            (
                &[b"hello", b"3", b"\xffopt"],
                b"-ERR Syntax error in HELLO option '\xffopt'\r\n",
            ),
            (
                &[b"config", b"set", b"m\xffx", b"1"],
                b"-ERR Unknown option or number of arguments for CONFIG SET - 'm\xffx'\r\n",
            ),
            (
                &[b"debug", b"s\xffub\x00x"],
                b"-ERR unknown subcommand or wrong number of arguments for 's\xffub'. \
                  Try DEBUG HELP.\r\n",
            ),
            (
                &[b"HSETEX", b"k", b"o\xffp\x00t", b"FIELDS", b"1", b"f", b"v"],
                b"-ERR unknown argument: o\xffp\r\n",
            ),
        ];
        for (args, want) in cases {
            let got = c.cmd(args);
            assert_eq!(show(&got), show(want), "resp3 {resp3}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Appendix A: classic hash commands.

#[test]
fn hash_command_errors() {
    run_rows(
        "hash commands",
        rows![
            "HSET odd pairs": ["HSET k f1 v1 f2" => "-ERR wrong number of arguments for 'hset' command"],
            "HMSET odd pairs": ["HMSET k f1 v1 f2" => "-ERR wrong number of arguments for 'hmset' command"],
            "HINCRBY plus sign": ["HINCRBY k f +1" => "-ERR value is not an integer or out of range"],
            "HINCRBY word": ["HINCRBY k f abc" => "-ERR value is not an integer or out of range"],
            "HINCRBY leading zero": ["HINCRBY k f 01" => "-ERR value is not an integer or out of range"],
            "HINCRBY minus zero": ["HINCRBY k f -0" => "-ERR value is not an integer or out of range"],
            "HINCRBY empty": ["HINCRBY k f \"\"" => "-ERR value is not an integer or out of range"],
            "HINCRBY fraction": ["HINCRBY k f 1.5" => "-ERR value is not an integer or out of range"],
            "HINCRBY above i64": ["HINCRBY k f 9223372036854775808" => "-ERR value is not an integer or out of range"],
            "HINCRBY bad increment creates no key": [
                "HINCRBY k f x" => "-ERR value is not an integer or out of range",
                "EXISTS k" => ":0"],
            "HINCRBY stored value with a leading space": [
                "HSET k f \" 11\"" => ":1",
                "HINCRBY k f 1" => "-ERR hash value is not an integer"],
            "HINCRBY stored value with a trailing space": [
                "HSET k f \"11 \"" => ":1",
                "HINCRBY k f 1" => "-ERR hash value is not an integer"],
            "HINCRBY stored float": [
                "HSET k f 1.5" => ":1",
                "HINCRBY k f 1" => "-ERR hash value is not an integer"],
            "HINCRBY negative overflow keeps the value": [
                "HSET k n -9223372036854775484" => ":1",
                "HINCRBY k n -10000" => "-ERR increment or decrement would overflow",
                "HGET k n" => "$20\r\n-9223372036854775484"],
            "HINCRBY positive overflow": [
                "HSET k n 9223372036854775807" => ":1",
                "HINCRBY k n 1" => "-ERR increment or decrement would overflow"],
            "HINCRBYFLOAT word": ["HINCRBYFLOAT k f abc" => "-ERR value is not a valid float"],
            "HINCRBYFLOAT empty": ["HINCRBYFLOAT k f \"\"" => "-ERR value is not a valid float"],
            "HINCRBYFLOAT leading space": ["HINCRBYFLOAT k f \" 1\"" => "-ERR value is not a valid float"],
            "HINCRBYFLOAT trailing garbage": ["HINCRBYFLOAT k f 1x" => "-ERR value is not a valid float"],
            "HINCRBYFLOAT nan": ["HINCRBYFLOAT k f nan" => "-ERR value is not a valid float"],
            "HINCRBYFLOAT +inf": ["HINCRBYFLOAT k f +inf" => "-ERR value is NaN or Infinity"],
            "HINCRBYFLOAT -inf": ["HINCRBYFLOAT k f -inf" => "-ERR value is NaN or Infinity"],
            "HINCRBYFLOAT infinity": ["HINCRBYFLOAT k f infinity" => "-ERR value is NaN or Infinity"],
            "HINCRBYFLOAT stored word": [
                "HSET k f abc" => ":1",
                "HINCRBYFLOAT k f 1" => "-ERR hash value is not a float"],
            "HINCRBYFLOAT stored value with a space": [
                "HSET k f \"1 \"" => ":1",
                "HINCRBYFLOAT k f 1" => "-ERR hash value is not a float"],
            "HINCRBYFLOAT result overflows the long double": [
                "HSET k f 1e4932" => ":1",
                "HINCRBYFLOAT k f 1e4932" => "-ERR increment would produce NaN or Infinity"],
            "HRANDFIELD count i64::MIN": [
                "HRANDFIELD k -9223372036854775808" => "-ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"],
            "HRANDFIELD count not a number": ["HRANDFIELD k abc" => "-ERR value is not an integer or out of range"],
            "HRANDFIELD bad 4th argument": ["HRANDFIELD k 1 foo" => "-ERR syntax error"],
            "HRANDFIELD too many arguments": ["HRANDFIELD k 1 WITHVALUES x" => "-ERR syntax error"],
            "HRANDFIELD WITHVALUES count too big": [
                "HRANDFIELD k 4611686018427387904 WITHVALUES" => "-ERR value is out of range"],
            "HRANDFIELD WITHVALUES count too small": [
                "HRANDFIELD k -4611686018427387904 withvalues" => "-ERR value is out of range"],
            "HRANDFIELD WITHVALUES count at the limit": [
                "HRANDFIELD nokey 4611686018427387903 WITHVALUES" => "*0"],
            "HSCAN word cursor": ["HSCAN k x" => "-ERR invalid cursor"],
            "HSCAN negative cursor": ["HSCAN k -1" => "-ERR invalid cursor"],
            "HSCAN cursor above u64": ["HSCAN k 18446744073709551616" => "-ERR invalid cursor"],
            "HSCAN cursor u64::MAX on a missing key": [
                "HSCAN nokey 18446744073709551615" => "*2\r\n$1\r\n0\r\n*0"],
            "HSCAN missing key skips option checks": [
                "HSCAN nokey 0 BADOPT" => "*2\r\n$1\r\n0\r\n*0"],
            "HSCAN COUNT not a number": [
                "HSET k f v" => ":1",
                "HSCAN k 0 COUNT abc" => "-ERR value is not an integer or out of range"],
            "HSCAN COUNT 0": ["HSET k f v" => ":1", "HSCAN k 0 COUNT 0" => "-ERR syntax error"],
            "HSCAN COUNT negative": ["HSET k f v" => ":1", "HSCAN k 0 COUNT -1" => "-ERR syntax error"],
            "HSCAN MATCH without pattern": ["HSET k f v" => ":1", "HSCAN k 0 MATCH" => "-ERR syntax error"],
            "HSCAN unknown option": ["HSET k f v" => ":1", "HSCAN k 0 NOPE" => "-ERR syntax error"],
        ],
        Setup::default(),
    );
}

// ---------------------------------------------------------------------------------------
// Appendix A: field expiration (Redis 7.4).

#[test]
fn field_expiration_errors() {
    run_rows(
        "field expiration",
        rows![
            "HEXPIRE time not a number": [
                "HSET k f v" => ":1",
                "HEXPIRE k abc FIELDS 1 f" => "-ERR value is not an integer or out of range"],
            "HEXPIRE time above i64": [
                "HEXPIRE k 9223372036854775808 FIELDS 1 f" => "-ERR value is not an integer or out of range"],
            "HEXPIRE negative": ["HEXPIRE k -1 FIELDS 1 f" => "-ERR invalid expire time, must be >= 0"],
            "HEXPIREAT negative": [
                "HEXPIREAT k -9223372036854775808 FIELDS 1 f" => "-ERR invalid expire time, must be >= 0"],
            "HEXPIRE seconds above 2^46 ms": [
                "HEXPIRE k 70368744178 FIELDS 1 f" => "-ERR invalid expire time in 'hexpire' command"],
            "HEXPIRE huge": [
                "HEXPIRE k 9223372036854775807 FIELDS 1 f" => "-ERR invalid expire time in 'hexpire' command"],
            "HEXPIREAT seconds above 2^46 ms": [
                "HEXPIREAT k 70368744178 FIELDS 1 f" => "-ERR invalid expire time in 'hexpireat' command"],
            "HEXPIREAT largest second accepted": [
                "HSET k f v" => ":1",
                "HEXPIREAT k 70368744177 FIELDS 1 f" => "*1\r\n:1"],
            "HPEXPIRE relative time past 2^46 ms from now": [
                "HPEXPIRE k 70368744177663 FIELDS 1 f" => "-ERR invalid expire time in 'hpexpire' command"],
            "HPEXPIREAT above 2^46-1": [
                "HPEXPIREAT k 70368744177664 FIELDS 1 f" => "-ERR invalid expire time in 'hpexpireat' command"],
            "HEXPIRE FIELDS keyword missing": [
                "HEXPIRE k 10 FOO 1 f" => "-ERR Mandatory argument FIELDS is missing or not at the right position"],
            "HEXPIRE two conditions": [
                "HEXPIRE k 10 NX XX FIELDS 1 f" => "-ERR Mandatory argument FIELDS is missing or not at the right position"],
            "HEXPIRE FIELDS one position late": [
                "HEXPIRE k 10 1 FIELDS f" => "-ERR Mandatory argument FIELDS is missing or not at the right position"],
            "HEXPIRE numfields 0": [
                "HEXPIRE k 10 FIELDS 0 f" => "-ERR Parameter `numFields` should be greater than 0"],
            "HEXPIRE numfields negative": [
                "HPEXPIRE k 10 FIELDS -1 f" => "-ERR Parameter `numFields` should be greater than 0"],
            "HEXPIRE numfields not a number": [
                "HEXPIREAT k 10 NX FIELDS abc f" => "-ERR Parameter `numFields` should be greater than 0"],
            "HEXPIRE numfields too large": [
                "HEXPIRE k 10 FIELDS 2 f" => "-ERR The `numfields` parameter must match the number of arguments"],
            "HEXPIRE numfields too small": [
                "HPEXPIREAT k 10 GT FIELDS 1 f g" => "-ERR The `numfields` parameter must match the number of arguments"],
            "HTTL numfields 0": ["HTTL k FIELDS 0 f" => "-ERR Number of fields must be a positive integer"],
            "HTTL numfields negative": ["HTTL k FIELDS -1 f" => "-ERR Number of fields must be a positive integer"],
            "HTTL numfields not a number": ["HTTL k FIELDS abc f" => "-ERR Number of fields must be a positive integer"],
            "HTTL FIELDS missing": [
                "HTTL k FOO 1 f" => "-ERR Mandatory argument FIELDS is missing or not at the right position"],
            "HTTL count mismatch": [
                "HTTL k FIELDS 2 a" => "-ERR The `numfields` parameter must match the number of arguments"],
            "HPTTL numfields 0": ["HPTTL k FIELDS 0 f" => "-ERR Number of fields must be a positive integer"],
            "HEXPIRETIME FIELDS missing": [
                "HEXPIRETIME k FOO 1 f" => "-ERR Mandatory argument FIELDS is missing or not at the right position"],
            "HPEXPIRETIME count mismatch": [
                "HPEXPIRETIME k FIELDS 2 f" => "-ERR The `numfields` parameter must match the number of arguments"],
            "HPERSIST numfields 0": ["HPERSIST k FIELDS 0 f" => "-ERR Number of fields must be a positive integer"],
            "HPERSIST FIELDS missing": [
                "HPERSIST k NOTFIELDS 1 f" => "-ERR Mandatory argument FIELDS is missing or not at the right position"],
            "HPERSIST count mismatch": [
                "HPERSIST k FIELDS 3 a b" => "-ERR The `numfields` parameter must match the number of arguments"],
            "HTTL on a missing key": ["HTTL nokey FIELDS 2 a b" => "*2\r\n:-2\r\n:-2"],
            "HPERSIST on a missing key": ["HPERSIST nokey FIELDS 1 a" => "*1\r\n:-2"],
            "fields keyword is case-insensitive": [
                "HSET k f v" => ":1",
                "HPEXPIRE k 5000 nx fields 1 f" => "*1\r\n:1",
                "HPTTL k fields 1 f" => "*1\r\n:5000"],
        ],
        Setup::default(),
    );
}

// ---------------------------------------------------------------------------------------
// Appendix A: HGETDEL, HGETEX, HSETEX (Redis 8.0).

#[test]
fn redis8_hash_command_errors() {
    run_rows(
        "HGETDEL/HGETEX/HSETEX",
        rows![
            "HGETDEL FIELDS missing": [
                "HGETDEL k FOO 1 f" => "-ERR Mandatory argument FIELDS is missing or not at the right position"],
            "HGETDEL numfields 0": ["HGETDEL k FIELDS 0 f" => "-ERR Number of fields must be a positive integer"],
            "HGETDEL count mismatch": [
                "HGETDEL k FIELDS 2 f" => "-ERR The `numfields` parameter must match the number of arguments"],
            "HGETDEL missing key": ["HGETDEL nokey FIELDS 2 a b" => "*2\r\n$-1\r\n$-1"],
            "HGETEX EX not a number": [
                "HGETEX k EX abc FIELDS 1 f" => "-ERR value is not an integer or out of range"],
            "HGETEX EX negative": ["HGETEX k EX -1 FIELDS 1 f" => "-ERR invalid expire time, must be >= 0"],
            "HGETEX PX too big": [
                "HGETEX k PX 70368744177664 FIELDS 1 f" => "-ERR invalid expire time in 'hgetex' command"],
            "HGETEX EXAT too big": [
                "HGETEX k EXAT 70368744178 FIELDS 1 f" => "-ERR invalid expire time in 'hgetex' command"],
            "HGETEX PERSIST with a time": [
                "HGETEX k PERSIST 1 FIELDS 1 a" => "-ERR Mandatory argument FIELDS is missing or not at the right position"],
            "HGETEX PXAT without FIELDS": [
                "HGETEX k PXAT 1 1" => "-ERR Mandatory argument FIELDS is missing or not at the right position"],
            "HGETEX two options": [
                "HGETEX k EX 10 PX 10 FIELDS 1 f" => "-ERR Mandatory argument FIELDS is missing or not at the right position"],
            "HGETEX unknown option": [
                "HGETEX k NOPE FIELDS 1 f" => "-ERR Mandatory argument FIELDS is missing or not at the right position"],
            "HGETEX numfields 0": ["HGETEX k FIELDS 0 f" => "-ERR Number of fields must be a positive integer"],
            "HGETEX numfields above i64": [
                "HGETEX k FIELDS 9223372036854775808 f" => "-ERR Number of fields must be a positive integer"],
            "HGETEX count mismatch": [
                "HGETEX k FIELDS 2 f" => "-ERR The `numfields` parameter must match the number of arguments"],
            "HGETEX missing key": ["HGETEX nokey EX 10 FIELDS 2 a b" => "*2\r\n$-1\r\n$-1"],
            "HSETEX numfields 0": ["HSETEX k FIELDS 0 f v" => "-ERR invalid number of fields"],
            "HSETEX numfields not a number": ["HSETEX k FIELDS abc f v" => "-ERR invalid number of fields"],
            "HSETEX numfields above i32": ["HSETEX k FIELDS 2147483648 a b" => "-ERR invalid number of fields"],
            "HSETEX odd field/value list": [
                "HSETEX k FIELDS 2 a b c" => "-ERR wrong number of arguments for 'hsetex' command"],
            "HSETEX trailing argument": [
                "HSETEX k FIELDS 1 a b unknown" => "-ERR wrong number of arguments for 'hsetex' command"],
            "HSETEX count larger than pairs": [
                "HSETEX k FIELDS 2 a b" => "-ERR wrong number of arguments for 'hsetex' command"],
            "HSETEX too few after FIELDS": [
                "HSETEX k FNX FIELDS 1 a" => "-ERR wrong number of arguments for 'hsetex' command"],
            "HSETEX unknown token is echoed as typed": [
                "HSETEX k nx FIELDS 1 a b" => "-ERR unknown argument: nx"],
            "HSETEX number where an option goes": ["HSETEX k 1 FIELDS 1 a b" => "-ERR unknown argument: 1"],
            "HSETEX FNX and FXX": [
                "HSETEX k FNX FXX FIELDS 1 a b" => "-ERR Only one of FXX or FNX arguments can be specified"],
            "HSETEX FXX twice": [
                "HSETEX k fxx FXX FIELDS 1 a b" => "-ERR Only one of FXX or FNX arguments can be specified"],
            "HSETEX EX and PX": [
                "HSETEX k EX 10 PX 10 FIELDS 1 a b" => "-ERR Only one of EX, PX, EXAT, PXAT or KEEPTTL arguments can be specified"],
            "HSETEX KEEPTTL and EX": [
                "HSETEX k KEEPTTL EX 10 FIELDS 1 a b" => "-ERR Only one of EX, PX, EXAT, PXAT or KEEPTTL arguments can be specified"],
            "HSETEX KEEPTTL twice": [
                "HSETEX k KEEPTTL keepttl FIELDS 1 a b" => "-ERR Only one of EX, PX, EXAT, PXAT or KEEPTTL arguments can be specified"],
            "HSETEX time swallows FIELDS": [
                "HSETEX k EX FIELDS 1 a b" => "-ERR value is not an integer or out of range"],
            "HSETEX negative time": [
                "HSETEX k EX -1 FIELDS 1 a b" => "-ERR invalid expire time, must be >= 0"],
            "HSETEX time too big": [
                "HSETEX k PX 70368744177664 FIELDS 1 a b" => "-ERR invalid expire time in 'hsetex' command"],
            "HSETEX options in any order": [
                "HSETEX k PX 5000 FNX FIELDS 1 a b" => ":1",
                "HPTTL k FIELDS 1 a" => "*1\r\n:5000"],
            "HSETEX past time writes then deletes": [
                "HSETEX k EX 0 FIELDS 1 a b" => ":1",
                "EXISTS k" => ":0"],
        ],
        Setup::default(),
    );
}

// ---------------------------------------------------------------------------------------
// Appendix A: generic key commands.

#[test]
fn keyspace_errors() {
    run_rows(
        "keyspace",
        rows![
            "EXPIRE unknown option": ["EXPIRE k 10 FOO" => "-ERR Unsupported option FOO"],
            "EXPIRE options are parsed before the time": ["EXPIRE k abc FOO" => "-ERR Unsupported option FOO"],
            "EXPIRE NX XX": ["EXPIRE k 10 NX XX" => "-ERR NX and XX, GT or LT options at the same time are not compatible"],
            "EXPIRE NX GT": ["PEXPIRE k 10 GT NX" => "-ERR NX and XX, GT or LT options at the same time are not compatible"],
            "EXPIRE GT LT": ["EXPIREAT k 10 GT LT" => "-ERR GT and LT options at the same time are not compatible"],
            "EXPIRE time not a number": ["EXPIRE k abc" => "-ERR value is not an integer or out of range"],
            "EXPIRE seconds overflow": ["EXPIRE k 9223372036854775807" => "-ERR invalid expire time in 'expire' command"],
            "EXPIRE negative seconds overflow": [
                "EXPIRE k -9223372036854775808" => "-ERR invalid expire time in 'expire' command"],
            "PEXPIRE now plus time overflows": [
                "PEXPIRE k 9223372036854775807" => "-ERR invalid expire time in 'pexpire' command"],
            "EXPIREAT seconds overflow": [
                "EXPIREAT k 9223372036854775807" => "-ERR invalid expire time in 'expireat' command"],
            "EXPIRE missing key": ["EXPIRE nokey 10" => ":0"],
            "EXPIRE negative deletes": ["HSET k f v" => ":1", "EXPIRE k -1" => ":1", "EXISTS k" => ":0"],
            "RENAME missing source": ["RENAME nokey x" => "-ERR no such key"],
            "RENAMENX missing source": ["RENAMENX nokey x" => "-ERR no such key"],
            "RENAME onto itself": ["HSET k f v" => ":1", "RENAME k k" => "+OK", "RENAMENX k k" => ":0"],
            "SELECT not a number": ["SELECT abc" => "-ERR value is not an integer or out of range"],
            "SELECT above int": [
                "SELECT 2147483648" => "-ERR value is out of range, value must between -2147483648 and 2147483647"],
            "SELECT below int": [
                "SELECT -2147483649" => "-ERR value is out of range, value must between -2147483648 and 2147483647"],
            "SELECT 16 of 16": ["SELECT 16" => "-ERR DB index is out of range"],
            "SELECT negative": ["SELECT -1" => "-ERR DB index is out of range"],
            "SELECT last db": ["SELECT 15" => "+OK"],
            "FLUSHDB bad option": ["FLUSHDB foo" => "-ERR syntax error"],
            "FLUSHALL two options": ["FLUSHALL SYNC ASYNC" => "-ERR syntax error"],
            "FLUSHDB async": ["flushdb async" => "+OK"],
            "SCAN bad cursor": ["SCAN x" => "-ERR invalid cursor"],
            "SCAN COUNT 0": ["SCAN 0 COUNT 0" => "-ERR syntax error"],
            "SCAN COUNT not a number": ["SCAN 0 COUNT abc" => "-ERR value is not an integer or out of range"],
            "SCAN unknown TYPE": ["SCAN 0 TYPE foo" => "*2\r\n$1\r\n0\r\n*0"],
            "SCAN NOVALUES": ["SCAN 0 NOVALUES" => "-ERR NOVALUES option can only be used in HSCAN"],
            "SCAN unknown option": ["SCAN 0 FOO" => "-ERR syntax error"],
            "TYPE missing": ["TYPE nokey" => "+none"],
        ],
        Setup::default(),
    );
}

// ---------------------------------------------------------------------------------------
// Appendix A: transactions (spec §13).

#[test]
fn transaction_errors() {
    run_rows(
        "transactions",
        rows![
            "nested MULTI does not abort": [
                "MULTI" => "+OK",
                "MULTI" => "-ERR MULTI calls can not be nested",
                "HSET k f v" => "+QUEUED",
                "EXEC" => "*1\r\n:1"],
            "EXEC without MULTI": ["EXEC" => "-ERR EXEC without MULTI"],
            "DISCARD without MULTI": ["DISCARD" => "-ERR DISCARD without MULTI"],
            "WATCH inside MULTI does not abort": [
                "MULTI" => "+OK",
                "WATCH k" => "-ERR WATCH inside MULTI is not allowed",
                "EXEC" => "*0"],
            "unknown command aborts EXEC": [
                "MULTI" => "+OK",
                "NOSUCH" => "-ERR unknown command 'NOSUCH', with args beginning with: ",
                "EXEC" => "-EXECABORT Transaction discarded because of previous errors."],
            "arity error aborts EXEC": [
                "MULTI" => "+OK",
                "HSET k" => "-ERR wrong number of arguments for 'hset' command",
                "HSET k f v" => "+QUEUED",
                "EXEC" => "-EXECABORT Transaction discarded because of previous errors.",
                "EXISTS k" => ":0"],
            "EXEC with arguments inside MULTI": [
                "MULTI" => "+OK",
                "EXEC extra" => "-EXECABORT Transaction discarded because of: wrong number of arguments for 'exec' command",
                "EXEC" => "-ERR EXEC without MULTI"],
            "arguments are not validated when queuing": [
                "MULTI" => "+OK",
                "HINCRBY k f notanumber" => "+QUEUED",
                "HSET k g 1" => "+QUEUED",
                "EXEC" => "*2\r\n-ERR value is not an integer or out of range\r\n:1"],
            "WATCH then own write aborts EXEC": [
                "WATCH k" => "+OK",
                "HSET k f v" => ":1",
                "MULTI" => "+OK",
                "HGET k f" => "+QUEUED",
                "EXEC" => "*-1"],
            "WATCH then another client's write aborts EXEC": [
                "HSET k f v" => ":1",
                "WATCH k" => "+OK",
                "@c2 HSET k f v2" => ":0",
                "MULTI" => "+OK",
                "HGET k f" => "+QUEUED",
                "EXEC" => "*-1"],
            "WATCH with HEXPIRE by another client aborts EXEC": [
                "HSET k f v" => ":1",
                "WATCH k" => "+OK",
                "@c2 HEXPIRE k 100 FIELDS 1 f" => "*1\r\n:1",
                "MULTI" => "+OK",
                "HGET k f" => "+QUEUED",
                "EXEC" => "*-1"],
            "DISCARD unwatches": [
                "WATCH k" => "+OK",
                "HSET k f v" => ":1",
                "MULTI" => "+OK",
                "DISCARD" => "+OK",
                "MULTI" => "+OK",
                "HGET k f" => "+QUEUED",
                "EXEC" => "*1\r\n$1\r\nv"],
            "WATCH-aborted EXEC under RESP3": [
                "@resp3" => "",
                "WATCH k" => "+OK",
                "HSET k f v" => ":1",
                "MULTI" => "+OK",
                "HGET k f" => "+QUEUED",
                "EXEC" => "_"],
        ],
        Setup::default(),
    );
}

// ---------------------------------------------------------------------------------------
// Appendix A: authentication.

#[test]
fn auth_errors_with_requirepass() {
    run_rows(
        "auth (requirepass)",
        rows![
            "command before AUTH": ["HGET k f" => "-NOAUTH Authentication required."],
            "MULTI before AUTH": ["MULTI" => "-NOAUTH Authentication required."],
        // EXEC is rejected through execCommandAbort even outside MULTI (server.c).
        "EXEC before AUTH": [
            "EXEC" => "-EXECABORT Transaction discarded because of: NOAUTH Authentication required."],
            "unknown command before AUTH is still unknown": [
                "FOO" => "-ERR unknown command 'FOO', with args beginning with: "],
            "wrong password": ["AUTH wrong" => "-WRONGPASS invalid username-password pair or user is disabled."],
            "wrong password with user": [
                "AUTH default wrong" => "-WRONGPASS invalid username-password pair or user is disabled."],
            "wrong user": ["AUTH bob s3cret" => "-WRONGPASS invalid username-password pair or user is disabled."],
            "AUTH with too many arguments": ["AUTH a b c" => "-ERR syntax error"],
            "HELLO without AUTH while unauthenticated": [
                "HELLO 3" => "-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time"],
            "HELLO AUTH wrong keeps RESP2": [
                "HELLO 3 AUTH default wrong" => "-WRONGPASS invalid username-password pair or user is disabled.",
                "AUTH s3cret" => "+OK",
                "HGET k f" => "$-1"],
            "AUTH then commands": ["AUTH s3cret" => "+OK", "HGET k f" => "$-1"],
            "AUTH default user": ["AUTH default s3cret" => "+OK", "HSET k f v" => ":1"],
            "HELLO AUTH": [
                "HELLO 3 AUTH default s3cret" => "%7\r\n…",
                "HGET k f" => "_"],
            "RESET forgets the authentication": [
                "AUTH s3cret" => "+OK",
                "RESET" => "+RESET",
                "HGET k f" => "-NOAUTH Authentication required."],
            "QUIT works unauthenticated": ["QUIT" => "+OK", "@closed" => ""],
        ],
        Setup {
            requirepass: Some("s3cret"),
        },
    );
}

#[test]
fn auth_errors_without_requirepass() {
    run_rows(
        "auth (no password)",
        rows![
            "AUTH password without a configured password": [
                "AUTH foo" => "-ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?"],
            "AUTH default anything": ["AUTH default anything" => "+OK"],
        ],
        Setup::default(),
    );
}

// ---------------------------------------------------------------------------------------
// Appendix A: connection commands (HELLO, CLIENT, PING).

#[test]
fn connection_errors() {
    run_rows(
        "connection",
        rows![
            "HELLO 4": ["HELLO 4" => "-NOPROTO unsupported protocol version"],
            "HELLO 1": ["HELLO 1" => "-NOPROTO unsupported protocol version"],
            "HELLO not a number": ["HELLO abc" => "-ERR Protocol version is not an integer or out of range"],
            "HELLO above i64": [
                "HELLO 9223372036854775808" => "-ERR Protocol version is not an integer or out of range"],
            "HELLO unknown option": ["HELLO 3 FOO" => "-ERR Syntax error in HELLO option 'FOO'"],
            "HELLO AUTH missing password": [
                "HELLO 3 AUTH default" => "-ERR Syntax error in HELLO option 'AUTH'"],
            "HELLO SETNAME missing name": ["HELLO 3 SETNAME" => "-ERR Syntax error in HELLO option 'SETNAME'"],
            "HELLO SETNAME bad name keeps RESP2": [
                "HELLO 3 SETNAME \"a b\"" => "-ERR Client names cannot contain spaces, newlines or special characters.",
                "HGET k f" => "$-1"],
            "HELLO failure keeps RESP2": ["HELLO 4" => "-NOPROTO unsupported protocol version", "HGET k f" => "$-1"],
            "CLIENT SETNAME with a space": [
                "CLIENT SETNAME \"a b\"" => "-ERR Client names cannot contain spaces, newlines or special characters."],
            "CLIENT SETNAME with a newline": [
                "CLIENT SETNAME \"a\\nb\"" => "-ERR Client names cannot contain spaces, newlines or special characters."],
            "CLIENT SETNAME round trip": [
                "CLIENT SETNAME app-1" => "+OK",
                "CLIENT GETNAME" => "$5\r\napp-1",
                "CLIENT SETNAME \"\"" => "+OK",
                "CLIENT GETNAME" => "$-1"],
            "CLIENT SETINFO unknown attribute": [
                "CLIENT SETINFO foo bar" => "-ERR Unrecognized option 'foo'"],
            "CLIENT SETINFO bad value": [
                "CLIENT SETINFO lib-name \"a b\"" => "-ERR lib-name cannot contain spaces, newlines or special characters."],
            "CLIENT LIST bad type": ["CLIENT LIST TYPE foo" => "-ERR Unknown client type 'foo'"],
            "CLIENT LIST bad id": ["CLIENT LIST ID abc" => "-ERR Invalid client ID"],
            "CLIENT LIST bad form": ["CLIENT LIST foo" => "-ERR syntax error"],
            "PING": ["PING" => "+PONG"],
            "PING message": ["PING hi" => "$2\r\nhi"],
            "ECHO": ["ECHO \"a b\"" => "$3\r\na b"],
            "QUIT": ["QUIT" => "+OK", "@closed" => ""],
            "CLIENT GETNAME RESP3 null": ["@resp3" => "", "CLIENT GETNAME" => "_"],
        ],
        Setup::default(),
    );
}

// ---------------------------------------------------------------------------------------
// Spec §15: the 30 edge cases, RESP2.

#[test]
fn edge_cases_resp2() {
    run_rows(
        "§15 (RESP2)",
        rows![
            "#1 HSET odd arguments": ["HSET k f1 v1 f2" => "-ERR wrong number of arguments for 'hset' command"],
            "#2 duplicate field in one HSET": ["HSET k f a f b" => ":1", "HGET k f" => "$1\r\nb"],
            "#3 HSETNX": [
                "HSET k f v" => ":1",
                "HSETNX k f x" => ":0",
                "HSETNX k g x" => ":1",
                "HGET k f" => "$1\r\nv"],
            "#4 HGETALL missing key": ["HGETALL nokey" => "*0"],
            "#5 HRANDFIELD missing key": ["HRANDFIELD nokey" => "$-1", "HRANDFIELD nokey 5" => "*0"],
            "#6 HRANDFIELD negative count repeats": [
                "HSET k f v" => ":1",
                "HRANDFIELD k -5" => "*5\r\n$1\r\nf\r\n$1\r\nf\r\n$1\r\nf\r\n$1\r\nf\r\n$1\r\nf"],
            "#7 HRANDFIELD WITHVALUES is flat in RESP2": [
                "HSET k f1 v1" => ":1",
                "HRANDFIELD k 2 WITHVALUES" => "*2\r\n$2\r\nf1\r\n$2\r\nv1"],
            "#7 HRANDFIELD WITHVALUES whole hash in insertion order": [
                "HSET k a 1 b 2" => ":2",
                "HRANDFIELD k 2 WITHVALUES" => "*4\r\n$1\r\na\r\n$1\r\n1\r\n$1\r\nb\r\n$1\r\n2"],
            "#8 HRANDFIELD i64::MIN": [
                "HSET k f v" => ":1",
                "HRANDFIELD k -9223372036854775808" => "-ERR value is out of range, value must between -9223372036854775807 and 9223372036854775807"],
            "#9 HINCRBY +1": ["HINCRBY k f +1" => "-ERR value is not an integer or out of range"],
            "#10 HINCRBY on \" 11\"": [
                "HSET k f \" 11\"" => ":1",
                "HINCRBY k f 1" => "-ERR hash value is not an integer"],
            "#11 HINCRBY overflow": [
                "HSET k n -9223372036854775484" => ":1",
                "HINCRBY k n -10000" => "-ERR increment or decrement would overflow"],
            "#12 HINCRBYFLOAT 0.1 + 0.2": ["HSET k f 0.1" => ":1", "HINCRBYFLOAT k f 0.2" => "$3\r\n0.3"],
            "#13 HINCRBYFLOAT 1e-20": ["HINCRBYFLOAT k f 1e-20" => "$1\r\n0"],
            "#14 HINCRBYFLOAT +inf creates nothing": [
                "HINCRBYFLOAT newk f +inf" => "-ERR value is NaN or Infinity",
                "EXISTS newk" => ":0"],
            "#15 HSCAN": [
                "HSCAN nokey 0 COUNT 0" => "*2\r\n$1\r\n0\r\n*0",
                "HSET k f v" => ":1",
                "HSCAN k 0 COUNT 0" => "-ERR syntax error",
                "HSCAN k x" => "-ERR invalid cursor"],
            "#16 HEXPIRE missing key": ["HEXPIRE nokey 10 FIELDS 2 a b" => "*2\r\n:-2\r\n:-2"],
            "#17 HEXPIRE 0 deletes the last field and the key": [
                "HSET k f v" => ":1",
                "HEXPIRE k 0 FIELDS 1 f" => "*1\r\n:2",
                "EXISTS k" => ":0"],
            "#17b HEXPIRE 0 with a repeated field": [
                "HSET k f v g w" => ":2",
                "HEXPIRE k 0 FIELDS 2 f f" => "*2\r\n:2\r\n:-2"],
            "#18 condition checked before the past-time delete": [
                "HSET k f v" => ":1",
                "HEXPIRE k 100 FIELDS 1 f" => "*1\r\n:1",
                "HPEXPIREAT k 1 NX FIELDS 1 f" => "*1\r\n:0",
                "HGET k f" => "$1\r\nv"],
            "#18b mixed past-time results": [
                "HSET k f1 a f2 b f4 d" => ":3",
                "HEXPIRE k 100 FIELDS 1 f4" => "*1\r\n:1",
                "HPEXPIREAT k 1 NX FIELDS 4 f1 f2 f3 f4" => "*4\r\n:2\r\n:2\r\n:-2\r\n:0"],
            "#19 GT and LT on a field without TTL": [
                "HSET k f v" => ":1",
                "HEXPIRE k 100 GT FIELDS 1 f" => "*1\r\n:0",
                "HEXPIRE k 100 LT FIELDS 1 f" => "*1\r\n:1"],
            "#19b XX then NX": [
                "HSET k f v" => ":1",
                "HEXPIRE k 100 XX FIELDS 1 f" => "*1\r\n:0",
                "HEXPIRE k 100 NX FIELDS 1 f" => "*1\r\n:1",
                "HEXPIRE k 200 NX FIELDS 1 f" => "*1\r\n:0",
                "HEXPIRE k 50 GT FIELDS 1 f" => "*1\r\n:0",
                "HEXPIRE k 200 GT FIELDS 1 f" => "*1\r\n:1",
                "HTTL k FIELDS 1 f" => "*1\r\n:200"],
            "#20 HEXPIRE -1": ["HSET k f v" => ":1", "HEXPIRE k -1 FIELDS 1 f" => "-ERR invalid expire time, must be >= 0"],
            "#21 HPEXPIREAT at and over 2^46-1": [
                "HSET k f v" => ":1",
                "HPEXPIREAT k 70368744177664 FIELDS 1 f" => "-ERR invalid expire time in 'hpexpireat' command",
                "HPEXPIREAT k 70368744177663 FIELDS 1 f" => "*1\r\n:1",
                "HPEXPIRETIME k FIELDS 1 f" => "*1\r\n:70368744177663"],
            "#22 numfields 0, three wordings": [
                "HEXPIRE k 10 FIELDS 0 f" => "-ERR Parameter `numFields` should be greater than 0",
                "HTTL k FIELDS 0 f" => "-ERR Number of fields must be a positive integer",
                "HSETEX k FIELDS 0 f v" => "-ERR invalid number of fields"],
            "#23 count mismatch, two wordings": [
                "HTTL k FIELDS 2 a" => "-ERR The `numfields` parameter must match the number of arguments",
                "HSETEX k FIELDS 2 a b c" => "-ERR wrong number of arguments for 'hsetex' command"],
            "#24 two conditions": [
                "HEXPIRE k 10 NX XX FIELDS 1 f" => "-ERR Mandatory argument FIELDS is missing or not at the right position"],
            // Only hashes exist in hashd, so WRONGTYPE cannot happen; what remains of #25 is that
            // the argument errors come out on an existing hash.
            "#25 argument errors on a hash": [
                "HSET k f v" => ":1",
                "HEXPIRE k abc FIELDS 1 f" => "-ERR value is not an integer or out of range",
                "HINCRBY k f abc" => "-ERR value is not an integer or out of range"],
            "#26 HTTL rounds up, TTL rounds half up": [
                "HSET k f v" => ":1",
                "HPEXPIRE k 1400 FIELDS 1 f" => "*1\r\n:1",
                "HTTL k FIELDS 1 f" => "*1\r\n:2",
                "HPTTL k FIELDS 1 f" => "*1\r\n:1400",
                "HSET k2 f v" => ":1",
                "PEXPIRE k2 1400" => ":1",
                "TTL k2" => ":1",
                "PTTL k2" => ":1400"],
            "#26b HEXPIRETIME rounds up": [
                "HSET k f v" => ":1",
                "HPEXPIREAT k 1704067201500 FIELDS 1 f" => "*1\r\n:1",
                "HEXPIRETIME k FIELDS 1 f" => "*1\r\n:1704067202",
                "HPEXPIRETIME k FIELDS 1 f" => "*1\r\n:1704067201500"],
            // hashd deliberately differs from Redis here: HLEN never counts expired fields, so it
            // answers :1 where Redis (active expiry off) answers :2.
            "#27 HLEN skips an expired, unreclaimed field (hashd)": [
                "HSET k a 1 b 2" => ":2",
                "HPEXPIRE k 1 FIELDS 1 a" => "*1\r\n:1",
                "@advance 2" => "",
                "HLEN k" => ":1",
                "HGETALL k" => "*2\r\n$1\r\nb\r\n$1\r\n2"],
            // hashd reclaims expired fields whenever a command takes write access, so HSET,
            // HDEL and HEXPIRE see an expired-but-unreclaimed field as absent (Redis sees it
            // as present in these three timing-dependent cases, spec §5.4).
            "#27b HSET on an expired field creates it (hashd)": [
                "HSET k a 1 b 2" => ":2",
                "HPEXPIRE k 1 FIELDS 1 a" => "*1\r\n:1",
                "@advance 2" => "",
                "HSET k a 3" => ":1",
                "HTTL k FIELDS 1 a" => "*1\r\n:-1",
                "HGET k a" => "$1\r\n3"],
            "#27c HDEL of an expired field removes nothing (hashd)": [
                "HSET k a 1 b 2" => ":2",
                "HPEXPIRE k 1 FIELDS 1 a" => "*1\r\n:1",
                "@advance 2" => "",
                "HDEL k a" => ":0",
                "HLEN k" => ":1"],
            "#27d HEXPIRE on an expired field finds nothing (hashd)": [
                "HSET k a 1 b 2" => ":2",
                "HPEXPIRE k 1 FIELDS 1 a" => "*1\r\n:1",
                "@advance 2" => "",
                "HEXPIRE k 10 FIELDS 1 a" => "*1\r\n:-2",
                "HGET k a" => "$-1"],
            "#28 HSET clears a field's TTL": [
                "HSET k f v" => ":1",
                "HEXPIRE k 100 FIELDS 1 f" => "*1\r\n:1",
                "HSET k f v2" => ":0",
                "HTTL k FIELDS 1 f" => "*1\r\n:-1"],
            "#28b HINCRBY keeps a field's TTL": [
                "HSET k n 1" => ":1",
                "HEXPIRE k 100 FIELDS 1 n" => "*1\r\n:1",
                "HINCRBY k n 1" => ":2",
                "HTTL k FIELDS 1 n" => "*1\r\n:100"],
            "#28c HINCRBYFLOAT keeps a field's TTL": [
                "HSET k n 1" => ":1",
                "HEXPIRE k 100 FIELDS 1 n" => "*1\r\n:1",
                "HINCRBYFLOAT k n 0.5" => "$3\r\n1.5",
                "HTTL k FIELDS 1 n" => "*1\r\n:100"],
            "#29 HINCRBY after the field expired starts at 0 without TTL": [
                "HSET k f 10" => ":1",
                "HPEXPIRE k 100 FIELDS 1 f" => "*1\r\n:1",
                "@advance 101" => "",
                "HINCRBY k f 1" => ":1",
                "HTTL k FIELDS 1 f" => "*1\r\n:-1"],
            // A deliberate difference (README): Redis answers EXISTS 1 and TYPE hash until
            // a hash command reclaims the field; in hashd a hash with no live field is gone.
            "#30 the last field expires lazily": [
                "HSET k f v" => ":1",
                "HPEXPIRE k 100 FIELDS 1 f" => "*1\r\n:1",
                "@advance 101" => "",
                "EXISTS k" => ":0",
                "TYPE k" => "+none",
                "HGET k f" => "$-1",
                "EXISTS k" => ":0"],
            "#30b a field is still readable at its expiry instant": [
                "HSET k f v" => ":1",
                "HPEXPIRE k 100 FIELDS 1 f" => "*1\r\n:1",
                "@advance 100" => "",
                "HGET k f" => "$1\r\nv",
                "HPTTL k FIELDS 1 f" => "*1\r\n:0",
                "@advance 1" => "",
                "HGET k f" => "$-1",
                "HTTL k FIELDS 1 f" => "*1\r\n:-2"],
        ],
        Setup::default(),
    );
}

// ---------------------------------------------------------------------------------------
// Spec §15 where RESP3 differs, and other RESP3 shapes.

#[test]
fn edge_cases_resp3() {
    run_rows(
        "§15 (RESP3)",
        rows![
            "#4 HGETALL missing key": ["@resp3" => "", "HGETALL nokey" => "%0"],
            "#4b HGETALL is a map": [
                "@resp3" => "",
                "HSET k f1 v1 f2 v2" => ":2",
                "HGETALL k" => "%2\r\n$2\r\nf1\r\n$2\r\nv1\r\n$2\r\nf2\r\n$2\r\nv2"],
            "#4c HKEYS stays an array": ["@resp3" => "", "HKEYS nokey" => "*0", "HVALS nokey" => "*0"],
            "#5 HRANDFIELD missing key": ["@resp3" => "", "HRANDFIELD nokey" => "_", "HRANDFIELD nokey 5" => "*0"],
            "#7 HRANDFIELD WITHVALUES is nested pairs": [
                "@resp3" => "",
                "HSET k f1 v1" => ":1",
                "HRANDFIELD k 2 WITHVALUES" => "*1\r\n*2\r\n$2\r\nf1\r\n$2\r\nv1"],
            "#7 HRANDFIELD WITHVALUES whole hash in insertion order": [
                "@resp3" => "",
                "HSET k a 1 b 2" => ":2",
                "HRANDFIELD k 2 WITHVALUES" => "*2\r\n*2\r\n$1\r\na\r\n$1\r\n1\r\n*2\r\n$1\r\nb\r\n$1\r\n2"],
            "#7c HRANDFIELD without WITHVALUES stays flat": [
                "@resp3" => "",
                "HSET k f1 v1" => ":1",
                "HRANDFIELD k 1" => "*1\r\n$2\r\nf1"],
            "HGET null": ["@resp3" => "", "HGET nokey f" => "_"],
            "HMGET nulls": [
                "@resp3" => "",
                "HSET k f1 v1" => ":1",
                "HMGET k f1 nope" => "*2\r\n$2\r\nv1\r\n_"],
            "HMGET missing key": ["@resp3" => "", "HMGET nokey a b" => "*2\r\n_\r\n_"],
            "HGETDEL nulls": ["@resp3" => "", "HGETDEL nokey FIELDS 1 a" => "*1\r\n_"],
            "HINCRBYFLOAT is a bulk string, not a double": [
                "@resp3" => "", "HINCRBYFLOAT k n 2.5" => "$3\r\n2.5"],
            "HSCAN cursor is a bulk string": [
                "@resp3" => "",
                "HSET k f1 v1" => ":1",
                "HSCAN k 0" => "*2\r\n$1\r\n0\r\n*2\r\n$2\r\nf1\r\n$2\r\nv1"],
            "RESET goes back to RESP2": ["@resp3" => "", "RESET" => "+RESET", "HGET k f" => "$-1"],
        ],
        Setup::default(),
    );
}

// ---------------------------------------------------------------------------------------
// Spec §15 bonus checks and Appendix B.

#[test]
fn bonus_checks() {
    run_rows(
        "§15 bonus",
        rows![
            "unknown command": ["FOO a b" => "-ERR unknown command 'FOO', with args beginning with: 'a' 'b' "],
            "unknown CLIENT subcommand": ["CLIENT FOO" => "-ERR unknown subcommand 'FOO'. Try CLIENT HELP."],
            "EXECABORT": [
                "MULTI" => "+OK",
                "NOSUCH" => "-ERR unknown command 'NOSUCH', with args beginning with: ",
                "EXEC" => "-EXECABORT Transaction discarded because of previous errors."],
            "HSETEX FXX on a missing key": [
                "HSETEX k FXX FIELDS 1 f v" => ":0",
                "EXISTS k" => ":0"],
            "HGETEX PXAT 1 returns then deletes": [
                "HSET k f v" => ":1",
                "HGETEX k PXAT 1 FIELDS 1 f" => "*1\r\n$1\r\nv",
                "HEXISTS k f" => ":0",
                "EXISTS k" => ":0"],
            "HPERSIST": [
                "HSET k nottl v" => ":1",
                "HPERSIST k FIELDS 2 nottl missing" => "*2\r\n:-1\r\n:-2"],
            "HELLO 4": ["HELLO 4" => "-NOPROTO unsupported protocol version"],
            "HELLO 3": ["HELLO 3" => "%7\r\n$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n…"],
        ],
        Setup::default(),
    );
}

#[test]
fn appendix_b_examples() {
    run_rows(
        "Appendix B",
        rows![
            "RESP2": [
                "HSET h f1 v1 f2 v2" => ":2",
                "HGETALL h" => "*4\r\n$2\r\nf1\r\n$2\r\nv1\r\n$2\r\nf2\r\n$2\r\nv2",
                "HMGET h f1 nope" => "*2\r\n$2\r\nv1\r\n$-1",
                "HSCAN h 0" => "*2\r\n$1\r\n0\r\n*4\r\n$2\r\nf1\r\n$2\r\nv1\r\n$2\r\nf2\r\n$2\r\nv2",
                "HSCAN h 0 NOVALUES" => "*2\r\n$1\r\n0\r\n*2\r\n$2\r\nf1\r\n$2\r\nf2",
                "HEXPIRE h 100 FIELDS 3 f1 f2 zz" => "*3\r\n:1\r\n:1\r\n:-2",
                "HTTL h FIELDS 1 f1" => "*1\r\n:100",
                "HPERSIST h FIELDS 2 f1 f1" => "*2\r\n:1\r\n:-1",
                "HINCRBYFLOAT h n 2.5" => "$3\r\n2.5",
                "TYPE h" => "+hash",
                "INFO keyspace" => "$…"],
            "RESP3": [
                "@resp3" => "",
                "HSET h f1 v1 f2 v2" => ":2",
                "HGETALL h" => "%2\r\n$2\r\nf1\r\n$2\r\nv1\r\n$2\r\nf2\r\n$2\r\nv2",
                "HMGET h f1 nope" => "*2\r\n$2\r\nv1\r\n_",
                "INFO keyspace" => "=…"],
        ],
        Setup::default(),
    );
}
