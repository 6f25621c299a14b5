// Seed 002 (Understanding Redis Hashes Using JavaScript). Changes from the seed, marked below:
// - `const user` became `let user`: the seed reassigns it after hDel, which throws
//   "TypeError: Assignment to constant variable." (caught and printed by its own catch block),
//   so the second "User details" line would never print;
// - the client takes REDIS_URL, so it can reach a server on another port.
import { createClient } from 'redis';

// Connect to Redis
const client = createClient({ url: process.env.REDIS_URL }); // hashd: url from REDIS_URL

client.on('error', err => console.error('Redis Client Error', err));

await client.connect();

try {
    // Using hashes to store and retrieve fields and values
    await client.hSet('user:1000', 'username', 'alice');
    await client.hSet('user:1000', 'email', 'alice@example.com');

    let user = await client.hGetAll('user:1000'); // hashd: was `const user`
    console.log('User details:', user);

    await client.hDel('user:1000', 'username');
    user = await client.hGetAll('user:1000');
    console.log('User details:', user);

} catch (err) {
    console.error('Error:', err);
} finally {
    // Disconnect from Redis
    await client.disconnect();
}
