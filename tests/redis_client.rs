//! The `redis` crate (redis-rs) as a real client: sync and async, RESP2 and RESP3
//! (`?protocol=resp3`), the hash commands, field expiration, pipelines, MULTI/EXEC
//! (`pipe().atomic()` and `redis::transaction` with WATCH), and password + db in the URL.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use redis::{AsyncCommands, Commands, ExpireOption, RedisResult};

use common::{assert_bytes, TestServer, T0_MS};

const TIMEOUT: Duration = Duration::from_secs(5);

fn server() -> TestServer {
    // A manual clock makes the TTLs read back exact.
    TestServer::builder().manual_clock(T0_MS).start()
}

fn connect(url: &str) -> redis::Connection {
    let client = redis::Client::open(url).unwrap_or_else(|e| panic!("open {url}: {e}"));
    let con = client
        .get_connection_with_timeout(TIMEOUT)
        .unwrap_or_else(|e| panic!("connect {url}: {e}"));
    con.set_read_timeout(Some(TIMEOUT)).expect("read timeout");
    con.set_write_timeout(Some(TIMEOUT)).expect("write timeout");
    con
}

async fn connect_async(url: &str) -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(url).unwrap_or_else(|e| panic!("open {url}: {e}"));
    tokio::time::timeout(TIMEOUT, client.get_multiplexed_async_connection())
        .await
        .unwrap_or_else(|_| panic!("connect {url}: timeout"))
        .unwrap_or_else(|e| panic!("connect {url}: {e}"))
}

/// The seed's bike example plus the rest of the hash API, through the sync client.
fn sync_scenario(con: &mut redis::Connection, resp3: bool) -> RedisResult<()> {
    let k = "bike:1";
    let n: i64 = con.hset(k, "model", "Deimos")?;
    assert_eq!(n, 1);
    // redis-rs sends HMSET for hset_multiple.
    let () = con.hset_multiple(k, &[("brand", "Ergonom"), ("type", "Enduro bikes")])?;
    let n: i64 = con.hset(k, "price", 4972)?;
    assert_eq!(n, 1);
    let model: String = con.hget(k, "model")?;
    assert_eq!(model, "Deimos");
    let price: i64 = con.hget(k, "price")?;
    assert_eq!(price, 4972);
    let missing: Option<String> = con.hget(k, "no-such-field")?;
    assert_eq!(missing, None);
    let all: HashMap<String, String> = con.hgetall(k)?;
    assert_eq!(all.len(), 4);
    assert_eq!(all["type"], "Enduro bikes");
    let raw: redis::Value = redis::cmd("HGETALL").arg(k).query(con)?;
    if resp3 {
        assert!(
            matches!(raw, redis::Value::Map(ref m) if m.len() == 4),
            "{raw:?}"
        );
    } else {
        assert!(
            matches!(raw, redis::Value::Array(ref a) if a.len() == 8),
            "{raw:?}"
        );
    }
    let some: Vec<Option<String>> = con.hmget(k, &["model", "price", "no-such-field"])?;
    assert_eq!(some, vec![Some("Deimos".into()), Some("4972".into()), None]);
    let p: i64 = con.hincr(k, "price", 100)?;
    assert_eq!(p, 5072);
    let p: i64 = con.hincr(k, "price", -100)?;
    assert_eq!(p, 4972);
    let f: f64 = con.hincr(k, "ratio", 1.5)?;
    assert_eq!(f, 1.5);
    let exists: bool = con.hexists(k, "ratio")?;
    assert!(exists);
    let d: i64 = con.hdel(k, &["ratio", "nope"])?;
    assert_eq!(d, 1);
    let len: i64 = con.hlen(k)?;
    assert_eq!(len, 4);

    let set: Vec<i64> = con.hexpire(k, 100, ExpireOption::NONE, &["model", "nope"])?;
    assert_eq!(set, vec![1, -2]);
    let nx: Vec<i64> = con.hexpire(k, 50, ExpireOption::NX, "model")?;
    assert_eq!(nx, vec![0]);
    let ttl: Vec<i64> = con.httl(k, &["model", "brand", "nope"])?;
    assert_eq!(ttl, vec![100, -1, -2]);
    let pttl: Vec<i64> = con.hpttl(k, "model")?;
    assert_eq!(pttl, vec![100_000]);
    let persisted: Vec<i64> = con.hpersist(k, &["model", "brand"])?;
    assert_eq!(persisted, vec![1, -1]);

    // Redis 8 commands.
    let opts = redis::HashFieldExpirationOptions::default()
        .set_existence_check(redis::FieldExistenceCheck::FNX)
        .set_expiration(redis::SetExpiry::EX(50));
    let ok: bool = con.hset_ex("sess", &opts, &[("a", "1"), ("b", "2")])?;
    assert!(ok);
    let again: bool = con.hset_ex("sess", &opts, &[("a", "1")])?;
    assert!(!again, "FNX with an existing field sets nothing");
    let ttl: Vec<i64> = con.httl("sess", &["a", "b"])?;
    assert_eq!(ttl, vec![50, 50]);
    let got: Vec<Option<String>> = con.hget_ex("sess", &["a", "x"], redis::Expiry::PERSIST)?;
    assert_eq!(got, vec![Some("1".into()), None]);
    let ttl: Vec<i64> = con.httl("sess", &["a", "b"])?;
    assert_eq!(ttl, vec![-1, 50]);
    let del: Vec<Option<String>> = con.hget_del("sess", &["a", "b", "a"])?;
    assert_eq!(del, vec![Some("1".into()), Some("2".into()), None]);
    let gone: bool = con.exists("sess")?;
    assert!(!gone, "HGETDEL of the last fields deletes the key");
    Ok(())
}

