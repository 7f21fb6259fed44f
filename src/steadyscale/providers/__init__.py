"""Cloud backends behind one protocol: ``protocol`` (the ``CloudProvider`` protocol and the
values that cross it), ``byid`` (EC2's calls on lists of ids, made alike by every
backend), ``wire`` (EC2's request shapes, written once), ``aws`` (boto3: real EC2 or any
endpoint, the emulator's too) and ``memory`` (in-process, on the EC2 model).
``steadyscale.app`` builds one (and the Ray provider, an entry point of its own, its
boto3 one)."""
