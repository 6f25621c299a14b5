//! The RDB codec (`hashd::persist::rdb`) against files real Redis wrote, against itself, against
//! corruption, and against a real Redis 7.4.1 (`redis-check-rdb`, loading, RESTORE, DUMP).

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{reference_redis, RedisServer};
use hashd::persist::rdb::{
    crc64, dump_payload, parse_dump_payload, write_rdb, DumpError, FieldRef, HashHeader,
    LoadOptions, LoadStats, RdbError, RdbField, RdbKey, RdbReader, RdbWriter, WriteOptions,
};
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/redis")
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// field → (value, field deadline)
type Fields = BTreeMap<Vec<u8>, (Vec<u8>, Option<u64>)>;
/// (db, key) → (fields, key deadline)
type Dataset = BTreeMap<(usize, Vec<u8>), (Fields, Option<u64>)>;

fn dataset(keys: &[RdbKey]) -> Dataset {
    let mut d = Dataset::new();
    for k in keys {
        let fields = k
            .fields
            .iter()
            .map(|f| (f.field.clone(), (f.value.clone(), f.expire_ms)))
            .collect::<BTreeMap<_, _>>();
        assert_eq!(fields.len(), k.fields.len(), "duplicate fields");
        assert!(
            d.insert((k.db, k.key.clone()), (fields, k.expire_ms))
                .is_none(),
            "duplicate key"
        );
    }
    d
}

/// JSON strings hold bytes as latin-1 code points.
fn latin1(s: &str) -> Vec<u8> {
    s.chars()
        .map(|c| u8::try_from(u32::from(c)).expect("latin-1"))
        .collect()
}

fn json_hash(v: &Value) -> (Fields, Option<u64>) {
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
    (fields, v["key_expire_ms"].as_u64())
}

/// The hashes of a fixture's JSON (non-hash keys left out).
fn json_dataset(path: &Path) -> Dataset {
    let j: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut d = Dataset::new();
    for (db, keys) in j["dbs"].as_object().unwrap() {
        for (key, v) in keys.as_object().unwrap() {
            if v.get("type").is_some() {
                continue;
            }
            d.insert((db.parse().unwrap(), latin1(key)), json_hash(v));
        }
    }
    d
}

/// Loads a whole file; also returns how many bytes were left after the trailer.
fn load_with_rest(
    bytes: &[u8],
    opts: LoadOptions,
) -> Result<(Vec<RdbKey>, LoadStats, usize), RdbError> {
    let mut r = RdbReader::new(bytes, opts)?;
    let mut keys = Vec::new();
    while let Some(k) = r.next_key()? {
        keys.push(k);
    }
    let stats = r.stats().clone();
    let (unread, rest) = r.into_inner();
    Ok((keys, stats, rest.len() + unread.len()))
}

fn load(bytes: &[u8], opts: LoadOptions) -> Result<(Vec<RdbKey>, LoadStats), RdbError> {
    let (keys, stats, rest) = load_with_rest(bytes, opts)?;
    assert_eq!(rest, 0, "bytes left after the trailer");
    Ok((keys, stats))
}

fn live() -> LoadOptions {
    LoadOptions {
        now_ms: Some(now_ms()),
        ..LoadOptions::default()
    }
}

fn fixture_rdbs() -> Vec<PathBuf> {
    let mut v = Vec::new();
    for dir in ["rdb", "rdb-7.0"] {
        for e in std::fs::read_dir(fixtures().join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "rdb") {
                v.push(p);
            }
        }
    }
    v.sort();
    assert!(v.len() >= 12, "fixtures missing: {v:?}");
    v
}

#[test]
fn every_fixture_loads_with_exactly_its_json_dataset() {
    for path in fixture_rdbs() {
        let bytes = std::fs::read(&path).unwrap();
        let skip = path.ends_with("non-hash-types.rdb");
        let opts = LoadOptions {
            skip_unsupported: skip,
            ..live()
        };
        let (keys, stats) = load(&bytes, opts).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        assert_eq!(
            dataset(&keys),
            json_dataset(&path.with_extension("json")),
            "{path:?}"
        );
        assert_eq!(stats.keys_loaded as usize, keys.len());
    }
}

