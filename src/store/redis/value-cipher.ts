/**
 * The cipher moved to store/sealing/, shared by the Redis and SQLite stores;
 * this keeps the Redis modules' imports (they move over with their next edit).
 */
export * from "../sealing/value-cipher.js";
