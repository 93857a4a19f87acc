"""pygeoapi plugins: our feature provider (and later tiles)."""
