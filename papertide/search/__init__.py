"""Search: keyword and vector retrieval, fused."""
