import { createServer } from "node:net";

/**
 * Asks the OS for a free TCP port on `host` (listen on 0, read it, close).
 * Used only where a port must be known before any process starts: JetStream
 * clustering refuses to start without configured routes, so route ports are
 * reserved this way; every other port is `-1` and read back from the server.
 */
export function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.once("error", reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => (port ? resolve(port) : reject(new Error("no port"))));
    });
  });
}
