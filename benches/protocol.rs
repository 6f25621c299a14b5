//! RESP request decoding and reply encoding: the fixed cost every request pays before and
//! after the command itself.

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use hashd::protocol::{ParseLimits, Parsed, Protocol, Reply, RequestParser};

const LIMITS: ParseLimits = ParseLimits {
    max_bulk_len: 512 * 1024 * 1024,
    unauthenticated: false,
};

fn multibulk(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Parses every request in `buf`, as the connection loop does; returns how many.
fn parse_all(parser: &mut RequestParser, buf: &[u8]) -> usize {
    let mut pos = 0;
    let mut n = 0;
    while let Ok(p) = parser.parse(&buf[pos..], LIMITS) {
        match p {
            Parsed::Request { consumed, .. } | Parsed::Ignored { consumed } => {
                pos += consumed;
                n += 1;
            }
            Parsed::Incomplete => break,
        }
    }
    n
}

fn decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("decode");
    let hget = multibulk(&[b"HGET", b"bh:000000001234", b"f5"]);
    let hset = multibulk(&[b"HSET", b"hs:000000001234", b"f", b"0123456789abcdef"]);
    let mut hmset10: Vec<&[u8]> = vec![b"HSET", b"m:12345"];
    let fields: Vec<Vec<u8>> = (0..10).map(|i| format!("f{i}").into_bytes()).collect();
    for f in &fields {
        hmset10.push(f);
        hmset10.push(b"0123456789abcdef");
    }
    let hset10 = multibulk(&hmset10);
    let inline = b"HGET bh:000000001234 f5\r\n".to_vec();
    let pipeline16: Vec<u8> = hget.repeat(16);
    let mut parser = RequestParser::new();
    for (name, buf, reqs) in [
        ("hget", &hget, 1),
        ("hset_1_field", &hset, 1),
        ("hset_10_fields", &hset10, 1),
        ("inline_hget", &inline, 1),
        ("pipeline_16_hget", &pipeline16, 16),
    ] {
        g.throughput(Throughput::Elements(reqs));
        g.bench_function(name, |b| b.iter(|| parse_all(&mut parser, black_box(buf))));
    }
    g.finish();
}

fn encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("encode");
    let mut out = Vec::with_capacity(4096);
    let value = b"0123456789abcdef";
    for proto in [Protocol::Resp2, Protocol::Resp3] {
        let tag = if proto == Protocol::Resp2 {
            "resp2"
        } else {
            "resp3"
        };
        g.bench_function(format!("int/{tag}"), |b| {
            b.iter(|| {
                out.clear();
                Reply::new(&mut out, proto).int(black_box(12345));
            })
        });
        g.bench_function(format!("bulk16/{tag}"), |b| {
            b.iter(|| {
                out.clear();
                Reply::new(&mut out, proto).bulk(black_box(value));
            })
        });
        // HGETALL of a 10-field hash.
        g.bench_function(format!("map10/{tag}"), |b| {
            b.iter(|| {
                out.clear();
                let mut r = Reply::new(&mut out, proto);
                r.map(10);
                for i in 0..10u8 {
                    r.bulk(&[b'f', b'0' + i]);
                    r.bulk(black_box(value));
                }
            })
        });
    }
    g.bench_function("fresh_buffer_bulk16", |b| {
        b.iter_batched(
            Vec::new,
            |mut v| {
                Reply::new(&mut v, Protocol::Resp2).bulk(value);
                v
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, decode, encode);
criterion_main!(benches);
