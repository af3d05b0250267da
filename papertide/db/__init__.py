"""Database: schema, engine set-up, migrations and the engine-specific full-text parts."""
