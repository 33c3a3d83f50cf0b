"""The servers context's domain: entities, value objects, events, errors and ports; no framework."""
