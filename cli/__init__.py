"""The `mnist-pipeline` command line: the top layer, above the flows, tasks and the Prefect-free core."""
