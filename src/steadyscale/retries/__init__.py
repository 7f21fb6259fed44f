"""Time and pacing: clocks, full-jitter backoff, token buckets and client-side pacing."""
