// ava 7 on Node 20 with tsx as the TypeScript loader; worker threads must be
// off for tsx's loader hooks to apply (see ../shared/ENGINE.md).
export default {
  files: ["test/**/*.test.ts"],
  extensions: { ts: "module" },
  nodeArguments: ["--import=tsx"],
  workerThreads: false,
  timeout: "120s",
  concurrency: 2,
  verbose: true,
};
