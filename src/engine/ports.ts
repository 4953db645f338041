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

/** A loopback port held open by this process, which answers nothing. */
export interface HeldPort {
  readonly port: number;
  release(): Promise<void>;
}

/**
 * Binds a free loopback port and keeps it for as long as it is held, closing
 * every connection made to it at once. For an address that must be
 * advertised yet never reached (a proxied cluster's route advertisement):
 * a port that was merely reserved and closed could be given by the OS to
 * another process meanwhile, and peers would then dial into that one.
 */
export function holdDeadPort(host = "127.0.0.1"): Promise<HeldPort> {
  return new Promise((resolve, reject) => {
    const srv = createServer((sock) => sock.destroy());
    srv.unref();
    srv.once("error", reject);
    srv.listen(0, host, () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      if (!port) return reject(new Error("no port"));
      resolve({ port, release: () => new Promise<void>((r) => srv.close(() => r())) });
    });
  });
}