fn sync_pipelines(con: &mut redis::Connection) -> RedisResult<()> {
    let (a, b, c): (i64, String, Vec<Option<String>>) = redis::pipe()
        .hset("p", "f", "v")
        .hget("p", "f")
        .hmget("p", &["f", "x"])
        .query(con)?;
    assert_eq!((a, b.as_str()), (1, "v"));
    assert_eq!(c, vec![Some("v".into()), None]);

    let (one, three): (i64, i64) = redis::pipe()
        .atomic()
        .hincr("p", "n", 1)
        .hincr("p", "n", 2)
        .query(con)?;
    assert_eq!((one, three), (1, 3));

    // A run-time error inside EXEC does not undo the other commands.
    let r: RedisResult<(i64, i64)> = redis::pipe()
        .atomic()
        .hset("p", "s", "abc")
        .hincr("p", "s", 1)
        .query(con);
    let e = r.expect_err("HINCRBY on a non-integer fails inside EXEC");
    assert!(
        e.to_string().contains("hash value is not an integer"),
        "{e}"
    );
    let s: String = con.hget("p", "s")?;
    assert_eq!(s, "abc");

    // WATCH-based optimistic transaction.
    let (n,): (i64,) = redis::transaction(con, &["p"], |con, pipe| {
        let n: i64 = con.hget("p", "n")?;
        pipe.hset("p", "n", n * 10)
            .ignore()
            .hget("p", "n")
            .query(con)
    })?;
    assert_eq!(n, 30);
    Ok(())
}

#[test]
fn sync_resp2() {
    let srv = server();
    let mut con = connect(&srv.url(""));
    sync_scenario(&mut con, false).expect("sync RESP2 scenario");
    sync_pipelines(&mut con).expect("sync RESP2 pipelines");
}

#[test]
fn sync_resp3() {
    let srv = server();
    let mut con = connect(&srv.url("?protocol=resp3"));
    sync_scenario(&mut con, true).expect("sync RESP3 scenario");
    sync_pipelines(&mut con).expect("sync RESP3 pipelines");
}

