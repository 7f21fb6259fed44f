"""Cloud backends behind one protocol: ``protocol`` (the ``CloudProvider`` protocol, the
values that cross it, and the by-id calls every backend answers alike), ``wire`` (EC2's
request shapes, written once), ``aws`` (boto3: real EC2 or any endpoint, the emulator's
too) and ``memory`` (in-process, on the EC2 model). ``steadyscale.app`` builds one (and the
Ray provider, an entry point of its own, its boto3 one)."""
