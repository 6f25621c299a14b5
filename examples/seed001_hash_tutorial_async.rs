//! Seed 001 (Redis hashes), "Rust (Asynchronous)" tab: set_get_all, hmget, hincrby and
//! incrby_get_mget, as the page shows them, inside the setup the page hides (a multiplexed
//! tokio connection for REDIS_URL, default redis://127.0.0.1/).
//! Run: `cargo run --example seed001_hash_tutorial_async`.
//! Expected output: examples/seed001_hash_tutorial_async.expected.

// The page's code is kept as written, including its `return;` at the end of the last match.
#![allow(clippy::needless_return)]

use redis::AsyncCommands;

#[tokio::main]
async fn main() {
    let url = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1/".to_string());
    let client = match redis::Client::open(url) {
        Ok(client) => client,
        Err(e) => {
            println!("Failed to create the Redis client: {e}");
            return;
        }
    };
    let mut r = match client.get_multiplexed_async_connection().await {
        Ok(r) => r,
        Err(e) => {
            println!("Failed to connect to Redis: {e}");
            return;
        }
    };

    let hash_fields = [
        ("model", "Deimos"),
        ("brand", "Ergonom"),
        ("type", "Enduro bikes"),
        ("price", "4972"),
    ];

    if let Ok(res) = r.hset_multiple("bike:1", &hash_fields).await {
        let res: String = res;
        println!("{res}"); // >>> OK
    }

    match r.hget("bike:1", "model").await {
        Ok(res) => {
            let res: String = res;
            println!("{res}"); // >>> Deimos
        }
        Err(e) => {
            println!("Error getting bike:1 model: {e}");
            return;
        }
    };

    match r.hget("bike:1", "price").await {
        Ok(res) => {
            let res: String = res;
            println!("{res}"); // >>> 4972
        }
        Err(e) => {
            println!("Error getting bike:1 price: {e}");
            return;
        }
    };

    match r.hgetall("bike:1").await {
        Ok(res) => {
            let res: Vec<(String, String)> = res;
            println!("{res:?}");
            // >>> [("model", "Deimos"), ("brand", "Ergonom"), ("type", "Enduro bikes"), ("price", "4972")]
        }
        Err(e) => {
            println!("Error getting bike:1: {e}");
            return;
        }
    };

    match r.hmget("bike:1", &["model", "price"]).await {
        Ok(res) => {
            let res: Vec<String> = res;
            println!("{res:?}"); // >>> ["Deimos", "4972"]
        }
        Err(e) => {
            println!("Error getting bike:1: {e}");
            return;
        }
    };

    if let Ok(res) = r.hincr("bike:1", "price", 100).await {
        let res: i32 = res;
        println!("{res}"); // >>> 5072
    }

    if let Ok(res) = r.hincr("bike:1", "price", -100).await {
        let res: i32 = res;
        println!("{res}"); // >>> 4972
    }

    if let Ok(res) = r.hincr("bike:1:stats", "rides", 1).await {
        let res: i32 = res;
        println!("{res}"); // >>> 1
    }

    if let Ok(res) = r.hincr("bike:1:stats", "rides", 1).await {
        let res: i32 = res;
        println!("{res}"); // >>> 2
    }

    if let Ok(res) = r.hincr("bike:1:stats", "rides", 1).await {
        let res: i32 = res;
        println!("{res}"); // >>> 3
    }

    if let Ok(res) = r.hincr("bike:1:stats", "crashes", 1).await {
        let res: i32 = res;
        println!("{res}"); // >>> 1
    }

    if let Ok(res) = r.hincr("bike:1:stats", "owners", 1).await {
        let res: i32 = res;
        println!("{res}"); // >>> 1
    }

    match r.hget("bike:1:stats", "rides").await {
        Ok(res) => {
            let res: i32 = res;
            println!("{res}"); // >>> 3
        }
        Err(e) => {
            println!("Error getting bike:1:stats rides: {e}");
            return;
        }
    };

    match r.hmget("bike:1:stats", &["crashes", "owners"]).await {
        Ok(res) => {
            let res: Vec<i32> = res;
            println!("{res:?}"); // >>> [1, 1]
        }
        Err(e) => {
            println!("Error getting bike:1:stats crashes and owners: {e}");
            return;
        }
    };
}
