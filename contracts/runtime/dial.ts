import { InterceptingCall, type ChannelCredentials, type ChannelOptions, type Interceptor } from "@grpc/grpc-js";
import { channelCredentialsOf, type TlsMaterial } from "./tls.js";

/** What a gRPC client of ours is constructed with: credentials, and channel options that carry the key. */
export interface Dial {
  credentials: ChannelCredentials;
  options: ChannelOptions & { interceptors?: Interceptor[] };
}

/**
 * How this process dials a peer: TLS when it has the peers' CA (see
 * tls.ts), and its own key on every call as `authorization: Bearer`, unless
 * the call already carries one (the edge forwards its caller's).
 */
export function dialWith(opts: { tls?: TlsMaterial; key?: string; channel?: ChannelOptions }): Dial {
  const interceptors = opts.key ? [presentKey(opts.key)] : [];
  return { credentials: channelCredentialsOf(opts.tls), options: { ...opts.channel, interceptors } };
}

function presentKey(key: string): Interceptor {
  const bearer = `Bearer ${key}`;
  return (options, nextCall) =>
    new InterceptingCall(nextCall(options), {
      start(metadata, listener, next) {
        if (metadata.get("authorization").length === 0) metadata.set("authorization", bearer);
        next(metadata, listener);
      },
    });
}
