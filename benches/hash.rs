//! Hash value operations per encoding (compact = listpack-like, table = hash table), at the
//! sizes that matter: 10 fields (the common small hash), 128 and 512 (the compact limit),
//! and large tables.

use criterion::{
    black_box, criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput,
};
use hashd::keyspace::{Encoding, HashValue, TtlUpdate};

const VALUE: &[u8] = b"0123456789abcdef";

fn field(i: usize) -> Vec<u8> {
    format!("f{i:07}").into_bytes()
}

fn build(n: usize, table: bool, ttl: bool) -> HashValue {
    let mut h = HashValue::new();
    if table {
        h.convert_to_table();
    }
    for i in 0..n {
        let t = if ttl {
            TtlUpdate::Set(1_800_000_000_000 + i as u64)
        } else {
            TtlUpdate::Clear
        };
        h.set(&field(i), VALUE, t);
    }
    h
}

/// (encoding name, fields, is a table).
fn cases() -> Vec<(&'static str, usize, bool)> {
    vec![
        ("compact", 10, false),
        ("compact", 128, false),
        ("compact", 512, false),
        ("table", 10, true),
        ("table", 512, true),
        ("table", 100_000, true),
    ]
}

fn ops(c: &mut Criterion) {
    let mut g = c.benchmark_group("hash");
    g.throughput(Throughput::Elements(1));
    for (enc, n, table) in cases() {
        let h = build(n, table, false);
        assert_eq!(h.encoding() == Encoding::Hashtable, table);
        let mid = field(n / 2);
        let last = field(n - 1);
        let id = |op: &str| BenchmarkId::new(format!("{op}/{enc}"), n);
        g.bench_function(id("get_mid"), |b| {
            b.iter(|| h.get(black_box(&mid)).is_some())
        });
        g.bench_function(id("get_last"), |b| {
            b.iter(|| h.get(black_box(&last)).is_some())
        });
        g.bench_function(id("get_miss"), |b| {
            b.iter(|| h.get(black_box(b"nope")).is_some())
        });
        let mut w = h.clone();
        g.bench_function(id("set_overwrite"), |b| {
            b.iter(|| w.set(black_box(&mid), black_box(VALUE), TtlUpdate::Clear))
        });
        g.bench_function(id("set_new_remove"), |b| {
            b.iter(|| {
                w.set(black_box(b"extra"), VALUE, TtlUpdate::Clear);
                w.remove(black_box(b"extra"))
            })
        });
        g.bench_function(id("set_ttl_then_clear"), |b| {
            b.iter(|| {
                w.set_expire(black_box(&mid), Some(1_900_000_000_000));
                w.set_expire(black_box(&mid), None)
            })
        });
        if n <= 512 {
            g.throughput(Throughput::Elements(n as u64));
            g.bench_function(id("iter_all"), |b| {
                b.iter(|| h.iter().map(|f| f.value.len()).sum::<usize>())
            });
            g.throughput(Throughput::Elements(1));
        }
    }
    // Building a 10-field hash from nothing: what HSET of a new key pays.
    g.throughput(Throughput::Elements(10));
    g.bench_function("build/compact/10", |b| {
        b.iter(|| build(black_box(10), false, false))
    });
    g.bench_function("build/compact_ttl/10", |b| {
        b.iter(|| build(black_box(10), false, true))
    });
    // Crossing the compact limit.
    g.throughput(Throughput::Elements(513));
    g.bench_function("convert_to_table/513", |b| {
        b.iter_batched(
            || build(513, false, false),
            |mut h| {
                h.convert_to_table();
                h
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

/// One big table read and written at random fields, so that every access misses the cache:
/// the layout's cost per lookup (bucket, then the field's bytes), which the repeated
/// lookups above, always in cache, do not show.
fn big_table(c: &mut Criterion) {
    const FIELDS: usize = 1_000_000;
    let mut g = c.benchmark_group("big_table");
    g.throughput(Throughput::Elements(1));
    let mut h = build(FIELDS, true, false);
    let mut rng = fastrand::Rng::with_seed(5);
    let order: Vec<Vec<u8>> = (0..4096).map(|_| field(rng.usize(..FIELDS))).collect();
    let mut i = 0;
    g.bench_function("get_random/1000000", |b| {
        b.iter(|| {
            i = (i + 1) % order.len();
            h.get(black_box(&order[i])).is_some()
        })
    });
    let longer = b"0123456789abcdefg";
    g.bench_function("set_random_other_length/1000000", |b| {
        b.iter(|| {
            i = (i + 1) % order.len();
            let v = if i % 2 == 0 { VALUE } else { &longer[..] };
            h.set(black_box(&order[i]), v, TtlUpdate::Clear)
        })
    });
    g.finish();
}

/// Heap bytes per field as the value reports them (not RSS: see scripts/bench-compare).
fn report_sizes(_: &mut Criterion) {
    for (enc, n, table) in cases() {
        for ttl in [false, true] {
            let h = build(n, table, ttl);
            println!(
                "heap_bytes {enc:>7} n={n:<7} ttl={ttl:<5} {:>8.1} B/field",
                h.heap_bytes() as f64 / n as f64
            );
        }
    }
}

criterion_group!(benches, ops, big_table, report_sizes);
criterion_main!(benches);
