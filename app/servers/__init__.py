"""The servers context: Minecraft servers and their lifecycle on nodes."""
