"""The resorption workflow as OGC API Processes: one module per process.

Each module has its `PROCESS_METADATA` (in French) and a `Processor` (pygeoapi's
`BaseProcessor`). The processors read the caller from `identity.current_principal()`
(set by the app before pygeoapi runs, and carried into background jobs by
`processes.jobs.JobManager`), ask the policy what it may do, and write or read
through `database.transaction` with the same role and settings as the Features
API, so that row-level security and column privileges apply to them too.
"""