#[test]
fn aux_fields_and_version_are_read() {
    let bytes = std::fs::read(fixtures().join("rdb/listpack.rdb")).unwrap();
    let r = RdbReader::new(&bytes[..], LoadOptions::default()).unwrap();
    assert_eq!(r.version(), 12);
    let bytes = std::fs::read(fixtures().join("rdb-7.0/listpack.rdb")).unwrap();
    let mut r = RdbReader::new(&bytes[..], LoadOptions::default()).unwrap();
    assert_eq!(r.version(), 10);
    r.next_key().unwrap();
    let aux: BTreeMap<_, _> = r.aux().iter().cloned().collect();
    assert_eq!(aux[&b"redis-bits".to_vec()], b"64");
    assert_eq!(aux[&b"redis-ver".to_vec()], b"7.0.15");
}

#[test]
fn expired_at_load_drops_what_it_should() {
    let path = fixtures().join("rdb/expired-at-load.rdb");
    let bytes = std::fs::read(&path).unwrap();
    let (keys, stats) = load(&bytes, live()).unwrap();
    assert_eq!(dataset(&keys), json_dataset(&path.with_extension("json")));
    // h.gone, allgone.a, t.f1, t.f2; allgone had nothing else.
    assert_eq!(stats.fields_expired, 4);
    assert_eq!(stats.hashes_all_fields_expired, 1);
    assert_eq!(stats.keys_loaded, 2);

    // Without a clock (a replica, an AOF preamble) everything is kept.
    let (keys, stats) = load(&bytes, LoadOptions::default()).unwrap();
    assert_eq!(keys.len(), 3);
    assert_eq!(stats.fields_expired, 0);
    let h = keys.iter().find(|k| k.key == b"h").unwrap();
    assert!(h
        .fields
        .iter()
        .any(|f| f.field == b"gone" && f.expire_ms.is_some()));

    // Key-level TTLs: a key past its deadline is dropped and counted.
    let path = fixtures().join("rdb/key-ttl-and-dbs.rdb");
    let bytes = std::fs::read(&path).unwrap();
    let far_future = LoadOptions {
        now_ms: Some(4102444800001),
        ..LoadOptions::default()
    };
    let (keys, stats) = load(&bytes, far_future).unwrap();
    assert_eq!(stats.keys_expired, 2, "k and both");
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].key, b"in3");
}

#[test]
fn non_hash_types_are_named_or_skipped() {
    let path = fixtures().join("rdb/non-hash-types.rdb");
    let bytes = std::fs::read(&path).unwrap();
    let err = load(&bytes, live()).unwrap_err();
    match &err {
        RdbError::UnsupportedType {
            key,
            type_name,
            db,
            offset,
            ..
        } => {
            assert_eq!(key, "\"str\"");
            assert_eq!(*type_name, "string");
            assert_eq!(*db, 0);
            assert!(*offset > 9);
        }
        other => panic!("{other}"),
    }
    let text = err.to_string();
    assert!(
        text.contains("\"str\"") && text.contains("string"),
        "{text}"
    );

    let opts = LoadOptions {
        skip_unsupported: true,
        ..live()
    };
    let (keys, stats) = load(&bytes, opts).unwrap();
    assert_eq!(dataset(&keys), json_dataset(&path.with_extension("json")));
    assert_eq!(stats.keys_skipped, 3);
}

fn dump_fixtures() -> Vec<(String, Vec<u8>, Value)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(fixtures().join("dump")).unwrap() {
        let p = e.unwrap().path();
        let j: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        for (key, v) in j["keys"].as_object().unwrap() {
            let hex = v["payload_hex"].as_str().unwrap();
            let payload = (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
                .collect();
            out.push((key.clone(), payload, v.clone()));
        }
    }
    assert!(out.len() >= 8);
    out
}

fn field_map(fields: &[RdbField]) -> Fields {
    fields
        .iter()
        .map(|f| (f.field.clone(), (f.value.clone(), f.expire_ms)))
        .collect()
}

#[test]
fn every_dump_fixture_parses_to_its_fields() {
    for (key, payload, v) in dump_fixtures() {
        let fields = parse_dump_payload(&payload).unwrap_or_else(|e| panic!("{key}: {e:?}"));
        assert_eq!(field_map(&fields), json_hash(&v).0, "{key}");
        assert_eq!(field_map(&fields).len(), fields.len());
    }
}

