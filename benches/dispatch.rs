//! The request path without the network: parse → command lookup → shard lock → handler →
//! reply, on a real `ServerContext` (manual clock). What a request costs the server apart
//! from syscalls and the async runtime.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use hashd::client::ClientState;
use hashd::cmd::{self, Args};
use hashd::context::ServerContext;
use hashd::protocol::{request, ArgSource, ParseLimits, Parsed, RequestParser};

const LIMITS: ParseLimits = ParseLimits {
    max_bulk_len: 512 * 1024 * 1024,
    unauthenticated: false,
};

fn multibulk(args: &[&str]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n{a}\r\n", a.len()).as_bytes());
    }
    out
}

struct Env {
    server: ServerContext,
    client: ClientState,
    parser: RequestParser,
    out: Vec<u8>,
}

impl Env {
    fn new() -> Self {
        Env {
            server: ServerContext::for_tests(1_700_000_000_000),
            client: ClientState::for_tests(),
            parser: RequestParser::new(),
            out: Vec::with_capacity(64 * 1024),
        }
    }

    /// Runs every request in `buf` like the connection loop; returns the reply bytes.
    fn run(&mut self, buf: &[u8]) -> usize {
        self.out.clear();
        let mut pos = 0;
        while let Ok(Parsed::Request { consumed, source }) = self.parser.parse(&buf[pos..], LIMITS)
        {
            let data: &[u8] = match source {
                ArgSource::ReadBuffer => &buf[pos..],
                ArgSource::InlineBuffer => &self.parser.inline_buf,
            };
            cmd::dispatch(
                &self.server,
                &mut self.client,
                Args::new(data, &self.parser.spans),
                &mut self.out,
            );
            pos += consumed;
        }
        self.out.len()
    }
}

fn preload(env: &mut Env) {
    for i in 0..10_000 {
        let key = format!("bh:{i:012}");
        let mut args = vec!["HSET", &key];
        let names: Vec<String> = (0..10).map(|f| format!("f{f}")).collect();
        for n in &names {
            args.push(n);
            args.push("0123456789abcdef");
        }
        env.run(&multibulk(&args));
    }
}

fn dispatch(c: &mut Criterion) {
    let mut env = Env::new();
    preload(&mut env);
    let mut g = c.benchmark_group("dispatch");
    g.throughput(Throughput::Elements(1));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("ping", multibulk(&["PING"])),
        ("hget_hit", multibulk(&["HGET", "bh:000000004242", "f5"])),
        ("hget_miss_key", multibulk(&["HGET", "nokey", "f5"])),
        (
            "hset_overwrite",
            multibulk(&["HSET", "bh:000000004242", "f5", "0123456789abcdef"]),
        ),
        (
            "hset_new_key_then_gone",
            // Creates a key, a field and the key goes again: HSET + HDEL.
            [
                multibulk(&["HSET", "churn", "f", "0123456789abcdef"]),
                multibulk(&["HDEL", "churn", "f"]),
            ]
            .concat(),
        ),
        ("unknown_command", multibulk(&["GET", "x"])),
        ("wrong_arity", multibulk(&["HGET", "x"])),
    ];
    for (name, buf) in &cases {
        // A case whose command is not implemented yet still measures the error path.
        g.bench_function(*name, |b| b.iter(|| env.run(black_box(buf))));
    }
    for (name, req) in [
        ("hmget_10", {
            let mut a = vec!["HMGET", "bh:000000004242"];
            a.extend(["f0", "f1", "f2", "f3", "f4", "f5", "f6", "f7", "f8", "f9"]);
            multibulk(&a)
        }),
        ("hgetall_10", multibulk(&["HGETALL", "bh:000000004242"])),
        ("hincrby", multibulk(&["HINCRBY", "ctr", "n", "1"])),
        (
            "hexpire_1",
            multibulk(&["HEXPIRE", "bh:000000004243", "100000", "FIELDS", "1", "f3"]),
        ),
    ] {
        g.bench_function(name, |b| b.iter(|| env.run(black_box(&req))));
    }
    let p16 = multibulk(&["HGET", "bh:000000004242", "f5"]).repeat(16);
    g.throughput(Throughput::Elements(16));
    g.bench_function("pipeline_16_hget", |b| b.iter(|| env.run(black_box(&p16))));
    g.finish();
}

