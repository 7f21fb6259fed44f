"""The autoscaler's loop: observe EC2, decide with the pure core, act through a provider,
writing every decision to the ledger before acting on it. ``autoscaler`` assembles the
rooms, one per piece of state kept across ticks: ``book`` (the node records), ``observer``,
``offerings`` (where each type can launch), ``mover``, ``launcher``, ``terminator``,
``strangers``, ``retirement`` (nodes a config change replaces), ``carried`` (nodes of a
former cluster name) and ``report``; ``hooks`` are the seams the app may fill."""
