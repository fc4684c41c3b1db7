// A transcript's canonical JSON written directly: the same bytes encodeDocument
// gives for a trace artifact of this one shape (members in sorted order), without
// building the Struct, the public JSON and a sorted copy of it first. A unit test
// holds the two equal for arbitrary text.

export interface TranscriptFields {
  taskId: string;
  sessionId: string;
  /** The SSE text the client received. */
  sse: string;
  poolId: string;
  replicaId: string;
  correlationId: string;
  tokensOut: number;
}

const q = (s: string) => JSON.stringify(s);

export function transcriptCanonical(f: TranscriptFields): string {
  return (
    `{"content":{"format":"text/event-stream","session_id":${q(f.sessionId)},"sse":${q(f.sse)},"task_id":${q(f.taskId)}},` +
    `"kind":"trace",` +
    `"metadata":{"correlation_id":${q(f.correlationId)},"pool_id":${q(f.poolId)},"replica_id":${q(f.replicaId)},"tokens_out":${JSON.stringify(f.tokensOut)}},` +
    `"tags":["transcript",${q(`task:${f.taskId}`)}]}`
  );
}
