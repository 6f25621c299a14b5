//! The AOF format module (`hashd::persist::aof`) against directories real Redis wrote
//! (`aof/plain`, `aof/preamble`), the manifest cases of Redis's aof-multi-part.tcl, truncation
//! at every byte, and a real Redis 7.4.1 (`redis-check-aof`, loading what hashd writes).

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{reference_redis, RedisServer};
use hashd::persist::aof::{
    encode_command, open_base, rdb_tail, AofEnd, AofError, AofItem, AofReader, Base,
    CommandBaseWriter, FileKind, Manifest, ManifestEntry, ManifestErrorKind, TruncateReason,
};
use hashd::persist::rdb::{FieldRef, LoadOptions, RdbReader};
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/redis/aof")
}

/// field → (value, field deadline)
type Fields = BTreeMap<Vec<u8>, (Vec<u8>, Option<u64>)>;
/// (db, key) → (fields, key deadline)
type Dataset = BTreeMap<(usize, Vec<u8>), (Fields, Option<u64>)>;

fn latin1(s: &str) -> Vec<u8> {
    s.chars()
        .map(|c| u8::try_from(u32::from(c)).expect("latin-1"))
        .collect()
}

fn json_dataset(path: &Path) -> Dataset {
    let j: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut d = Dataset::new();
    for (db, keys) in j["dbs"].as_object().unwrap() {
        for (key, v) in keys.as_object().unwrap() {
            let ttl = v["field_expire_ms"].as_object().unwrap();
            let fields = v["fields"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(f, val)| {
                    (
                        latin1(f),
                        (
                            latin1(val.as_str().unwrap()),
                            ttl.get(f).map(|t| t.as_u64().unwrap()),
                        ),
                    )
                })
                .collect();
            d.insert(
                (db.parse().unwrap(), latin1(key)),
                (fields, v["key_expire_ms"].as_u64()),
            );
        }
    }
    d
}

/// Just enough of Redis's hash commands to replay the fixtures (no clock: nothing expires).
#[derive(Default)]
struct Model {
    data: Dataset,
    db: usize,
    queue: Option<Vec<Vec<Vec<u8>>>>,
}

fn num(a: &[u8]) -> i64 {
    std::str::from_utf8(a).unwrap().parse().unwrap()
}

impl Model {
    fn apply(&mut self, argv: &[Vec<u8>]) {
        let name = String::from_utf8_lossy(&argv[0]).to_ascii_uppercase();
        if let Some(q) = &mut self.queue {
            if name != "EXEC" {
                q.push(argv.to_vec());
                return;
            }
        }
        let db = self.db;
        let key = argv.get(1).cloned().unwrap_or_default();
        match name.as_str() {
            "SELECT" => self.db = num(&argv[1]) as usize,
            "MULTI" => self.queue = Some(Vec::new()),
            "EXEC" => {
                for c in self.queue.take().unwrap() {
                    self.apply(&c);
                }
            }
            "HSET" | "HMSET" => {
                let h = self.data.entry((db, key)).or_default();
                for p in argv[2..].chunks(2) {
                    // HSET on an existing field drops its TTL in Redis.
                    h.0.insert(p[0].clone(), (p[1].clone(), None));
                }
            }
            "HINCRBY" => {
                let h = self.data.entry((db, key)).or_default();
                let e = h.0.entry(argv[2].clone()).or_insert((b"0".to_vec(), None));
                e.0 = (num(&e.0) + num(&argv[3])).to_string().into_bytes();
            }
            "HDEL" => {
                if let Some(h) = self.data.get_mut(&(db, key.clone())) {
                    for f in &argv[2..] {
                        h.0.remove(f);
                    }
                    if h.0.is_empty() {
                        self.data.remove(&(db, key));
                    }
                }
            }
            "HPEXPIREAT" => {
                let ms = num(&argv[2]) as u64;
                assert_eq!(argv[3].to_ascii_uppercase(), b"FIELDS");
                let h = self.data.get_mut(&(db, key)).unwrap();
                for f in &argv[5..] {
                    if let Some(e) = h.0.get_mut(f) {
                        e.1 = Some(ms);
                    }
                }
            }
            "HPERSIST" => {
                let h = self.data.get_mut(&(db, key)).unwrap();
                for f in &argv[4..] {
                    if let Some(e) = h.0.get_mut(f) {
                        e.1 = None;
                    }
                }
            }
            "PEXPIREAT" => self.data.get_mut(&(db, key)).unwrap().1 = Some(num(&argv[2]) as u64),
            "DEL" | "UNLINK" => {
                for k in &argv[1..] {
                    self.data.remove(&(db, k.clone()));
                }
            }
            other => panic!("command not in the model: {other}"),
        }
    }
}