#[test]
fn dump_payload_errors_use_redis_texts() {
    let (_, payload, _) = dump_fixtures().remove(0);
    let wrong = "ERR DUMP payload version or checksum are wrong";
    let mut newer = payload.clone();
    let n = newer.len();
    newer[n - 10] = 13;
    let crc = crc64(&newer[..n - 8]);
    newer[n - 8..].copy_from_slice(&crc.to_le_bytes());
    assert_eq!(parse_dump_payload(&newer).unwrap_err().to_string(), wrong);
    let mut bad_crc = payload.clone();
    bad_crc[n - 1] ^= 1;
    assert_eq!(parse_dump_payload(&bad_crc).unwrap_err().to_string(), wrong);
    assert_eq!(
        parse_dump_payload(&payload[..9]).unwrap_err().to_string(),
        wrong
    );
    assert_eq!(parse_dump_payload(&[]).unwrap_err().to_string(), wrong);

    // A corrupt value under a valid footer: every truncation of the body.
    for cut in 0..n - 10 {
        let mut p = payload[..cut].to_vec();
        p.extend_from_slice(&12u16.to_le_bytes());
        let crc = crc64(&p);
        p.extend_from_slice(&crc.to_le_bytes());
        let e = parse_dump_payload(&p).unwrap_err();
        assert_eq!(e.to_string(), "ERR Bad data format", "cut {cut}: {e:?}");
    }
    // A string value is well-formed but not a hash.
    let mut p = vec![0u8, 3, b'a', b'b', b'c'];
    p.extend_from_slice(&12u16.to_le_bytes());
    let crc = crc64(&p);
    p.extend_from_slice(&crc.to_le_bytes());
    assert!(matches!(
        parse_dump_payload(&p),
        Err(DumpError::UnsupportedType("string"))
    ));
    // Older versions are accepted.
    let mut p = payload[..n - 10].to_vec();
    p.extend_from_slice(&11u16.to_le_bytes());
    let crc = crc64(&p);
    p.extend_from_slice(&crc.to_le_bytes());
    assert!(parse_dump_payload(&p).is_ok());
}

fn sample_fields(n: usize, ttl_every: usize, base: u64) -> Vec<RdbField> {
    (0..n)
        .map(|i| RdbField {
            field: format!("field:{i}").into_bytes(),
            value: match i % 4 {
                0 => i.to_string().into_bytes(),
                1 => format!("value-{i}-").repeat(5).into_bytes(),
                2 => vec![(i % 251) as u8, 0, 255, b'\n'],
                _ => b"-12".to_vec(),
            },
            expire_ms: (ttl_every > 0 && i % ttl_every == 0).then(|| base + i as u64 * 7),
        })
        .collect()
}

#[test]
fn dump_payload_round_trips() {
    let base = 4_102_444_800_000;
    for fields in [
        sample_fields(1, 0, base),
        sample_fields(3, 1, base),
        sample_fields(700, 3, base),
        sample_fields(40, 0, base),
    ] {
        for compression in [false, true] {
            let p = dump_payload(&fields, compression).unwrap();
            assert_eq!(parse_dump_payload(&p).unwrap(), fields);
        }
    }
    assert!(dump_payload(&[], true).is_err());
    let beyond = vec![RdbField {
        field: b"f".to_vec(),
        value: b"v".to_vec(),
        expire_ms: Some(1 << 48),
    }];
    assert!(dump_payload(&beyond, true).is_err());
}