async fn async_scenario(
    con: &mut redis::aio::MultiplexedConnection,
    resp3: bool,
) -> RedisResult<()> {
    let k = "bike:1:stats";
    for (field, want) in [
        ("rides", 1),
        ("rides", 2),
        ("rides", 3),
        ("crashes", 1),
        ("owners", 1),
    ] {
        let n: i64 = con.hincr(k, field, 1).await?;
        assert_eq!(n, want, "HINCRBY {field}");
    }
    let rides: i64 = con.hget(k, "rides").await?;
    assert_eq!(rides, 3);
    let some: Vec<i64> = con.hmget(k, &["owners", "crashes"]).await?;
    assert_eq!(some, vec![1, 1]);
    let all: HashMap<String, i64> = con.hgetall(k).await?;
    assert_eq!(all.len(), 3);
    let raw: redis::Value = redis::cmd("HGET")
        .arg(k)
        .arg("nope")
        .query_async(con)
        .await?;
    assert_eq!(raw, redis::Value::Nil);
    let raw: redis::Value = redis::cmd("HGETALL").arg(k).query_async(con).await?;
    if resp3 {
        assert!(matches!(raw, redis::Value::Map(_)), "{raw:?}");
    } else {
        assert!(matches!(raw, redis::Value::Array(_)), "{raw:?}");
    }
    let d: i64 = con.hdel(k, "crashes").await?;
    assert_eq!(d, 1);
    let set: Vec<i64> = con
        .hexpire(k, 60, ExpireOption::NONE, &["rides", "nope"])
        .await?;
    assert_eq!(set, vec![1, -2]);
    let ttl: Vec<i64> = con.httl(k, &["rides", "owners"]).await?;
    assert_eq!(ttl, vec![60, -1]);

    let (a, b): (i64, Option<String>) = redis::pipe()
        .hset("ap", "f", "v")
        .hget("ap", "missing")
        .query_async(con)
        .await?;
    assert_eq!((a, b), (1, None));
    let (x, y): (i64, i64) = redis::pipe()
        .atomic()
        .hincr("ap", "n", 5)
        .hincr("ap", "n", -2)
        .query_async(con)
        .await?;
    assert_eq!((x, y), (5, 3));
    Ok(())
}

#[tokio::test]
async fn async_resp2() {
    let srv = server();
    let mut con = connect_async(&srv.url("")).await;
    tokio::time::timeout(Duration::from_secs(20), async_scenario(&mut con, false))
        .await
        .expect("async RESP2 scenario in time")
        .expect("async RESP2 scenario");
}

#[tokio::test]
async fn async_resp3() {
    let srv = server();
    let mut con = connect_async(&srv.url("?protocol=resp3")).await;
    tokio::time::timeout(Duration::from_secs(20), async_scenario(&mut con, true))
        .await
        .expect("async RESP3 scenario in time")
        .expect("async RESP3 scenario");
}

/// What was written through a `redis://:pw@host/3` connection is in db 3 and nowhere else.
fn check_db3(srv: &TestServer, key: &str) {
    let mut raw = srv.client();
    raw.auth("s3cret");
    assert_bytes(
        &raw.run(&format!("HGET {key} f")),
        b"$-1\r\n",
        "db 0 untouched",
    );
    raw.expect("SELECT 3", b"+OK\r\n");
    assert_bytes(
        &raw.run(&format!("HGET {key} f")),
        b"$1\r\nv\r\n",
        "written in db 3",
    );
}

#[test]
fn password_and_db_in_the_url_sync() {
    let srv = TestServer::builder().requirepass("s3cret").start();
    for (suffix, key) in [("/3", "sync2"), ("/3?protocol=resp3", "sync3")] {
        let url = format!("redis://:s3cret@{}{}", srv.addr, suffix);
        let mut con = connect(&url);
        let n: i64 = con
            .hset(key, "f", "v")
            .expect("HSET through an authenticated connection");
        assert_eq!(n, 1);
        check_db3(&srv, key);
    }
    // The user name spelled out works too.
    let mut con = connect(&format!("redis://default:s3cret@{}/3", srv.addr));
    let v: String = con.hget("sync2", "f").expect("HGET as user default");
    assert_eq!(v, "v");
}

#[tokio::test]
async fn password_and_db_in_the_url_async() {
    let srv = TestServer::builder().requirepass("s3cret").start();
    for (suffix, key) in [("/3", "async2"), ("/3?protocol=resp3", "async3")] {
        let url = format!("redis://:s3cret@{}{}", srv.addr, suffix);
        let mut con = connect_async(&url).await;
        let n: i64 = con
            .hset(key, "f", "v")
            .await
            .expect("HSET through an authenticated connection");
        assert_eq!(n, 1);
        check_db3(&srv, key);
    }
}

#[test]
fn wrong_or_missing_password_is_refused() {
    let srv = TestServer::builder().requirepass("s3cret").start();
    for suffix in ["", "?protocol=resp3"] {
        let url = format!("redis://:wrong@{}{}", srv.addr, suffix);
        let client = redis::Client::open(url.as_str()).expect("url parses");
        let r = client.get_connection_with_timeout(TIMEOUT);
        assert!(
            r.is_err(),
            "{url}: a wrong password must fail the connection"
        );
    }
    let mut con = connect(&srv.url(""));
    let r: RedisResult<Option<String>> = con.hget("k", "f");
    let e = r.expect_err("NOAUTH without a password");
    assert_eq!(e.code(), Some("NOAUTH"), "{e}");
}