fn print_commands(file: &Path, cmds: &[Vec<Vec<u8>>]) {
    eprintln!("{}:", file.display());
    for c in cmds {
        let words: Vec<String> = c
            .iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        eprintln!("  {}", words.join(" "));
    }
}

fn read_commands<R: std::io::Read>(r: &mut AofReader<R>) -> Vec<Vec<Vec<u8>>> {
    let mut cmds = Vec::new();
    loop {
        match r.next_item().unwrap() {
            AofItem::Command(argv) => cmds.push(argv.to_vec()),
            AofItem::End(end) => {
                assert_eq!(end, AofEnd::Clean);
                return cmds;
            }
        }
    }
}

/// Loads a multi-part AOF directory: the manifest, the base (RDB or commands), the incrs.
fn load_dir(dir: &Path, appendfilename: &str) -> Dataset {
    let manifest = std::fs::read(dir.join(format!("{appendfilename}.manifest"))).unwrap();
    let manifest = Manifest::parse(&manifest).unwrap();
    assert_eq!(Manifest::parse(&manifest.to_bytes()).unwrap(), manifest);
    let mut model = Model::default();
    for entry in manifest.files_to_load() {
        let path = dir.join(&entry.name);
        let file = std::fs::File::open(&path).unwrap();
        let cmds = match open_base(file).unwrap() {
            Base::Commands(mut r) => read_commands(&mut r),
            Base::Rdb(input) => {
                assert_eq!(entry.kind, FileKind::Base);
                let mut rdb = RdbReader::new(input, LoadOptions::default()).unwrap();
                while let Some(k) = rdb.next_key().unwrap() {
                    let fields = k
                        .fields
                        .into_iter()
                        .map(|f| (f.field, (f.value, f.expire_ms)))
                        .collect();
                    model.data.insert((k.db, k.key), (fields, k.expire_ms));
                }
                assert!(rdb.aux().iter().any(|(k, v)| k == b"aof-base" && v == b"1"));
                let mut tail = rdb_tail(rdb);
                let tail_cmds = read_commands(&mut tail);
                assert!(tail_cmds.is_empty(), "a base has nothing after its RDB");
                tail_cmds
            }
        };
        print_commands(&path, &cmds);
        for c in &cmds {
            model.apply(c);
        }
    }
    assert!(model.queue.is_none());
    model.data
}

