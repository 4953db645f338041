export {
  defineActor,
  rawReply,
  respondError,
  ActorInstance,
  type ActorDefinition,
  type ActorContract,
  type ActorContext,
  type ActorWiring,
  type EndpointSpec,
  type ControlSpec,
  type Handler,
  type Request,
  type Reply,
  type RawReply,
  type InstanceOptions,
} from "./actor.ts";
export { startActors, installSignalHandlers, drainProcess, type RunningActors, type StartActorsOptions } from "./process.ts";
export { retry, backoffDelay, keepRunning, type KeepRunningOptions, isRetryable, DEFAULT_BACKOFF, type BackoffOptions, type RetryOptions } from "./backoff.ts";
export { decodeHeartbeat, isAlive, listPresence, summarizePresence, type Heartbeat, type Presence } from "./presence.ts";
