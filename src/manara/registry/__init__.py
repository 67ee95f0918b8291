"""Model registry: registered models, versions, aliases, signatures, safe formats."""
