"""pyengine: a container engine on trio speaking the Docker Engine API v1.41."""

__version__ = "0.1.0"
API_VERSION = "1.41"
MIN_API_VERSION = "1.12"
