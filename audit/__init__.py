"""platform-audit: does a platform remove prohibited content within the legal deadline?"""

__version__ = "0.1.0"

__all__ = ["__version__"]
