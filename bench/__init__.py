"""`make bench`: the system's throughput, latency, cold start and memory, each beside the ceiling it is
compared to (a hello-world function, raw pg8000, the HL7 parser), measured in the same run."""
