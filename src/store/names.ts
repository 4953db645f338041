/**
 * S3 naming rules for buckets and object keys. The one validator of each
 * lives in the v1 codec (src/subjects/v1.ts); this module re-exports them
 * for the store and the CLI.
 */
export { bucketNameProblem, assertBucketName, keyProblem, assertKey, MAX_KEY_BYTES } from "../subjects/v1.ts";
