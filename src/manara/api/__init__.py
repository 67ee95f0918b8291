"""Control-plane REST API (FastAPI) over the same services as the SDK and CLI."""
