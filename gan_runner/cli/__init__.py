"""Command-line entry points: thin layers that parse, call the library, and report errors."""