/// A dataset exercising every encoding choice the writer makes.
fn rich_dataset() -> Vec<RdbKey> {
    let base = 4_102_444_800_000;
    let mut keys = vec![
        RdbKey {
            db: 0,
            key: b"plain".to_vec(),
            expire_ms: None,
            fields: sample_fields(5, 0, base),
        },
        RdbKey {
            db: 0,
            key: b"bin\x00key\xff\r\n".to_vec(),
            expire_ms: Some(base + 5000),
            fields: vec![RdbField {
                field: b"\x00\x01\x02".to_vec(),
                value: Vec::new(),
                expire_ms: None,
            }],
        },
        RdbKey {
            db: 0,
            key: b"12345".to_vec(), // an integer-encoded key
            expire_ms: None,
            fields: sample_fields(3, 1, base),
        },
        RdbKey {
            db: 0,
            key: b"big".to_vec(),
            expire_ms: Some(base + 1),
            fields: sample_fields(2000, 5, base + 100),
        },
        RdbKey {
            db: 3,
            key: b"in3".to_vec(),
            expire_ms: None,
            fields: sample_fields(10, 2, base),
        },
        RdbKey {
            db: 15,
            key: vec![b'k'; 300],
            expire_ms: None,
            fields: vec![RdbField {
                field: vec![b'f'; 100_000],
                value: (0..200_000u32).map(|i| (i % 13) as u8).collect(),
                expire_ms: Some(FIELD_MAX),
            }],
        },
    ];
    // Integer edge cases: canonical and not.
    let ints = [
        "0",
        "-1",
        "127",
        "128",
        "-128",
        "-129",
        "32767",
        "32768",
        "-32768",
        "2147483647",
        "2147483648",
        "-2147483648",
        "-2147483649",
        "007",
        "+5",
        "-0",
        " 1",
        "99999999999",
        "9223372036854775807",
    ];
    keys.push(RdbKey {
        db: 1,
        key: b"ints".to_vec(),
        expire_ms: None,
        fields: ints
            .iter()
            .map(|s| RdbField {
                field: format!("f{s}").into_bytes(),
                value: s.as_bytes().to_vec(),
                expire_ms: None,
            })
            .chain(ints.iter().map(|s| RdbField {
                field: s.as_bytes().to_vec(),
                value: b"x".to_vec(),
                expire_ms: None,
            }))
            .collect(),
    });
    keys
}

const FIELD_MAX: u64 = (1 << 48) - 1;

fn opts(compression: bool, checksum: bool) -> WriteOptions {
    WriteOptions {
        compression,
        checksum,
        ..WriteOptions::default()
    }
}

#[test]
fn writer_reader_round_trips() {
    let keys = rich_dataset();
    let mut sizes = Vec::new();
    for compression in [false, true] {
        for checksum in [false, true] {
            let (bytes, n) = write_rdb(Vec::new(), &opts(compression, checksum), &keys).unwrap();
            assert_eq!(n as usize, bytes.len());
            assert_eq!(&bytes[..9], b"REDIS0012");
            let trailer = &bytes[bytes.len() - 8..];
            assert_eq!(trailer == [0; 8], !checksum);
            let (back, _) = load(&bytes, live()).unwrap();
            assert_eq!(dataset(&back), dataset(&keys));
            // Keys come back in the order written within each db.
            assert_eq!(back.iter().map(|k| &k.key).collect::<Vec<_>>(), {
                let mut sorted: Vec<&RdbKey> = keys.iter().collect();
                sorted.sort_by_key(|k| k.db);
                sorted.into_iter().map(|k| &k.key).collect::<Vec<_>>()
            });
            sizes.push((compression, bytes.len()));
        }
    }
    let plain = sizes.iter().find(|s| !s.0).unwrap().1;
    let packed = sizes.iter().find(|s| s.0).unwrap().1;
    assert!(
        packed * 3 < plain,
        "LZF saved too little: {packed} vs {plain}"
    );
}

#[test]
fn writer_streams_and_counts() {
    // A hash written from an iterator, with a minExpire lower than the true minimum.
    let mut w = RdbWriter::new(Vec::new(), &WriteOptions::default()).unwrap();
    w.select_db(2, 1, 0).unwrap();
    let fields = sample_fields(1000, 2, 4_102_444_800_000);
    let header = HashHeader {
        len: fields.len(),
        min_expire_ms: Some(1_000),
    };
    w.write_hash(b"h", None, header, fields.iter().map(FieldRef::from))
        .unwrap();
    let before = w.bytes_written();
    assert!(before > 1000);
    let (bytes, n) = w.finish().unwrap();
    assert_eq!(n as usize, bytes.len());
    assert_eq!(n, before + 9, "EOF + CRC");
    let (keys, _) = load(&bytes, LoadOptions::default()).unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].db, 2);
    assert_eq!(keys[0].fields, fields);

    // Misuse is refused and poisons the writer.
    let mut w = RdbWriter::new(Vec::new(), &WriteOptions::default()).unwrap();
    w.select_db(0, 1, 0).unwrap();
    let bad = HashHeader {
        len: 3,
        min_expire_ms: None,
    };
    assert!(w
        .write_hash(b"h", None, bad, fields.iter().take(2).map(FieldRef::from))
        .is_err());
    assert!(w.select_db(1, 0, 0).is_err());
    let mut w = RdbWriter::new(Vec::new(), &WriteOptions::default()).unwrap();
    w.select_db(0, 1, 0).unwrap();
    let no_base = HashHeader {
        len: 2,
        min_expire_ms: None,
    };
    assert!(w
        .write_hash(
            b"h",
            None,
            no_base,
            fields.iter().take(2).map(FieldRef::from)
        )
        .is_err());
}

