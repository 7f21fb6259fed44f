"""Tools for testing steadyscale itself: the crash harness (``chaos``)."""