/// The replies that list a whole hash (HGETALL, HKEYS, HVALS, HSCAN): the encode path from
/// the stored fields into the output buffer. A compact hash of 10 fields (with and without
/// a TTL on every field, RESP2 and RESP3) and a table of 1000 (with and without TTLs).
fn list_all(c: &mut Criterion) {
    let mut env = Env::new();
    preload(&mut env);
    let names: Vec<String> = (0..1000).map(|f| format!("field:{f:04}")).collect();
    let mut hset = vec!["HSET", "big"];
    for n in &names {
        hset.push(n);
        hset.push("0123456789abcdef");
    }
    env.run(&multibulk(&hset));
    hset[1] = "bigttl";
    env.run(&multibulk(&hset));
    // Every field a TTL, far ahead (the manual clock does not move).
    let ttl_fields = |key: &str, n: usize| {
        let count = n.to_string();
        let mut a = vec!["HEXPIRE", key, "100000", "FIELDS", &count];
        let fields: Vec<String> = if n == 10 {
            (0..10).map(|f| format!("f{f}")).collect()
        } else {
            names.clone()
        };
        a.extend(fields.iter().map(String::as_str));
        multibulk(&a)
    };
    for (key, n) in [("bh:000000004243", 10), ("bigttl", 1000)] {
        env.run(&ttl_fields(key, n));
        assert!(env.out.starts_with(format!("*{n}\r\n:1\r\n").as_bytes()));
    }
    let mut resp3 = Env::new();
    preload(&mut resp3);
    resp3.run(&multibulk(&["HELLO", "3"]));

    let mut g = c.benchmark_group("list_all");
    g.throughput(Throughput::Elements(1));
    let compact = [
        (
            "hgetall_compact_10",
            multibulk(&["HGETALL", "bh:000000004242"]),
        ),
        (
            "hgetall_compact_10_ttl",
            multibulk(&["HGETALL", "bh:000000004243"]),
        ),
        ("hkeys_compact_10", multibulk(&["HKEYS", "bh:000000004242"])),
        ("hvals_compact_10", multibulk(&["HVALS", "bh:000000004242"])),
        (
            "hscan_compact_10",
            multibulk(&["HSCAN", "bh:000000004242", "0"]),
        ),
        ("hgetall_table_1000", multibulk(&["HGETALL", "big"])),
        ("hgetall_table_1000_ttl", multibulk(&["HGETALL", "bigttl"])),
    ];
    for (name, req) in &compact {
        assert!(env.run(req) > 80, "{name}: a real reply");
        g.bench_function(*name, |b| b.iter(|| env.run(black_box(req))));
    }
    let req = multibulk(&["HGETALL", "bh:000000004242"]);
    assert_eq!(
        resp3.run(&req),
        env.run(&req),
        "{}",
        "the same size in RESP3"
    );
    g.bench_function("hgetall_compact_10_resp3", |b| {
        b.iter(|| resp3.run(black_box(&req)))
    });
    let p16 = req.repeat(16);
    g.throughput(Throughput::Elements(16));
    g.bench_function("pipeline_16_hgetall_compact_10", |b| {
        b.iter(|| env.run(black_box(&p16)))
    });
    g.finish();
}

/// A read's worth of requests (16 HGETs) on keys spread over a keyspace far larger than the
/// caches, run as the connection does, with and without prefetching the batch's keys first:
/// the memory-level parallelism that `Keyspace::prefetch` buys at pipeline depth.
fn batch_prefetch(c: &mut Criterion) {
    const KEYS: usize = 1_000_000;
    const BATCHES: usize = 4096;
    let mut env = Env::new();
    let mut load = Vec::new();
    for i in 0..KEYS {
        load.extend(multibulk(&[
            "HSET",
            &format!("k:{i}"),
            "f5",
            "0123456789abcdef",
        ]));
        if i % 1000 == 999 {
            env.run(&load);
            load.clear();
        }
    }
    let batches: Vec<Vec<u8>> = (0..BATCHES)
        .map(|_| {
            (0..16)
                .flat_map(|_| multibulk(&["HGET", &format!("k:{}", fastrand::usize(..KEYS)), "f5"]))
                .collect()
        })
        .collect();
    let mut g = c.benchmark_group("batch");
    g.throughput(Throughput::Elements(16));
    let mut next = 0;
    g.bench_function("hget_16_random_keys", |b| {
        b.iter(|| {
            next = (next + 1) % BATCHES;
            env.run(black_box(&batches[next]))
        })
    });
    g.bench_function("hget_16_random_keys_prefetched", |b| {
        b.iter(|| {
            next = (next + 1) % BATCHES;
            let buf = &batches[next];
            let mut keys: Vec<&[u8]> = Vec::with_capacity(16);
            request::peek_keys(buf, 16, |k| keys.push(k));
            env.server.keyspace.prefetch(0, &keys);
            env.run(black_box(buf))
        })
    });
    g.finish();
}

criterion_group!(benches, dispatch, list_all, batch_prefetch);
criterion_main!(benches);
