/**
 * JSON a test reads: a response body, a file on disk, a request a fake engine
 * received. It is typed as loosely as `JSON.parse` types it, because its shape is
 * exactly what the test's assertions check.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- see above; the assertions are the type check
export type Json = any;
