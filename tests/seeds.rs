//! The seed documents' redis-cli transcripts, replayed through the real `redis-cli` binary
//! (Debian package redis-tools) in its TTY-style output (`--no-raw`) and compared exactly
//! with the text the documents show.
//!
//! Without `redis-cli` these tests print why and pass, unless `HASHD_REQUIRE_TOOLS=1`
//! (set by CI), in which case they fail.

mod common;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::TestServer;

/// How long one redis-cli run may take.
const CLI_TIMEOUT: Duration = Duration::from_secs(20);

/// The "Redis CLI" blocks of seed 001 (Redis hashes, redis.io), verbatim and in document
/// order; later blocks build on the data of earlier ones.
const SEED_001: &[&str] = &[
    r#"> HSET bike:1 model Deimos brand Ergonom type 'Enduro bikes' price 4972
(integer) 4
> HGET bike:1 model
"Deimos"
> HGET bike:1 price
"4972"
> HGETALL bike:1
1) "model"
2) "Deimos"
3) "brand"
4) "Ergonom"
5) "type"
6) "Enduro bikes"
7) "price"
8) "4972""#,
    r#"> HMGET bike:1 model price no-such-field
1) "Deimos"
2) "4972"
3) (nil)"#,
    r#"> HINCRBY bike:1 price 100
(integer) 5072
> HINCRBY bike:1 price -100
(integer) 4972"#,
    r#"> HINCRBY bike:1:stats rides 1
(integer) 1
> HINCRBY bike:1:stats rides 1
(integer) 2
> HINCRBY bike:1:stats rides 1
(integer) 3
> HINCRBY bike:1:stats crashes 1
(integer) 1
> HINCRBY bike:1:stats owners 1
(integer) 1
> HGET bike:1:stats rides
"3"
> HMGET bike:1:stats owners crashes
1) "1"
2) "1""#,
];

/// The `shell` blocks of seed 000 (a hashes overview), with the commands exactly as written
/// there. That document shows no output; the expected lines are what redis-cli prints for
/// the same commands in seed 001's transcripts.
const SEED_000: &[&str] = &[
    r#"> HSET bike:1 model Deimos brand Ergonom type 'Enduro bikes' price 4972
(integer) 4
> HGET bike:1 model
"Deimos"
> HGET bike:1 price
"4972"
> HGETALL bike:1
1) "model"
2) "Deimos"
3) "brand"
4) "Ergonom"
5) "type"
6) "Enduro bikes"
7) "price"
8) "4972""#,
    r#"> HMGET bike:1 model price no-such-field
1) "Deimos"
2) "4972"
3) (nil)"#,
    r#"> HINCRBY bike:1 price 100
(integer) 5072
> HINCRBY bike:1 price -100
(integer) 4972"#,
    r#"> HINCRBY bike:1:stats rides 1
(integer) 1
> HINCRBY bike:1:stats crashes 1
(integer) 1
> HINCRBY bike:1:stats owners 1
(integer) 1
> HGET bike:1:stats rides
"1"
> HMGET bike:1:stats owners crashes
1) "1"
2) "1""#,
];

/// True if redis-cli can run. Otherwise skips (returns false) or, under
/// `HASHD_REQUIRE_TOOLS=1`, fails.
fn redis_cli_available() -> bool {
    let ok = Command::new("redis-cli")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return true;
    }
    if common::tools_required() {
        panic!(
            "redis-cli is required (HASHD_REQUIRE_TOOLS=1) but was not found; install redis-tools"
        );
    }
    eprintln!("SKIPPED: redis-cli not found (install the redis-tools package); set HASHD_REQUIRE_TOOLS=1 to make this a failure");
    false
}

/// Feeds `commands` (one per line) to `redis-cli --no-raw` on stdin and returns stdout.
fn run_cli(srv: &TestServer, commands: &str) -> String {
    let mut child = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &srv.port().to_string(), "--no-raw"])
        .env_remove("REDISCLI_AUTH")
        .env("REDISCLI_HISTFILE", "/dev/null")
        .env("REDISCLI_RCFILE", "/dev/null")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn redis-cli");
    {
        let mut stdin = child.stdin.take().expect("redis-cli stdin");
        stdin
            .write_all(commands.as_bytes())
            .expect("write commands to redis-cli");
    }
    let deadline = Instant::now() + CLI_TIMEOUT;
    let status = loop {
        match child.try_wait().expect("wait for redis-cli") {
            Some(status) => break status,
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("redis-cli did not finish within {CLI_TIMEOUT:?}");
            }
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    let mut out = String::new();
    let mut err = String::new();
    if let Some(mut s) = child.stdout.take() {
        let _ = s.read_to_string(&mut out);
    }
    if let Some(mut s) = child.stderr.take() {
        let _ = s.read_to_string(&mut err);
    }
    assert!(
        status.success(),
        "redis-cli failed ({status}); stderr: {err}"
    );
    out
}

/// Replays each transcript block through one redis-cli run and compares the output lines
/// with the block's non-command lines, exactly.
fn replay(seed: &str, blocks: &[&str]) {
    let srv = TestServer::start();
    for (i, block) in blocks.iter().enumerate() {
        let mut commands = String::new();
        let mut expected = String::new();
        for line in block.lines() {
            match line.strip_prefix("> ") {
                Some(cmd) => {
                    commands.push_str(cmd);
                    commands.push('\n');
                }
                None => {
                    expected.push_str(line);
                    expected.push('\n');
                }
            }
        }
        let got = run_cli(&srv, &commands);
        assert_eq!(
            got,
            expected,
            "seed {seed}, block {} differs.\ncommands:\n{commands}",
            i + 1
        );
    }
}

#[test]
fn seed_001_redis_cli_transcripts() {
    if redis_cli_available() {
        replay("001", SEED_001);
    }
}

#[test]
fn seed_000_shell_examples() {
    if redis_cli_available() {
        replay("000", SEED_000);
    }
}
