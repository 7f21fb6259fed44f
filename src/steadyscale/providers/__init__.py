"""Cloud backends. ``base`` holds the protocol every backend implements exactly."""