#[test]
fn a_million_field_hash_round_trips() {
    // Release builds do the full million; debug builds a tenth, to stay fast.
    let n = if cfg!(debug_assertions) {
        100_000
    } else {
        1_000_000
    };
    let base = 4_102_444_800_000;
    let field = |i: usize| format!("f{i:07}").into_bytes();
    let value = |i: usize| format!("value number {i} of the big hash").into_bytes();
    let started = Instant::now();
    let mut w = RdbWriter::new(Vec::new(), &WriteOptions::default()).unwrap();
    w.select_db(0, 1, 0).unwrap();
    let header = HashHeader {
        len: n,
        min_expire_ms: Some(base),
    };
    let owned: Vec<(Vec<u8>, Vec<u8>)> = (0..n).map(|i| (field(i), value(i))).collect();
    w.write_hash(
        b"big",
        None,
        header,
        owned.iter().enumerate().map(|(i, (f, v))| FieldRef {
            field: f,
            value: v,
            expire_ms: (i % 2 == 0).then_some(base + i as u64),
        }),
    )
    .unwrap();
    let (bytes, _) = w.finish().unwrap();
    let (keys, _) = load(&bytes, LoadOptions::default()).unwrap();
    assert_eq!(keys[0].fields.len(), n);
    for (i, f) in keys[0].fields.iter().enumerate() {
        assert_eq!(f.field, owned[i].0);
        assert_eq!(f.value, owned[i].1);
        assert_eq!(f.expire_ms, (i % 2 == 0).then_some(base + i as u64));
    }
    let took = started.elapsed();
    eprintln!("{n} fields, {} bytes, round trip in {took:?}", bytes.len());
    assert!(took < Duration::from_secs(30));
}

/// Every prefix of every fixture is an error, never a panic or a hang.
#[test]
fn truncation_at_every_offset_is_an_error() {
    for path in fixture_rdbs() {
        let bytes = std::fs::read(&path).unwrap();
        for cut in 0..bytes.len() {
            let opts = LoadOptions {
                skip_unsupported: true,
                ..LoadOptions::default()
            };
            match load(&bytes[..cut], opts) {
                Err(e) => assert!(e.offset().is_some_and(|o| o <= cut as u64), "{e}"),
                Ok(_) => panic!("{path:?} cut at {cut} loaded"),
            }
        }
    }
}

#[test]
fn random_byte_flips_are_errors_when_checksummed() {
    let mut rng = fastrand::Rng::with_seed(0x5eed);
    let mut flips = 0;
    for path in fixture_rdbs() {
        let original = std::fs::read(&path).unwrap();
        let tries = 400;
        for _ in 0..tries {
            let mut bytes = original.clone();
            let mut flipped = Vec::new();
            // Past the header: a version flipped below 5 is a file without a checksum.
            for _ in 0..rng.usize(1..4) {
                let i = rng.usize(9..bytes.len());
                bytes[i] ^= rng.u8(1..);
                flipped.push((i, bytes[i]));
            }
            if bytes == original {
                continue; // the same byte flipped back
            }
            let opts = LoadOptions {
                skip_unsupported: true,
                ..LoadOptions::default()
            };
            assert!(
                load_with_rest(&bytes, opts.clone()).is_err(),
                "{path:?} flipped at {flipped:?} loaded"
            );
            // Without the checksum anything may load, but nothing may panic.
            let n = bytes.len();
            bytes[n - 8..].fill(0);
            let _ = load_with_rest(&bytes, opts);
            flips += 1;
        }
    }
    assert!(flips > 1000);
}

