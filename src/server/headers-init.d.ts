// @types/node 20 declares the fetch `Headers` class globally but not the
// `HeadersInit` alias that @connectrpc/connect's declarations use. With no DOM
// lib and skipLibCheck off, tsc would fail on every file importing connect.
// This is the alias @types/node's own fetch types (undici-types) use.
type HeadersInit = import("undici-types").HeadersInit;
