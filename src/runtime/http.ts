/**
 * Starting and stopping the HTTP servers Shoal runs (the S3 gateway, the
 * metrics endpoint of actor-only processes): listen, read the port back (0
 * picks a free one), and a close that lets requests in flight finish (up to a
 * grace period) while refusing new connections and ending idle keep-alive ones.
 */
import type { Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface Listening {
  url: string;
  port: number;
  server: Server;
  /**
   * Stops accepting connections; requests in flight may finish for `graceMs`
   * (their connections close once idle), then every connection is closed.
   */
  close(graceMs?: number): Promise<void>;
}

export async function listenHttp(server: Server, host: string, port: number): Promise<Listening> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  const bound = (server.address() as AddressInfo).port;
  return {
    url: `http://${host.includes(":") ? `[${host}]` : host}:${bound}`,
    port: bound,
    server,
    close: (graceMs = 0) =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        if (graceMs <= 0) return server.closeAllConnections();
        // a keep-alive connection goes as soon as its request is answered
        const idle = setInterval(() => server.closeIdleConnections(), 50);
        const hard = setTimeout(() => server.closeAllConnections(), graceMs);
        server.closeIdleConnections();
        server.once("close", () => {
          clearInterval(idle);
          clearTimeout(hard);
        });
      }),
  };
}
