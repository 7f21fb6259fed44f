"""The autoscaler's loop: observe EC2, decide with the pure core, act through a provider,
writing every decision to the ledger before acting on it."""
