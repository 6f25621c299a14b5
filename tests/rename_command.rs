//! `rename-command` (issue 15 item 4): the same commands on hashd and on Redis 7.4.1, both
//! started with `rename-command FLUSHALL ""`, `rename-command CONFIG cfg` and
//! `rename-command HDEL hremove`, every reply compared; then the start-up errors, and the
//! append-only file still replaying under the real names.

mod common;

use common::{reference_redis, Client, RedisServer, TestServer};

const STEPS: &[&str] = &[
    "HSET k f v g w",
    "FLUSHALL",
    "flushall ASYNC",
    "HDEL k f",
    "HREMOVE k f",
    "hremove k nosuch",
    "HREMOVE",
    "CONFIG GET maxmemory",
    "CFG GET maxmemory",
    "cfg SET maxmemory-samples 7",
    "CFG GET maxmemory-samples",
    "CFG NOSUCH",
    "CFG GET",
    "MULTI",
    "HREMOVE k g",
    "FLUSHALL",
    "EXEC",
    "HGETALL k",
];

fn transcript(addr: std::net::SocketAddr) -> Vec<String> {
    let mut c = Client::connect(addr);
    STEPS
        .iter()
        .map(|s| format!("{s} -> {}", common::show(&c.run(s))))
        .collect()
}

fn renames() -> Vec<(String, String)> {
    vec![
        ("FLUSHALL".into(), String::new()),
        ("CONFIG".into(), "cfg".into()),
        ("hdel".into(), "HREMOVE".into()),
    ]
}

#[test]
fn renamed_commands_answer_as_in_redis() {
    let hashd = TestServer::builder()
        .config(|c| c.rename_command = renames())
        .start();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], hashd.port()));
    let got = transcript(addr);
    assert_eq!(
        got[1],
        r#"FLUSHALL -> "-ERR unknown command \'FLUSHALL\', with args beginning with: \r\n""#
    );
    assert_eq!(got[4], "HREMOVE k f -> \":1\\r\\n\"");
    let Some(bin) = reference_redis() else {
        return;
    };
    let dir = common::fresh_dir("rename");
    let redis = RedisServer::start(
        &bin,
        &dir,
        &[
            "--rename-command",
            "FLUSHALL",
            "",
            "--rename-command",
            "CONFIG",
            "cfg",
            "--rename-command",
            "hdel",
            "HREMOVE",
        ],
    );
    let want = transcript(redis.addr);
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g, w, "hashd against Redis 7.4.1");
    }
}

#[test]
fn bad_renames_stop_startup() {
    let cfg = |pairs: &[(&str, &str)]| hashd::config::Config {
        rename_command: pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect(),
        ..Default::default()
    };
    let err = cfg(&[("nosuch", "x")]).validate().unwrap_err().to_string();
    assert!(err.contains("No such command in rename-command"), "{err}");
    let err = cfg(&[("hget", "hset")]).validate().unwrap_err().to_string();
    assert!(err.contains("Target command name already exists"), "{err}");
    let err = cfg(&[("config|get", "x")])
        .validate()
        .unwrap_err()
        .to_string();
    assert!(err.contains("No such command in rename-command"), "{err}");
    let err = cfg(&[("hget", ""), ("hget", "x")])
        .validate()
        .unwrap_err()
        .to_string();
    assert!(err.contains("No such command in rename-command"), "{err}");
    // Chains and swaps through a removed name work, as in Redis.
    assert!(cfg(&[("hget", "a"), ("a", "b")]).validate().is_ok());
    assert!(cfg(&[("hget", ""), ("hmget", "hget")]).validate().is_ok());
}

/// hashd writes the real names to the append-only file, and replays it under them.
#[test]
fn the_append_only_file_replays_under_the_real_names() {
    let dir = common::fresh_dir("rename-aof");
    let dir_s = dir.to_string_lossy().into_owned();
    let start = || {
        let d = dir_s.clone();
        TestServer::builder()
            .config(move |c| {
                c.rename_command = renames();
                c.appendonly = true;
                c.dir = d;
            })
            .start()
    };
    let hashd = start();
    let mut c = hashd.client();
    wait_loaded(&mut c);
    c.expect("HSET k f v g w", b":2\r\n");
    c.expect("HREMOVE k f", b":1\r\n");
    drop(c);
    drop(hashd);
    let hashd = start();
    let mut c = hashd.client();
    wait_loaded(&mut c);
    c.expect("HGETALL k", b"*2\r\n$1\r\ng\r\n$1\r\nw\r\n");
}

/// Polls until the start-up load is over (`-LOADING` before).
fn wait_loaded(c: &mut Client) {
    let loaded = common::wait_until(std::time::Duration::from_secs(30), || {
        let r = c.run("INFO persistence");
        !r.starts_with(b"-") && String::from_utf8_lossy(&r).contains("\nloading:0")
    });
    assert!(loaded, "still loading");
}
