"""The catalog: papers, versions, authors, categories and organizations."""
