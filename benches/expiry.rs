//! The expiry indexes: reclaiming due fields oldest-first from a table's volatile index, and
//! the per-shard index of hashes by earliest field deadline that the sweeper walks.

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use hashd::keyspace::{HashValue, Keyspace, LockPlan, TtlUpdate};
use smallvec::smallvec;

const NOW_MS: u64 = 1_700_000_000_000;
const VALUE: &[u8] = b"0123456789abcdef";

/// One shard holding `hashes` hashes of `fields` fields, every field due at `NOW_MS`.
fn keyspace(hashes: usize, fields: usize) -> Keyspace {
    let ks = Keyspace::new(1, 1);
    {
        let plan = LockPlan::Shards {
            db: 0,
            shards: smallvec![0],
        };
        let mut locked = ks.lock(&plan);
        let mut db = locked.db(0);
        for k in 0..hashes {
            let key = format!("h:{k}");
            let mut h = db.get_or_create(key.as_bytes(), NOW_MS - 10);
            for f in 0..fields {
                h.set(format!("f{f}").as_bytes(), VALUE, TtlUpdate::Set(NOW_MS));
            }
        }
    }
    ks
}

fn table_with_ttls(n: usize) -> HashValue {
    let mut h = HashValue::new();
    h.convert_to_table();
    for i in 0..n {
        h.set(
            format!("f{i}").as_bytes(),
            VALUE,
            TtlUpdate::Set(NOW_MS + (i % 1000) as u64),
        );
    }
    h
}

fn expiry(c: &mut Criterion) {
    let mut g = c.benchmark_group("expiry");
    g.sample_size(20);

    // The per-hash volatile index of a big table: reclaim 10k of 100k fields.
    g.throughput(Throughput::Elements(10_000));
    g.bench_function("table_remove_expired/10k_of_100k", |b| {
        b.iter_batched(
            || table_with_ttls(100_000),
            |mut h| {
                let n = h.remove_expired(u64::MAX, 10_000, |_| {});
                (h, n)
            },
            BatchSize::LargeInput,
        )
    });

    // Setting TTLs: each one inserts into the volatile index.
    g.throughput(Throughput::Elements(10_000));
    g.bench_function("table_set_expire/10k", |b| {
        b.iter_batched(
            || {
                let mut h = HashValue::new();
                h.convert_to_table();
                for i in 0..10_000 {
                    h.set(format!("f{i}").as_bytes(), VALUE, TtlUpdate::Clear);
                }
                h
            },
            |mut h| {
                for i in 0..10_000 {
                    h.set_expire(format!("f{i}").as_bytes(), Some(NOW_MS + i as u64));
                }
                h
            },
            BatchSize::LargeInput,
        )
    });

    // The sweeper's unit of work: 10k small hashes (10 fields each, all due) in one shard,
    // reclaimed in batches of 1000 units like the sweeper does.
    g.throughput(Throughput::Elements(100_000));
    g.bench_function("shard_expire_due/10k_hashes_x10", |b| {
        b.iter_batched(
            || keyspace(10_000, 10),
            |ks| {
                let mut total = 0;
                loop {
                    let (out, _) = ks.sweep_shard(0, 0, NOW_MS + 1, 1000);
                    total += out.fields;
                    if !out.more_due {
                        break;
                    }
                }
                black_box(total);
                ks
            },
            BatchSize::LargeInput,
        )
    });

    // One big hash whose fields all share one deadline: the worst case for the two-level index.
    g.throughput(Throughput::Elements(100_000));
    g.bench_function("shard_expire_due/1_hash_x100k", |b| {
        b.iter_batched(
            || keyspace(1, 100_000),
            |ks| {
                loop {
                    let (out, _) = ks.sweep_shard(0, 0, NOW_MS + 1, 1000);
                    if !out.more_due {
                        break;
                    }
                }
                ks
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();
}

criterion_group!(benches, expiry);
criterion_main!(benches);
