// ava 7 on Node 20 with tsx as the TypeScript loader; worker threads must be
// off for tsx's loader hooks to apply (see ../shared/ENGINE.md).
export default {
  files: ["test/**/*.test.ts"],
  extensions: { ts: "module" },
  nodeArguments: ["--import=tsx"],
  // each test file's process exits when its tests are done (see the file)
  require: ["./test/helpers/exit.ts"],
  workerThreads: false,
  timeout: "120s",
  concurrency: 2,
  verbose: true,
};
