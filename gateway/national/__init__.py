"""National card database: the change-feed adapter, its simulator, sync into the gateway database,
file imports, and local actions pushed upstream. See docs/national-sync.md."""
