//! DUMP / RESTORE against a real Redis 7.4.1: the same requests to both servers get
//! byte-identical replies (errors in Redis's order, TTL rules), and each one's payloads
//! restore in the other with their field TTLs.
//!
//! Without the reference Redis (`../shared/tools/reference-redis`) this prints why and
//! passes, unless `HASHD_REQUIRE_TOOLS=1`.

mod common;

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{reference_redis, show, Client, RedisServer, TestServer};

fn start_redis(bin: &Path) -> (RedisServer, Client) {
    // A fresh directory: a dump.rdb left in the temporary directory would be loaded.
    let server = RedisServer::start(
        bin,
        &common::fresh_dir("dump-restore"),
        &["--appendonly", "no"],
    );
    let c = Client::connect(server.addr);
    (server, c)
}

fn bulk_payload(reply: &[u8]) -> Vec<u8> {
    let nl = reply.iter().position(|&b| b == b'\n').unwrap();
    assert_eq!(reply[0], b'$', "{}", show(reply));
    let n: usize = std::str::from_utf8(&reply[1..nl - 1])
        .unwrap()
        .parse()
        .unwrap();
    reply[nl + 1..nl + 1 + n].to_vec()
}

fn payload_of(body: &[u8], version: u16) -> Vec<u8> {
    let mut p = body.to_vec();
    p.extend_from_slice(&version.to_le_bytes());
    let crc = hashd::persist::rdb::crc64(&p);
    p.extend_from_slice(&crc.to_le_bytes());
    p
}

#[test]
fn replies_match_redis() {
    let Some(bin) = reference_redis() else { return };
    let (_redis, mut r) = start_redis(&bin);
    let server = TestServer::start();
    let mut h = server.client();
    // A server still loading its snapshot answers -LOADING, as Redis does; wait it out.
    let deadline = Instant::now() + Duration::from_secs(20);
    while h.run("EXISTS nokey").starts_with(b"-LOADING") {
        assert!(Instant::now() < deadline, "hashd stayed in LOADING");
        std::thread::sleep(Duration::from_millis(10));
    }
    let both = |h: &mut Client, r: &mut Client, args: &[&[u8]]| {
        let (a, b) = (h.cmd(args), r.cmd(args));
        assert_eq!(
            show(&a),
            show(&b),
            "hashd vs Redis for {:?}",
            args.iter().map(|a| show(a)).collect::<Vec<_>>()
        );
        a
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let far = (now + 3_600_000).to_string();
    let past = (now - 1000).to_string();

    both(
        &mut h,
        &mut r,
        &[b"HSET", b"src", b"f", b"v", b"g", b"w", b"t", b"x"],
    );
    both(
        &mut h,
        &mut r,
        &[b"HPEXPIREAT", b"src", far.as_bytes(), b"FIELDS", b"1", b"t"],
    );
    let ph = bulk_payload(&h.run("DUMP src"));
    let pr = bulk_payload(&r.run("DUMP src"));
    both(&mut h, &mut r, &[b"DUMP", b"nokey"]);
    both(&mut h, &mut r, &[b"HSET", b"busy", b"a", b"1"]);

    let body = pr[..pr.len() - 10].to_vec();
    let mut flipped = pr.clone();
    flipped[3] ^= 1;
    let v13 = payload_of(&body, 13);
    let cut = payload_of(&body[..body.len() - 1], 12);
    let empty = payload_of(b"\x04\x00", 12);
    let cases: Vec<Vec<&[u8]>> = vec![
        // Options, in order, and their errors.
        vec![b"RESTORE", b"k", b"0", &pr, b"foo"],
        vec![b"RESTORE", b"k", b"0", &pr, b"IDLETIME"],
        vec![b"RESTORE", b"k", b"0", &pr, b"FREQ"],
        vec![
            b"RESTORE",
            b"k",
            b"0",
            &pr,
            b"IDLETIME",
            b"1",
            b"FREQ",
            b"1",
        ],
        vec![
            b"RESTORE",
            b"k",
            b"0",
            &pr,
            b"FREQ",
            b"1",
            b"IDLETIME",
            b"1",
        ],
        vec![b"RESTORE", b"k", b"0", &pr, b"IDLETIME", b"-1"],
        vec![b"RESTORE", b"k", b"0", &pr, b"IDLETIME", b"x"],
        vec![b"RESTORE", b"k", b"0", &pr, b"FREQ", b"256"],
        vec![b"RESTORE", b"k", b"0", &pr, b"FREQ", b"-1"],
        vec![b"RESTORE", b"busy", b"0", &pr, b"nope"],
        vec![b"RESTORE", b"busy", b"abc", b"junk"],
        vec![b"RESTORE", b"busy", b"0", &pr],
        vec![b"RESTORE", b"k", b"-1", b"junk"],
        vec![b"RESTORE", b"k", b"1.5", b"junk"],
        vec![b"RESTORE", b"k", b"0", b"junk"],
        vec![b"RESTORE", b"k", b"0", b""],
        vec![b"RESTORE", b"k", b"0", &flipped],
        vec![b"RESTORE", b"k", b"0", &pr[..pr.len() - 1]],
        vec![b"RESTORE", b"k", b"0", &v13],
        vec![b"RESTORE", b"k", b"0", &cut],
        vec![b"RESTORE", b"k", b"0", &empty],
        vec![b"RESTORE", b"busy", b"0", &cut, b"REPLACE"],
        vec![b"EXISTS", b"k", b"busy"],
        // Deadlines already past create nothing; REPLACE still deletes.
        vec![b"RESTORE", b"k", past.as_bytes(), &pr, b"ABSTTL"],
        vec![b"RESTORE", b"k", b"9223372036854775807", &pr],
        vec![
            b"RESTORE",
            b"busy",
            past.as_bytes(),
            &pr,
            b"ABSTTL",
            b"REPLACE",
        ],
        vec![b"EXISTS", b"k", b"busy"],
        // Successes, with every option.
        vec![b"RESTORE", b"a", b"0", &pr, b"IDLETIME", b"10", b"REPLACE"],
        vec![b"RESTORE", b"b", b"60000", &ph, b"FREQ", b"5"],
        vec![b"RESTORE", b"c", far.as_bytes(), &ph, b"ABSTTL", b"absttl"],
        vec![b"RESTORE", b"c", b"0", &pr, b"replace"],
        vec![b"RESTORE", b"a", b"0", &ph],
        vec![b"HMGET", b"a", b"f", b"g", b"t"],
        vec![b"HMGET", b"b", b"f", b"g", b"t"],
        vec![b"HPEXPIRETIME", b"a", b"FIELDS", b"2", b"f", b"t"],
        vec![b"HPEXPIRETIME", b"b", b"FIELDS", b"2", b"f", b"t"],
        vec![b"PEXPIRETIME", b"c"],
        vec![b"PEXPIRETIME", b"a"],
        vec![b"OBJECT", b"ENCODING", b"b"],
    ];
    for args in &cases {
        both(&mut h, &mut r, args);
    }
    // The relative TTL counts from each server's own clock: check it is about right.
    for c in [&mut h, &mut r] {
        let reply = String::from_utf8(c.run("PTTL b")).unwrap();
        let ms: i64 = reply.trim_start_matches(':').trim().parse().unwrap();
        assert!((59_000..=60_000).contains(&ms), "{reply}");
    }
}