#[test]
fn redis_fixture_directories_replay_to_their_json() {
    for name in ["plain", "preamble"] {
        let got = load_dir(&fixtures().join(name), "appendonly.aof");
        let want = json_dataset(&fixtures().join(format!("{name}.json")));
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn fixture_manifests_are_written_back_byte_for_byte() {
    for name in ["plain", "preamble"] {
        let bytes = std::fs::read(fixtures().join(name).join("appendonly.aof.manifest")).unwrap();
        assert_eq!(Manifest::parse(&bytes).unwrap().to_bytes(), bytes, "{name}");
    }
}

/// Every manifest case of aof-multi-part.tcl that the manifest alone decides.
#[test]
fn redis_manifest_negative_cases() {
    let long = "file appendonly.aof.1.base.aof seq 1 type b ".repeat(43);
    let cases: Vec<(String, ManifestErrorKind, &str)> = vec![
        (
            "file appendonly.aof.2.incr.aof seq 2 type i\nfile appendonly.aof.1.incr.aof seq 1 type i\n".into(),
            ManifestErrorKind::NonMonotonicSeq,
            "Found a non-monotonic sequence number",
        ),
        (
            "file appendonly.aof.1.incr.aof seq 1 type i\n\nfile appendonly.aof.3.incr.aof seq 3 type i\n".into(),
            ManifestErrorKind::InvalidFormat,
            "Invalid AOF manifest file format",
        ),
        (
            "file appendonly.aof.1.base.aof seq 1 type b\nfile appendonly.aof.2.base.aof seq 2 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n".into(),
            ManifestErrorKind::DuplicateBase,
            "Found duplicate base file information",
        ),
        (
            "file appendonly.aof.1.base.aof seq 1 type x\nfile appendonly.aof.1.incr.aof seq 1 type i\n".into(),
            ManifestErrorKind::UnknownType,
            "Unknown AOF file type",
        ),
        (
            "filx appendonly.aof.1.base.aof seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i\n".into(),
            ManifestErrorKind::InvalidFormat,
            "Invalid AOF manifest file format",
        ),
        (
            "file appendonly.aof.1.base.aof seq 1 type b\nfile appendonly.aof.1.incr.aof type i\n".into(),
            ManifestErrorKind::InvalidFormat,
            "Invalid AOF manifest file format",
        ),
        (
            format!("{}\nfile appendonly.aof.1.incr.aof seq 1 type i\n", long.trim_end()),
            ManifestErrorKind::LineTooLong,
            "The AOF manifest file contains too long line",
        ),
        (
            "file appendonly.aof.1.base.aof seq 1 type b\nfile appendonly.aof.1.incr.aof seq 1 type i newkey\n".into(),
            ManifestErrorKind::InvalidFormat,
            "Invalid AOF manifest file format",
        ),
        ("".into(), ManifestErrorKind::Empty, "Found an empty AOF manifest"),
    ];
    for (text, kind, message) in cases {
        let err = Manifest::parse(text.as_bytes()).unwrap_err();
        assert_eq!(err.kind, kind, "{text:?}");
        assert!(err.to_string().starts_with(message), "{err}");
    }
    // The positive ones: discontinuous sequence numbers, new keys, names with spaces.
    let m = Manifest::parse(
        b"file appendonly.aof.1.base.aof seq 1 type b newkey newvalue\n\
          file appendonly.aof.1.incr.aof seq 1 type i\n\
          file appendonly.aof.3.incr.aof seq 3 type i\n",
    )
    .unwrap();
    assert_eq!(m.incrs.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 3]);
    let spaced = Manifest {
        base: Some(ManifestEntry {
            name: "\" file seq \\n\\n.1.base.aof".into(),
            seq: 1,
            kind: FileKind::Base,
        }),
        incrs: vec![ManifestEntry {
            name: "\" file seq \\n\\n.1.incr.aof".into(),
            seq: 1,
            kind: FileKind::Incr,
        }],
        ..Manifest::default()
    };
    // Names with `\` are refused by Redis (not a base name); quotes, spaces are quoted.
    assert!(Manifest::parse(&spaced.to_bytes()).is_err());
    let spaced = Manifest {
        base: Some(ManifestEntry {
            name: "\" file seq n.1.base.aof".into(),
            seq: 1,
            kind: FileKind::Base,
        }),
        curr_base_seq: 1,
        ..Manifest::default()
    };
    assert_eq!(
        spaced.to_bytes(),
        b"file \"\\\" file seq n.1.base.aof\" seq 1 type b\n"
    );
    assert_eq!(Manifest::parse(&spaced.to_bytes()).unwrap(), spaced);
}

fn plain_incr() -> Vec<u8> {
    std::fs::read(fixtures().join("plain/appendonly.aof.1.incr.aof")).unwrap()
}

/// Offsets of the command boundaries of `data` (each command's end) and of MULTI starts.
fn boundaries(data: &[u8]) -> Vec<(u64, bool)> {
    let mut r = AofReader::new(data);
    let mut out = vec![];
    while let AofItem::Command(argv) = r.next_item().unwrap() {
        let is_multi = argv[0].eq_ignore_ascii_case(b"multi");
        out.push((r.valid_up_to(), is_multi));
    }
    out
}

#[test]
fn truncation_at_every_byte_of_the_plain_incr() {
    let data = plain_incr();
    let ends = boundaries(&data);
    assert_eq!(ends.last().unwrap().0, data.len() as u64);
    for cut in 0..=data.len() {
        let mut r = AofReader::new(&data[..cut]);
        let mut n = 0;
        let end = loop {
            match r.next_item().unwrap() {
                AofItem::Command(_) => n += 1,
                AofItem::End(e) => break e,
            }
        };
        // The last complete command before the cut.
        let complete: Vec<_> = ends.iter().filter(|(e, _)| *e <= cut as u64).collect();
        assert_eq!(n, complete.len(), "cut {cut}");
        let last_end = complete.last().map_or(0, |(e, _)| *e);
        // An open MULTI: the offset before it.
        let open_multi = {
            let mut open = None;
            let mut prev = 0;
            for (e, is_multi) in &complete {
                if *is_multi && open.is_none() {
                    open = Some(prev);
                }
                prev = *e;
            }
            // EXEC is the command after HINCRBY t inside the fixture's transaction.
            let exec_end = ends[ends.iter().position(|(_, m)| *m).unwrap() + 4].0;
            open.filter(|_| last_end < exec_end)
        };
        let expected = match (cut as u64 == last_end, open_multi) {
            (true, None) => AofEnd::Clean,
            (false, None) => AofEnd::Truncated {
                valid_up_to: last_end,
                len: cut as u64,
                reason: TruncateReason::ShortRead,
            },
            (at_boundary, Some(m)) => AofEnd::Truncated {
                valid_up_to: m,
                len: cut as u64,
                reason: if at_boundary {
                    TruncateReason::UnfinishedMulti
                } else {
                    TruncateReason::ShortRead
                },
            },
        };
        assert_eq!(end, expected, "cut {cut}");
    }
}

#[test]
fn garbage_in_the_middle_is_a_format_error_with_its_offset() {
    let data = plain_incr();
    let ends = boundaries(&data);
    for &(at, _) in &ends[..ends.len() - 1] {
        let at = at as usize;
        for garbage in [
            &b"garbage\r\n"[..],
            b"$3\r\nfoo\r\n",
            b"*2\r\n$3\r\nGET\r\nfoo\r\n",
        ] {
            let bad = [&data[..at], garbage, &data[at..]].concat();
            let mut r = AofReader::new(&bad[..]);
            let err = loop {
                match r.next_item() {
                    Ok(AofItem::Command(_)) => {}
                    Ok(AofItem::End(e)) => panic!("no error: {e:?}"),
                    Err(e) => break e,
                }
            };
            assert!(matches!(err, AofError::Format { .. }));
            let expected = if garbage.starts_with(b"*2") {
                at + 13
            } else {
                at
            };
            assert_eq!(err.offset(), expected as u64, "{err}");
        }
    }
}

#[test]
fn timestamp_annotations_are_skipped() {
    let data = plain_incr();
    let ends = boundaries(&data);
    let mut annotated = b"#TS:1700000000\r\n".to_vec();
    let mut prev = 0;
    for (i, &(e, _)) in ends.iter().enumerate() {
        annotated.extend_from_slice(&data[prev..e as usize]);
        annotated.extend_from_slice(format!("#TS:{}\r\n", 1_700_000_001 + i).as_bytes());
        prev = e as usize;
    }
    let plain: Vec<_> = {
        let mut r = AofReader::new(&data[..]);
        read_commands(&mut r)
    };
    let mut r = AofReader::new(&annotated[..]);
    assert_eq!(read_commands(&mut r), plain);
    assert_eq!(r.last_timestamp(), Some(1_700_000_000 + ends.len() as u64));
}

#[test]
fn random_bytes_never_panic() {
    let data = plain_incr();
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..3000 {
        let mut bad = data.clone();
        for _ in 0..3 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let i = (rng as usize) % bad.len();
            bad[i] = (rng >> 32) as u8;
        }
        let mut r = AofReader::new(&bad[..]);
        for _ in 0..10_000 {
            match r.next_item() {
                Ok(AofItem::Command(_)) => {}
                Ok(AofItem::End(_)) | Err(_) => break,
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Against a real Redis 7.4.1.

struct Client {
    r: BufReader<TcpStream>,
}

#[derive(Debug, PartialEq)]
enum Resp {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Vec<Resp>),
}

impl Client {
    fn cmd(&mut self, args: &[&[u8]]) -> Resp {
        let mut out = Vec::new();
        encode_command(&mut out, args);
        self.r.get_mut().write_all(&out).unwrap();
        self.read()
    }

    fn read(&mut self) -> Resp {
        let mut line = Vec::new();
        self.r.read_until(b'\n', &mut line).unwrap();
        let text = String::from_utf8_lossy(&line[1..line.len() - 2]).into_owned();
        match line[0] {
            b'+' => Resp::Simple(text),
            b'-' => Resp::Error(text),
            b':' => Resp::Int(text.parse().unwrap()),
            b'$' => {
                let n: i64 = text.parse().unwrap();
                if n < 0 {
                    return Resp::Bulk(None);
                }
                let mut b = vec![0; n as usize + 2];
                std::io::Read::read_exact(&mut self.r, &mut b).unwrap();
                b.truncate(n as usize);
                Resp::Bulk(Some(b))
            }
            b'*' => {
                let n: i64 = text.parse().unwrap();
                Resp::Array((0..n.max(0)).map(|_| self.read()).collect())
            }
            other => panic!("bad reply type {other}"),
        }
    }
}

fn int(r: Resp) -> i64 {
    match r {
        Resp::Int(i) => i,
        other => panic!("{other:?}"),
    }
}

/// What a Redis holds, as a dataset (dbs 0..16).
fn redis_dataset(c: &mut Client) -> Dataset {
    let mut d = Dataset::new();
    for db in 0..16usize {
        let db_s = db.to_string();
        assert_eq!(
            c.cmd(&[b"SELECT", db_s.as_bytes()]),
            Resp::Simple("OK".into())
        );
        let Resp::Array(keys) = c.cmd(&[b"KEYS", b"*"]) else {
            panic!("KEYS")
        };
        for k in keys {
            let Resp::Bulk(Some(key)) = k else { panic!() };
            let Resp::Array(items) = c.cmd(&[b"HGETALL", &key]) else {
                panic!("HGETALL")
            };
            let mut fields = Fields::new();
            for p in items.chunks(2) {
                let (Resp::Bulk(Some(f)), Resp::Bulk(Some(v))) = (&p[0], &p[1]) else {
                    panic!()
                };
                let Resp::Array(t) = c.cmd(&[b"HPEXPIRETIME", &key, b"FIELDS", b"1", f]) else {
                    panic!()
                };
                let t = int(t.into_iter().next().unwrap());
                fields.insert(f.clone(), (v.clone(), (t >= 0).then_some(t as u64)));
            }
            let t = int(c.cmd(&[b"PEXPIRETIME", &key]));
            d.insert((db, key), (fields, (t >= 0).then_some(t as u64)));
        }
    }
    d
}

#[test]
fn real_redis_checks_and_loads_a_directory_hashd_writes() {
    let Some(bin) = reference_redis() else {
        return;
    };
    let root = std::env::temp_dir().join(format!("hashd-aof-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let aofdir = root.join("appendonlydir");
    std::fs::create_dir_all(&aofdir).unwrap();
    let far = 4_102_444_800_000u64;

    // The base, in command form: a big hash without TTLs (3 HMSET batches), one with field
    // TTLs and a key TTL, binary names, a second database.
    let big: Vec<(Vec<u8>, Vec<u8>)> = (0..150)
        .map(|i| (format!("f{i}").into_bytes(), format!("v{i}").into_bytes()))
        .collect();
    let big_refs: Vec<FieldRef> = big
        .iter()
        .map(|(f, v)| FieldRef {
            field: f,
            value: v,
            expire_ms: None,
        })
        .collect();
    let ttl_refs = [
        FieldRef {
            field: b"a",
            value: b"1",
            expire_ms: Some(far),
        },
        FieldRef {
            field: b"b \r\n\x00\xff",
            value: b"",
            expire_ms: None,
        },
        FieldRef {
            field: b"c",
            value: b"3",
            expire_ms: Some(far + 1),
        },
    ];
    let mut w = CommandBaseWriter::new(Vec::new());
    w.hash(0, b"big", None, &big_refs).unwrap();
    w.hash(0, b"ttl\x01", Some(far + 5), &ttl_refs).unwrap();
    w.hash(5, b"other", None, &big_refs[..1]).unwrap();
    let base = w.finish().unwrap();
    std::fs::write(aofdir.join("appendonly.aof.1.base.aof"), &base).unwrap();

    let mut incr = Vec::new();
    encode_command(&mut incr, &[b"SELECT", b"0"]);
    encode_command(
        &mut incr,
        &[b"HSET", b"big", b"f0", b"changed", b"new", b"x"],
    );
    encode_command(&mut incr, &[b"HDEL", b"big", b"f1"]);
    encode_command(&mut incr, &[b"MULTI"]);
    encode_command(&mut incr, &[b"HSET", b"tx", b"f", b"1"]);
    encode_command(
        &mut incr,
        &[
            b"HPEXPIREAT",
            b"tx",
            b"4102444800000",
            b"FIELDS",
            b"1",
            b"f",
        ],
    );
    encode_command(&mut incr, &[b"EXEC"]);
    encode_command(&mut incr, &[b"HPERSIST", b"ttl\x01", b"FIELDS", b"1", b"c"]);
    std::fs::write(aofdir.join("appendonly.aof.1.incr.aof"), &incr).unwrap();

    let mut manifest = Manifest::default();
    manifest.new_base("appendonly.aof", false);
    manifest.new_incr("appendonly.aof");
    std::fs::write(aofdir.join("appendonly.aof.manifest"), manifest.to_bytes()).unwrap();

    // What hashd itself reads back from the directory.
    let expected = load_dir(&aofdir, "appendonly.aof");
    assert_eq!(expected.len(), 4);

    let check = Command::new(bin.join("redis-check-aof"))
        .arg(aofdir.join("appendonly.aof.manifest"))
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success() && out.contains("is valid"),
        "redis-check-aof:\n{out}{}",
        String::from_utf8_lossy(&check.stderr)
    );

    let redis = RedisServer::start(&bin, &root, &["--appendonly", "yes"]);
    let mut c = Client {
        r: BufReader::new(TcpStream::connect(redis.addr).unwrap()),
    };
    assert_eq!(redis_dataset(&mut c), expected);
    drop(c);
    drop(redis);
    let _ = std::fs::remove_dir_all(&root);
}
