"""A sample Docker volume plugin (legacy protocol) for pyengine."""
