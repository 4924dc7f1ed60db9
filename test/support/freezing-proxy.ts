import { createConnection, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy on 127.0.0.1 in front of a real server, for half-open connections: `freeze()` stops
 * the bytes of the connections open now, both ways, without closing them (a frozen host, a
 * failover); connections made afterwards pass as usual.
 */
export interface FreezingProxy {
  port: number;
  freeze(): void;
  close(): Promise<void>;
}

export async function startFreezingProxy(targetPort: number): Promise<FreezingProxy> {
  const pairs: [Socket, Socket][] = [];
  const frozen: [Socket, Socket][] = [];
  const server: Server = createServer((client) => {
    const upstream = createConnection({ host: '127.0.0.1', port: targetPort });
    client.pipe(upstream);
    upstream.pipe(client);
    const end = () => (client.destroy(), upstream.destroy());
    client.on('error', end);
    upstream.on('error', end);
    client.on('close', end);
    upstream.on('close', end);
    pairs.push([client, upstream]);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as { port: number }).port,
    freeze() {
      for (const [client, upstream] of pairs.splice(0)) {
        frozen.push([client, upstream]);
        client.unpipe(upstream);
        upstream.unpipe(client);
        client.pause();
        upstream.pause();
      }
    },
    async close() {
      for (const [client, upstream] of [...pairs.splice(0), ...frozen.splice(0)]) (client.destroy(), upstream.destroy());
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