#[test]
fn hostile_lengths_do_not_allocate_or_hang() {
    let header = b"REDIS0012\xfe\x00";
    let cases: Vec<Vec<u8>> = vec![
        // A hash claiming 2^64-1 fields.
        [&header[..], b"\x04\x01k\x81\xff\xff\xff\xff\xff\xff\xff\xff"].concat(),
        // A key string claiming 4 GiB.
        [&header[..], b"\x04\x80\xff\xff\xff\xff"].concat(),
        // LZF claiming an enormous original length.
        [&header[..], b"\x04\x01k\x01\xc3\x02\x81\x00\x00\x01\x00\x00\x00\x00\x00\x00a"].concat(),
        // A listpack string claiming 2^64.
        [&header[..], b"\x10\x01k\x81\xff\xff\xff\xff\xff\xff\xff\xff"].concat(),
        // A type-24 TTL past 2^48.
        [&header[..], b"\x18\x01k\x00\x00\x00\x00\x00\x00\x00\x00\x01\x81\x00\x02\x00\x00\x00\x00\x00\x00\x01f\x01v"].concat(),
        // An unknown type and an unknown length encoding.
        [&header[..], b"\x63"].concat(),
        [&header[..], b"\x04\x01k\x82"].concat(),
        // SELECTDB past the configured databases.
        b"REDIS0012\xfe\x40\x00".to_vec(),
    ];
    for bytes in cases {
        let started = Instant::now();
        let e = load(&bytes, LoadOptions::default()).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(1), "{e}");
    }
    assert!(matches!(
        load(b"REDIS0013\xff", LoadOptions::default()),
        Err(RdbError::UnsupportedVersion { version: 13 })
    ));
    let relaxed = LoadOptions {
        relaxed_version: true,
        ..LoadOptions::default()
    };
    assert!(load(b"REDIS0013\xff\0\0\0\0\0\0\0\0", relaxed).is_ok());
    assert!(matches!(
        load(b"VALKEY080\xff", LoadOptions::default()),
        Err(RdbError::BadMagic { .. })
    ));
}

#[test]
fn checksum_mismatch_is_reported_with_its_offset() {
    let (mut bytes, _) = write_rdb(Vec::new(), &opts(true, true), &rich_dataset()).unwrap();
    let n = bytes.len();
    bytes[n - 3] ^= 0x40;
    match load(&bytes, LoadOptions::default()) {
        Err(RdbError::Checksum { offset, .. }) => assert_eq!(offset as usize, n - 8),
        other => panic!("{other:?}"),
    }
    let skip = LoadOptions {
        verify_checksum: false,
        ..LoadOptions::default()
    };
    assert!(load(&bytes, skip).is_ok());
}

#[test]
fn trailing_bytes_are_left_for_the_caller() {
    let (mut bytes, _) = write_rdb(Vec::new(), &opts(true, true), &rich_dataset()).unwrap();
    bytes.extend_from_slice(b"*1\r\n$4\r\nPING\r\n");
    let mut r = RdbReader::new(&bytes[..], LoadOptions::default()).unwrap();
    while r.next_key().unwrap().is_some() {}
    let (mut rest_reader, mut rest) = r.into_inner();
    rest_reader.read_to_end(&mut rest).unwrap();
    assert_eq!(rest, b"*1\r\n$4\r\nPING\r\n");
}

// ---------------------------------------------------------------------------------------------
// Against a real Redis 7.4.1.

#[derive(Debug, Clone, PartialEq)]
enum Resp {
    Simple(String),
    Error(String),
    Int(i64),
    Bulk(Option<Vec<u8>>),
    Array(Vec<Resp>),
}

struct Client {
    r: BufReader<TcpStream>,
}

