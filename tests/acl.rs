//! ACL users (issue 15 item 1): the same scripts run on hashd and on Redis 7.4.1 and
//! every reply is compared — ACL SETUSER/GETUSER/LIST/DRYRUN/LOG/DELUSER/USERS/CAT,
//! AUTH and HELLO as named users, `-NOPERM` for commands, keys and channels, MULTI and
//! EXEC, the INFO counters, CLIENT LIST `user=`, and the connections closed when a user
//! is deleted or loses a channel. ACL LOG entries are compared without their times and
//! client lines. Then ACL files: Redis loads what ACL SAVE writes, hashd loads what
//! Redis writes, and `user` directives at start-up.
//!
//! Without the reference Redis the scripts still run on hashd against the replies
//! written here.

mod common;

use std::time::Duration;

use common::{reference_redis, Client, RedisServer, TestServer, Value};

/// One step: on connection `conn`, send `cmd`; `?closed` instead checks whether the
/// connection was closed by the server.
type Step = (usize, &'static str);

/// A reply as text, with what differs between runs masked: ACL LOG's ages, times and
/// client lines, ACL GENPASS's randomness; INFO reduced to its `acl_` lines and CLIENT
/// LIST to its `user=` fields.
fn render(cmd: &str, v: &Value) -> String {
    let upper = cmd.to_ascii_uppercase();
    if upper.starts_with("INFO") {
        let text = String::from_utf8_lossy(v.as_bytes().unwrap_or_default()).into_owned();
        return text
            .lines()
            .filter(|l| l.starts_with("acl_"))
            .collect::<Vec<_>>()
            .join(",");
    }
    if upper.starts_with("CLIENT LIST") {
        let text = String::from_utf8_lossy(v.as_bytes().unwrap_or_default()).into_owned();
        // Sorted: the order of client ids is the order of accepts, not of connects.
        let mut users: Vec<&str> = text
            .lines()
            .filter_map(|l| l.split(' ').find(|f| f.starts_with("user=")))
            .collect();
        users.sort_unstable();
        return users.join(",");
    }
    if upper.starts_with("ACL GENPASS") {
        return format!("{} chars", v.as_bytes().map_or(0, <[u8]>::len));
    }
    if upper.starts_with("HELLO") {
        // The server's version and the client id differ; the shape is tested elsewhere.
        return match v {
            Value::Error(e) => text(&Value::Error(e.clone())),
            _ => "hello".into(),
        };
    }
    let masked = if upper.starts_with("ACL LOG") {
        mask_log(v)
    } else {
        v.clone()
    };
    text(&masked)
}

/// A reply as readable text: strings quoted, aggregates bracketed with their type.
fn text(v: &Value) -> String {
    let list = |open: &str, items: &[Value]| {
        let inner: Vec<String> = items.iter().map(text).collect();
        format!("{open}{}]", inner.join(", "))
    };
    match v {
        Value::Simple(s) => format!("+{s}"),
        Value::Error(e) => format!("-{e}"),
        Value::Int(n) => format!(":{n}"),
        Value::Bulk(b) => format!("{:?}", String::from_utf8_lossy(b)),
        Value::Null => "nil".into(),
        Value::Array(items) => list("[", items),
        Value::Set(items) => list("~[", items),
        Value::Push(items) => list(">[", items),
        Value::Map(pairs) => {
            let inner: Vec<String> = pairs
                .iter()
                .map(|(k, v)| format!("{}: {}", text(k), text(v)))
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
        other => format!("{other:?}"),
    }
}

fn mask_log(v: &Value) -> Value {
    let entry = |fields: &[Value]| {
        let mut out = Vec::new();
        let mut it = fields.iter();
        while let (Some(k), Some(val)) = (it.next(), it.next()) {
            let name = String::from_utf8_lossy(k.as_bytes().unwrap_or_default()).into_owned();
            let val = match name.as_str() {
                "age-seconds" | "client-info" | "timestamp-created" | "timestamp-last-updated" => {
                    Value::Simple("…".into())
                }
                _ => val.clone(),
            };
            out.push(k.clone());
            out.push(val);
        }
        Value::Array(out)
    };
    match v {
        Value::Array(entries) => Value::Array(
            entries
                .iter()
                .map(|e| match e {
                    Value::Array(f) => entry(f),
                    Value::Map(pairs) => {
                        let flat: Vec<Value> = pairs
                            .iter()
                            .flat_map(|(k, v)| [k.clone(), v.clone()])
                            .collect();
                        entry(&flat)
                    }
                    other => other.clone(),
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

fn transcript(addr: std::net::SocketAddr, conns: usize, steps: &[Step]) -> Vec<String> {
    let mut cs: Vec<Client> = (0..conns).map(|_| Client::connect(addr)).collect();
    let mut out = Vec::new();
    for &(i, cmd) in steps {
        if cmd == "?closed" {
            let closed = matches!(
                cs[i].try_read_reply_within(Duration::from_secs(2)),
                Err(common::ReadError::Closed(_))
            );
            out.push(format!("{i} closed: {closed}"));
            continue;
        }
        let reply = cs[i].run(cmd);
        let v = common::decode(&reply);
        out.push(format!("{i} {cmd} -> {}", render(cmd, &v)));
    }
    out
}

/// Runs the script on hashd, checks `expect` (step index, the end of its line), and on
/// Redis 7.4.1 when available, comparing every line.
fn check(conns: usize, steps: &[Step], expect: &[(usize, &str)]) {
    let hashd = TestServer::start();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], hashd.port()));
    let got = transcript(addr, conns, steps);
    for &(i, want) in expect {
        assert!(
            got[i].ends_with(want),
            "step {i}: {}\nwanted …{want}",
            got[i]
        );
    }
    let Some(bin) = reference_redis() else {
        return;
    };
    let dir = common::fresh_dir("acl");
    let redis = RedisServer::start(&bin, &dir, &[]);
    let want = transcript(redis.addr, conns, steps);
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g, w, "hashd against Redis 7.4.1");
    }
    assert_eq!(got.len(), want.len());
}

#[test]
fn setuser_rules_and_descriptions_match_redis() {
    let steps: &[Step] = &[
        (0, "ACL LIST"),
        (0, "ACL SETUSER alice on >pw ~cached:* +@hash -hdel &chan* %R~r*"),
        (0, "ACL GETUSER alice"),
        (0, "ACL SETUSER carol on nopass ~k* +@read -@dangerous +config|get +select|0 -client|kill (+hset ~s*) (+@write %W~w*)"),
        (0, "ACL GETUSER carol"),
        (0, "ACL SETUSER e1 on >p1 >p2 <p1 +@all -hdel +hset -@hash +hget +hget -@hash +hget allchannels"),
        (0, "ACL SETUSER e5 +client -client|kill +client|kill -client +client|list +select +select|0"),
        (0, "ACL SETUSER e6 +select|0 +select|1 -select +select|2"),
        (0, "ACL SETUSER e7 +@all -@all"),
        (0, "ACL SETUSER e8 +@all -@hash +@hash"),
        (0, "ACL SETUSER e9 +HGET +@HASH ~A &B"),
        (0, "ACL SETUSER d1 resetkeys %R~x %W~x %RW~y ~y"),
        (0, "ACL SETUSER e3 on nopass +hget ~k"),
        (0, "ACL SETUSER e3 resetpass"),
        (0, "ACL SETUSER e3 >x nopass"),
        (0, "ACL SETUSER e3 nopass >x"),
        (0, "ACL SETUSER x ( ~a ) () (+hget ~b)"),
        (0, "ACL SETUSER x %R"),
        (0, "ACL SETUSER y +get -set +xinfo|stream +@all"),
        (0, "ACL LIST"),
        (0, "ACL USERS"),
        (0, "ACL SETUSER carol reset"),
        (0, "ACL GETUSER carol"),
        (0, "ACL GETUSER nosuch"),
        // Errors: nothing changes, and a failed new user is not created.
        (0, "ACL SETUSER f1 ~* ~foo"),
        (0, "ACL SETUSER f1 allkeys %R~x"),
        (0, "ACL SETUSER f1 &* &x"),
        (0, "ACL SETUSER f1 +@nosuch"),
        (0, "ACL SETUSER f1 +nosuch"),
        (0, "ACL SETUSER f1 -select|0"),
        (0, "ACL SETUSER f1 bogus"),
        (0, "ACL SETUSER f1 #abc"),
        (0, "ACL SETUSER f1 !abc"),
        (0, "ACL SETUSER f1 <nopw"),
        (0, "ACL SETUSER f1 %X~a"),
        (0, "ACL SETUSER f1 %~a"),
        (0, "ACL SETUSER f1 %RR~a"),
        (0, "ACL SETUSER f1 (+get"),
        (0, "ACL SETUSER f1 (on)"),
        (0, "ACL SETUSER f1 +client|nosub"),
        (0, "ACL SETUSER f1 +hget|x|y"),
        (0, "ACL SETUSER f1 +config|get|maxmemory"),
        (0, "ACL SETUSER \"a b\" on"),
        (0, "ACL SETUSER alice +hset bogus"),
        (0, "ACL USERS"),
        (0, "ACL GETUSER alice"),
        (0, "ACL SETUSER"),
        (0, "ACL DELUSER default"),
        (0, "ACL DELUSER e1 nosuch e5"),
        (0, "ACL USERS"),
        (0, "ACL CAT"),
        (0, "ACL CAT nosuch"),
        (0, "ACL CAT a b"),
        (0, "ACL GENPASS"),
        (0, "ACL GENPASS 5"),
        (0, "ACL GENPASS 0"),
        (0, "ACL GENPASS 5000"),
        (0, "ACL GENPASS abc"),
        (0, "ACL WHOAMI"),
        (0, "ACL WHOAMI x"),
        (0, "ACL SAVE"),
        (0, "ACL LOAD"),
        (0, "ACL NOSUCH"),
    ];
    check(
        1,
        steps,
        &[
            (2, r#"["on", "sanitize-payload"], "passwords", ["30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4"], "commands", "-@all +@hash -hdel", "keys", "~cached:* %R~r*", "channels", "&chan*", "selectors", []]"#),
            (24, "-ERR Error in ACL SETUSER modifier '~foo': Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns"),
        ],
    );
}

#[test]
fn permissions_auth_and_log_match_redis() {
    let steps: &[Step] = &[
        (
            0,
            "ACL SETUSER alice on >pw ~cached:* +@hash -hdel &chan* %R~r*",
        ),
        (
            0,
            "ACL SETUSER ps on nopass +@pubsub &chan* +acl|whoami +hget +multi +exec ~*",
        ),
        (0, "ACL LOG RESET"),
        (1, "AUTH alice wrong"),
        (1, "AUTH nouser x"),
        (1, "AUTH alice pw"),
        (1, "ACL WHOAMI"),
        (1, "HDEL cached:1 f"),
        (1, "HGET other f"),
        (1, "HSET r1 f v"),
        (1, "HGET r1 f"),
        (1, "HLEN r1"),
        (1, "HSET cached:1 f v"),
        (1, "PUBLISH chan1 m"),
        (1, "MULTI"),
        (2, "HELLO 3 AUTH ps wrong"),
        (2, "HELLO 2 AUTH ps x"),
        (2, "PUBLISH chan1 m"),
        (2, "PUBLISH other m"),
        (2, "PSUBSCRIBE ch*"),
        (2, "MULTI"),
        (2, "PUBLISH other m"),
        (2, "HGET k f"),
        (2, "EXEC"),
        (0, "ACL DRYRUN alice hget k1 f"),
        (0, "ACL DRYRUN alice hget cached:1 f"),
        (0, "ACL DRYRUN alice hset r1 f v"),
        (0, "ACL DRYRUN alice hdel cached:1 f"),
        (0, "ACL DRYRUN ps publish other x"),
        (0, "ACL DRYRUN ps psubscribe ch*"),
        (0, "ACL DRYRUN ps psubscribe chan*"),
        (0, "ACL DRYRUN ps subscribe chanx other"),
        (0, "ACL DRYRUN ps unsubscribe other"),
        (0, "ACL DRYRUN alice nosuch"),
        (0, "ACL DRYRUN nouser hget k f"),
        (0, "ACL DRYRUN alice hget"),
        (0, "ACL DRYRUN alice client"),
        (0, "ACL DRYRUN alice client nosuch"),
        (0, "ACL DRYRUN alice"),
        (0, "ACL LOG"),
        (0, "ACL LOG 2"),
        (0, "ACL LOG -1"),
        (0, "ACL LOG x"),
        (0, "ACL LOG 1 2"),
        (0, "INFO stats"),
        (0, "CLIENT LIST"),
        (0, "CLIENT KILL USER nosuch"),
        (0, "CONFIG RESETSTAT"),
        (0, "INFO stats"),
        (0, "ACL LOG RESET"),
        (0, "ACL LOG"),
    ];
    check(
        3,
        steps,
        &[
            (
                3,
                "-WRONGPASS invalid username-password pair or user is disabled.",
            ),
            (
                7,
                "-NOPERM User alice has no permissions to run the 'hdel' command",
            ),
            (8, "-NOPERM No permissions to access a key"),
        ],
    );
}

#[test]
fn rules_changed_under_a_transaction_and_deleted_users_match_redis() {
    let steps: &[Step] = &[
        (0, "ACL SETUSER tx on nopass +multi +exec +hget +hset ~*"),
        (1, "AUTH tx x"),
        (1, "MULTI"),
        (1, "HGET k f"),
        (1, "HSET k f v"),
        (0, "ACL SETUSER tx -hget resetkeys ~z"),
        (1, "EXEC"),
        (0, "ACL LOG 2"),
        (0, "ACL SETUSER tx ~* +hget +acl|whoami"),
        (1, "ACL WHOAMI"),
        (1, "HGET k f"),
        (0, "ACL DELUSER tx"),
        (1, "?closed"),
        // A subscriber whose channel is taken away is disconnected; others stay.
        (0, "ACL SETUSER sub on nopass +@all ~* &c*"),
        (2, "AUTH sub x"),
        (2, "SUBSCRIBE c1"),
        (3, "AUTH sub x"),
        (0, "ACL SETUSER sub resetchannels &d*"),
        (2, "?closed"),
        (3, "PING"),
        (0, "ACL SETUSER sub off"),
        (3, "PING"),
        (4, "AUTH sub x"),
        (0, "CLIENT LIST"),
        (0, "CLIENT KILL USER sub"),
        (3, "?closed"),
        // requirepass is the default user's password.
        (0, "CONFIG SET requirepass s3cret"),
        (0, "ACL GETUSER default"),
        (0, "PING"),
        (4, "PING"),
        (4, "AUTH s3cret"),
        (4, "ACL WHOAMI"),
        (0, "CONFIG SET requirepass \"\""),
        (0, "ACL LIST"),
        (0, "AUTH x"),
    ];
    check(5, steps, &[(12, "closed: true"), (18, "closed: true")]);
}

#[test]
fn resp3_replies_match_redis() {
    let steps: &[Step] = &[
        (0, "HELLO 3"),
        (0, "ACL SETUSER carol on nopass ~k* +@read (+hset ~s*)"),
        (0, "ACL GETUSER carol"),
        (0, "ACL GETUSER default"),
        (0, "AUTH carol x"),
        (0, "HSET k f v"),
        (0, "ACL LOG 1"),
        (0, "ACL CAT"),
        (0, "ACL LIST"),
    ];
    check(1, steps, &[]);
}

/// ACL SAVE writes a file Redis 7.4.1 loads with the same users, and hashd loads the file
/// Redis writes; ACL LOAD refuses a bad file, keeping the users.
#[test]
fn acl_files_round_trip_with_redis() {
    let dir = common::fresh_dir("aclfile");
    let path = dir.join("users.acl");
    std::fs::write(
        &path,
        "user default on nopass ~* &* +@all\nuser al on nopass ~a* resetchannels +hget\n",
    )
    .unwrap();
    let path_s = path.to_string_lossy().into_owned();
    let hashd = TestServer::builder()
        .config(|c| c.aclfile = path_s.clone())
        .start();
    let mut c = hashd.client();
    c.expect(
        "ACL SETUSER bob on >pw ~* &news.* +@all -@dangerous (+hget ~s*)",
        b"+OK\r\n",
    );
    c.expect("ACL SAVE", b"+OK\r\n");
    let hashd_list = c.run("ACL LIST");
    // A bad file changes nothing.
    std::fs::write(&path, "user carol bogus\n").unwrap();
    let err = c.run("ACL LOAD");
    assert_eq!(
        String::from_utf8_lossy(&err),
        format!(
            "-ERR {path_s}:1: Syntax error. WARNING: ACL errors detected, no change to the \
             previously active ACL rules was performed\r\n"
        )
    );
    assert_eq!(c.run("ACL LIST"), hashd_list);
    // A client of a user that the reloaded file no longer has is disconnected.
    let mut al = hashd.client();
    al.expect("AUTH al x", b"+OK\r\n");
    std::fs::write(&path, "user bob on >pw ~* +@all\n").unwrap();
    c.expect("ACL LOAD", b"+OK\r\n");
    al.expect_closed_silently();
    c.expect(
        "ACL LIST",
        b"*2\r\n$117\r\nuser bob on sanitize-payload #30c952fab122c3f9759f02a6d95c3758b246b4fee239957b2d4fee46e26170c4 ~* resetchannels +@all\r\n$51\r\nuser default on nopass sanitize-payload ~* &* +@all\r\n"
            .as_slice(),
    );
    let Some(bin) = reference_redis() else {
        return;
    };
    // Redis loads the file hashd saved.
    c.expect(
        "ACL SETUSER carol on >x ~k %R~r* &c resetchannels +@hash (+hset ~s*)",
        b"+OK\r\n",
    );
    c.expect("ACL SAVE", b"+OK\r\n");
    let saved = c.run("ACL LIST");
    let redis = RedisServer::start(&bin, &dir, &["--aclfile", &path_s]);
    let mut r = Client::connect(redis.addr);
    assert_eq!(r.run("ACL LIST"), saved, "Redis loaded hashd's ACL file");
    // hashd loads the file Redis saves.
    r.expect(
        "ACL SETUSER dave on >d ~d* +@read -hget (+@write ~w*)",
        b"+OK\r\n",
    );
    r.expect("ACL SAVE", b"+OK\r\n");
    let redis_list = r.run("ACL LIST");
    c.expect("ACL LOAD", b"+OK\r\n");
    assert_eq!(
        c.run("ACL LIST"),
        redis_list,
        "hashd loaded Redis's ACL file"
    );
}

/// `user` directives define users at start-up; with `aclfile` too, start-up fails.
#[test]
fn user_directives_at_startup() {
    let hashd = TestServer::builder()
        .config(|c| {
            c.user = vec![
                "default on >secret ~* &* +@all".into(),
                "app on >apppw ~app:* +@hash -hdel".into(),
            ]
        })
        .start();
    let mut c = hashd.client();
    c.expect("PING", b"-NOAUTH Authentication required.\r\n");
    c.expect("AUTH app apppw", b"+OK\r\n");
    c.expect("HSET app:1 f v", b":1\r\n");
    c.expect(
        "HDEL app:1 f",
        b"-NOPERM User app has no permissions to run the 'hdel' command\r\n",
    );
    c.expect(
        "HSET other f v",
        b"-NOPERM No permissions to access a key\r\n",
    );
    c.expect("AUTH default secret", b"+OK\r\n");
    c.expect("HDEL app:1 f", b":1\r\n");

    let mut cfg = hashd::config::Config {
        user: vec!["a on".into()],
        aclfile: "/tmp/x.acl".into(),
        ..Default::default()
    };
    assert!(cfg.validate().is_err());
    cfg.aclfile.clear();
    cfg.user = vec!["a bogus".into()];
    let err = cfg.validate().unwrap_err().to_string();
    assert!(
        err.contains("Error in user declaration 'a bogus': Syntax error"),
        "{err}"
    );
}
