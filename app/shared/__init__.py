"""The shared kernel: bus, events and relay, unit of work, errors, security, HTTP plumbing."""
