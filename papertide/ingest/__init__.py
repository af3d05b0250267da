"""Ingestion: one module per source format, and the runner that feeds the catalog."""