impl Client {
    fn cmd(&mut self, args: &[&[u8]]) -> Resp {
        let mut out = format!("*{}\r\n", args.len()).into_bytes();
        for a in args {
            out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
            out.extend_from_slice(a);
            out.extend_from_slice(b"\r\n");
        }
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
                self.r.read_exact(&mut b).unwrap();
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

/// redis-server loading `dir/dbfilename`, and a client once it has loaded.
fn start_redis(bin: &Path, dir: &Path, dbfilename: &str) -> (RedisServer, Client) {
    let server = RedisServer::start(
        bin,
        dir,
        &["--dbfilename", dbfilename, "--appendonly", "no"],
    );
    let c = Client {
        r: BufReader::new(TcpStream::connect(server.addr).unwrap()),
    };
    (server, c)
}

fn int(r: Resp) -> i64 {
    match r {
        Resp::Int(i) => i,
        other => panic!("{other:?}"),
    }
}

/// HGETALL + HPEXPIRETIME of one key, as a field map.
fn redis_hash(c: &mut Client, key: &[u8]) -> Fields {
    let Resp::Array(items) = c.cmd(&[b"HGETALL", key]) else {
        panic!("HGETALL")
    };
    let pairs: Vec<(Vec<u8>, Vec<u8>)> = items
        .chunks(2)
        .map(|p| match (&p[0], &p[1]) {
            (Resp::Bulk(Some(f)), Resp::Bulk(Some(v))) => (f.clone(), v.clone()),
            other => panic!("{other:?}"),
        })
        .collect();
    let mut out = BTreeMap::new();
    for chunk in pairs.chunks(500) {
        let n = chunk.len().to_string();
        let mut args: Vec<&[u8]> = vec![b"HPEXPIRETIME", key, b"FIELDS", n.as_bytes()];
        args.extend(chunk.iter().map(|(f, _)| f.as_slice()));
        let Resp::Array(ttls) = c.cmd(&args) else {
            panic!("HPEXPIRETIME")
        };
        for ((f, v), t) in chunk.iter().zip(ttls) {
            let t = int(t);
            out.insert(f.clone(), (v.clone(), (t >= 0).then_some(t as u64)));
        }
    }
    out
}

fn assert_redis_holds(c: &mut Client, keys: &[RdbKey]) {
    for db in 0..16usize {
        let db_s = db.to_string();
        assert_eq!(
            c.cmd(&[b"SELECT", db_s.as_bytes()]),
            Resp::Simple("OK".into())
        );
        let expected: Vec<&RdbKey> = keys.iter().filter(|k| k.db == db).collect();
        assert_eq!(int(c.cmd(&[b"DBSIZE"])) as usize, expected.len(), "db {db}");
        for k in expected {
            assert_eq!(
                redis_hash(c, &k.key),
                field_map(&k.fields),
                "key {:?}",
                k.key
            );
            let t = int(c.cmd(&[b"PEXPIRETIME", &k.key]));
            assert_eq!((t >= 0).then_some(t as u64), k.expire_ms, "key {:?}", k.key);
        }
    }
}

#[test]
fn real_redis_checks_and_loads_what_hashd_writes() {
    let Some(bin) = reference_redis() else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("hashd-rdb-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let keys = rich_dataset();
    for (compression, checksum) in [(true, true), (false, false)] {
        let name = format!("hashd-{compression}-{checksum}.rdb");
        let path = dir.join(&name);
        let (bytes, _) = write_rdb(Vec::new(), &opts(compression, checksum), &keys).unwrap();
        std::fs::write(&path, &bytes).unwrap();

        let check = Command::new(bin.join("redis-check-rdb"))
            .arg(&path)
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&check.stdout);
        assert!(
            check.status.success() && out.contains("RDB looks OK"),
            "redis-check-rdb:\n{out}{}",
            String::from_utf8_lossy(&check.stderr)
        );

        let (_server, mut c) = start_redis(&bin, &dir, &name);
        assert_redis_holds(&mut c, &keys);

        // RESTORE of hashd's DUMP, and hashd parsing Redis's DUMP, for every key.
        for k in keys.iter().filter(|k| k.db == 0) {
            let payload = dump_payload(&k.fields, compression).unwrap();
            let copy = [b"restored:".as_slice(), &k.key].concat();
            assert_eq!(c.cmd(&[b"SELECT", b"0"]), Resp::Simple("OK".into()));
            assert_eq!(
                c.cmd(&[b"RESTORE", &copy, b"0", &payload]),
                Resp::Simple("OK".into())
            );
            assert_eq!(redis_hash(&mut c, &copy), field_map(&k.fields));
            let Resp::Bulk(Some(theirs)) = c.cmd(&[b"DUMP", &k.key]) else {
                panic!("DUMP")
            };
            assert_eq!(
                field_map(&parse_dump_payload(&theirs).unwrap()),
                field_map(&k.fields)
            );
        }

        // And back: Redis saves what it loaded, hashd reads it.
        assert_eq!(c.cmd(&[b"DEL", b"restored:plain"]), Resp::Int(1));
        for k in keys.iter().filter(|k| k.db == 0) {
            c.cmd(&[b"DEL", &[b"restored:".as_slice(), &k.key].concat()]);
        }
        assert_eq!(c.cmd(&[b"SAVE"]), Resp::Simple("OK".into()));
        let saved = std::fs::read(&path).unwrap();
        let (back, _) = load(&saved, live()).unwrap();
        assert_eq!(dataset(&back), dataset(&keys));
    }
    let _ = std::fs::remove_dir_all(&dir);
}
