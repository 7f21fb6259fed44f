"""The autoscaler's loop: observe EC2, decide with the pure core, act through a provider,
writing every decision to the ledger before acting on it. ``autoscaler`` assembles the
rooms (node book, observer, offering book, mover, launcher, terminator, strangers, report)."""
