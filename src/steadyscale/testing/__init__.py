"""Tools for testing steadyscale itself: the crash harness (``chaos``), the ground-truth
audit, crash points, and the Ray harness (``ray_harness``, needs the ``ray`` extra)."""
