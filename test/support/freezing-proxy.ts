import { createConnection, createServer, type Server, type Socket } from 'node:net';

/**
 * A TCP proxy on 127.0.0.1 in front of a real server, for half-open connections: `freeze()` stops
 * the bytes of the connections open now, both ways, without closing them (a frozen host, a
 * failover); connections made afterwards pass as usual, unless `hang()` made the whole server
 * stop answering (kill -STOP): then they are accepted and never answered either.
 */
export interface FreezingProxy {
  port: number;
  freeze(): void;
  /** Freezes every connection and answers no new one: a hung server. */
  hang(): void;
  /** Hangs the server at the first statement of a client whose bytes `matches` accepts (it is sent, never answered). */
  hangAt(matches: (clientBytes: Buffer) => boolean): void;
  close(): Promise<void>;
}

export async function startFreezingProxy(targetPort: number): Promise<FreezingProxy> {
  const pairs: [Socket, Socket][] = [];
  const frozen: [Socket, Socket][] = [];
  const unanswered: Socket[] = [];
  let hung = false;
  let hangTrigger: ((clientBytes: Buffer) => boolean) | undefined;
  const freeze = () => {
    for (const [client, upstream] of pairs.splice(0)) {
      frozen.push([client, upstream]);
      client.unpipe(upstream);
      upstream.unpipe(client);
      client.pause();
      upstream.pause();
    }
  };
  const hang = () => {
    hung = true;
    freeze();
  };
  const server: Server = createServer((client) => {
    if (hung) {
      unanswered.push(client);
      client.on('error', () => client.destroy());
      return;
    }
    const upstream = createConnection({ host: '127.0.0.1', port: targetPort });
    client.pipe(upstream);
    upstream.pipe(client);
    // The statement that triggers the hang reaches the server; its answer is held here.
    client.on('data', (bytes: Buffer) => {
      if (hangTrigger?.(bytes)) {
        hangTrigger = undefined;
        hang();
      }
    });
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
    freeze,
    hang,
    hangAt(matches) {
      hangTrigger = matches;
    },
    async close() {
      for (const [client, upstream] of [...pairs.splice(0), ...frozen.splice(0)]) (client.destroy(), upstream.destroy());
      for (const client of unanswered.splice(0)) client.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
