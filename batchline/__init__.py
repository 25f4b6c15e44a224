"""The `batchline` command: local broker, worker and API processes, and the client CLI."""
