"""A model of EC2's behaviour, independent of any server: what a caller may see and when
(``visibility``), what throttles or fails a call (``gate``), capacity and limits
(``capacity``), launches and ClientTokens (``launch``), each instance's lifecycle
(``region``, ``instances``), CreateFleet's pools and strategies (``fleet``,
``allocation``), prices (``pricing``) and launch templates (``templates``), with its
settings, call log and instance-type catalogue.
The emulator serves it over HTTP behind moto; the in-memory provider calls it directly."""
