"""A model of EC2's behaviour, independent of any server: what a caller may see and when
(eventual consistency), throttling, capacity and faults, with its settings and call log.
The emulator serves it over HTTP behind moto; the in-memory provider calls it directly."""
