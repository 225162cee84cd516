"""AWS Batch's documented limits on one job, in one place.

`batchkit.jobs.validation` checks what a user typed against them, the local engine's admission
(`batchkit.providers.local.admission`) refuses what SubmitJob would, and the AWS provider's
payload builder (`batchkit.providers.aws.submitjob`) keeps within them: all three import these,
so they cannot drift apart. A leaf: plain constants, no imports (`batchkit sub` loads it at
start-up).

The pages each comes from:
- SubmitJob, AWS Batch API Reference (batch/latest/APIReference/API_SubmitJob.html);
- "AWS Batch service quotas", AWS Batch User Guide (batch/latest/userguide/service_limits.html),
  quotas that "can't be changed";
- the data types SubmitJob takes, AWS Batch API Reference: ArrayProperties, RetryStrategy
  (API_RetryStrategy.html), JobTimeout (API_JobTimeout.html), ResourceRequirement
  (API_ResourceRequirement.html);
- "Node groups", AWS Batch User Guide (batch/latest/userguide/mnp-node-groups.html).
"""

# SubmitJob `arrayProperties`: "The array size can be between 2 and 10,000" (API Reference,
# SubmitJob and ArrayProperties); "Maximum array size for array jobs: 10000" (User Guide,
# "AWS Batch service quotas").
MIN_ARRAY_SIZE = 2
MAX_ARRAY_SIZE = 10_000

# SubmitJob `dependsOn`: "A job can depend upon a maximum of 20 jobs" (API Reference, SubmitJob);
# "Maximum number of job dependencies for a job: 20" (User Guide, "AWS Batch service quotas").
MAX_DEPENDENCIES = 20

# RetryStrategy `attempts`: "You can specify between 1 and 10 attempts" (API Reference,
# RetryStrategy).
MIN_RETRY_ATTEMPTS = 1
MAX_RETRY_ATTEMPTS = 10

# JobTimeout `attemptDurationSeconds`: "The minimum value for the timeout is 60 seconds"; its type
# is Integer, a 32-bit signed integer in the API's model (API Reference, JobTimeout).
MIN_TIMEOUT_SECONDS = 60
MAX_TIMEOUT_SECONDS = 2**31 - 1

# ResourceRequirement, type MEMORY: "You must specify at least 4 MiB of memory for a job"
# (API Reference, ResourceRequirement).
MIN_MEMORY_MIB = 4

# Multi-node parallel jobs: "You can have up to 1,000 nodes in a single job" (User Guide,
# "Node groups"; the default limit for instances in an Amazon ECS cluster).
MAX_NODES = 1_000
